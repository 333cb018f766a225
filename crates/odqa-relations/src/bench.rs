//! The KLUE-RE benchmark (`odqa bench re`): scoring labelled examples,
//! calibrating the `no_relation` threshold on the first of them, the
//! metrics on the rest, and the typed report written as JSON, Markdown and
//! one prediction a line.
//!
//! Result files are written through `serde_json::Value`, whose objects
//! keep their keys sorted: the layout the benchmark has always written.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::classify::{ClassifierOptions, Prediction, RelationClassifier, SpanModel};
use crate::klue::{KlueReExample, RelationError};
use crate::metrics::{
    calibrate_threshold, class_of, class_probabilities, evaluate, klue_auprc,
    raw_class_probabilities, Calibration, Evaluation,
};
use crate::templates::{Relation, NO_RELATION};

/// KLUE's baseline and the literature, for the report.
pub const ANCHORS: &str =
    "KLUE's fine-tuned roberta-large classifier: 69.6 micro-F1 / 72.4 AUPRC (KLUE dev); \
zero-shot QA-style relation extraction in the literature: 52–66 F1";

/// Scores of a run of examples, how long they took and how many windows.
#[derive(Debug, Clone)]
pub struct Scored {
    pub scores: Vec<Vec<(Relation, f32)>>,
    pub seconds: f64,
    pub windows: usize,
}

/// What a benchmark run reports while it runs.
#[derive(Debug)]
pub enum BenchEvent<'a> {
    /// `done` of `total` examples of the `what` split scored, `rate` a second.
    Scored {
        what: &'a str,
        done: usize,
        total: usize,
        rate: f64,
    },
    /// The threshold was calibrated.
    Calibrated(&'a Calibration),
}

/// Scores every example (record numbers from `first_record` in `data`, for
/// errors), reporting progress every 30 s and at the end when `progress`.
pub fn score_all<M: SpanModel>(
    classifier: &RelationClassifier<M>,
    examples: &[KlueReExample],
    first_record: usize,
    what: &str,
    data: &Path,
    progress: bool,
    on_event: &mut dyn FnMut(BenchEvent<'_>),
) -> Result<Scored, RelationError> {
    let windows_before = classifier.windows_run();
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut scores = Vec::with_capacity(examples.len());
    for (i, example) in examples.iter().enumerate() {
        scores.push(
            classifier
                .score(example)
                .map_err(|source| RelationError::AtRecord {
                    path: data.to_path_buf(),
                    record: first_record + i,
                    source: Box::new(source),
                })?,
        );
        if progress && (last_report.elapsed().as_secs() >= 30 || i + 1 == examples.len()) {
            let elapsed = started.elapsed().as_secs_f64();
            on_event(BenchEvent::Scored {
                what,
                done: i + 1,
                total: examples.len(),
                rate: (i + 1) as f64 / elapsed.max(1e-9),
            });
            last_report = Instant::now();
        }
    }
    Ok(Scored {
        scores,
        seconds: started.elapsed().as_secs_f64(),
        windows: classifier.windows_run() - windows_before,
    })
}

/// The examples a benchmark run calibrates on and reports on.
#[derive(Debug, Clone, Copy)]
pub struct BenchSplit<'a> {
    /// The first examples (none without calibration).
    pub calibration: &'a [KlueReExample],
    /// The examples after them, at most the limit.
    pub report: &'a [KlueReExample],
}

/// Splits the labelled `examples` of `data` into the first `calibrate`
/// ones (when given) and at most `limit` after them. Calibrating on none or
/// on all, an unlabelled example and an empty report set are errors.
pub fn split_examples<'a>(
    examples: &'a [KlueReExample],
    data: &Path,
    calibrate: Option<usize>,
    limit: Option<usize>,
) -> Result<BenchSplit<'a>, RelationError> {
    if let Some(i) = examples.iter().position(|e| e.label.is_none()) {
        return Err(RelationError::Unlabelled {
            path: data.to_path_buf(),
            record: i + 1,
        });
    }
    let n_calibrate = calibrate.unwrap_or(0);
    if calibrate.is_some() && (n_calibrate == 0 || n_calibrate >= examples.len()) {
        return Err(RelationError::CalibrationSplit {
            asked: n_calibrate,
            examples: examples.len(),
            path: data.to_path_buf(),
        });
    }
    let (calibration, rest) = examples.split_at(n_calibrate);
    let report = &rest[..limit.unwrap_or(rest.len()).min(rest.len())];
    if report.is_empty() {
        return Err(RelationError::NothingToReport);
    }
    Ok(BenchSplit {
        calibration,
        report,
    })
}

/// Where the threshold of a run comes from.
#[derive(Debug, Clone, Copy)]
pub enum ThresholdChoice {
    /// Calibrated for micro-F1 on the calibration examples.
    Calibrate,
    /// Given (`given`) or the default (`default`).
    Fixed {
        threshold: f32,
        source: &'static str,
    },
}

/// A finished run: the threshold, the calibration and report scores and
/// the report split's predictions and metrics.
#[derive(Debug, Clone)]
pub struct BenchRun {
    pub threshold: f32,
    pub threshold_source: &'static str,
    pub calibration: Option<(Calibration, Scored)>,
    pub scored: Scored,
    pub predictions: Vec<Prediction>,
    pub metrics: Evaluation,
    pub auprc_unnormalised: f64,
}

fn gold_of(set: &[KlueReExample]) -> Vec<usize> {
    set.iter().map(|e| class_of(e.relation())).collect()
}

/// Runs the benchmark: calibration on `calibration_set` (records 1..) when
/// asked, then the metrics on `report_set` (the records after it).
pub fn run<M: SpanModel>(
    classifier: &RelationClassifier<M>,
    data: &Path,
    calibration_set: &[KlueReExample],
    report_set: &[KlueReExample],
    threshold: ThresholdChoice,
    progress: bool,
    on_event: &mut dyn FnMut(BenchEvent<'_>),
) -> Result<BenchRun, RelationError> {
    let (threshold, threshold_source, calibration) = match threshold {
        ThresholdChoice::Calibrate => {
            let scored = score_all(
                classifier,
                calibration_set,
                1,
                "calibration",
                data,
                progress,
                on_event,
            )?;
            let best: Vec<(usize, f32)> = scored
                .scores
                .iter()
                .map(|s| {
                    let p = Prediction::from_scores(s.clone(), 0.0);
                    (class_of(p.best), p.probability)
                })
                .collect();
            let c = calibrate_threshold(&best, &gold_of(calibration_set))?;
            on_event(BenchEvent::Calibrated(&c));
            (c.threshold, "calibrated", Some((c, scored)))
        }
        ThresholdChoice::Fixed { threshold, source } => (threshold, source, None),
    };
    let first = calibration_set.len() + 1;
    let scored = score_all(
        classifier, report_set, first, "report", data, progress, on_event,
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
    Ok(BenchRun {
        threshold,
        threshold_source,
        calibration,
        scored,
        predictions,
        metrics,
        auprc_unnormalised,
    })
}

/// The calibration split in the report.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationSummary {
    pub records: [usize; 2],
    pub examples: usize,
    pub threshold: f32,
    pub micro_f1: f64,
    pub seconds: f64,
    pub windows: usize,
}

/// The report split in the report.
#[derive(Debug, Clone, Serialize)]
pub struct SplitSummary {
    pub records: [usize; 2],
    pub examples: usize,
    pub seconds: f64,
    pub examples_per_second: f64,
    pub windows: usize,
    pub windows_per_second: f64,
}

/// Who ran the benchmark on what, for [`BenchRun::report`].
#[derive(Debug, Clone)]
pub struct BenchSource {
    pub label: String,
    pub reader: PathBuf,
    pub data: PathBuf,
    pub device: String,
    pub threads: usize,
    /// The machine, as the other benchmarks record it.
    pub machine: odqa_encoder::Machine,
}

/// `re-<label>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RelationBenchReport {
    pub label: String,
    pub reader: PathBuf,
    pub data: PathBuf,
    pub device: String,
    pub threads: usize,
    pub machine: odqa_encoder::Machine,
    pub options: ClassifierOptions,
    pub threshold: f32,
    pub threshold_source: &'static str,
    pub calibration: Option<CalibrationSummary>,
    pub report: SplitSummary,
    pub metrics: Evaluation,
    pub no_relation_probability: &'static str,
    pub class_probabilities: &'static str,
    pub auprc_unnormalised: f64,
    pub auprc_note: &'static str,
    pub anchors: &'static str,
    pub created_unix: u64,
}

/// A prediction's fields in result lines.
#[derive(Debug, Clone, Serialize)]
pub struct PredictionFields {
    pub prediction: &'static str,
    pub probability: f32,
    pub best: Option<&'static str>,
    pub scores: BTreeMap<&'static str, f32>,
}

impl From<&Prediction> for PredictionFields {
    fn from(p: &Prediction) -> Self {
        PredictionFields {
            prediction: p.label,
            probability: p.probability,
            best: p.best.map(Relation::label),
            scores: p.scores.iter().map(|&(r, p)| (r.label(), p)).collect(),
        }
    }
}

/// One line of `re-<label>.predictions.jsonl`.
#[derive(Debug, Clone, Serialize)]
struct PredictionLine<'a> {
    record: usize,
    split: &'a str,
    label: &'a str,
    #[serde(flatten)]
    prediction: PredictionFields,
}

/// The files [`RelationBenchReport::write`] wrote.
#[derive(Debug, Clone)]
pub struct BenchFiles {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub predictions: PathBuf,
}

impl BenchRun {
    /// The report of this run over `report_examples` examples after the
    /// calibration ones.
    pub fn report(
        &self,
        source: BenchSource,
        options: ClassifierOptions,
        report_examples: usize,
    ) -> RelationBenchReport {
        let n_calibrate = self.calibration.as_ref().map_or(0, |(c, _)| c.examples);
        let seconds = self.scored.seconds.max(1e-9);
        RelationBenchReport {
            label: source.label,
            reader: source.reader,
            data: source.data,
            device: source.device,
            threads: source.threads,
            machine: source.machine,
            options,
            threshold: self.threshold,
            threshold_source: self.threshold_source,
            calibration: self.calibration.as_ref().map(|(c, s)| CalibrationSummary {
                records: [1, n_calibrate],
                examples: c.examples,
                threshold: c.threshold,
                micro_f1: c.micro_f1,
                seconds: s.seconds,
                windows: s.windows,
            }),
            report: SplitSummary {
                records: [n_calibrate + 1, n_calibrate + report_examples],
                examples: report_examples,
                seconds: self.scored.seconds,
                examples_per_second: report_examples as f64 / seconds,
                windows: self.scored.windows,
                windows_per_second: self.scored.windows as f64 / seconds,
            },
            metrics: self.metrics.clone(),
            no_relation_probability: "1 - the best relation's probability",
            class_probabilities: "the 29 relation probabilities and no_relation's, normalised to sum to 1 (metrics.auprc); auprc_unnormalised: without the normalisation",
            auprc_unnormalised: self.auprc_unnormalised,
            auprc_note: "classes without gold examples in the report set are left out of the AUPRC average",
            anchors: ANCHORS,
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

fn create(path: &Path) -> impl Fn(std::io::Error) -> RelationError {
    let path = path.to_path_buf();
    move |source| RelationError::Create {
        path: path.clone(),
        source,
    }
}

fn write(path: &Path) -> impl Fn(std::io::Error) -> RelationError {
    let path = path.to_path_buf();
    move |source| RelationError::Write {
        path: path.clone(),
        source,
    }
}

impl RelationBenchReport {
    fn n_calibrate(&self) -> usize {
        self.calibration.as_ref().map_or(0, |c| c.examples)
    }

    /// `re-<label>.md`: the run, the headline metrics, the class table.
    pub fn markdown(&self) -> String {
        let (label, threshold, source) = (&self.label, self.threshold, self.threshold_source);
        let n_calibrate = self.n_calibrate();
        let r = &self.report;
        let m = &self.metrics;
        let mut md = format!(
            "# KLUE-RE as questions to the reader: {label}\n\n\
             Data: `{}`, records {}–{} reported{}. Reader: `{}`. Device: {}, {} threads.\n\
             Relations asked: {}; {} question(s) per relation; no_relation below the threshold {threshold:.4} ({source}).\n\n\
             | examples | micro-F1 | micro-P | micro-R | AUPRC | AUPRC classes | accuracy | examples/s | windows/s |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.1} |\n\n",
            self.data.display(),
            r.records[0],
            r.records[1],
            if n_calibrate > 0 {
                format!(" (threshold calibrated on records 1–{n_calibrate})")
            } else {
                String::new()
            },
            self.reader.display(),
            self.device,
            self.threads,
            if self.options.all_relations {
                "all 29 for every subject"
            } else {
                "the subject type's (per: for PER, org: for ORG, all for other types)"
            },
            self.options.questions_per_relation,
            r.examples,
            m.micro_f1,
            m.micro_precision,
            m.micro_recall,
            m.auprc,
            m.auprc_classes,
            m.accuracy,
            r.examples_per_second,
            r.windows_per_second,
        );
        md.push_str(&format!(
            "AUPRC is over the class probabilities normalised to sum to 1 per example; \
             without the normalisation it is {:.2}. Classes without gold \
             examples here are left out of its average.\n\n",
            self.auprc_unnormalised
        ));
        md.push_str(&m.class_table());
        md.push_str(&format!("\nAnchors: {ANCHORS}.\n"));
        md
    }

    /// The one-line summary `odqa bench re` prints.
    pub fn summary(&self) -> String {
        let m = &self.metrics;
        format!(
            "re {}: {} examples · micro-F1 {:.2} (P {:.2} R {:.2}) · AUPRC {:.2} ({} classes) · accuracy {:.2} · threshold {:.4} ({}) · {:.2} examples/s · {:.1} windows/s",
            self.label,
            self.report.examples,
            m.micro_f1,
            m.micro_precision,
            m.micro_recall,
            m.auprc,
            m.auprc_classes,
            m.accuracy,
            self.threshold,
            self.threshold_source,
            self.report.examples_per_second,
            self.report.windows_per_second,
        )
    }

    /// Writes `re-<label>.json`, `.md` and `.predictions.jsonl` (the
    /// calibration examples' predictions first, under this threshold) into
    /// `out_dir`.
    pub fn write(
        &self,
        out_dir: &Path,
        run: &BenchRun,
        calibration_set: &[KlueReExample],
        report_set: &[KlueReExample],
    ) -> Result<BenchFiles, RelationError> {
        std::fs::create_dir_all(out_dir).map_err(create(out_dir))?;
        let label = &self.label;
        let files = BenchFiles {
            json: out_dir.join(format!("re-{label}.json")),
            markdown: out_dir.join(format!("re-{label}.md")),
            predictions: out_dir.join(format!("re-{label}.predictions.jsonl")),
        };
        let json = serde_json::to_vec_pretty(&serde_json::to_value(self)?)?;
        std::fs::write(&files.json, json).map_err(write(&files.json))?;
        std::fs::write(&files.markdown, self.markdown()).map_err(write(&files.markdown))?;

        let file = std::fs::File::create(&files.predictions).map_err(create(&files.predictions))?;
        let mut lines = BufWriter::new(file);
        let mut write_line = |record: usize,
                              split: &str,
                              example: &KlueReExample,
                              p: &Prediction|
         -> Result<(), RelationError> {
            let line = PredictionLine {
                record,
                split,
                label: example.label.as_deref().unwrap_or(NO_RELATION),
                prediction: p.into(),
            };
            serde_json::to_writer(&mut lines, &serde_json::to_value(&line)?)?;
            lines.write_all(b"\n").map_err(write(&files.predictions))?;
            Ok(())
        };
        if let Some((_, s)) = &run.calibration {
            for (i, (example, scores)) in calibration_set.iter().zip(&s.scores).enumerate() {
                let p = Prediction::from_scores(scores.clone(), run.threshold);
                write_line(i + 1, "calibration", example, &p)?;
            }
        }
        let first = self.n_calibrate() + 1;
        for (i, (example, p)) in report_set.iter().zip(&run.predictions).enumerate() {
            write_line(first + i, "report", example, p)?;
        }
        lines.flush().map_err(write(&files.predictions))?;
        Ok(files)
    }
}
