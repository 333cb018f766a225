use std::path::Path;
use std::time::Instant;

use odqa_analysis::KoreanAnalyzer;
use odqa_encoder::{Device, Precision, QaModel};
use odqa_reader::fusion::{ReadPassage, ReadSpan};
use odqa_reader::{
    merge_answers, score_all, Answer, ScoringConfig, SpanModel, Window, WindowConfig, WindowSpans,
    Windower,
};
use serde::{Deserialize, Serialize};

use crate::{PipelineError, Result};

/// How the reader windows passages and scores spans.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReaderOptions {
    pub windows: WindowConfig,
    pub scoring: ScoringConfig,
    /// Windows per forward pass; windows of different passages share batches.
    pub batch_size: usize,
    /// The model's linear layers on the CPU ([`Precision`]; library
    /// default f32).
    #[serde(default = "f32_precision")]
    pub precision: Precision,
}

fn f32_precision() -> Precision {
    Precision::F32
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            windows: WindowConfig::default(),
            scoring: ScoringConfig::default(),
            batch_size: 16,
            precision: Precision::F32,
        }
    }
}

/// What one read produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOutput {
    /// n-best answers over all passages, best first.
    pub answers: Vec<Answer>,
    /// The lowest no-answer score over the windows, when the scoring allows it.
    pub no_answer_score: Option<f32>,
    pub windows: usize,
    pub seconds: f64,
}

/// A span-extraction model ([`SpanModel`]: candle's [`QaModel`] by
/// default; the server's queue in front of one) with its windowing and
/// scoring settings.
pub struct Reader<M = QaModel> {
    model: M,
    options: ReaderOptions,
    trimmer: Option<KoreanAnalyzer>,
}

impl Reader<QaModel> {
    /// Loads a reader directory ([`QaModel::load_at`] at the options'
    /// precision) and checks the options against it. odqa's own trained
    /// reader (a delta artifact) was trained with "no answer" at position 0,
    /// so for it the span probabilities are always normalised over the
    /// passage tokens and that position (`scoring.allow_no_answer`).
    pub fn load(model_dir: &Path, mut options: ReaderOptions, device: &Device) -> Result<Self> {
        options.scoring.allow_no_answer |= odqa_encoder::is_delta_reader(model_dir);
        check_options(&options)?;
        let model = QaModel::load_at(model_dir, device, options.precision)?;
        // A Hugging Face checkpoint's position embeddings bound the window.
        model.check_window(options.windows.max_len)?;
        Reader::new(model, options)
    }
}

fn check_options(options: &ReaderOptions) -> Result<()> {
    if options.batch_size == 0 {
        return Err(PipelineError::InvalidOption(
            "reader batch size must be at least 1".into(),
        ));
    }
    options.windows.validate()?;
    options.scoring.validate()?;
    Ok(())
}

impl<M: SpanModel> Reader<M> {
    /// A reader over `model`; fails on bad options or a tokenizer without
    /// the special tokens windows need.
    pub fn new(model: M, options: ReaderOptions) -> Result<Self> {
        check_options(&options)?;
        Windower::new(model.tokenizer(), options.windows)?;
        Ok(Reader {
            model,
            options,
            trimmer: None,
        })
    }

    /// The same reader (options, trimmer) over `wrap(model)`: how the
    /// server puts its batching queue in front of the loaded model.
    pub fn try_map_model<N: SpanModel, E>(
        self,
        wrap: impl FnOnce(M) -> std::result::Result<N, E>,
    ) -> std::result::Result<Reader<N>, E> {
        Ok(Reader {
            model: wrap(self.model)?,
            options: self.options,
            trimmer: self.trimmer,
        })
    }

    /// Trims trailing particles, endings and copulas off every answer with
    /// this (morphological) analyzer: `서울이다` → `서울`
    /// ([`KoreanAnalyzer::trim_function_suffix`]).
    pub fn with_trimmer(mut self, analyzer: KoreanAnalyzer) -> Self {
        self.trimmer = Some(analyzer);
        self
    }

    pub fn options(&self) -> &ReaderOptions {
        &self.options
    }

    /// The span model (for callers that ask it other questions, such as
    /// relation classification, without loading it twice).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The best spans for `question` over `passages`.
    pub fn read(&self, question: &str, passages: &[&str]) -> Result<ReadOutput> {
        let started = Instant::now();
        let windows = self.windows(question, passages)?;
        let spans = self.score(&windows)?;
        self.merge(passages, &spans, started.elapsed().as_secs_f64())
    }

    /// The model inputs for `question` over `passages` (the first step of
    /// [`Reader::read`], for callers that batch windows of several
    /// questions together, such as a server).
    pub fn windows(&self, question: &str, passages: &[&str]) -> Result<Vec<Window>> {
        let windower = Windower::new(self.model.tokenizer(), self.options.windows)?;
        Ok(windower.windows(question, passages)?)
    }

    /// The best spans of `windows` (which may come from different
    /// questions and passages), in order, from forward passes of at most
    /// [`ReaderOptions::batch_size`] windows ([`odqa_reader::run_windows`]).
    pub fn score(&self, windows: &[Window]) -> Result<Vec<WindowSpans>> {
        Ok(score_all(
            &self.model,
            windows,
            self.options.batch_size,
            &self.options.scoring,
        )?)
    }

    /// The answers over `passages` from the spans of all their windows
    /// (the last step of [`Reader::read`]); `seconds` is reported as is.
    pub fn merge(
        &self,
        passages: &[&str],
        spans: &[WindowSpans],
        seconds: f64,
    ) -> Result<ReadOutput> {
        let mut answers = merge_answers(passages, spans, self.options.scoring.n_best)?;
        if let Some(analyzer) = &self.trimmer {
            answers = trim_answers(analyzer, answers)?;
        }
        Ok(ReadOutput {
            answers,
            no_answer_score: odqa_reader::no_answer_score(spans),
            windows: spans.len(),
            seconds,
        })
    }
}

impl<M: SpanModel> Reader<M> {
    /// Per-passage n-best spans (trimmed like [`Reader::merge`]'s answers)
    /// for the passages `range` of `passages`, from the spans of their
    /// windows (`spans` may hold windows of other passages too: they are
    /// ignored). `retrieval_scores[i]` is passage `i`'s retrieval score.
    pub fn read_passages(
        &self,
        passages: &[&str],
        retrieval_scores: &[f32],
        range: std::ops::Range<usize>,
        spans: &[WindowSpans],
    ) -> Result<Vec<ReadPassage>> {
        let mut out = Vec::with_capacity(range.len());
        for i in range {
            let own: Vec<WindowSpans> = spans
                .iter()
                .filter(|s| s.passage_index == i)
                .cloned()
                .collect();
            let mut answers = merge_answers(passages, &own, self.options.scoring.n_best)?;
            if let Some(analyzer) = &self.trimmer {
                answers = trim_answers(analyzer, answers)?;
            }
            let score = retrieval_scores.get(i).copied().ok_or_else(|| {
                PipelineError::InvalidOption(format!(
                    "passage {i} has no retrieval score ({} given)",
                    retrieval_scores.len()
                ))
            })?;
            out.push(ReadPassage {
                rank: i,
                retrieval_score: score,
                windows: own.len(),
                spans: answers
                    .into_iter()
                    .map(|a| ReadSpan {
                        text: a.text,
                        char_start: a.char_start,
                        char_end: a.char_end,
                        probability: a.score,
                    })
                    .collect(),
                no_answer_score: odqa_reader::no_answer_score(&own),
            });
        }
        Ok(out)
    }
}

/// Cuts function morphemes off the end of each answer (offsets follow the
/// text, so answers stay exact substrings); answers that become the same
/// span keep the best score.
fn trim_answers(analyzer: &KoreanAnalyzer, answers: Vec<Answer>) -> Result<Vec<Answer>> {
    let mut out: Vec<Answer> = Vec::with_capacity(answers.len());
    for mut answer in answers {
        let end = analyzer.trim_function_suffix(&answer.text)?;
        if end < answer.text.len() {
            answer.text.truncate(end);
            answer.char_end = answer.char_start + answer.text.chars().count();
        }
        let same = |a: &Answer| {
            (a.passage_index, a.char_start, a.char_end)
                == (answer.passage_index, answer.char_start, answer.char_end)
        };
        // Answers arrive best first, so the first of a span has its best score.
        if !out.iter().any(same) {
            out.push(answer);
        }
    }
    Ok(out)
}
