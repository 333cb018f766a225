//! Classifying a file of KLUE-RE examples (`odqa re --input`): one JSON
//! line per example, its fields and its prediction, and a summary with the
//! accuracy on the labelled ones.
//!
//! Lines are written through `serde_json::Value`, whose objects keep their
//! keys sorted: the layout the command has always written.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::bench::PredictionFields;
use crate::classify::{RelationClassifier, SpanModel};
use crate::klue::{Entity, KlueReExample, RelationError};

/// Progress is reported after every this many examples.
pub const PROGRESS_EVERY: usize = 25;

/// `done` of `total` examples classified (every [`PROGRESS_EVERY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassifyProgress {
    pub done: usize,
    pub total: usize,
}

/// What classifying a file came to.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifySummary {
    pub examples: usize,
    /// Examples with a gold label.
    pub labelled: usize,
    /// Labelled examples predicted as labelled.
    pub correct: usize,
    pub threshold: f32,
    pub seconds: f64,
    /// Windows the reader ran for these examples.
    pub windows: usize,
}

impl ClassifySummary {
    /// Share of the labelled examples predicted right, in percent; `None`
    /// without labelled examples.
    pub fn accuracy(&self) -> Option<f64> {
        (self.labelled > 0).then(|| 100.0 * self.correct as f64 / self.labelled as f64)
    }

    /// The line `odqa re --input` prints on stderr.
    pub fn summary(&self) -> String {
        format!(
            "{} examples in {:.1} s ({:.2} examples/s, {} windows), threshold {}{}",
            self.examples,
            self.seconds,
            self.examples as f64 / self.seconds.max(1e-9),
            self.windows,
            self.threshold,
            match self.accuracy() {
                Some(accuracy) => format!(
                    "; accuracy {accuracy:.1}% on the {} labelled",
                    self.labelled
                ),
                None => String::new(),
            }
        )
    }
}

/// One prediction line: the example (`record` 1-based) and its prediction.
#[derive(Serialize)]
struct ClassifiedLine<'a> {
    record: usize,
    sentence: &'a str,
    subject_entity: &'a Entity,
    object_entity: &'a Entity,
    label: Option<&'a str>,
    #[serde(flatten)]
    prediction: PredictionFields,
}

/// Classifies `examples` (read from `data`, which errors name with the
/// record) at `threshold`, writing one JSON line per example to `out`, and
/// calls `on_progress` after every [`PROGRESS_EVERY`] examples.
pub fn classify_jsonl<M: SpanModel>(
    classifier: &RelationClassifier<M>,
    examples: &[KlueReExample],
    threshold: f32,
    data: &Path,
    out: &mut dyn Write,
    on_progress: &mut dyn FnMut(ClassifyProgress),
) -> Result<ClassifySummary, RelationError> {
    let windows_before = classifier.windows_run();
    let started = Instant::now();
    let (mut labelled, mut correct) = (0usize, 0usize);
    for (i, example) in examples.iter().enumerate() {
        let prediction =
            classifier
                .predict(example, threshold)
                .map_err(|source| RelationError::AtRecord {
                    path: data.to_path_buf(),
                    record: i + 1,
                    source: Box::new(source),
                })?;
        if let Some(gold) = &example.label {
            labelled += 1;
            correct += usize::from(gold == prediction.label);
        }
        let line = ClassifiedLine {
            record: i + 1,
            sentence: &example.sentence,
            subject_entity: &example.subject_entity,
            object_entity: &example.object_entity,
            label: example.label.as_deref(),
            prediction: (&prediction).into(),
        };
        serde_json::to_writer(&mut *out, &serde_json::to_value(&line)?)?;
        out.write_all(b"\n").map_err(RelationError::Output)?;
        if (i + 1) % PROGRESS_EVERY == 0 {
            on_progress(ClassifyProgress {
                done: i + 1,
                total: examples.len(),
            });
        }
    }
    out.flush().map_err(RelationError::Output)?;
    Ok(ClassifySummary {
        examples: examples.len(),
        labelled,
        correct,
        threshold,
        seconds: started.elapsed().as_secs_f64(),
        windows: classifier.windows_run() - windows_before,
    })
}
