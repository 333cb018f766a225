//! Server settings: address, limits, batching and request defaults.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::ServeError;

/// Everything [`crate::Server::bind`] needs besides the loader.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen; port 0 picks a free port (see
    /// [`crate::Server::local_addr`]).
    pub addr: SocketAddr,
    pub limits: Limits,
    pub batching: BatchConfig,
    pub defaults: RequestDefaults,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            limits: Limits::default(),
            batching: BatchConfig::default(),
            defaults: RequestDefaults::default(),
        }
    }
}

impl ServeConfig {
    pub fn validate(&self) -> Result<(), ServeError> {
        let l = &self.limits;
        let bad = |what: &str| Err(ServeError::Config(what.to_string()));
        if l.max_concurrency == 0 {
            return bad("the concurrency limit must be at least 1");
        }
        if l.request_timeout.is_zero() {
            return bad("the request timeout must be positive");
        }
        if l.max_top_k == 0 || l.max_answers == 0 {
            return bad("the top_k and answers limits must be at least 1");
        }
        if l.max_question_chars == 0 || l.max_context_chars == 0 || l.max_body_bytes == 0 {
            return bad("the question, context and body limits must be at least 1");
        }
        if self.batching.max_windows == 0 || self.batching.max_tokens == 0 {
            return bad("the batch must hold at least one window and one token");
        }
        let d = &self.defaults;
        if d.top_k == 0 || d.top_k > l.max_top_k {
            return bad("the default top_k must be within 1..=max_top_k");
        }
        if d.answers == 0 || d.answers > l.max_answers {
            return bad("the default number of answers must be within 1..=max_answers");
        }
        Ok(())
    }
}

/// Bounds on requests; beyond them the server answers 4xx/503 JSON errors.
#[derive(Debug, Clone)]
pub struct Limits {
    /// API requests (`/v1/*`) in flight at once; more get 503 with
    /// `Retry-After` (after waiting up to `admission_wait` for a slot).
    pub max_concurrency: usize,
    /// How long a request over the concurrency limit waits for a free slot
    /// before its 503 (and a request the reader's queue has no time for
    /// waits before it looks again). Zero answers at once; a short wait keeps clients that
    /// retry without heeding `Retry-After` from spinning on 503s.
    pub admission_wait: Duration,
    /// An API request that takes longer gets 504.
    pub request_timeout: Duration,
    /// Request bodies beyond this get 413.
    pub max_body_bytes: usize,
    /// Questions and queries, in characters.
    pub max_question_chars: usize,
    /// `/v1/read` contexts and `/v1/relations` sentences, in characters.
    pub max_context_chars: usize,
    /// Largest `top_k`.
    pub max_top_k: usize,
    /// Largest `answers`.
    pub max_answers: usize,
    /// The `Retry-After` of 503 answers, in seconds.
    pub retry_after_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrency: 64,
            admission_wait: Duration::ZERO,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            max_question_chars: 500,
            max_context_chars: 20_000,
            max_top_k: 100,
            max_answers: 20,
            retry_after_s: 1,
        }
    }
}

/// [`BatchConfig::max_tokens`] by default: 32 full windows of 384 tokens,
/// so that with the default 32-window cap full passes are as large as they
/// were before the budget existed; lower it to bound a pass's latency and
/// memory when windows are long.
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 12_288;

/// How reader windows of concurrent requests share forward passes.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Windows per forward pass at most.
    pub max_windows: usize,
    /// Padded tokens per forward pass at most (windows × the longest); a
    /// single longer window still runs, alone.
    pub max_tokens: usize,
    /// How long the first waiting window waits for company.
    pub max_wait: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_windows: 32,
            max_tokens: DEFAULT_MAX_BATCH_TOKENS,
            max_wait: Duration::from_millis(5),
        }
    }
}

/// Values of optional request fields.
#[derive(Debug, Clone, Copy)]
pub struct RequestDefaults {
    /// Passages retrieved (`/v1/search`) and read (`/v1/ask`).
    pub top_k: usize,
    /// Answers returned.
    pub answers: usize,
    /// See [`odqa_pipeline::AskOptions::retrieval_weight`].
    pub retrieval_weight: f32,
    /// See [`odqa_pipeline::AskOptions::no_answer_threshold`].
    pub no_answer_threshold: f32,
    /// See [`odqa_pipeline::AskOptions::early_stop`].
    pub early_stop: bool,
}

impl Default for RequestDefaults {
    fn default() -> Self {
        RequestDefaults {
            top_k: odqa_pipeline::DEFAULT_TOP_K,
            answers: 5,
            retrieval_weight: odqa_pipeline::DEFAULT_RETRIEVAL_WEIGHT,
            no_answer_threshold: odqa_pipeline::DEFAULT_NO_ANSWER_THRESHOLD,
            early_stop: true,
        }
    }
}

/// A server whose requests default to what `options` asks (`odqa demo
/// --serve` serves with the demo's own flags).
impl From<&odqa_pipeline::AskOptions> for RequestDefaults {
    fn from(options: &odqa_pipeline::AskOptions) -> Self {
        RequestDefaults {
            top_k: options.top_k,
            answers: options.answers,
            retrieval_weight: options.retrieval_weight,
            no_answer_threshold: options.no_answer_threshold,
            early_stop: options.early_stop,
        }
    }
}
