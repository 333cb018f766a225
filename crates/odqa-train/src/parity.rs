//! `odqa train parity`: odqa's reader against the trainer's own logits on
//! the trainer's reference windows (`parity-rows.npy`, `parity-start.npy`,
//! `parity-end.npy`): logit differences and best spans, decoded alike on
//! both sides. The forward pass is the caller's ([`Parity::run`] takes it
//! as a function of a batch); this module reads the reference, lays out the
//! windows, runs them through that function and compares.

use std::ops::Range;
use std::path::{Path, PathBuf};

use odqa_reader::{Batch, SpanLogits};
use serde::Serialize;

use crate::{Result, TrainError};

/// Reference windows per forward pass in [`Parity::run`].
pub const WINDOWS_PER_PASS: usize = 8;

/// The trainer's reference: which export rows, and their logits
/// (`windows × seq` each, row-major).
#[derive(Debug, Clone)]
pub struct Reference {
    pub rows: Vec<i64>,
    pub start: Vec<f32>,
    pub end: Vec<f32>,
    pub windows: usize,
    pub seq: usize,
}

fn context(context: String) -> impl FnOnce(std::io::Error) -> TrainError {
    move |source| TrainError::Context { context, source }
}

fn read_npy<T: npyz::Deserialize>(path: &Path) -> Result<(Vec<u64>, Vec<T>)> {
    let bytes = std::fs::read(path).map_err(context(format!("reading {}", path.display())))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .map_err(context(format!("{}: not an .npy file", path.display())))?;
    let shape = npy.shape().to_vec();
    let data = npy.into_vec().map_err(context(format!(
        "{}: unexpected element type",
        path.display()
    )))?;
    Ok((shape, data))
}

/// The export's windows and the reference, checked to agree in shape.
#[derive(Debug, Clone)]
pub struct Parity {
    rows: Vec<[u32; crate::export::ROW_FIELDS.len()]>,
    ids: Vec<u32>,
    pub reference: Reference,
}

/// One reference window: its length, gold span and passage tokens.
#[derive(Debug, Clone)]
pub struct ParityWindow {
    pub len: usize,
    pub gold: (usize, usize),
    pub context: Range<usize>,
}

/// The reference windows as one padded batch (`windows × seq`).
#[derive(Debug, Clone)]
pub struct ParityInputs {
    pub ids: Vec<u32>,
    pub mask: Vec<u32>,
    pub types: Vec<u32>,
    pub windows: Vec<ParityWindow>,
}

impl ParityInputs {
    /// The rows `per_pass` at a time as model batches of `seq_len` tokens
    /// (the reference's padded length, so logits line up with its).
    pub fn batches(&self, seq_len: usize, per_pass: usize) -> impl Iterator<Item = Batch> + '_ {
        let step = seq_len * per_pass.max(1);
        let n = self.windows.len();
        (0..n.div_ceil(per_pass.max(1))).map(move |c| {
            let rows = c * step..(((c + 1) * step).min(n * seq_len));
            Batch {
                input_ids: self.ids[rows.clone()].to_vec(),
                attention_mask: self.mask[rows.clone()].to_vec(),
                token_type_ids: self.types[rows.clone()].to_vec(),
                size: rows.len() / seq_len.max(1),
                seq_len,
            }
        })
    }
}

/// Both best spans found the gold span this often.
#[derive(Debug, Clone, Serialize)]
pub struct GoldSpans {
    pub odqa_candle: usize,
    pub pytorch: usize,
}

/// `reader-parity.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ParityReport {
    pub windows: usize,
    pub max_abs_logit_diff: f32,
    pub mean_abs_logit_diff: f64,
    pub same_best_span: usize,
    pub best_span_is_gold: GoldSpans,
    pub reader: PathBuf,
    pub export: PathBuf,
    pub device: String,
}

impl ParityReport {
    /// Pretty JSON with sorted keys, as the command has always written it.
    pub fn to_json(&self) -> Result<String> {
        let value = serde_json::to_value(self).map_err(|e| TrainError::Parity(e.to_string()))?;
        Ok(format!("{value:#}"))
    }

    /// Writes [`ParityReport::to_json`] to `path` (creating its directory)
    /// and returns it.
    pub fn write(&self, path: &Path) -> Result<String> {
        let json = self.to_json()?;
        crate::write_creating_parent(path, &json)?;
        Ok(json)
    }
}

/// Best span by `start + end` logit over the window's passage tokens plus
/// the no-answer position 0 (as `(0, 0)`), at most `max_tokens` long — the
/// trainer's own decoding, so that both sides are judged alike. (The
/// reader's `odqa_reader::score_window` needs the windows' character
/// offsets, which the export does not keep, and merges spans by
/// characters: not the same decoding.)
pub fn best_span(
    start: &[f32],
    end: &[f32],
    context: Range<usize>,
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

impl Parity {
    /// Reads the export's windows and the reference in `reference_dir`.
    pub fn load(export: &Path, reference_dir: &Path) -> Result<Parity> {
        let rows = crate::export::read_rows(export)?;
        let ids = crate::export::read_ids(export)?;
        let (_, parity_rows) = read_npy::<i64>(&reference_dir.join("parity-rows.npy"))?;
        let (shape, start) = read_npy::<f32>(&reference_dir.join("parity-start.npy"))?;
        let (_, end) = read_npy::<f32>(&reference_dir.join("parity-end.npy"))?;
        let [n, seq] = shape[..] else {
            return Err(TrainError::Parity(format!(
                "parity-start.npy: expected a 2-D array, found shape {shape:?}"
            )));
        };
        let (n, seq) = (n as usize, seq as usize);
        if parity_rows.len() != n || end.len() != n * seq {
            return Err(TrainError::Parity(format!(
                "{}: rows, start and end logits disagree in shape",
                reference_dir.display()
            )));
        }
        Ok(Parity {
            rows,
            ids,
            reference: Reference {
                rows: parity_rows,
                start,
                end,
                windows: n,
                seq,
            },
        })
    }

    /// The reference windows laid out for the model, padded with `pad`.
    pub fn inputs(&self, export: &Path, pad: u32) -> Result<ParityInputs> {
        let (n, seq) = (self.reference.windows, self.reference.seq);
        let (mut ids, mut mask) = (vec![pad; n * seq], vec![0u32; n * seq]);
        let mut windows = Vec::with_capacity(n);
        for (i, &r) in self.reference.rows.iter().enumerate() {
            let row = usize::try_from(r)
                .ok()
                .and_then(|r| self.rows.get(r))
                .ok_or_else(|| {
                    TrainError::Parity(format!("parity row {r} is not in {}", export.display()))
                })?;
            let [off, len, start, end, _, _, _, cs, ce] = row.map(|v| v as usize);
            if len > seq {
                return Err(TrainError::Parity(format!(
                    "window {r} has {len} tokens, the reference only {seq} positions"
                )));
            }
            let tokens = self.ids.get(off..off + len).ok_or_else(|| {
                TrainError::Parity(format!("window {r} lies outside {}", export.display()))
            })?;
            ids[i * seq..i * seq + len].copy_from_slice(tokens);
            mask[i * seq..i * seq + len].fill(1);
            windows.push(ParityWindow {
                len,
                gold: (start, end),
                context: cs..ce,
            });
        }
        Ok(ParityInputs {
            ids,
            mask,
            types: vec![0u32; n * seq],
            windows,
        })
    }

    /// Lays out the reference windows of `export` padded with `pad`, runs
    /// `forward` (odqa's reader) on them [`WINDOWS_PER_PASS`] at a time and
    /// compares its logits with the reference's.
    pub fn run<E>(
        &self,
        pad: u32,
        mut forward: impl FnMut(&Batch) -> std::result::Result<SpanLogits, E>,
        reader: PathBuf,
        export: PathBuf,
        device: String,
    ) -> Result<ParityReport>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let inputs = self.inputs(&export, pad)?;
        let (n, seq) = (self.reference.windows, self.reference.seq);
        let mut ours_start = Vec::with_capacity(n * seq);
        let mut ours_end = Vec::with_capacity(n * seq);
        for batch in inputs.batches(seq, WINDOWS_PER_PASS) {
            let logits = forward(&batch).map_err(|e| TrainError::Forward(e.into()))?;
            // Rows must line up with the reference's for the comparison.
            if logits.seq_len != seq {
                return Err(TrainError::Parity(format!(
                    "the forward pass gave rows of {} logits for windows of {seq} positions",
                    logits.seq_len
                )));
            }
            logits.check(batch.size)?;
            ours_start.extend(logits.start);
            ours_end.extend(logits.end);
        }
        Ok(self.compare(&inputs, &ours_start, &ours_end, reader, export, device))
    }

    /// Compares odqa's logits (`windows × seq`, as the reference) with the
    /// reference's.
    pub fn compare(
        &self,
        inputs: &ParityInputs,
        ours_start: &[f32],
        ours_end: &[f32],
        reader: PathBuf,
        export: PathBuf,
        device: String,
    ) -> ParityReport {
        let (seq, reference) = (self.reference.seq, &self.reference);
        let (mut max_diff, mut sum_diff, mut count, mut same_span, mut gold_ours, mut gold_ref) =
            (0f32, 0f64, 0usize, 0usize, 0usize, 0usize);
        for (i, w) in inputs.windows.iter().enumerate() {
            let at = i * seq;
            for p in 0..w.len {
                for (x, y) in [
                    (ours_start[at + p], reference.start[at + p]),
                    (ours_end[at + p], reference.end[at + p]),
                ] {
                    let d = (x - y).abs();
                    max_diff = max_diff.max(d);
                    sum_diff += f64::from(d);
                    count += 1;
                }
            }
            let span = |s: &[f32], e: &[f32]| {
                best_span(
                    &s[at..at + w.len],
                    &e[at..at + w.len],
                    w.context.clone(),
                    30,
                )
            };
            let ours = span(ours_start, ours_end);
            let theirs = span(&reference.start, &reference.end);
            same_span += usize::from(ours == theirs);
            gold_ours += usize::from(ours == w.gold);
            gold_ref += usize::from(theirs == w.gold);
        }
        ParityReport {
            windows: reference.windows,
            max_abs_logit_diff: max_diff,
            mean_abs_logit_diff: sum_diff / count.max(1) as f64,
            same_best_span: same_span,
            best_span_is_gold: GoldSpans {
                odqa_candle: gold_ours,
                pytorch: gold_ref,
            },
            reader,
            export,
            device,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three export windows of 2, 3 and 4 tokens, the reference scoring
    /// the last two (padded to 4 positions) with peaks at their gold spans.
    fn two_window_parity() -> Parity {
        let row =
            |off: u32, len: u32, gold: (u32, u32)| [off, len, gold.0, gold.1, 0, 0, 0, 1, len];
        let (seq, mut start, mut end) = (4, vec![0f32; 8], vec![0f32; 8]);
        start[1] = 5.0;
        end[2] = 5.0;
        start[seq + 2] = 5.0;
        end[seq + 3] = 5.0;
        Parity {
            rows: vec![row(0, 2, (0, 0)), row(2, 3, (1, 2)), row(5, 4, (2, 3))],
            ids: (10..19).collect(),
            reference: Reference {
                rows: vec![1, 2],
                start,
                end,
                windows: 2,
                seq,
            },
        }
    }

    #[test]
    fn a_run_lays_out_the_windows_and_compares_the_forward_pass() {
        let parity = two_window_parity();
        let reference = parity.reference.clone();
        let mut seen = Vec::new();
        let report = parity
            .run(
                0,
                |batch: &Batch| {
                    seen.extend_from_slice(&batch.input_ids);
                    Ok::<_, TrainError>(SpanLogits {
                        start: reference.start.clone(),
                        end: reference.end.clone(),
                        batch: batch.size,
                        seq_len: batch.seq_len,
                    })
                },
                "reader".into(),
                "export".into(),
                "Cpu".into(),
            )
            .unwrap();
        // The second window's 3 tokens padded with 0, then the third's 4.
        assert_eq!(seen, [12, 13, 14, 0, 15, 16, 17, 18]);
        assert_eq!(report.windows, 2);
        assert_eq!(report.max_abs_logit_diff, 0.0);
        assert_eq!(report.same_best_span, 2);
        assert_eq!(report.best_span_is_gold.odqa_candle, 2);
        assert_eq!(report.best_span_is_gold.pytorch, 2);
    }

    #[test]
    fn a_forward_pass_that_fails_or_misshapes_its_logits_is_an_error() {
        let parity = two_window_parity();
        let failed = parity.run(
            0,
            |_: &Batch| Err::<SpanLogits, _>(std::io::Error::other("no device")),
            "reader".into(),
            "export".into(),
            "Cpu".into(),
        );
        assert_eq!(failed.unwrap_err().to_string(), "no device");
        let short = parity.run(
            0,
            |batch: &Batch| {
                Ok::<_, TrainError>(SpanLogits {
                    start: vec![0.0; batch.size * 3],
                    end: vec![0.0; batch.size * 3],
                    batch: batch.size,
                    seq_len: 3,
                })
            },
            "reader".into(),
            "export".into(),
            "Cpu".into(),
        );
        assert!(matches!(short, Err(TrainError::Parity(_))), "{short:?}");
    }

    #[test]
    fn inputs_split_into_batches_of_whole_rows() {
        let seq = 3;
        let window = |len| ParityWindow {
            len,
            gold: (0, 0),
            context: 0..len,
        };
        let inputs = ParityInputs {
            ids: (0..15).collect(),
            mask: vec![1; 15],
            types: vec![0; 15],
            windows: (0..5).map(|_| window(3)).collect(),
        };
        let batches: Vec<_> = inputs.batches(seq, 2).collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.size).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert!(batches.iter().all(|b| b.seq_len == seq));
        assert_eq!(batches[1].input_ids, vec![6, 7, 8, 9, 10, 11]);
        assert_eq!(batches[2].input_ids, vec![12, 13, 14]);
        let all: Vec<u32> = batches.iter().flat_map(|b| b.input_ids.clone()).collect();
        assert_eq!(all, inputs.ids);
    }
}
