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
/// With the `clap` feature they are also `odqa serve`'s limit flags
/// (`--max-concurrency`, `--timeout-s`, …), with the same defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(any(test, feature = "clap"), derive(clap::Args))]
pub struct Limits {
    /// API requests in flight at once; beyond it: 503 with Retry-After.
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_MAX_CONCURRENCY))]
    pub max_concurrency: usize,
    /// How long a request beyond the concurrency limit waits for a free slot
    /// before its 503 (0: answer at once).
    ///
    /// A short wait keeps clients that retry without heeding Retry-After
    /// from spinning on 503s; a request the reader's queue has no time for
    /// waits as long before it looks again.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(
            long = "admission-wait-ms",
            value_name = "ADMISSION_WAIT_MS",
            value_parser = parse_millis,
            default_value = "0"
        )
    )]
    pub admission_wait: Duration,
    /// How long an API request may take; beyond it: 504.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(
            long = "timeout-s",
            value_name = "TIMEOUT_S",
            value_parser = parse_timeout_s,
            default_value = "30"
        )
    )]
    pub request_timeout: Duration,
    /// Largest request body, in bytes; beyond it: 413.
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES))]
    pub max_body_bytes: usize,
    /// Longest question or query, in characters.
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_MAX_QUESTION_CHARS))]
    pub max_question_chars: usize,
    /// Longest /v1/read context or /v1/relations sentence, in characters.
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_MAX_CONTEXT_CHARS))]
    pub max_context_chars: usize,
    /// Largest top_k a request may ask for.
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_MAX_TOP_K))]
    pub max_top_k: usize,
    /// Largest `answers` a request may ask for.
    #[cfg_attr(any(test, feature = "clap"), arg(skip = DEFAULT_MAX_ANSWERS))]
    pub max_answers: usize,
    /// The `Retry-After` of 503 answers, in seconds.
    #[cfg_attr(any(test, feature = "clap"), arg(skip = DEFAULT_RETRY_AFTER_S))]
    pub retry_after_s: u64,
}

/// [`Limits::max_concurrency`] by default.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;
/// [`Limits::admission_wait`] by default: none.
pub const DEFAULT_ADMISSION_WAIT: Duration = Duration::ZERO;
/// [`Limits::request_timeout`] by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// [`Limits::max_body_bytes`] by default.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// [`Limits::max_question_chars`] by default.
pub const DEFAULT_MAX_QUESTION_CHARS: usize = 500;
/// [`Limits::max_context_chars`] by default.
pub const DEFAULT_MAX_CONTEXT_CHARS: usize = 20_000;
/// [`Limits::max_top_k`] by default.
pub const DEFAULT_MAX_TOP_K: usize = 100;
/// [`Limits::max_answers`] by default.
pub const DEFAULT_MAX_ANSWERS: usize = 20;
/// [`Limits::retry_after_s`] by default.
pub const DEFAULT_RETRY_AFTER_S: u64 = 1;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            admission_wait: DEFAULT_ADMISSION_WAIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_question_chars: DEFAULT_MAX_QUESTION_CHARS,
            max_context_chars: DEFAULT_MAX_CONTEXT_CHARS,
            max_top_k: DEFAULT_MAX_TOP_K,
            max_answers: DEFAULT_MAX_ANSWERS,
            retry_after_s: DEFAULT_RETRY_AFTER_S,
        }
    }
}

/// [`BatchConfig::max_tokens`] by default: 32 full windows of 384 tokens,
/// so that with the default 32-window cap full passes are as large as they
/// were before the budget existed; lower it to bound a pass's latency and
/// memory when windows are long.
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 12_288;
/// [`BatchConfig::max_windows`] by default.
pub const DEFAULT_MAX_BATCH_WINDOWS: usize = 32;
/// [`BatchConfig::max_wait`] by default.
pub const DEFAULT_MAX_BATCH_WAIT: Duration = Duration::from_millis(5);

/// How reader windows of concurrent requests share forward passes. With the
/// `clap` feature these are also `odqa serve`'s `--batch-windows`,
/// `--batch-tokens` and `--batch-wait-ms` flags, with the same defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(any(test, feature = "clap"), derive(clap::Args))]
pub struct BatchConfig {
    /// Reader windows per forward pass at most, gathered across concurrent
    /// requests.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(
            long = "batch-windows",
            value_name = "BATCH_WINDOWS",
            default_value_t = DEFAULT_MAX_BATCH_WINDOWS
        )
    )]
    pub max_windows: usize,
    /// Padded tokens per forward pass at most (windows × the longest one); a
    /// single longer window still runs, alone.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(
            long = "batch-tokens",
            value_name = "BATCH_TOKENS",
            default_value_t = DEFAULT_MAX_BATCH_TOKENS
        )
    )]
    pub max_tokens: usize,
    /// How long a forward pass that is not full waits for more windows.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(
            long = "batch-wait-ms",
            value_name = "BATCH_WAIT_MS",
            value_parser = parse_millis,
            default_value = "5"
        )
    )]
    pub max_wait: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_windows: DEFAULT_MAX_BATCH_WINDOWS,
            max_tokens: DEFAULT_MAX_BATCH_TOKENS,
            max_wait: DEFAULT_MAX_BATCH_WAIT,
        }
    }
}

/// A `--…-ms` flag: whole milliseconds.
#[cfg(any(test, feature = "clap"))]
fn parse_millis(value: &str) -> Result<Duration, std::num::ParseIntError> {
    value.parse().map(Duration::from_millis)
}

/// `--timeout-s`: a positive, finite number of seconds (fractions allowed).
#[cfg(any(test, feature = "clap"))]
fn parse_timeout_s(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "--timeout-s must be a positive number of seconds".to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        limits: Limits,
        #[command(flatten)]
        batching: BatchConfig,
    }

    /// Also checks that the `default_value` strings of the duration flags
    /// agree with their `DEFAULT_…` constants.
    #[test]
    fn flags_default_to_the_library_defaults() {
        let cli = Cli::try_parse_from(["serve"]).unwrap();
        assert_eq!(cli.limits, Limits::default());
        assert_eq!(cli.batching, BatchConfig::default());
    }

    #[test]
    fn flags_set_the_fields() {
        let cli = Cli::try_parse_from([
            "serve",
            "--max-concurrency=8",
            "--admission-wait-ms=250",
            "--timeout-s=1.5",
            "--max-body-bytes=1024",
            "--max-question-chars=50",
            "--max-context-chars=2000",
            "--max-top-k=7",
            "--batch-windows=4",
            "--batch-tokens=1536",
            "--batch-wait-ms=2",
        ])
        .unwrap();
        let limits = Limits {
            max_concurrency: 8,
            admission_wait: Duration::from_millis(250),
            request_timeout: Duration::from_millis(1500),
            max_body_bytes: 1024,
            max_question_chars: 50,
            max_context_chars: 2000,
            max_top_k: 7,
            ..Limits::default()
        };
        let batching = BatchConfig {
            max_windows: 4,
            max_tokens: 1536,
            max_wait: Duration::from_millis(2),
        };
        assert_eq!((cli.limits, cli.batching), (limits, batching));
    }

    #[test]
    fn timeouts_must_be_positive_seconds() {
        for bad in ["0", "-1", "abc", "", "inf", "NaN", "1e-12", "1e30"] {
            let err = Cli::try_parse_from(["serve", &format!("--timeout-s={bad}")]).unwrap_err();
            assert!(
                err.to_string()
                    .contains("--timeout-s must be a positive number of seconds"),
                "{bad:?}: {err}"
            );
        }
        assert!(Cli::try_parse_from(["serve", "--timeout-s", "-1"]).is_err());
        assert!(Cli::try_parse_from(["serve", "--admission-wait-ms=1.5"]).is_err());
    }
}
