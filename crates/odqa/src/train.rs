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

/// Best span by `start + end` logit over the window's passage tokens plus
/// the no-answer position 0 (as `(0, 0)`), at most `max_tokens` long — the
/// trainer's own decoding, so that both sides are judged alike.
fn best_span(
    start: &[f32],
    end: &[f32],
    context: std::ops::Range<usize>,
    max_tokens: usize,
) -> (usize, usize) {
    let mut best = ((0, 0), start[0] + end[0]);
    for s in context.clone() {
        let last = context.end.min(s + max_tokens);
        for (e, end_logit) in end.iter().enumerate().take(last).skip(s) {
            let score = start[s] + end_logit;
            if score > best.1 {
                best = ((s, e), score);
            }
        }
    }
    best.0
}

fn read_npy<T: npyz::Deserialize>(path: &std::path::Path) -> Result<(Vec<u64>, Vec<T>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{}: not an .npy file", path.display()))?;
    let shape = npy.shape().to_vec();
    let data = npy
        .into_vec()
        .with_context(|| format!("{}: unexpected element type", path.display()))?;
    Ok((shape, data))
}

pub fn parity(ctx: &crate::Ctx, args: &ParityArgs) -> Result<()> {
    let rows = odqa_train::export::read_rows(&args.export)?;
    let ids = odqa_train::export::read_ids(&args.export)?;
    let (_, parity_rows) = read_npy::<i64>(&args.reference.join("parity-rows.npy"))?;
    let (shape, ref_start) = read_npy::<f32>(&args.reference.join("parity-start.npy"))?;
    let (_, ref_end) = read_npy::<f32>(&args.reference.join("parity-end.npy"))?;
    let [n, seq] = shape[..] else {
        anyhow::bail!("parity-start.npy: expected a 2-D array, found shape {shape:?}");
    };
    let (n, seq) = (n as usize, seq as usize);
    if parity_rows.len() != n || ref_end.len() != n * seq {
        anyhow::bail!(
            "{}: rows, start and end logits disagree in shape",
            args.reference.display()
        );
    }
    let model = odqa_encoder::QaModel::load_at(&args.reader.reader, &ctx.device, ctx.precision)
        .with_context(|| format!("loading {}", args.reader.reader.display()))?;
    let pad = odqa_reader::pad_id(model.tokenizer()).unwrap_or(1);
    let (mut batch_ids, mut mask) = (vec![pad; n * seq], vec![0u32; n * seq]);
    let mut windows = Vec::with_capacity(n);
    for (i, &r) in parity_rows.iter().enumerate() {
        let row = rows
            .get(r as usize)
            .with_context(|| format!("parity row {r} is not in {}", args.export.display()))?;
        let [off, len, start, end, _, _, _, cs, ce] = row.map(|v| v as usize);
        if len > seq {
            anyhow::bail!("window {r} has {len} tokens, the reference only {seq} positions");
        }
        batch_ids[i * seq..i * seq + len].copy_from_slice(&ids[off..off + len]);
        mask[i * seq..i * seq + len].fill(1);
        windows.push((len, (start, end), cs..ce));
    }
    let types = vec![0u32; n * seq];
    let mut ours_start = Vec::with_capacity(n * seq);
    let mut ours_end = Vec::with_capacity(n * seq);
    for chunk in 0..n.div_ceil(8) {
        let (a, b) = (chunk * 8 * seq, ((chunk + 1) * 8).min(n) * seq);
        let logits = model.logits(
            &batch_ids[a..b],
            &mask[a..b],
            &types[a..b],
            (b - a) / seq,
            seq,
        )?;
        ours_start.extend(logits.start);
        ours_end.extend(logits.end);
    }
    let (mut max_diff, mut sum_diff, mut count, mut same_span, mut gold_ours, mut gold_ref) =
        (0f32, 0f64, 0usize, 0usize, 0usize, 0usize);
    for (i, (len, gold, context)) in windows.iter().enumerate() {
        let at = i * seq;
        for p in 0..*len {
            for (x, y) in [
                (ours_start[at + p], ref_start[at + p]),
                (ours_end[at + p], ref_end[at + p]),
            ] {
                let d = (x - y).abs();
                max_diff = max_diff.max(d);
                sum_diff += f64::from(d);
                count += 1;
            }
        }
        let span = |s: &[f32], e: &[f32]| {
            best_span(&s[at..at + len], &e[at..at + len], context.clone(), 30)
        };
        let ours = span(&ours_start, &ours_end);
        let theirs = span(&ref_start, &ref_end);
        same_span += usize::from(ours == theirs);
        gold_ours += usize::from(ours == *gold);
        gold_ref += usize::from(theirs == *gold);
    }
    let report = serde_json::json!({
        "windows": n,
        "max_abs_logit_diff": max_diff,
        "mean_abs_logit_diff": sum_diff / count.max(1) as f64,
        "same_best_span": same_span,
        "best_span_is_gold": {"odqa_candle": gold_ours, "pytorch": gold_ref},
        "reader": args.reader.reader,
        "export": args.export,
        "device": ctx.device_name(),
    });
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, format!("{report:#}"))?;
    println!("{report:#}");
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
    use odqa_corpus::{open_corpus, CorpusEvent, UniqueArticles};
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
    let (mut repeated, mut skipped) = (0usize, 0usize);
    let articles =
        UniqueArticles::new(open_corpus(&corpus.path)?, args.skip_bad_lines).filter_map(|event| {
            match event {
                Ok(CorpusEvent::Article(record)) => Some(Ok(record.article)),
                Ok(CorpusEvent::Repeat { .. }) => {
                    repeated += 1;
                    None
                }
                Ok(CorpusEvent::Skipped(err)) => {
                    eprintln!("skipped: {err}");
                    skipped += 1;
                    None
                }
                Err(err) => Some(Err(odqa_train::TrainError::from(err))),
            }
        });
    let report = odqa_train::generate(&generator, articles, &args.out, progress)?;
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
