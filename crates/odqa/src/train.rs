//! `odqa train …`: training data for the reader.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use odqa_analysis::DictionarySource;
use odqa_index::PassageIndex;
use odqa_reader::WindowConfig;
use odqa_train::{ExportConfig, Sources};

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

pub fn export(args: &ExportArgs, dictionary: &DictionarySource, progress: bool) -> Result<()> {
    let model_dir = match &args.model {
        Some(dir) => dir.clone(),
        None => crate::dense::default_model_dir()?,
    };
    let tokenizer_path = model_dir.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", tokenizer_path.display()))?;
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
    println!(
        "{} examples, {} windows, {} tokens → {}",
        report.examples,
        report.windows,
        report.tokens,
        args.out.display()
    );
    println!("{:<22} {:>8} {:>8}", "windows", "train", "dev");
    for (kind, [train, dev]) in &report.windows_by_kind {
        println!("{kind:<22} {train:>8} {dev:>8}");
    }
    println!(
        "held out: {} KorQuAD articles ({} questions), {} KLUE-RE examples",
        report.dev_articles.len(),
        report.korquad_dev_questions,
        report.klue_re_dev_examples
    );
    if report.retrieved_negative_misses > 0 {
        println!(
            "{} questions found no retrieved passage without the answer",
            report.retrieved_negative_misses
        );
    }
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
    let inputs = parity.inputs(&args.export, model.pad_id())?;
    let (n, seq) = (parity.reference.windows, parity.reference.seq);
    let mut ours_start = Vec::with_capacity(n * seq);
    let mut ours_end = Vec::with_capacity(n * seq);
    for batch in inputs.batches(seq, 8) {
        let logits = model.batch_logits(&batch)?;
        ours_start.extend(logits.start);
        ours_end.extend(logits.end);
    }
    let report = parity.compare(
        &inputs,
        &ours_start,
        &ours_end,
        args.reader.reader.clone(),
        args.export.clone(),
        ctx.device_name(),
    );
    let json = report.to_json()?;
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, &json)?;
    println!("{json}");
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
    use odqa_corpus::PassageEvent;
    let corpus = crate::corpora::resolve(args.corpus.as_deref())?;
    let model_dir = match &args.model {
        Some(dir) => dir.clone(),
        None => crate::dense::default_model_dir()?,
    };
    let tokenizer_path = model_dir.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", tokenizer_path.display()))?;
    let analyzer =
        odqa_analysis::KoreanAnalyzer::new(odqa_analysis::AnalyzerConfig::default(), dictionary)?;
    let cloze = args.kinds.contains(&PretrainKindArg::Cloze);
    let index = if cloze {
        let dir = args
            .index
            .clone()
            .unwrap_or_else(|| std::path::Path::new("index").join(&corpus.name));
        Some(PassageIndex::open(&dir, dictionary).with_context(|| {
            format!(
                "opening {} for cloze contexts (--index; or --kinds recurring)",
                dir.display()
            )
        })?)
    } else {
        None
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
    let mut stream = odqa_corpus::articles(&corpus.path, args.skip_bad_lines)?;
    let articles = stream.by_ref().filter_map(|event| match event {
        Ok(PassageEvent::Article { record, .. }) => Some(Ok(record.article)),
        Ok(PassageEvent::Repeat { .. }) => None,
        Ok(PassageEvent::Skipped(err)) => {
            eprintln!("skipped: {err}");
            None
        }
        Err(err) => Some(Err(odqa_train::TrainError::from(err))),
    });
    let report = odqa_train::generate(&generator, articles, &args.out, progress)?;
    let (repeated, skipped) = (
        stream.counts().repeated_articles,
        stream.counts().skipped_records,
    );
    println!(
        "{} examples, {} windows, {} tokens from {} articles ({} passages) → {}",
        report.examples,
        report.windows,
        report.tokens,
        report.articles,
        report.passages,
        args.out.display()
    );
    println!(
        "{:.1} s, {:.0} examples/s on {} threads; mask token {}{}",
        report.seconds,
        report.examples_per_second,
        report.threads,
        report.mask_token,
        if report.reached_max_examples {
            "; stopped at --max-examples"
        } else {
            ""
        }
    );
    if cloze {
        println!(
            "cloze: {} questions searched, {} answered in other articles",
            report.cloze_queries, report.cloze_questions_answered
        );
    }
    println!(
        "{:<22} {:>9} {:>7} {:>9} {:>7}",
        "kind", "examples", "dev", "windows", "dev"
    );
    let kinds: std::collections::BTreeSet<&str> = report
        .examples_by_kind
        .keys()
        .chain(report.windows_by_kind.keys())
        .copied()
        .collect();
    for kind in kinds {
        let [e, ed] = report.examples_by_kind.get(kind).copied().unwrap_or([0, 0]);
        let [w, wd] = report.windows_by_kind.get(kind).copied().unwrap_or([0, 0]);
        println!("{kind:<22} {e:>9} {ed:>7} {w:>9} {wd:>7}");
    }
    let answers: usize = report.answer_chars.values().sum();
    for (what, histogram, edges) in [
        (
            "answer chars",
            &report.answer_chars,
            &[2usize, 3, 4, 5, 6, 8, 11, 16, 21, 31][..],
        ),
        (
            "answer tokens",
            &report.answer_tokens,
            &[1usize, 2, 3, 4, 5, 7, 11, 16, 31][..],
        ),
    ] {
        let cells: Vec<String> = edges
            .windows(2)
            .map(|w| {
                let n: usize = histogram.range(w[0]..w[1]).map(|(_, n)| n).sum();
                let label = if w[1] - w[0] == 1 {
                    w[0].to_string()
                } else {
                    format!("{}-{}", w[0], w[1] - 1)
                };
                format!("{label}: {:.1}%", 100.0 * n as f64 / answers.max(1) as f64)
            })
            .collect();
        println!("{what}: {}", cells.join(", "));
    }
    for sample in &report.samples {
        println!("\n[{}] {}", sample.kind.name(), sample.id);
        println!("  Q: {}", sample.question);
        println!("  A: {}", sample.answer.as_deref().unwrap_or("(no answer)"));
        println!("  C: {}", sample.context.replace('\n', " "));
    }
    if repeated + skipped > 0 {
        println!("{repeated} repeated articles read once, {skipped} malformed records skipped");
    }
    if let Some(path) = &args.stats_out {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut stats = serde_json::to_value(&report)?;
        stats["command"] = serde_json::json!(std::env::args().collect::<Vec<_>>().join(" "));
        stats["corpus"] = serde_json::json!(corpus.path);
        stats["index"] = serde_json::json!(index.as_ref().map(|_| args
            .index
            .clone()
            .unwrap_or_else(|| std::path::Path::new("index").join(&corpus.name))));
        stats["out"] = serde_json::json!(args.out);
        std::fs::write(path, format!("{stats:#}"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
