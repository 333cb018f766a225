//! `odqa train …`: training data for the reader.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use odqa_analysis::DictionarySource;
use odqa_index::PassageIndex;
use odqa_train::export::WindowArgs;
use odqa_train::pretrain::PretrainKinds;
use odqa_train::{ExportConfig, PretrainConfig, Sources};
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
    #[command(flatten)]
    windows: WindowArgs,
    #[command(flatten)]
    config: ExportConfig,
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
    let mut config = ExportConfig {
        windows: args.windows.config(),
        ..args.config
    };
    if index.is_none() {
        config.retrieved_negative_depth = 0;
    }
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
    let reader = crate::reading::reader_dir(&args.reader.reader)?;
    let model = odqa_encoder::QaModel::load_at(&reader, &ctx.device, ctx.precision)
        .with_context(|| format!("loading {}", reader.display()))?;
    let report = parity.run(
        model.pad_id(),
        |batch| model.batch_logits(batch),
        reader,
        args.export.clone(),
        ctx.device_name(),
    )?;
    println!("{}", report.write(&args.out)?);
    Ok(())
}

#[derive(Args)]
pub struct PretrainDataArgs {
    /// Corpus name (corpora/NAME.toml) or path.
    #[arg(long)]
    corpus: Option<String>,
    /// Output directory (replaced when the run completes).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    kinds: PretrainKinds,
    /// BM25 index whose passages answer cloze questions; default index/<corpus name>.
    #[arg(long)]
    index: Option<PathBuf>,
    /// The model whose tokenizer makes the windows; default: the fetched multilingual-e5-small.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Worker threads; default: all cores (the output does not depend on it).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    windows: WindowArgs,
    #[command(flatten)]
    config: PretrainConfig,
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
    let mut config = PretrainConfig {
        windows: args.windows.config(),
        ..args.config.clone()
    };
    args.kinds.apply(&mut config);
    if let Some(threads) = args.threads {
        config.threads = threads;
    }
    let index_dir = config.cloze.then(|| {
        args.index
            .clone()
            .unwrap_or_else(|| corpus.default_index_dir())
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
