use std::path::Path;
use std::time::Instant;

use odqa_analysis::KoreanAnalyzer;
use odqa_encoder::{Device, Precision, QaModel};
use odqa_reader::fusion::{ReadPassage, ReadSpan};
use odqa_reader::spans::score_windows;
use odqa_reader::{
    merge_answers, pad_id, Answer, ScoringConfig, Window, WindowConfig, WindowSpans, Windower,
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

/// A span-extraction model with its windowing and scoring settings.
pub struct Reader {
    model: QaModel,
    options: ReaderOptions,
    pad_id: u32,
    trimmer: Option<KoreanAnalyzer>,
}

impl Reader {
    pub fn load(model_dir: &Path, options: ReaderOptions, device: &Device) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(PipelineError::InvalidOption(
                "reader batch size must be at least 1".into(),
            ));
        }
        options.windows.validate()?;
        options.scoring.validate()?;
        let model = QaModel::load_at(model_dir, device, options.precision)?;
        // A Hugging Face checkpoint's position embeddings bound the window.
        model.check_window(options.windows.max_len)?;
        let pad_id = pad_id(model.tokenizer()).unwrap_or(0);
        // Fails early on a tokenizer without the special tokens windows need.
        Windower::new(model.tokenizer(), options.windows)?;
        Ok(Reader {
            model,
            options,
            pad_id,
            trimmer: None,
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
    pub fn model(&self) -> &QaModel {
        &self.model
    }

    /// The best spans for `question` over `passages`.
    pub fn read(&self, question: &str, passages: &[&str]) -> Result<ReadOutput> {
        let started = Instant::now();
        let windows = self.windows(question, passages)?;
        let mut spans = Vec::with_capacity(windows.len());
        for chunk in windows.chunks(self.options.batch_size) {
            spans.extend(self.score(chunk)?);
        }
        self.merge(passages, &spans, started.elapsed().as_secs_f64())
    }

    /// The model inputs for `question` over `passages` (the first step of
    /// [`Reader::read`], for callers that batch windows of several
    /// questions together, such as a server).
    pub fn windows(&self, question: &str, passages: &[&str]) -> Result<Vec<Window>> {
        let windower = Windower::new(self.model.tokenizer(), self.options.windows)?;
        Ok(windower.windows(question, passages)?)
    }

    /// One forward pass over `windows` (which may come from different
    /// questions and passages) and their best spans, in order. The caller
    /// picks the batch: every window given runs in this one pass.
    pub fn score(&self, windows: &[Window]) -> Result<Vec<WindowSpans>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, mask, types, batch, seq_len) = odqa_reader::batch(windows, self.pad_id);
        let logits = self.model.logits(&ids, &mask, &types, batch, seq_len)?;
        let start: Vec<&[f32]> = logits.start.chunks(seq_len).collect();
        let end: Vec<&[f32]> = logits.end.chunks(seq_len).collect();
        Ok(score_windows(windows, &start, &end, &self.options.scoring)?)
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

impl Reader {
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
