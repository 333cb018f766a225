use std::time::Instant;

use odqa_index::Hit;

use crate::retrieve::{RetrievalMode, Retriever};
use serde::{Deserialize, Serialize};

use odqa_encoder::QaModel;
use odqa_reader::fusion::{
    can_stop, check_weight, rank_answers, reading_batches, FusedEvidence, FusionSettings,
    ReadPassage,
};
use odqa_reader::{SpanModel, Window};

use crate::reader::Reader;
use crate::{PipelineError, Result};

/// Weight μ of the normalized retrieval score in an answer's score, chosen
/// on the dev questions (KorQuAD dev split and klue-mrc-odqa-val over
/// kowiki-2020-10k, best mean F1 of the two: bench/README.md, "Fusing
/// retrieval and reading"). At μ 0.6 the top passage's answers score at
/// least 0.6, so early stopping cuts reading by a quarter.
pub const DEFAULT_RETRIEVAL_WEIGHT: f32 = 0.6;
/// Passages retrieved and (at most) read: at μ 0.6 top-10 was within 0.7
/// F1 of top-20 on both dev sets (above it on KorQuAD) and read 7.5 windows
/// per KorQuAD question instead of 11.4.
pub const DEFAULT_TOP_K: usize = 10;
/// Below this best-answer score the answer is reported as "no answer"
/// (0 never abstains). The dev questions all have answers, so abstaining
/// only costs EM there; 0.65 is the value that maximizes EM counting a "no
/// answer" as right when no passage read holds the answer (the calibrated
/// point for a service that prefers silence to a wrong answer; any value
/// ≤ μ never triggers, since the top passage's answers score ≥ μ).
pub const DEFAULT_NO_ANSWER_THRESHOLD: f32 = 0.0;
/// Distinct answers returned when not told otherwise.
pub const DEFAULT_ANSWERS: usize = 5;
/// Windows per reading batch; early stopping is checked between batches.
pub const DEFAULT_BATCH_WINDOWS: usize = 4;

/// Per-question settings of [`Pipeline::ask`]. With the `clap` feature
/// they are also the command line's fusion and reading flags (`answers`
/// excepted: each command shows its own number), with the same defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "clap"), derive(clap::Args))]
pub struct AskOptions {
    /// Passages retrieved and (at most) read.
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_TOP_K))]
    pub top_k: usize,
    /// μ, the weight of the passage's normalized retrieval score in an
    /// answer's score: (1 − μ) × span probability + μ × retrieval score /
    /// the question's best retrieval score (BERTserini); 0 ranks by the
    /// reader alone.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_RETRIEVAL_WEIGHT)
    )]
    pub retrieval_weight: f32,
    /// Distinct answers returned (the best and its alternatives).
    #[cfg_attr(any(test, feature = "clap"), arg(skip = DEFAULT_ANSWERS))]
    pub answers: usize,
    /// "No answer" when the best answer's score is below this (0..=1; 0 never).
    #[serde(default)]
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_NO_ANSWER_THRESHOLD)
    )]
    pub no_answer_threshold: f32,
    /// Early stopping, on unless `--no-early-stop` (which reads all top-k
    /// passages): passages are read in retrieval order, batch by batch,
    /// until no unread passage can beat the best answer (the best answer is
    /// the same as reading all top-k; the alternatives may be fewer).
    #[serde(default)]
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long = "no-early-stop", action = clap::ArgAction::SetFalse)
    )]
    pub early_stop: bool,
    /// Windows per reading batch (at least 1); early stopping is checked
    /// between batches.
    #[serde(default = "default_batch_windows")]
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long = "read-batch", value_name = "READ_BATCH", default_value_t = DEFAULT_BATCH_WINDOWS)
    )]
    pub batch_windows: usize,
}

fn default_batch_windows() -> usize {
    DEFAULT_BATCH_WINDOWS
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions {
            top_k: DEFAULT_TOP_K,
            retrieval_weight: DEFAULT_RETRIEVAL_WEIGHT,
            answers: DEFAULT_ANSWERS,
            no_answer_threshold: DEFAULT_NO_ANSWER_THRESHOLD,
            early_stop: true,
            batch_windows: DEFAULT_BATCH_WINDOWS,
        }
    }
}

/// Where an answer was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub passage_id: String,
    pub article_id: String,
    pub title: String,
    /// Character offsets of the answer in the passage text.
    pub passage_char_start: usize,
    pub passage_char_end: usize,
    /// Character offsets of the answer in the article text.
    pub article_char_start: usize,
    pub article_char_end: usize,
    /// The sentence of the passage that holds the answer.
    pub sentence: String,
    pub retrieval_rank: usize,
    pub retrieval_score: f32,
    /// `p_start × p_end` of this occurrence.
    #[serde(default)]
    pub span_probability: f32,
    /// Its fused score.
    #[serde(default)]
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineAnswer {
    pub text: String,
    /// The ranking score (see [`AskOptions::retrieval_weight`]): the best
    /// over the answer's occurrences.
    pub score: f32,
    /// `p_start × p_end` of the best occurrence in its window.
    pub span_probability: f32,
    /// The best occurrence.
    pub evidence: Evidence,
    /// The same answer in other passages (or elsewhere in the same one),
    /// best first.
    #[serde(default)]
    pub other_evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub retrieve_ms: f64,
    pub read_ms: f64,
    /// Of `read_ms`: making the windows (tokenizing question and passages).
    #[serde(default)]
    pub tokenize_ms: f64,
    pub windows: usize,
    /// Passages read (fewer than retrieved when reading stopped early).
    #[serde(default)]
    pub passages_read: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AskResult {
    pub question: String,
    /// Distinct answers, best first; empty when nothing was retrieved.
    pub answers: Vec<PipelineAnswer>,
    /// True when the best answer's score is below the no-answer threshold
    /// (or nothing was found): `answers[0]`, if any, is the best candidate.
    #[serde(default)]
    pub no_answer: bool,
    /// The reader's lowest no-answer probability over the windows read.
    pub no_answer_score: Option<f32>,
    pub hits: Vec<Hit>,
    pub timings: StageTimings,
}

impl AskResult {
    /// The answers as `odqa ask` and `odqa demo` print them: each with its
    /// scores, its evidence sentence (the answer marked 【like this】), title
    /// and passage, the other passages that hold it, then the times.
    pub fn text(&self) -> AnswersText<'_> {
        AnswersText(self)
    }
}

/// [`AskResult::text`]: lines, each ending in a newline.
#[derive(Debug, Clone, Copy)]
pub struct AnswersText<'a>(&'a AskResult);

impl std::fmt::Display for AnswersText<'_> {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let result = self.0;
        match result.answers.first() {
            None => writeln!(out, "  no answer found")?,
            Some(best) if result.no_answer => writeln!(
                out,
                "  no answer (best candidate {:?} scores {:.3}, below the threshold)",
                best.text, best.score
            )?,
            Some(_) => {}
        }
        for (rank, answer) in result.answers.iter().enumerate() {
            let ev = &answer.evidence;
            writeln!(
                out,
                "{:>2}. {}  (score {:.3}, span p {:.3}, retrieval #{} {:.2})\n    {}  — {} [{}]",
                rank + 1,
                answer.text,
                answer.score,
                answer.span_probability,
                ev.retrieval_rank,
                ev.retrieval_score,
                marked(&ev.sentence, &answer.text),
                ev.title,
                ev.passage_id,
            )?;
            // Each other passage once (the answer may occur in one twice),
            // the evidence's own passage not again.
            let mut also: Vec<String> = Vec::new();
            for e in &answer.other_evidence {
                let named = format!("{} [{}] #{}", e.title, e.passage_id, e.retrieval_rank);
                if e.passage_id != ev.passage_id && !also.contains(&named) {
                    also.push(named);
                }
            }
            if !also.is_empty() {
                writeln!(out, "    also in: {}", also.join("; "))?;
            }
        }
        let t = &result.timings;
        writeln!(
            out,
            "  retrieve {:.1} ms · read {:.1} ms ({} windows, {} of {} passages)",
            t.retrieve_ms,
            t.read_ms,
            t.windows,
            t.passages_read,
            result.hits.len()
        )
    }
}

/// The sentence on one line with the answer's first occurrence marked 【like this】.
fn marked(sentence: &str, answer: &str) -> String {
    let sentence = sentence.replace('\n', " ");
    if answer.is_empty() {
        return sentence;
    }
    sentence.replacen(answer, &format!("【{answer}】"), 1)
}

/// An index and a reader, loaded once and shared by every question.
pub struct Pipeline<M = QaModel> {
    retriever: Retriever,
    reader: Reader<M>,
}

impl<M: SpanModel> Pipeline<M> {
    pub fn new(retriever: Retriever, reader: Reader<M>) -> Self {
        Pipeline { retriever, reader }
    }

    /// The same pipeline with its reader's model wrapped
    /// ([`Reader::try_map_model`]).
    pub fn try_map_model<N: SpanModel, E>(
        self,
        wrap: impl FnOnce(M) -> std::result::Result<N, E>,
    ) -> std::result::Result<Pipeline<N>, E> {
        Ok(Pipeline {
            retriever: self.retriever,
            reader: self.reader.try_map_model(wrap)?,
        })
    }

    pub fn retriever(&self) -> &Retriever {
        &self.retriever
    }

    pub fn reader(&self) -> &Reader<M> {
        &self.reader
    }

    /// Retrieves the top passages for `question` and reads them (stopping
    /// early when `options.early_stop` and the bound allows).
    pub fn ask(&self, question: &str, options: &AskOptions) -> Result<AskResult> {
        self.ask_in(question, options, self.retriever.options().mode)
    }

    /// [`Pipeline::ask`] retrieving in `mode` instead of the retriever's own.
    pub fn ask_in(
        &self,
        question: &str,
        options: &AskOptions,
        mode: RetrievalMode,
    ) -> Result<AskResult> {
        options.validate()?;
        let started = Instant::now();
        let hits = self
            .retriever
            .retrieve_with(question, options.top_k, mode)?;
        let retrieve_ms = started.elapsed().as_secs_f64() * 1e3;
        let started = Instant::now();
        let (read, tokenize_s) = self.read_hits_timed(question, &hits, Some(options))?;
        let read_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut result =
            AskResult::from_passages(question, hits, &read, options, retrieve_ms, read_ms);
        result.timings.tokenize_ms = tokenize_s * 1e3;
        Ok(result)
    }

    /// Reads `hits` in retrieval order, in batches of about
    /// `options.batch_windows` windows; with `options.early_stop`, stops
    /// after the first batch where [`can_stop`] holds. `None` reads every
    /// passage (what a cache for re-scoring needs).
    pub fn read_hits(
        &self,
        question: &str,
        hits: &[Hit],
        options: Option<&AskOptions>,
    ) -> Result<Vec<ReadPassage>> {
        Ok(self.read_hits_timed(question, hits, options)?.0)
    }

    /// [`Pipeline::read_hits`] and the seconds spent making windows.
    fn read_hits_timed(
        &self,
        question: &str,
        hits: &[Hit],
        options: Option<&AskOptions>,
    ) -> Result<(Vec<ReadPassage>, f64)> {
        let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
        let scores: Vec<f32> = hits.iter().map(|h| h.score).collect();
        if texts.is_empty() {
            return Ok((Vec::new(), 0.0));
        }
        let started = Instant::now();
        let windows = self.reader.windows(question, &texts)?;
        let tokenize_s = started.elapsed().as_secs_f64();
        let mut per_passage = vec![0usize; texts.len()];
        for w in &windows {
            if let Some(n) = per_passage.get_mut(w.passage_index) {
                *n += 1;
            }
        }
        let batch_windows = options.map_or(self.reader.options().batch_size, |o| o.batch_windows);
        let best = scores.first().copied().unwrap_or(0.0);
        let mut read: Vec<ReadPassage> = Vec::with_capacity(texts.len());
        for range in reading_batches(&per_passage, batch_windows) {
            let batch: Vec<Window> = windows
                .iter()
                .filter(|w| range.contains(&w.passage_index))
                .cloned()
                .collect();
            let spans = self.reader.score(&batch)?;
            let end = range.end;
            read.extend(self.reader.read_passages(&texts, &scores, range, &spans)?);
            if let Some(o) = options {
                if o.early_stop && can_stop(&read, &scores, end, best, o.retrieval_weight) {
                    break;
                }
            }
        }
        Ok((read, tokenize_s))
    }
}

impl AskOptions {
    /// `top_k`, `answers` and `batch_windows` at least 1,
    /// `retrieval_weight` and `no_answer_threshold` within 0..=1.
    pub fn validate(&self) -> Result<()> {
        if self.top_k == 0 || self.answers == 0 || self.batch_windows == 0 {
            return Err(PipelineError::InvalidOption(
                "top_k, answers and batch_windows must be at least 1".into(),
            ));
        }
        check_weight(self.retrieval_weight)
            .map_err(|e| PipelineError::InvalidOption(e.to_string()))?;
        if !(0.0..=1.0).contains(&self.no_answer_threshold) {
            return Err(PipelineError::InvalidOption(format!(
                "no-answer threshold {} is outside 0..=1",
                self.no_answer_threshold
            )));
        }
        Ok(())
    }

    /// The re-scoring settings these options stand for.
    pub fn fusion(&self) -> FusionSettings {
        FusionSettings {
            weight: self.retrieval_weight,
            top_k: self.top_k,
            answers: self.answers,
            early_stop: self.early_stop,
            batch_windows: self.batch_windows,
            no_answer_threshold: self.no_answer_threshold,
        }
    }
}

impl AskResult {
    /// The answers with their evidence from the passages `hits` (best
    /// first) and what the reader made of a prefix of them (`read`, in the
    /// same order): fused, merged by text and ranked
    /// ([`odqa_reader::fusion::rank_answers`]). The second half of
    /// [`Pipeline::ask`], for callers that retrieve and read separately,
    /// such as a server that batches reading.
    pub fn from_passages(
        question: &str,
        hits: Vec<Hit>,
        read: &[ReadPassage],
        options: &AskOptions,
        retrieve_ms: f64,
        read_ms: f64,
    ) -> AskResult {
        let best_retrieval = hits.first().map_or(0.0, |h| h.score);
        let fused = rank_answers(
            read,
            best_retrieval,
            options.retrieval_weight,
            options.answers,
        );
        let evidence = |e: &FusedEvidence| -> Option<Evidence> {
            let passage = read.get(e.passage)?;
            let hit = hits.get(passage.rank)?;
            Some(Evidence {
                passage_id: hit.passage_id.clone(),
                article_id: hit.article_id.clone(),
                title: hit.title.clone(),
                passage_char_start: e.char_start,
                passage_char_end: e.char_end,
                article_char_start: hit.char_start + e.char_start,
                article_char_end: hit.char_start + e.char_end,
                sentence: sentence_around(&hit.text, e.char_start, e.char_end),
                retrieval_rank: passage.rank + 1,
                retrieval_score: hit.score,
                span_probability: e.span_probability,
                score: e.score,
            })
        };
        let answers: Vec<PipelineAnswer> = fused
            .iter()
            .filter_map(|a| {
                let mut all = a.evidence.iter().filter_map(evidence);
                let best = all.next()?;
                Some(PipelineAnswer {
                    text: a.text.clone(),
                    score: a.score,
                    span_probability: best.span_probability,
                    evidence: best,
                    other_evidence: all.collect(),
                })
            })
            .collect();
        let no_answer = answers
            .first()
            .is_none_or(|a| a.score < options.no_answer_threshold);
        let no_answer_score = read
            .iter()
            .filter_map(|p| p.no_answer_score)
            .reduce(f32::min);
        AskResult {
            question: question.to_string(),
            answers,
            no_answer,
            no_answer_score,
            hits,
            timings: StageTimings {
                retrieve_ms,
                read_ms,
                tokenize_ms: 0.0,
                windows: read.iter().map(|p| p.windows).sum(),
                passages_read: read.len(),
            },
        }
    }
}

/// The sentence holding the character span `start..end` of `text` (every
/// sentence it touches, when it crosses a sentence end), by the corpus's
/// one sentence rule ([`odqa_corpus::sentence_spans`]).
pub(crate) fn sentence_around(text: &str, start: usize, end: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let (start, end) = (start.min(chars.len()), end.min(chars.len()).max(start));
    let spans = odqa_corpus::sentence_spans(&chars);
    // The first sentence ending after the span starts, through the last one
    // starting before it ends.
    let from = spans
        .iter()
        .find(|s| s.end > start)
        .map_or(start, |s| s.start.min(start));
    let to = spans
        .iter()
        .rev()
        .find(|s| s.start < end.max(start + 1))
        .map_or(end, |s| s.end.max(end));
    chars[from.min(to)..to]
        .iter()
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{sentence_around, AskOptions, AskResult, Evidence, PipelineAnswer, StageTimings};
    use clap::Parser;

    fn evidence(passage_id: &str, sentence: &str) -> Evidence {
        Evidence {
            passage_id: passage_id.into(),
            article_id: "1".into(),
            title: "서울".into(),
            passage_char_start: 0,
            passage_char_end: 2,
            article_char_start: 0,
            article_char_end: 2,
            sentence: sentence.into(),
            retrieval_rank: 1,
            retrieval_score: 12.5,
            span_probability: 0.9,
            score: 0.95,
        }
    }

    #[test]
    fn answers_text_marks_the_answer_and_lists_other_evidence() {
        let mut result = AskResult {
            question: "수도는?".into(),
            answers: vec![PipelineAnswer {
                text: "서울".into(),
                score: 0.95,
                span_probability: 0.9,
                evidence: evidence("1-0", "수도는\n서울이다."),
                other_evidence: vec![
                    evidence("2-3", ""),
                    evidence("1-0", "서울이다."),
                    evidence("2-3", "다시"),
                ],
            }],
            no_answer: false,
            no_answer_score: None,
            hits: Vec::new(),
            timings: StageTimings {
                retrieve_ms: 1.5,
                read_ms: 30.0,
                tokenize_ms: 0.0,
                windows: 2,
                passages_read: 1,
            },
        };
        assert_eq!(
            result.text().to_string(),
            " 1. 서울  (score 0.950, span p 0.900, retrieval #1 12.50)\n    \
             수도는 【서울】이다.  — 서울 [1-0]\n    also in: 서울 [2-3] #1\n  \
             retrieve 1.5 ms · read 30.0 ms (2 windows, 1 of 0 passages)\n"
        );
        result.no_answer = true;
        assert!(result.text().to_string().starts_with(
            "  no answer (best candidate \"서울\" scores 0.950, below the threshold)\n"
        ));
        result.answers.clear();
        assert!(result.text().to_string().starts_with("  no answer found\n"));
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        ask: AskOptions,
    }

    #[test]
    fn flags_default_to_the_library_defaults() {
        assert_eq!(Cli::parse_from(["odqa"]).ask, AskOptions::default());
        let given = Cli::parse_from([
            "odqa",
            "--no-early-stop",
            "--read-batch",
            "2",
            "--retrieval-weight",
            "0.3",
        ])
        .ask;
        assert_eq!(
            given,
            AskOptions {
                early_stop: false,
                batch_windows: 2,
                retrieval_weight: 0.3,
                ..AskOptions::default()
            }
        );
    }

    #[test]
    fn sentence_is_cut_at_sentence_ends() {
        let text = "서울은 수도이다. 부산은 항구 도시이다. 제주도는 섬이다.";
        let start = text.chars().position(|c| c == '항').unwrap();
        assert_eq!(
            sentence_around(text, start, start + 2),
            "부산은 항구 도시이다."
        );
        assert_eq!(sentence_around(text, 0, 2), "서울은 수도이다.");
        let last = text.chars().count() - 3;
        assert_eq!(sentence_around(text, last, last + 2), "제주도는 섬이다.");
        // A span across a sentence end takes both sentences; a quoted
        // sentence end is no end of the sentence around it.
        let across = text.chars().position(|c| c == '다').unwrap();
        assert_eq!(
            sentence_around(text, across, across + 6),
            "서울은 수도이다. 부산은 항구 도시이다."
        );
        let quoted = "그는 「가자.」라고 말했다. 다음 날 떠났다.";
        let go = quoted.chars().position(|c| c == '가').unwrap();
        assert_eq!(
            sentence_around(quoted, go, go + 2),
            "그는 「가자.」라고 말했다."
        );
    }
}
