//! Request and response bodies of the JSON API, with their OpenAPI schemas
//! and the checks every field goes through.

use odqa_index::Hit;
use odqa_pipeline::{PipelineAnswer, RetrievalMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::Limits;
use crate::error::ApiError;

/// The retriever that ranks passages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 over ko-dic morphemes.
    Bm25,
    /// multilingual-e5-small embeddings, HNSW (needs a dense index).
    Dense,
    /// BM25 and dense, fused (needs a dense index).
    Hybrid,
}

impl Mode {
    /// The name requests use: `bm25`, `dense`, `hybrid`.
    pub fn as_str(self) -> &'static str {
        RetrievalMode::from(self).name()
    }
}

impl From<Mode> for RetrievalMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Bm25 => RetrievalMode::Bm25,
            Mode::Dense => RetrievalMode::Dense,
            Mode::Hybrid => RetrievalMode::Hybrid,
        }
    }
}

impl From<RetrievalMode> for Mode {
    fn from(mode: RetrievalMode) -> Self {
        match mode {
            RetrievalMode::Bm25 => Mode::Bm25,
            RetrievalMode::Dense => Mode::Dense,
            RetrievalMode::Hybrid => Mode::Hybrid,
        }
    }
}

/// `POST /v1/ask`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    /// The question (not empty, at most the server's question limit in
    /// characters; 500 by default).
    #[schema(example = "이순신이 태어난 해는?")]
    pub question: String,
    /// Passages retrieved and read (1..=the server's limit; 100 by default).
    pub top_k: Option<usize>,
    /// Retriever; default: the one the server was started with.
    pub mode: Option<Mode>,
    /// Answers returned, best first (1..=20).
    pub answers: Option<usize>,
    /// μ, the weight of the passage's normalized retrieval score in an
    /// answer's score: `(1 − μ) × span probability + μ × retrieval score /
    /// best retrieval score` (0..=1; default: the server's).
    pub retrieval_weight: Option<f32>,
    /// Below this best-answer score the response says `no_answer` (0..=1;
    /// 0 never; default: the server's).
    pub no_answer_threshold: Option<f32>,
    /// Stop reading once no unread passage can beat the best answer
    /// (default: the server's; the best answer is the same either way).
    pub early_stop: Option<bool>,
}

/// `POST /v1/search`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    #[schema(example = "대한민국의 수도")]
    pub query: String,
    pub top_k: Option<usize>,
    pub mode: Option<Mode>,
}

/// `POST /v1/read`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    #[schema(example = "대한민국의 수도는?")]
    pub question: String,
    /// The passage to read (at most the server's context limit in
    /// characters; 20000 by default).
    #[schema(example = "서울특별시는 대한민국의 수도이다.")]
    pub context: String,
}

/// `POST /v1/relations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationsRequest {
    #[schema(example = "이순신은 1545년 한성에서 태어났다.")]
    pub sentence: String,
    #[schema(example = "이순신")]
    pub subject: String,
    /// Given: classify the relation between subject and object (the object
    /// must occur in the sentence as written). Absent: find the subject's
    /// relations and their objects in the sentence.
    #[schema(example = "한성")]
    pub object: Option<String>,
    /// The subject's KLUE entity type (`PER`, `ORG`, …): which relations are
    /// asked (all 29 when absent or another type).
    #[schema(example = "PER")]
    pub subject_type: Option<String>,
    /// Probability a relation needs (0..=1; default: the value calibrated for
    /// odqa's trained reader).
    pub threshold: Option<f32>,
}

/// A retrieved passage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HitOut {
    /// 1 = best.
    pub rank: usize,
    pub passage_id: String,
    pub article_id: String,
    pub title: String,
    pub score: f32,
    pub text: String,
    /// Character offsets of the passage in its article.
    pub char_start: usize,
    pub char_end: usize,
}

impl HitOut {
    pub fn list(hits: &[Hit]) -> Vec<HitOut> {
        hits.iter()
            .enumerate()
            .map(|(i, h)| HitOut {
                rank: i + 1,
                passage_id: h.passage_id.clone(),
                article_id: h.article_id.clone(),
                title: h.title.clone(),
                score: h.score,
                text: h.text.clone(),
                char_start: h.char_start,
                char_end: h.char_end,
            })
            .collect()
    }
}

/// Where an answer was found. Offsets count Unicode scalar values
/// (characters), not bytes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvidenceOut {
    pub passage_id: String,
    pub article_id: String,
    pub title: String,
    /// The answer is `context[passage_char_start..passage_char_end]`.
    pub passage_char_start: usize,
    pub passage_char_end: usize,
    pub article_char_start: usize,
    pub article_char_end: usize,
    /// The sentence holding the answer.
    pub sentence: String,
    /// The whole passage.
    pub context: String,
    /// The passage's rank among the hits (1 = best).
    pub retrieval_rank: usize,
    pub retrieval_score: f32,
}

/// An answer span.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnswerOut {
    /// An exact substring of its passage.
    pub text: String,
    /// The ranking score.
    pub score: f32,
    /// `p_start × p_end` in the answer's window.
    pub span_probability: f32,
    /// The best occurrence.
    pub evidence: EvidenceOut,
    /// The same answer found elsewhere, best first.
    pub other_evidence: Vec<EvidenceOut>,
}

impl AnswerOut {
    pub fn new(answer: &PipelineAnswer, hits: &[Hit]) -> AnswerOut {
        AnswerOut {
            text: answer.text.clone(),
            score: answer.score,
            span_probability: answer.span_probability,
            evidence: EvidenceOut::new(&answer.evidence, hits),
            other_evidence: answer
                .other_evidence
                .iter()
                .map(|e| EvidenceOut::new(e, hits))
                .collect(),
        }
    }
}

impl EvidenceOut {
    fn new(ev: &odqa_pipeline::Evidence, hits: &[Hit]) -> EvidenceOut {
        let context = hits
            .get(ev.retrieval_rank.saturating_sub(1))
            .map(|h| h.text.clone())
            .unwrap_or_default();
        {
            EvidenceOut {
                passage_id: ev.passage_id.clone(),
                article_id: ev.article_id.clone(),
                title: ev.title.clone(),
                passage_char_start: ev.passage_char_start,
                passage_char_end: ev.passage_char_end,
                article_char_start: ev.article_char_start,
                article_char_end: ev.article_char_end,
                sentence: ev.sentence.clone(),
                context,
                retrieval_rank: ev.retrieval_rank,
                retrieval_score: ev.retrieval_score,
            }
        }
    }
}

/// Milliseconds per stage of this request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Timings {
    /// Whole request, as the handler saw it.
    pub total_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieve_ms: Option<f64>,
    /// Tokenizing the question and passages into windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokenize_ms: Option<f64>,
    /// Waiting for the reader's batch worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_ms: Option<f64>,
    /// Forward passes holding this request's windows (shared with others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_ms: Option<f64>,
    /// Reader windows of this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<usize>,
    /// Forward passes holding them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<usize>,
}

/// Answer of `POST /v1/ask`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AskResponse {
    pub question: String,
    pub mode: Mode,
    /// Distinct answers, best first; empty when nothing was retrieved.
    pub answers: Vec<AnswerOut>,
    /// True when the best answer's score is below the no-answer threshold
    /// (or nothing was found); `answers[0]` is then the best candidate.
    pub no_answer: bool,
    /// The reader's no-answer score, when its scoring allows one.
    pub no_answer_score: Option<f32>,
    /// The passages read, best first.
    pub hits: Vec<HitOut>,
    pub timings: Timings,
}

/// Answer of `POST /v1/search`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub query: String,
    pub mode: Mode,
    pub hits: Vec<HitOut>,
    pub timings: Timings,
}

/// A span of the given context.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadAnswer {
    pub text: String,
    /// `p_start × p_end`.
    pub score: f32,
    /// Character offsets in the context.
    pub char_start: usize,
    pub char_end: usize,
}

/// Answer of `POST /v1/read`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadResponse {
    pub question: String,
    pub answers: Vec<ReadAnswer>,
    pub no_answer_score: Option<f32>,
    pub timings: Timings,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// `ok`, `ready`, `loading` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Seconds since the server started.
    pub uptime_s: f64,
}

/// A question or query: trimmed, not empty, within the limit.
pub fn check_question(text: &str, field: &str, limits: &Limits) -> Result<String, ApiError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid(
            "empty_question",
            format!("`{field}` is empty"),
        ));
    }
    let chars = trimmed.chars().count();
    if chars > limits.max_question_chars {
        return Err(ApiError::invalid(
            "question_too_long",
            format!(
                "`{field}` has {chars} characters; the limit is {}",
                limits.max_question_chars
            ),
        ));
    }
    Ok(trimmed.to_string())
}

/// A passage (`/v1/read` context, `/v1/relations` sentence): not empty,
/// within the context limit.
pub fn check_context(text: &str, field: &str, limits: &Limits) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid(
            "empty_context",
            format!("`{field}` is empty"),
        ));
    }
    let chars = text.chars().count();
    if chars > limits.max_context_chars {
        return Err(ApiError::invalid(
            "context_too_long",
            format!(
                "`{field}` has {chars} characters; the limit is {}",
                limits.max_context_chars
            ),
        ));
    }
    Ok(())
}

/// `top_k` (or its default) within `1..=max_top_k`.
pub fn check_top_k(
    top_k: Option<usize>,
    default: usize,
    limits: &Limits,
) -> Result<usize, ApiError> {
    let k = top_k.unwrap_or(default);
    if k == 0 || k > limits.max_top_k {
        return Err(ApiError::invalid(
            "top_k_out_of_range",
            format!("`top_k` is {k}; it must be within 1..={}", limits.max_top_k),
        ));
    }
    Ok(k)
}

/// `answers` (or its default) within `1..=max_answers`.
pub fn check_answers(
    answers: Option<usize>,
    default: usize,
    limits: &Limits,
) -> Result<usize, ApiError> {
    let n = answers.unwrap_or(default);
    if n == 0 || n > limits.max_answers {
        return Err(ApiError::invalid(
            "invalid_argument",
            format!(
                "`answers` is {n}; it must be within 1..={}",
                limits.max_answers
            ),
        ));
    }
    Ok(n)
}

/// `retrieval_weight` (or its default) within `0..=1`.
pub fn check_weight(weight: Option<f32>, default: f32) -> Result<f32, ApiError> {
    check_unit("retrieval_weight", weight, default)
}

/// `no_answer_threshold` (or its default) within `0..=1`.
pub fn check_threshold(threshold: Option<f32>, default: f32) -> Result<f32, ApiError> {
    check_unit("no_answer_threshold", threshold, default)
}

fn check_unit(field: &str, value: Option<f32>, default: f32) -> Result<f32, ApiError> {
    let v = value.unwrap_or(default);
    if !(0.0..=1.0).contains(&v) {
        return Err(ApiError::invalid(
            "invalid_argument",
            format!("`{field}` is {v}; it must be within 0..=1"),
        ));
    }
    Ok(v)
}
