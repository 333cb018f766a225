//! `odqa re` and `odqa bench re`: KLUE-RE relations asked as questions of
//! the span reader (odqa-relations does the work).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use odqa_relations::bench::{BenchEvent, BenchSource, ThresholdChoice};
use odqa_relations::jsonl::{classify_jsonl, ClassifyProgress};
use odqa_relations::{
    read_klue_re, ClassifierOptions, RelationClassifier, SubjectType, DEFAULT_OPEN_THRESHOLD,
    DEFAULT_THRESHOLD,
};
use serde_json::json;

use crate::{Ctx, ReaderArgs};

#[derive(Args)]
pub struct ReArgs {
    /// KLUE-RE JSON lines to classify (`sentence`, `subject_entity`,
    /// `object_entity` with character offsets, `end_idx` inclusive; `label`
    /// optional).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "sentence",
        conflicts_with = "sentence"
    )]
    input: Option<PathBuf>,
    /// Where the predictions go, one JSON line per example; default: stdout.
    #[arg(long, value_name = "FILE", requires = "input")]
    out: Option<PathBuf>,
    /// Open mode: the sentence to read (with --subject).
    #[arg(long, requires = "subject")]
    sentence: Option<String>,
    /// Open mode: the subject whose relations are sought.
    #[arg(long, requires = "sentence")]
    subject: Option<String>,
    /// Open mode: the subject's KLUE entity type (PER asks the per: relations,
    /// ORG the org: ones, any other type all 29).
    #[arg(long, default_value = "PER")]
    subject_type: String,
    /// The best relation below this probability is no_relation (default: the
    /// value calibrated for odqa's trained reader, 0.156); in open mode, spans
    /// below it are dropped (default 0.3, set by hand).
    #[arg(long)]
    threshold: Option<f32>,
    /// Open mode: print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    relations: RelationArgs,
    #[command(flatten)]
    reader: ReaderArgs,
}

#[derive(Args, Clone)]
pub struct RelationArgs {
    /// Questions asked per relation (its first N templates); their
    /// probabilities are averaged.
    #[arg(long, default_value_t = 1)]
    questions_per_relation: usize,
    /// Ask all 29 relations whatever the subject's type (default: per: ones
    /// for PER subjects, org: ones for ORG, all 29 for other types).
    #[arg(long)]
    all_relations: bool,
}

#[derive(Args)]
pub struct BenchReArgs {
    /// Labelled KLUE-RE JSON lines, e.g. the held-out split `odqa train
    /// export` writes (klue-re-dev.jsonl).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Calibrate the no_relation threshold for micro-F1 on the first N
    /// examples, and report on the examples after them.
    #[arg(long, value_name = "N")]
    calibrate: Option<usize>,
    /// Use this threshold instead of calibrating (default without
    /// --calibrate: the value calibrated for odqa's trained reader).
    #[arg(long, conflicts_with = "calibrate")]
    threshold: Option<f32>,
    /// Report on at most N examples (the ones after the calibration examples).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    #[command(flatten)]
    results: crate::bench::ResultArgs,
    #[command(flatten)]
    relations: RelationArgs,
    #[command(flatten)]
    reader: ReaderArgs,
}

fn load(ctx: &Ctx, reader: &ReaderArgs, relations: &RelationArgs) -> Result<RelationClassifier> {
    let mut options = ClassifierOptions::default();
    options.windows.max_len = reader.max_len;
    options.windows.doc_stride = reader.doc_stride;
    options.max_answer_tokens = reader.max_answer_tokens;
    options.batch_size = reader.batch_size;
    options.questions_per_relation = relations.questions_per_relation;
    options.all_relations = relations.all_relations;
    let dir = crate::reading::reader_dir(&reader.reader)?;
    let classifier = RelationClassifier::load(&dir, options, &ctx.device, ctx.precision)
        .with_context(|| format!("loading the reader from {}", dir.display()))?;
    crate::report_precision("reader", classifier.model().precision());
    Ok(classifier)
}

fn check_threshold(threshold: Option<f32>, default: f32) -> Result<f32> {
    match threshold {
        Some(t) if !t.is_finite() => bail!("--threshold must be a number, not {t}"),
        Some(t) => Ok(t),
        None => Ok(default),
    }
}

pub fn run(ctx: &Ctx, args: &ReArgs) -> Result<()> {
    match (&args.input, &args.sentence, &args.subject) {
        (Some(input), _, _) => {
            let threshold = check_threshold(args.threshold, DEFAULT_THRESHOLD)?;
            classify_file(ctx, args, input, threshold)
        }
        (None, Some(sentence), Some(subject)) => {
            let threshold = check_threshold(args.threshold, DEFAULT_OPEN_THRESHOLD)?;
            open(ctx, args, sentence, subject, threshold)
        }
        _ => bail!("give --input FILE, or --sentence TEXT with --subject WORD"),
    }
}

fn classify_file(ctx: &Ctx, args: &ReArgs, input: &Path, threshold: f32) -> Result<()> {
    let examples = read_klue_re(input)?;
    let classifier = load(ctx, &args.reader, &args.relations)?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut on_progress = |p: ClassifyProgress| {
        if ctx.progress {
            eprintln!("{} / {} examples", p.done, p.total);
        }
    };
    let summary = classify_jsonl(
        &classifier,
        &examples,
        threshold,
        input,
        &mut out,
        &mut on_progress,
    )?;
    eprintln!("{}", summary.summary());
    if let Some(path) = &args.out {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn open(ctx: &Ctx, args: &ReArgs, sentence: &str, subject: &str, threshold: f32) -> Result<()> {
    if sentence.trim().is_empty() || subject.trim().is_empty() {
        bail!("--sentence and --subject must not be empty");
    }
    let subject_type = SubjectType::from_klue(args.subject_type.trim());
    let classifier = load(ctx, &args.reader, &args.relations)?;
    let found = classifier.open(sentence, subject, subject_type, threshold)?;
    if args.json {
        let open = json!({
            "sentence": sentence, "subject": subject, "subject_type": args.subject_type,
            "threshold": threshold, "found": found,
        });
        println!("{}", serde_json::to_string_pretty(&open)?);
        return Ok(());
    }
    if found.is_empty() {
        println!("no relation of {subject:?} at or above {threshold}");
    }
    for f in &found {
        println!(
            "{:.4}  {:<36} {}  [{}..{}]",
            f.probability,
            f.relation.label(),
            f.text,
            f.char_start,
            f.char_end
        );
    }
    Ok(())
}

pub fn bench(ctx: &Ctx, args: &BenchReArgs) -> Result<()> {
    let examples = read_klue_re(&args.data)?;
    let split =
        odqa_relations::bench::split_examples(&examples, &args.data, args.calibrate, args.limit)?;
    let classifier = load(ctx, &args.reader, &args.relations)?;
    let threshold = if args.calibrate.is_some() {
        ThresholdChoice::Calibrate
    } else {
        ThresholdChoice::Fixed {
            threshold: check_threshold(args.threshold, DEFAULT_THRESHOLD)?,
            source: if args.threshold.is_some() {
                "given"
            } else {
                "default"
            },
        }
    };
    let mut on_event = |event: BenchEvent<'_>| match event {
        BenchEvent::Scored {
            what,
            done,
            total,
            rate,
        } => eprintln!(
            "{what}: {done} / {total} examples, {rate:.2}/s, about {:.0} s left",
            (total - done) as f64 / rate
        ),
        BenchEvent::Calibrated(c) => eprintln!(
            "calibrated on {} examples: threshold {:.4} (micro-F1 {:.2} there)",
            c.examples, c.threshold, c.micro_f1
        ),
    };
    let run = odqa_relations::bench::run(
        &classifier,
        &args.data,
        split.calibration,
        split.report,
        threshold,
        ctx.progress,
        &mut on_event,
    )?;
    let label = args.results.label.clone().unwrap_or_else(|| {
        args.reader
            .reader
            .file_name()
            .map_or_else(|| "reader".into(), |n| n.to_string_lossy().into_owned())
    });
    let source = BenchSource {
        label,
        reader: args.reader.reader.clone(),
        data: args.data.clone(),
        device: ctx.device_name(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        machine: ctx.machine(classifier.model().precision()),
    };
    let report = run.report(source, *classifier.options(), split.report.len());
    let files = report.write(&args.results.out_dir, &run, split.calibration, split.report)?;
    println!("{}", report.summary());
    eprintln!(
        "wrote {}, {} and {}",
        files.json.display(),
        files.markdown.display(),
        files.predictions.display()
    );
    Ok(())
}
