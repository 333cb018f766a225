//! `odqa serve`: the HTTP service (crates/odqa-serve) over an index and a
//! reader resolved the way `odqa ask` resolves them.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use odqa_pipeline::Pipeline;
use odqa_serve::{BatchConfig, Limits, LoadError, RequestDefaults, ServeConfig};

use crate::{Ctx, ReaderArgs, RetrievalArgs};

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
    #[command(flatten)]
    limits: Limits,
    #[command(flatten)]
    batching: BatchConfig,
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
    let config = ServeConfig {
        addr: args.addr,
        limits: args.limits.clone(),
        batching: args.batching,
        defaults: RequestDefaults {
            top_k: args.top_k,
            ..RequestDefaults::default()
        },
    };
    let retrieval = args.retrieval.clone();
    let mut reader = args.reader.clone();
    reader.reader = reader_dir;
    let ctx = ctx.clone();
    let loader = move || -> Result<Pipeline, LoadError> {
        Ok(retrieval
            .pipeline(&ctx, &index, &reader)
            .map_err(|e| format!("{e:#}"))?)
    };
    serve(config, loader, |addr| {
        eprintln!("odqa: serving on http://{addr}/ (loading the index and reader; see /readyz)");
    })
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
    serve(
        config,
        move || Ok(pipeline),
        |addr| {
            println!("\nodqa demo: the web page and API are at http://{addr}/ (Ctrl-C stops)");
        },
    )
}

/// Checks `config` before anything starts, then serves what `loader` loads
/// until SIGINT/SIGTERM; `on_listening` announces the bound address.
fn serve(
    config: ServeConfig,
    loader: impl FnOnce() -> Result<Pipeline, LoadError> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<()> {
    config.validate()?;
    odqa_serve::run(config, loader, on_listening)?;
    Ok(())
}
