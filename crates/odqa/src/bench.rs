//! `odqa bench …`: flags → odqa-bench's runs (odqa-relations' for `re`) →
//! the summary printed and the files written named.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use odqa_bench::{Predictions, ReadingReport, SweepGrid, ThroughputEvent, TimedModel};

use crate::commands::{check_k, index_dir};
use crate::dense::{default_model_dir, encoder_from};
use crate::reading::reader_dir;
use crate::{Bm25Args, Ctx, ReaderArgs, RetrievalArgs};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Answer recall@k, MRR and latency of retrieval over a question set.
    Retrieval(RetrievalBenchArgs),
    /// Reader throughput: forward passes over full-length windows of Korean
    /// text at several batch sizes (`--embed`: passage embeddings instead).
    Reader(ThroughputArgs),
    /// Reading with the gold paragraph given: EM/F1 (official KorQuAD 1.0), windows/s.
    Mrc(MrcArgs),
    /// Retrieve, then read: EM/F1 and per-stage latency.
    Odqa(Box<OdqaArgs>),
    /// HNSW against exact dense search: recall@k of the graph search and
    /// queries/s at several ef values, on real question embeddings.
    Ann(AnnArgs),
    /// KLUE-RE relation classification with the reader: micro-F1 (no_relation
    /// excluded), AUPRC, accuracy, a per-relation table and examples/s, with
    /// the no_relation threshold calibrated on the first examples.
    Re(Box<crate::relations::BenchReArgs>),
    /// One table and one recall@k plot from several retrieval results.
    Compare {
        /// Result files written by `odqa bench retrieval` (`*.json`).
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// Output path without extension: writes STEM.md and STEM.svg.
        #[arg(long)]
        out: PathBuf,
        /// Plot title.
        #[arg(long, default_value = "answer recall@k")]
        title: String,
    },
}

/// Where a benchmark's results go and what it is called there.
#[derive(Args)]
pub struct ResultArgs {
    /// Name of this run in tables and file names; default: the reader's
    /// (or for retrieval the index's) directory name.
    #[arg(long)]
    pub label: Option<String>,
    /// Where results go.
    #[arg(long, default_value = "bench/results")]
    pub out_dir: PathBuf,
}

#[derive(Args)]
pub struct RetrievalBenchArgs {
    #[arg(long)]
    index: Option<PathBuf>,
    /// Questions: SQuAD/KorQuAD JSON or the KLUE-MRC list format.
    #[arg(long)]
    questions: PathBuf,
    /// Passages retrieved per question (the deepest recall@k).
    #[arg(long, default_value_t = 100)]
    depth: usize,
    /// Queries run first and not timed.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Also write `{id, hits: [{passage_id, score}]}` per question to this file.
    #[arg(long)]
    export_hits: Option<PathBuf>,
    #[command(flatten)]
    results: ResultArgs,
    #[command(flatten)]
    bm25: Bm25Args,
    #[command(flatten)]
    retrieval: RetrievalArgs,
}

#[derive(Args)]
pub struct ThroughputArgs {
    /// A QA model directory or hf:ORG/NAME[@REVISION] (as for `read`).
    #[arg(
        long,
        value_name = "DIR|hf:ORG/NAME[@REV]",
        default_value = "models/odqa-reader-ko",
        env = "ODQA_READER"
    )]
    reader: PathBuf,
    /// Time mean-pooled passage embeddings with the default
    /// multilingual-e5-small (what `index dense` runs) instead of QA logits.
    #[arg(long)]
    embed: bool,
    /// Also time each stage of the forward pass (odqa's CPU backend)
    /// and print the breakdown per batch size.
    #[arg(long)]
    profile: bool,
    /// Tokens per window.
    #[arg(long, default_value_t = 384)]
    seq_len: usize,
    /// Comma-separated batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    batch_sizes: Vec<usize>,
    /// Windows run per batch size (after one warm-up batch).
    #[arg(long, default_value_t = 64)]
    windows: usize,
    /// Text the windows are cut from (any corpus); default: the demo corpus.
    #[arg(long)]
    corpus: Option<String>,
    #[command(flatten)]
    results: ResultArgs,
}

#[derive(Args)]
pub struct MrcArgs {
    /// SQuAD/KorQuAD JSON or the KLUE-MRC list format (needs `context`).
    #[arg(long)]
    data: PathBuf,
    /// Only the first N questions.
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    reader: ReaderArgs,
    #[command(flatten)]
    results: ResultArgs,
}

#[derive(Args)]
pub struct OdqaArgs {
    #[arg(long)]
    index: Option<PathBuf>,
    #[arg(long)]
    questions: PathBuf,
    /// Only the first N questions.
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    fusion: odqa_pipeline::AskOptions,
    /// Read cache: when FILE is missing, every top-k passage is read and
    /// its n-best spans stored there; when it exists, it is re-scored
    /// (--sweep-*) without running the model.
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
    /// With --cache: μ values to re-score at (comma-separated; default --retrieval-weight).
    #[arg(long, value_delimiter = ',')]
    sweep_weights: Vec<f32>,
    /// With --cache: depths to re-score at (default --top-k).
    #[arg(long, value_delimiter = ',')]
    sweep_top_k: Vec<usize>,
    /// With --cache: no-answer thresholds to re-score at (default --no-answer-threshold).
    #[arg(long, value_delimiter = ',')]
    sweep_thresholds: Vec<f32>,
    #[command(flatten)]
    reader: ReaderArgs,
    #[command(flatten)]
    retrieval: RetrievalArgs,
    #[command(flatten)]
    results: ResultArgs,
}

#[derive(Args)]
pub struct AnnArgs {
    #[arg(long)]
    index: Option<PathBuf>,
    #[arg(long)]
    questions: PathBuf,
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Comma-separated ef_search values.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    ef: Vec<usize>,
    #[arg(long, default_value = "bench/results")]
    out_dir: PathBuf,
}

pub fn run(command: BenchCommand, ctx: &Ctx) -> Result<()> {
    match command {
        BenchCommand::Retrieval(args) => retrieval(&args, ctx),
        BenchCommand::Reader(args) => throughput(&args, ctx),
        BenchCommand::Mrc(args) => mrc(&args, ctx),
        BenchCommand::Odqa(args) => odqa(&args, ctx),
        BenchCommand::Ann(args) => ann(&args, ctx),
        BenchCommand::Re(args) => crate::relations::bench(ctx, &args),
        BenchCommand::Compare {
            results,
            out,
            title,
        } => {
            let (table, markdown, svg) = odqa_bench::compare(&results, &out, &title)?;
            println!("{table}");
            eprintln!("wrote {} and {}", markdown.display(), svg.display());
            Ok(())
        }
    }
}

fn retrieval(args: &RetrievalBenchArgs, ctx: &Ctx) -> Result<()> {
    check_k(args.depth, "--depth")?;
    let dir = index_dir(args.index.clone())?;
    let retriever = args.retrieval.open(ctx, &dir, &args.bm25)?;
    let run = odqa_bench::RetrievalRun {
        questions_file: &args.questions,
        index: &dir,
        label: args.results.label.clone(),
        mode: args.retrieval.mode.name(),
        depth: args.depth,
        warmup: args.warmup,
        export_hits: args.export_hits.as_deref(),
        out_dir: &args.results.out_dir,
        show_progress: ctx.progress,
    };
    let (report, files) = odqa_bench::bench_retrieval(&retriever, &run)?;
    println!(
        "{}",
        odqa_bench::markdown_table(std::slice::from_ref(&report))
    );
    eprintln!(
        "wrote {}, {}, {}",
        files.json.display(),
        files.markdown.display(),
        files.svg.display()
    );
    Ok(())
}

/// Windows of exactly `seq_len` real tokens (Korean article text) through
/// the QA model (or the encoder, `embed`), timed per batch size.
fn throughput(args: &ThroughputArgs, ctx: &Ctx) -> Result<()> {
    let options = odqa_bench::ThroughputOptions {
        seq_len: args.seq_len,
        batch_sizes: &args.batch_sizes,
        windows: args.windows,
        profile: args.profile,
        label: args.results.label.clone(),
        reader: &args.reader,
        device: ctx.device_name(),
        out_dir: &args.results.out_dir,
    };
    if options.validate().is_err() {
        bail!(
            "--seq-len must be at least {}, --windows and every batch size at least 1",
            odqa_bench::ThroughputOptions::MIN_SEQ_LEN
        );
    }
    let model = if args.embed {
        let dir = default_model_dir()?;
        let encoder_options = odqa_encoder::EncoderOptions {
            precision: ctx.precision,
            batch_size: args.batch_sizes.iter().copied().max().unwrap_or(1),
            ..Default::default()
        };
        TimedModel::Encoder(
            odqa_encoder::Encoder::load_with(&dir, &ctx.device, &encoder_options)
                .with_context(|| format!("loading {}", dir.display()))?,
        )
    } else {
        let dir = reader_dir(&args.reader)?;
        let model = odqa_encoder::QaModel::load_at(&dir, &ctx.device, ctx.precision)
            .with_context(|| format!("loading {}", dir.display()))?;
        model.check_window(args.seq_len)?;
        TimedModel::Reader(model)
    };
    crate::report_precision(
        if args.embed { "encoder" } else { "reader" },
        model.precision(),
    );
    let corpus = odqa_corpus::resolve_corpus(args.corpus.as_deref().or(Some("odqa-demo")))?;
    let machine = ctx.machine(model.precision());
    let mut print = |event: ThroughputEvent<'_>| match event {
        ThroughputEvent::Timed(row) => println!(
            "batch {:>3}: {:.2} windows/s ({} windows of {} tokens in {:.2} s)",
            row.batch, row.windows_per_second, row.windows, args.seq_len, row.seconds
        ),
        ThroughputEvent::Profiled(stages) => {
            for s in stages {
                println!(
                    "    {:<38} {:>8.2} ms/window {:>5.1}%",
                    s.stage, s.ms_per_window, s.percent
                );
            }
        }
    };
    let (_, path) =
        odqa_bench::bench_throughput(&model, &corpus.path, &options, machine, &mut print)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// odqa-bench's reading run over `questions` as the flags describe it.
fn reading_run<'a>(
    questions: &'a Path,
    limit: Option<usize>,
    reader: &'a ReaderArgs,
    results: &ResultArgs,
    ctx: &Ctx,
) -> odqa_bench::ReadingBench<'a> {
    odqa_bench::ReadingBench {
        questions_file: questions,
        reader: &reader.reader,
        label: results.label.clone(),
        limit,
        show_progress: ctx.progress,
    }
}

/// Writes a reading run's report and predictions, prints its summary.
fn write_reading(
    questions: &Path,
    results: &ResultArgs,
    (report, predictions): (ReadingReport, Predictions),
) -> Result<()> {
    let (json, preds) = report.write(&results.out_dir, questions, &predictions)?;
    println!("{}", report.summary());
    eprintln!("wrote {} and {}", json.display(), preds.display());
    Ok(())
}

fn mrc(args: &MrcArgs, ctx: &Ctx) -> Result<()> {
    let run = reading_run(&args.data, args.limit, &args.reader, &args.results, ctx);
    let questions = run.mrc_questions()?;
    let reader = args.reader.load(ctx)?;
    let machine = ctx.machine(reader.model().precision());
    let read = run.mrc(&reader, &questions, &machine)?;
    write_reading(&args.data, &args.results, read)
}

/// `bench odqa`: one reading run, or with `--cache` the cache (read once
/// when it is missing) re-scored over the sweep grid.
fn odqa(args: &OdqaArgs, ctx: &Ctx) -> Result<()> {
    let index = index_dir(args.index.clone())?;
    let options = args.fusion;
    let run = reading_run(
        &args.questions,
        args.limit,
        &args.reader,
        &args.results,
        ctx,
    );
    // The model runs unless a read cache exists to re-score instead.
    if args.cache.as_ref().is_none_or(|cache| !cache.exists()) {
        let questions = run.questions()?;
        let pipeline = args.retrieval.pipeline(ctx, &index, &args.reader)?;
        let machine = ctx.machine(pipeline.reader().model().precision());
        let read = match &args.cache {
            None => run.odqa(&pipeline, &index, &options, &questions, &machine)?,
            Some(cache) => {
                let read =
                    run.build_read_cache(&pipeline, &index, &options, &questions, cache, &machine)?;
                eprintln!("wrote the read cache {}", cache.display());
                read
            }
        };
        write_reading(&args.questions, &args.results, read)?;
    }
    let Some(cache) = &args.cache else {
        return Ok(());
    };
    let grid = SweepGrid {
        weights: &args.sweep_weights,
        top_ks: &args.sweep_top_k,
        thresholds: &args.sweep_thresholds,
    };
    let sweep = run.sweep(cache, &options, &grid)?;
    println!("{}", sweep.table);
    let (md, json) = sweep.write(&args.results.out_dir)?;
    eprintln!("wrote {} and {}", md.display(), json.display());
    Ok(())
}

/// Recall@k of HNSW search against exact search over the same embeddings,
/// and queries/s of each (query embedding excluded: vectors are computed
/// first).
fn ann(args: &AnnArgs, ctx: &Ctx) -> Result<()> {
    use odqa_bench::AnnEvent;
    let index = index_dir(args.index.clone())?;
    let options = odqa_bench::AnnOptions {
        index: &index,
        questions_file: &args.questions,
        k: args.k,
        ef_searches: &args.ef,
        out_dir: &args.out_dir,
    };
    if options.validate().is_err() {
        bail!("-k and every --ef must be at least 1");
    }
    let dense = odqa_dense::DenseIndex::open(&odqa_pipeline::IndexDir::new(&index).dense())?;
    let encoder = encoder_from(ctx, None)?;
    let k = args.k;
    let mut print = |event| match event {
        AnnEvent::Exact {
            queries_per_second: qps,
            passages,
        } => println!("exact: {qps:.0} queries/s over {passages} passages"),
        AnnEvent::Hnsw {
            ef_search: ef,
            recall,
            queries_per_second: qps,
        } => println!("ef {ef:>4}: recall@{k} {recall:.4} against exact, {qps:.0} queries/s"),
    };
    let (_, path) = odqa_bench::bench_ann(&dense, &encoder, &options, &mut print)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
