//! `odqa serve`: the HTTP service (crates/odqa-serve) over an index and a
//! reader resolved the way `odqa ask` resolves them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use odqa_pipeline::Pipeline;
use odqa_serve::{BatchConfig, Limits, RequestDefaults, ServeConfig};

use crate::{Bm25Args, Ctx, ReaderArgs, RetrievalArgs};

#[derive(Args)]
pub struct ServeArgs {
    /// Index directory; default: the default corpus's index.
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Passages retrieved and read when a request gives no top_k.
    #[arg(long, default_value_t = odqa_pipeline::DEFAULT_TOP_K)]
    top_k: usize,
    /// Largest top_k a request may ask for.
    #[arg(long, default_value_t = 100)]
    max_top_k: usize,
    /// Reader windows per forward pass, gathered across concurrent requests.
    #[arg(long, default_value_t = 32)]
    batch_windows: usize,
    /// Padded tokens per forward pass at most (windows × the longest one).
    #[arg(long, default_value_t = odqa_serve::DEFAULT_MAX_BATCH_TOKENS)]
    batch_tokens: usize,
    /// Milliseconds a forward pass that is not full waits for more windows.
    #[arg(long, default_value_t = 5)]
    batch_wait_ms: u64,
    /// API requests in flight at once; beyond it: 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    max_concurrency: usize,
    /// Milliseconds a request beyond --max-concurrency waits for a free slot
    /// before its 503 (0: answer at once).
    #[arg(long, default_value_t = 0)]
    admission_wait_ms: u64,
    /// Seconds a request may take; beyond it: 504.
    #[arg(long, default_value_t = 30.0)]
    timeout_s: f64,
    /// Longest question or query, in characters.
    #[arg(long, default_value_t = 500)]
    max_question_chars: usize,
    /// Longest /v1/read context, in characters.
    #[arg(long, default_value_t = 20_000)]
    max_context_chars: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_body_bytes: usize,
    #[command(flatten)]
    reader: ReaderArgs,
    #[command(flatten)]
    retrieval: RetrievalArgs,
}

pub fn run(ctx: &Ctx, args: &ServeArgs, index: PathBuf) -> Result<()> {
    if !index.is_dir() {
        bail!(
            "no index at {}: build one with `odqa index build --corpus …` or pass --index DIR",
            index.display()
        );
    }
    let reader_dir = crate::reading::reader_dir(&args.reader.reader)?;
    if !reader_dir.is_dir() {
        bail!(
            "no reader model at {}: pass --reader DIR or hf:ORG/NAME (or set ODQA_READER)",
            reader_dir.display()
        );
    }
    if !(args.timeout_s.is_finite() && args.timeout_s > 0.0) {
        bail!("--timeout-s must be a positive number of seconds");
    }
    let config = ServeConfig {
        addr: args.addr,
        limits: Limits {
            max_concurrency: args.max_concurrency,
            admission_wait: Duration::from_millis(args.admission_wait_ms),
            request_timeout: Duration::from_secs_f64(args.timeout_s),
            max_body_bytes: args.max_body_bytes,
            max_question_chars: args.max_question_chars,
            max_context_chars: args.max_context_chars,
            max_top_k: args.max_top_k,
            ..Limits::default()
        },
        batching: BatchConfig {
            max_windows: args.batch_windows,
            max_tokens: args.batch_tokens,
            max_wait: Duration::from_millis(args.batch_wait_ms),
        },
        defaults: RequestDefaults {
            top_k: args.top_k,
            ..RequestDefaults::default()
        },
    };
    config.validate()?;
    let retrieval = args.retrieval.clone();
    let mut reader = args.reader.clone();
    reader.reader = reader_dir;
    let ctx = ctx.clone();
    let loader = move || -> Result<Pipeline, odqa_serve::LoadError> {
        let retriever = retrieval
            .open(&ctx, &index, &Bm25Args::default())
            .map_err(|e| format!("{e:#}"))?;
        let reader = reader.load(&ctx).map_err(|e| format!("{e:#}"))?;
        Ok(Pipeline::new(retriever, reader))
    };
    odqa_serve::run(config, loader, |addr| {
        eprintln!("odqa: serving on http://{addr}/ (loading the index and reader; see /readyz)");
    })?;
    Ok(())
}

/// Serves an already loaded pipeline (what `odqa demo --serve` does) with
/// the default limits and batching, and `options` as the request defaults.
pub fn run_loaded(
    addr: SocketAddr,
    pipeline: Pipeline,
    options: odqa_pipeline::AskOptions,
) -> Result<()> {
    let config = ServeConfig {
        addr,
        limits: Limits::default(),
        batching: BatchConfig::default(),
        defaults: RequestDefaults::from(&options),
    };
    config.validate()?;
    odqa_serve::run(
        config,
        move || Ok(pipeline),
        |addr| {
            println!("\nodqa demo: the web page and API are at http://{addr}/ (Ctrl-C stops)");
        },
    )?;
    Ok(())
}
