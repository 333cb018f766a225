//! `odqa re` and `odqa bench re`: KLUE-RE relations asked as questions of
//! the span reader (odqa-relations does the work).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use odqa_relations::metrics::{class_of, class_probabilities, klue_auprc, raw_class_probabilities};
use odqa_relations::{
    calibrate_threshold, evaluate, read_klue_re, Calibration, ClassifierOptions, KlueReExample,
    Prediction, Relation, RelationClassifier, SubjectType, DEFAULT_OPEN_THRESHOLD,
    DEFAULT_THRESHOLD, NO_RELATION,
};
use serde_json::{json, Value};

use crate::{Ctx, ReaderArgs};

/// KLUE's baseline and the literature, for the report.
const ANCHORS: &str =
    "KLUE's fine-tuned roberta-large classifier: 69.6 micro-F1 / 72.4 AUPRC (KLUE dev); \
zero-shot QA-style relation extraction in the literature: 52–66 F1";

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
    /// value calibrated for odqa's trained reader, 0.022); in open mode, spans
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
    /// Name of this run; default: the reader directory's name.
    #[arg(long)]
    label: Option<String>,
    #[arg(long, default_value = "bench/results")]
    out_dir: PathBuf,
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

fn scores_json(scores: &[(Relation, f32)]) -> Value {
    Value::Object(
        scores
            .iter()
            .map(|&(r, p)| (r.label().to_string(), json!(p)))
            .collect(),
    )
}

fn prediction_json(p: &Prediction) -> Value {
    json!({
        "prediction": p.label,
        "probability": p.probability,
        "best": p.best.map(Relation::label),
        "scores": scores_json(&p.scores),
    })
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
    let started = Instant::now();
    let (mut labelled, mut correct) = (0usize, 0usize);
    for (i, example) in examples.iter().enumerate() {
        let prediction = classifier
            .predict(example, threshold)
            .with_context(|| format!("{}: record {}", input.display(), i + 1))?;
        if let Some(gold) = &example.label {
            labelled += 1;
            correct += usize::from(gold == prediction.label);
        }
        let mut line = json!({
            "record": i + 1,
            "sentence": example.sentence,
            "subject_entity": example.subject_entity,
            "object_entity": example.object_entity,
            "label": example.label,
        });
        if let (Value::Object(line), Value::Object(p)) = (&mut line, prediction_json(&prediction)) {
            line.extend(p);
        }
        serde_json::to_writer(&mut out, &line)?;
        writeln!(out)?;
        if ctx.progress && (i + 1) % 25 == 0 {
            eprintln!("{} / {} examples", i + 1, examples.len());
        }
    }
    out.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} examples in {seconds:.1} s ({:.2} examples/s, {} windows), threshold {threshold}{}",
        examples.len(),
        examples.len() as f64 / seconds.max(1e-9),
        classifier.windows_run(),
        if labelled > 0 {
            format!(
                "; accuracy {:.1}% on the {labelled} labelled",
                100.0 * correct as f64 / labelled as f64
            )
        } else {
            String::new()
        }
    );
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
        let found: Vec<Value> = found
            .iter()
            .map(|f| {
                json!({"relation": f.relation.label(), "text": f.text, "char_start": f.char_start,
                       "char_end": f.char_end, "probability": f.probability})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "sentence": sentence, "subject": subject, "subject_type": args.subject_type,
                "threshold": threshold, "found": found,
            }))?
        );
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

/// Scores of a run of examples, how long they took and how many windows.
struct Scored {
    scores: Vec<Vec<(Relation, f32)>>,
    seconds: f64,
    windows: usize,
}

fn score_all(
    classifier: &RelationClassifier,
    examples: &[KlueReExample],
    first_record: usize,
    what: &str,
    data: &Path,
    progress: bool,
) -> Result<Scored> {
    let windows_before = classifier.windows_run();
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut scores = Vec::with_capacity(examples.len());
    for (i, example) in examples.iter().enumerate() {
        scores.push(
            classifier
                .score(example)
                .with_context(|| format!("{}: record {}", data.display(), first_record + i))?,
        );
        if progress && (last_report.elapsed().as_secs() >= 30 || i + 1 == examples.len()) {
            let elapsed = started.elapsed().as_secs_f64();
            let rate = (i + 1) as f64 / elapsed.max(1e-9);
            eprintln!(
                "{what}: {} / {} examples, {rate:.2}/s, about {:.0} s left",
                i + 1,
                examples.len(),
                (examples.len() - i - 1) as f64 / rate
            );
            last_report = Instant::now();
        }
    }
    Ok(Scored {
        scores,
        seconds: started.elapsed().as_secs_f64(),
        windows: classifier.windows_run() - windows_before,
    })
}

pub fn bench(ctx: &Ctx, args: &BenchReArgs) -> Result<()> {
    let progress = ctx.progress;
    let examples = read_klue_re(&args.data)?;
    if let Some(i) = examples.iter().position(|e| e.label.is_none()) {
        bail!(
            "{}: record {} has no label: bench re needs labelled examples",
            args.data.display(),
            i + 1
        );
    }
    let n_calibrate = args.calibrate.unwrap_or(0);
    if args.calibrate.is_some() && (n_calibrate == 0 || n_calibrate >= examples.len()) {
        bail!(
            "--calibrate {n_calibrate}: need between 1 and {} of the {} examples in {}, leaving some to report on",
            examples.len().saturating_sub(1),
            examples.len(),
            args.data.display()
        );
    }
    let (calibration_set, rest) = examples.split_at(n_calibrate);
    let report_set = &rest[..args.limit.unwrap_or(rest.len()).min(rest.len())];
    if report_set.is_empty() {
        bail!("no examples to report on (--limit 0?)");
    }
    let classifier = load(ctx, &args.reader, &args.relations)?;

    let gold_of = |set: &[KlueReExample]| -> Vec<usize> {
        set.iter().map(|e| class_of(e.relation())).collect()
    };
    let (threshold, source, calibration) = if n_calibrate > 0 {
        let scored = score_all(
            &classifier,
            calibration_set,
            1,
            "calibration",
            &args.data,
            progress,
        )?;
        let best: Vec<(usize, f32)> = scored
            .scores
            .iter()
            .map(|s| {
                let p = Prediction::from_scores(s.clone(), 0.0);
                (class_of(p.best), p.probability)
            })
            .collect();
        let c: Calibration = calibrate_threshold(&best, &gold_of(calibration_set))?;
        eprintln!(
            "calibrated on {} examples: threshold {:.4} (micro-F1 {:.2} there)",
            c.examples, c.threshold, c.micro_f1
        );
        (c.threshold, "calibrated", Some((c, scored)))
    } else {
        (
            check_threshold(args.threshold, DEFAULT_THRESHOLD)?,
            if args.threshold.is_some() {
                "given"
            } else {
                "default"
            },
            None,
        )
    };

    let first = n_calibrate + 1;
    let scored = score_all(
        &classifier,
        report_set,
        first,
        "report",
        &args.data,
        progress,
    )?;
    let predictions: Vec<Prediction> = scored
        .scores
        .iter()
        .map(|s| Prediction::from_scores(s.clone(), threshold))
        .collect();
    let gold = gold_of(report_set);
    let predicted: Vec<usize> = predictions.iter().map(|p| class_of(p.relation)).collect();
    let probabilities: Vec<_> = predictions
        .iter()
        .map(|p| class_probabilities(&p.scores))
        .collect();
    let metrics = evaluate(&gold, &predicted, &probabilities)?;
    let raw: Vec<_> = predictions
        .iter()
        .map(|p| raw_class_probabilities(&p.scores))
        .collect();
    let auprc_unnormalised = klue_auprc(&gold, &raw).value;

    let label = args.label.clone().unwrap_or_else(|| {
        args.reader
            .reader
            .file_name()
            .map_or_else(|| "reader".into(), |n| n.to_string_lossy().into_owned())
    });
    let examples_per_second = report_set.len() as f64 / scored.seconds.max(1e-9);
    let windows_per_second = scored.windows as f64 / scored.seconds.max(1e-9);
    let device = ctx.device_name();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = json!({
        "label": label,
        "reader": args.reader.reader,
        "data": args.data,
        "device": device,
        "threads": threads,
        "machine": ctx.machine(Some(classifier.model().precision())),
        "options": classifier.options(),
        "threshold": threshold,
        "threshold_source": source,
        "calibration": calibration.as_ref().map(|(c, s)| json!({
            "records": [1, n_calibrate],
            "examples": c.examples,
            "threshold": c.threshold,
            "micro_f1": c.micro_f1,
            "seconds": s.seconds,
            "windows": s.windows,
        })),
        "report": {
            "records": [first, n_calibrate + report_set.len()],
            "examples": report_set.len(),
            "seconds": scored.seconds,
            "examples_per_second": examples_per_second,
            "windows": scored.windows,
            "windows_per_second": windows_per_second,
        },
        "metrics": metrics,
        "no_relation_probability": "1 - the best relation's probability",
        "class_probabilities": "the 29 relation probabilities and no_relation's, normalised to sum to 1 (metrics.auprc); auprc_unnormalised: without the normalisation",
        "auprc_unnormalised": auprc_unnormalised,
        "auprc_note": "classes without gold examples in the report set are left out of the AUPRC average",
        "anchors": ANCHORS,
        "created_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    });

    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let json_path = args.out_dir.join(format!("re-{label}.json"));
    let md_path = args.out_dir.join(format!("re-{label}.md"));
    let predictions_path = args.out_dir.join(format!("re-{label}.predictions.jsonl"));
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;

    let mut md = format!(
        "# KLUE-RE as questions to the reader: {label}\n\n\
         Data: `{}`, records {first}–{} reported{}. Reader: `{}`. Device: {device}, {threads} threads.\n\
         Relations asked: {}; {} question(s) per relation; no_relation below the threshold {threshold:.4} ({source}).\n\n\
         | examples | micro-F1 | micro-P | micro-R | AUPRC | AUPRC classes | accuracy | examples/s | windows/s |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.1} |\n\n",
        args.data.display(),
        n_calibrate + report_set.len(),
        if n_calibrate > 0 {
            format!(" (threshold calibrated on records 1–{n_calibrate})")
        } else {
            String::new()
        },
        args.reader.reader.display(),
        if classifier.options().all_relations {
            "all 29 for every subject"
        } else {
            "the subject type's (per: for PER, org: for ORG, all for other types)"
        },
        classifier.options().questions_per_relation,
        report_set.len(),
        metrics.micro_f1,
        metrics.micro_precision,
        metrics.micro_recall,
        metrics.auprc,
        metrics.auprc_classes,
        metrics.accuracy,
        examples_per_second,
        windows_per_second,
    );
    md.push_str(&format!(
        "AUPRC is over the class probabilities normalised to sum to 1 per example; \
         without the normalisation it is {auprc_unnormalised:.2}. Classes without gold \
         examples here are left out of its average.\n\n"
    ));
    md.push_str(&metrics.class_table());
    md.push_str(&format!("\nAnchors: {ANCHORS}.\n"));
    std::fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;

    let mut lines = BufWriter::new(
        std::fs::File::create(&predictions_path)
            .with_context(|| format!("creating {}", predictions_path.display()))?,
    );
    let mut write_line = |record: usize,
                          split: &str,
                          example: &KlueReExample,
                          p: &Prediction|
     -> Result<()> {
        let mut line = json!({"record": record, "split": split, "label": example.label.as_deref().unwrap_or(NO_RELATION)});
        if let (Value::Object(line), Value::Object(p)) = (&mut line, prediction_json(p)) {
            line.extend(p);
        }
        serde_json::to_writer(&mut lines, &line)?;
        lines.write_all(b"\n")?;
        Ok(())
    };
    if let Some((_, s)) = &calibration {
        for (i, (example, scores)) in calibration_set.iter().zip(&s.scores).enumerate() {
            write_line(
                i + 1,
                "calibration",
                example,
                &Prediction::from_scores(scores.clone(), threshold),
            )?;
        }
    }
    for (i, (example, p)) in report_set.iter().zip(&predictions).enumerate() {
        write_line(first + i, "report", example, p)?;
    }
    lines
        .flush()
        .with_context(|| format!("writing {}", predictions_path.display()))?;

    println!(
        "re {label}: {} examples · micro-F1 {:.2} (P {:.2} R {:.2}) · AUPRC {:.2} ({} classes) · accuracy {:.2} · threshold {threshold:.4} ({source}) · {examples_per_second:.2} examples/s · {windows_per_second:.1} windows/s",
        report_set.len(),
        metrics.micro_f1,
        metrics.micro_precision,
        metrics.micro_recall,
        metrics.auprc,
        metrics.auprc_classes,
        metrics.accuracy,
    );
    eprintln!(
        "wrote {}, {} and {}",
        json_path.display(),
        md_path.display(),
        predictions_path.display()
    );
    Ok(())
}
