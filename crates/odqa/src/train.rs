//! `odqa train …`: training data for the reader.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use odqa_analysis::DictionarySource;
use odqa_index::PassageIndex;
use odqa_reader::WindowConfig;
use odqa_train::{ExportConfig, Sources};
use tokenizers::Tokenizer;

#[derive(Args)]
pub struct ExportArgs {
    /// KorQuAD-style SQuAD v1 file.
    #[arg(long)]
    korquad: Option<PathBuf>,
    /// KLUE-RE JSONL file (relations become questions about the subject).
    #[arg(long)]
    klue_re: Option<PathBuf>,
    /// A BM25 index whose passages of other articles serve as no-answer windows.
    #[arg(long)]
    negatives_index: Option<PathBuf>,
    /// The model whose tokenizer makes the windows; default: the fetched multilingual-e5-small.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Output directory (replaced when the export completes).
    #[arg(long)]
    out: PathBuf,
    /// Tokens per window.
    #[arg(long, default_value_t = 256)]
    max_len: usize,
    #[arg(long, default_value_t = 128)]
    doc_stride: usize,
    #[arg(long, default_value_t = 64)]
    max_query_len: usize,
    /// Share of KorQuAD articles and KLUE-RE sentences held out as dev.
    #[arg(long, default_value_t = 0.1)]
    dev_fraction: f64,
    #[arg(long, default_value_t = 20261126)]
    seed: u64,
    /// Probability of an extra question for a relation the example does not hold.
    #[arg(long, default_value_t = 0.3)]
    relation_wrong_rate: f64,
    /// Wrong relations asked (distinct, each labelled no-answer) when an example gets them.
    #[arg(long, default_value_t = 1)]
    relation_wrong_per_example: usize,
    /// Ask each relation question with one drawn template or with every template.
    #[arg(long, value_enum, default_value_t = TemplatesArg::One)]
    relation_templates: TemplatesArg,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TemplatesArg {
    One,
    Every,
}

/// The tokenizer of `--model`, default the fetched multilingual-e5-small.
fn tokenizer(model: Option<&Path>) -> Result<Tokenizer> {
    let model_dir = match model {
        Some(dir) => dir.to_path_buf(),
        None => crate::dense::default_model_dir()?,
    };
    Ok(odqa_train::load_tokenizer(&model_dir)?)
}

pub fn export(args: &ExportArgs, dictionary: &DictionarySource, progress: bool) -> Result<()> {
    let tokenizer = tokenizer(args.model.as_deref())?;
    let index = match &args.negatives_index {
        Some(dir) => Some(
            PassageIndex::open(dir, dictionary)
                .with_context(|| format!("opening {}", dir.display()))?,
        ),
        None => None,
    };
    let config = ExportConfig {
        windows: WindowConfig {
            max_len: args.max_len,
            doc_stride: args.doc_stride,
            max_query_len: args.max_query_len,
        },
        seed: args.seed,
        dev_fraction: args.dev_fraction,
        relation_wrong_rate: args.relation_wrong_rate,
        relation_wrong_per_example: args.relation_wrong_per_example,
        relation_templates: match args.relation_templates {
            TemplatesArg::One => odqa_train::RelationTemplates::One,
            TemplatesArg::Every => odqa_train::RelationTemplates::Every,
        },
        retrieved_negative_depth: if index.is_some() { 10 } else { 0 },
        ..ExportConfig::default()
    };
    let sources = Sources {
        korquad: args.korquad.as_deref(),
        klue_re: args.klue_re.as_deref(),
        negatives_index: index.as_ref(),
    };
    let report = odqa_train::export(&tokenizer, &sources, &config, &args.out, progress)?;
    print!("{}", report.summary(&args.out));
    Ok(())
}

#[derive(Args)]
pub struct ParityArgs {
    /// The export whose windows were scored (`odqa train export --out`).
    #[arg(long)]
    export: PathBuf,
    /// The trained reader directory (odqa-reader.json + reader-delta.safetensors).
    #[command(flatten)]
    reader: crate::ReaderArgs,
    /// The trainer's reference: parity-rows.npy, parity-start.npy, parity-end.npy.
    #[arg(long)]
    reference: PathBuf,
    /// Where the comparison goes (JSON).
    #[arg(long, default_value = "bench/results/reader-parity.json")]
    out: PathBuf,
}

pub fn parity(ctx: &crate::Ctx, args: &ParityArgs) -> Result<()> {
    let parity = odqa_train::parity::Parity::load(&args.export, &args.reference)?;
    let model = odqa_encoder::QaModel::load_at(&args.reader.reader, &ctx.device, ctx.precision)
        .with_context(|| format!("loading {}", args.reader.reader.display()))?;
    let report = parity.run(
        model.pad_id(),
        |batch| model.batch_logits(batch),
        args.reader.reader.clone(),
        args.export.clone(),
        ctx.device_name(),
    )?;
    println!("{}", report.write(&args.out)?);
    Ok(())
}

/// What `train pretrain-data` makes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PretrainKindArg {
    /// A span found twice or more in one passage: one kept, the others masked.
    Recurring,
    /// A sentence with a span masked, answered in BM25-retrieved passages of other articles.
    Cloze,
}

#[derive(Args)]
pub struct PretrainDataArgs {
    /// Corpus name (corpora/NAME.toml) or path.
    #[arg(long)]
    corpus: Option<String>,
    /// Output directory (replaced when the run completes).
    #[arg(long)]
    out: PathBuf,
    /// Kinds to make, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "recurring,cloze"
    )]
    kinds: Vec<PretrainKindArg>,
    /// BM25 index whose passages answer cloze questions; default index/<corpus name>.
    #[arg(long)]
    index: Option<PathBuf>,
    /// The model whose tokenizer makes the windows; default: the fetched multilingual-e5-small.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Stop after this many examples (in corpus order).
    #[arg(long)]
    max_examples: Option<usize>,
    #[arg(long, default_value_t = 20261126)]
    seed: u64,
    /// Examples printed per kind.
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// Worker threads; default: all cores (the output does not depend on it).
    #[arg(long)]
    threads: Option<usize>,
    /// Tokens per window.
    #[arg(long, default_value_t = 256)]
    max_len: usize,
    #[arg(long, default_value_t = 128)]
    doc_stride: usize,
    #[arg(long, default_value_t = 64)]
    max_query_len: usize,
    /// Share of articles marked dev.
    #[arg(long, default_value_t = 0.01)]
    dev_fraction: f64,
    /// Recurring-span examples per passage at most.
    #[arg(long, default_value_t = 2)]
    recurring_per_passage: usize,
    /// Answered cloze questions per article at most.
    #[arg(long, default_value_t = 2)]
    cloze_per_article: usize,
    /// BM25 hits searched per cloze question.
    #[arg(long, default_value_t = 10)]
    cloze_depth: usize,
    /// Longest answer in characters.
    #[arg(long, default_value_t = 30)]
    max_answer_chars: usize,
    /// Skip malformed corpus records (counted) instead of failing.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Also write the statistics (pretrain-stats.json) here, e.g. bench/results/pretrain-data.json.
    #[arg(long)]
    stats_out: Option<PathBuf>,
}

pub fn pretrain_data(
    args: &PretrainDataArgs,
    dictionary: &DictionarySource,
    progress: bool,
) -> Result<()> {
    let corpus = odqa_corpus::resolve_corpus(args.corpus.as_deref())?;
    let tokenizer = tokenizer(args.model.as_deref())?;
    let analyzer =
        odqa_analysis::KoreanAnalyzer::new(odqa_analysis::AnalyzerConfig::default(), dictionary)?;
    let cloze = args.kinds.contains(&PretrainKindArg::Cloze);
    let index_dir = cloze.then(|| {
        args.index
            .clone()
            .unwrap_or_else(|| Path::new("index").join(&corpus.name))
    });
    let index = match &index_dir {
        Some(dir) => Some(PassageIndex::open(dir, dictionary).with_context(|| {
            format!(
                "opening {} for cloze contexts (--index; or --kinds recurring)",
                dir.display()
            )
        })?),
        None => None,
    };
    let defaults = odqa_train::PretrainConfig::default();
    let config = odqa_train::PretrainConfig {
        windows: WindowConfig {
            max_len: args.max_len,
            doc_stride: args.doc_stride,
            max_query_len: args.max_query_len,
        },
        seed: args.seed,
        recurring: args.kinds.contains(&PretrainKindArg::Recurring),
        cloze,
        dev_fraction: args.dev_fraction,
        max_answer_chars: args.max_answer_chars,
        recurring_per_passage: args.recurring_per_passage,
        cloze_per_article: args.cloze_per_article,
        cloze_depth: args.cloze_depth,
        max_examples: args.max_examples,
        threads: args.threads.unwrap_or(defaults.threads),
        samples: args.samples,
        ..defaults
    };
    let generator = odqa_train::Generator::new(&tokenizer, &analyzer, index.as_ref(), config)?;
    let run = odqa_train::generate_from_corpus(
        &generator,
        &corpus.path,
        args.skip_bad_lines,
        &args.out,
        progress,
        &mut |err| eprintln!("skipped: {err}"),
    )?;
    print!("{}", run.summary(&args.out));
    if let Some(path) = &args.stats_out {
        let provenance = odqa_train::RunProvenance {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            corpus: &corpus.path,
            index: index_dir.as_deref(),
            out: &args.out,
        };
        run.report.write_stats(path, &provenance)?;
    }
    Ok(())
}
