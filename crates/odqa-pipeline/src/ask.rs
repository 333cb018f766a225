use std::time::Instant;

use odqa_index::Hit;

use crate::retrieve::Retriever;
use serde::{Deserialize, Serialize};

use crate::reader::{ReadOutput, Reader};
use crate::{PipelineError, Result};

/// Per-question settings of [`Pipeline::ask`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AskOptions {
    /// Passages retrieved and read.
    pub top_k: usize,
    /// Weight of the passage's normalized retrieval score in an answer's
    /// score: `(1 - w) × span probability + w × retrieval score / best
    /// retrieval score`. 0 ranks by the reader alone.
    pub retrieval_weight: f32,
    /// Answers returned (the best and its alternatives).
    pub answers: usize,
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions {
            top_k: 20,
            retrieval_weight: 0.0,
            answers: 5,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineAnswer {
    pub text: String,
    /// The ranking score (see [`AskOptions::retrieval_weight`]).
    pub score: f32,
    /// `p_start × p_end` in the answer's window.
    pub span_probability: f32,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub retrieve_ms: f64,
    pub read_ms: f64,
    pub windows: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AskResult {
    pub question: String,
    /// Best first; empty when nothing was retrieved.
    pub answers: Vec<PipelineAnswer>,
    pub no_answer_score: Option<f32>,
    pub hits: Vec<Hit>,
    pub timings: StageTimings,
}

/// An index and a reader, loaded once and shared by every question.
pub struct Pipeline {
    retriever: Retriever,
    reader: Reader,
}

impl Pipeline {
    pub fn new(retriever: Retriever, reader: Reader) -> Self {
        Pipeline { retriever, reader }
    }

    pub fn retriever(&self) -> &Retriever {
        &self.retriever
    }

    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// Retrieves the top passages for `question` and reads them.
    pub fn ask(&self, question: &str, options: &AskOptions) -> Result<AskResult> {
        options.validate()?;
        let started = Instant::now();
        let hits = self.retriever.retrieve(question, options.top_k)?;
        let retrieve_ms = started.elapsed().as_secs_f64() * 1e3;
        let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
        let read = self.reader.read(question, &texts)?;
        Ok(AskResult::from_read(
            question,
            hits,
            &read,
            options,
            retrieve_ms,
        ))
    }
}

impl AskOptions {
    /// `top_k` and `answers` at least 1, `retrieval_weight` within 0..=1.
    pub fn validate(&self) -> Result<()> {
        if self.top_k == 0 || self.answers == 0 {
            return Err(PipelineError::InvalidOption(
                "top_k and answers must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.retrieval_weight) {
            return Err(PipelineError::InvalidOption(format!(
                "retrieval weight {} is outside 0..=1",
                self.retrieval_weight
            )));
        }
        Ok(())
    }
}

impl AskResult {
    /// The answers with their evidence, from the passages `hits` (best
    /// first) and what the reader made of their texts, in the same order
    /// (the second half of [`Pipeline::ask`], for callers that retrieve and
    /// read separately, such as a server that batches reading).
    pub fn from_read(
        question: &str,
        hits: Vec<Hit>,
        read: &ReadOutput,
        options: &AskOptions,
        retrieve_ms: f64,
    ) -> AskResult {
        let best_retrieval = hits.first().map_or(1.0, |h| h.score.max(f32::MIN_POSITIVE));
        let mut answers: Vec<PipelineAnswer> = read
            .answers
            .iter()
            .filter_map(|answer| {
                let hit = hits.get(answer.passage_index)?;
                let w = options.retrieval_weight;
                Some(PipelineAnswer {
                    text: answer.text.clone(),
                    score: (1.0 - w) * answer.score + w * hit.score / best_retrieval,
                    span_probability: answer.score,
                    evidence: Evidence {
                        passage_id: hit.passage_id.clone(),
                        article_id: hit.article_id.clone(),
                        title: hit.title.clone(),
                        passage_char_start: answer.char_start,
                        passage_char_end: answer.char_end,
                        article_char_start: hit.char_start + answer.char_start,
                        article_char_end: hit.char_start + answer.char_end,
                        sentence: sentence_around(&hit.text, answer.char_start, answer.char_end),
                        retrieval_rank: answer.passage_index + 1,
                        retrieval_score: hit.score,
                    },
                })
            })
            .collect();
        answers.sort_by(|a, b| b.score.total_cmp(&a.score));
        answers.truncate(options.answers);
        AskResult {
            question: question.to_string(),
            answers,
            no_answer_score: read.no_answer_score,
            hits,
            timings: StageTimings {
                retrieve_ms,
                read_ms: read.seconds * 1e3,
                windows: read.windows,
            },
        }
    }
}

/// The sentence (between sentence ends or line breaks) holding the
/// character span `start..end` of `text`.
pub(crate) fn sentence_around(text: &str, start: usize, end: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let is_boundary = |i: usize| {
        let c = chars[i];
        c == '\n'
            || (matches!(c, '.' | '?' | '!' | '。')
                && chars.get(i + 1).is_none_or(|n| n.is_whitespace()))
    };
    let mut from = start.min(chars.len());
    while from > 0 && !is_boundary(from - 1) {
        from -= 1;
    }
    let mut to = end.min(chars.len());
    while to < chars.len() && !is_boundary(to.saturating_sub(1).max(from)) {
        to += 1;
    }
    chars[from..to]
        .iter()
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::sentence_around;

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
    }
}
