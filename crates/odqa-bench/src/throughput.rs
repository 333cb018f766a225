//! The reader-throughput benchmark (`bench reader`): forward passes over
//! windows of exactly `seq_len` real tokens (Korean article text) at
//! several batch sizes, through the QA model or the passage encoder, and
//! optionally the time of each stage of the forward pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use odqa_encoder::{Encoder, EncoderError, PrecisionChoice, QaModel, Stage, StageTimes};

use crate::{now_unix, BenchError, ThroughputReport, ThroughputRow};

/// The model a throughput run times: QA logits or passage embeddings.
pub enum TimedModel {
    Reader(QaModel),
    Encoder(Encoder),
}

impl TimedModel {
    pub fn precision(&self) -> &PrecisionChoice {
        match self {
            TimedModel::Reader(m) => m.precision(),
            TimedModel::Encoder(e) => e.precision(),
        }
    }

    /// `reader` or `embed`, as the report names it.
    pub fn kind(&self) -> &'static str {
        match self {
            TimedModel::Reader(_) => "reader",
            TimedModel::Encoder(_) => "embed",
        }
    }

    /// The token ids of `text`, without special tokens.
    fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        match self {
            TimedModel::Reader(m) => m.tokenizer().encode(text, false),
            TimedModel::Encoder(e) => e.tokenizer().encode(text, false),
        }
        .map(|encoding| encoding.get_ids().to_vec())
        .map_err(|e| e.to_string())
    }

    /// One forward pass over `batch` copies of `window`; the QA model adds
    /// its time per stage to `profile`.
    fn run(
        &self,
        window: &[u32],
        batch: usize,
        profile: Option<&mut StageTimes>,
    ) -> Result<(), EncoderError> {
        match self {
            TimedModel::Reader(model) => {
                let flat: Vec<u32> = window
                    .iter()
                    .copied()
                    .cycle()
                    .take(batch * window.len())
                    .collect();
                let mask = vec![1u32; flat.len()];
                let types = vec![0u32; flat.len()];
                model.logits_profiled(&flat, &mask, &types, batch, window.len(), profile)?;
            }
            TimedModel::Encoder(encoder) => {
                let texts = vec![window.to_vec(); batch];
                encoder.embed_ids(&texts)?;
            }
        }
        Ok(())
    }
}

/// What a throughput run times and how its result is named.
#[derive(Debug, Clone)]
pub struct ThroughputOptions<'a> {
    /// Tokens per window (at least [`ThroughputOptions::MIN_SEQ_LEN`]).
    pub seq_len: usize,
    /// Each at least 1.
    pub batch_sizes: &'a [usize],
    /// Windows timed per batch size (at least 1; rounded up to whole
    /// batches), after one warm-up batch.
    pub windows: usize,
    /// Also time each stage of the QA model's forward pass (odqa's CPU
    /// backend); the encoder is not profiled.
    pub profile: bool,
    /// Default: the kind (`reader` or `embed`).
    pub label: Option<String>,
    /// The reader as the user named it, recorded for a reader run.
    pub reader: &'a Path,
    /// The device as result files record it (`Cpu`, `Cuda(0)` …).
    pub device: String,
    pub out_dir: &'a Path,
}

impl ThroughputOptions<'_> {
    /// The shortest window timed.
    pub const MIN_SEQ_LEN: usize = 8;

    pub fn validate(&self) -> Result<(), BenchError> {
        if self.seq_len < Self::MIN_SEQ_LEN || self.windows == 0 || self.batch_sizes.contains(&0) {
            return Err(BenchError::InvalidOptions(format!(
                "the window length must be at least {}, the windows and every batch size at least 1",
                Self::MIN_SEQ_LEN
            )));
        }
        Ok(())
    }
}

/// One stage of the profiled forward passes of a batch size.
#[derive(Debug, Clone, PartialEq)]
pub struct StageShare {
    pub stage: &'static str,
    pub ms_per_window: f64,
    /// Share of the time of all stages, in percent.
    pub percent: f64,
}

/// What [`bench_throughput`] reports while it runs.
#[derive(Debug)]
pub enum ThroughputEvent<'a> {
    /// A batch size was timed.
    Timed(&'a ThroughputRow),
    /// Its stages were profiled (forward-pass order).
    Profiled(&'a [StageShare]),
}

/// Times `model` over windows cut from the start of `corpus` at each batch
/// size of `options`, reporting each row as it is measured, and writes
/// `<kind>-throughput-<label>.json` into the output directory; `machine`
/// describes where it ran.
pub fn bench_throughput(
    model: &TimedModel,
    corpus: &Path,
    options: &ThroughputOptions,
    machine: odqa_encoder::Machine,
    on_event: &mut dyn FnMut(ThroughputEvent<'_>),
) -> Result<(ThroughputReport, PathBuf), BenchError> {
    options.validate()?;
    let window = corpus_window(model, corpus, options.seq_len)?;
    let profile = options.profile && matches!(model, TimedModel::Reader(_));
    let mut rows = Vec::with_capacity(options.batch_sizes.len());
    for &batch in options.batch_sizes {
        model.run(&window, batch, None)?; // warm-up
        let passes = options.windows.div_ceil(batch);
        let started = Instant::now();
        for _ in 0..passes {
            model.run(&window, batch, None)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let mut row = ThroughputRow {
            batch,
            windows: passes * batch,
            seconds,
            windows_per_second: (passes * batch) as f64 / seconds,
            stages_ms_per_window: None,
        };
        on_event(ThroughputEvent::Timed(&row));
        if profile {
            let mut times = StageTimes::default();
            for _ in 0..passes {
                model.run(&window, batch, Some(&mut times))?;
            }
            let stages = stage_shares(&times, batch);
            on_event(ThroughputEvent::Profiled(&stages));
            row.stages_ms_per_window = Some(
                stages
                    .iter()
                    .map(|s| (s.stage.to_string(), s.ms_per_window))
                    .collect::<BTreeMap<_, _>>(),
            );
        }
        rows.push(row);
    }
    let kind = model.kind();
    let report = ThroughputReport {
        label: options.label.clone().unwrap_or_else(|| kind.into()),
        kind,
        reader: matches!(model, TimedModel::Reader(_)).then(|| options.reader.to_path_buf()),
        seq_len: options.seq_len,
        device: options.device.clone(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        machine,
        rows,
        created_unix: now_unix(),
    };
    let path = report.write(options.out_dir)?;
    Ok((report, path))
}

/// The first `seq_len` tokens of the corpus's article texts (tokenizing
/// stops once there are a few windows' worth).
fn corpus_window(
    model: &TimedModel,
    corpus: &Path,
    seq_len: usize,
) -> Result<Vec<u32>, BenchError> {
    let mut ids: Vec<u32> = Vec::new();
    for record in odqa_corpus::open_corpus(corpus)? {
        let text = record?.article.text;
        let tokens = model
            .encode(text.as_str())
            .map_err(|message| BenchError::Tokenize {
                path: corpus.to_path_buf(),
                message,
            })?;
        ids.extend_from_slice(&tokens);
        if ids.len() >= seq_len * 4 {
            break;
        }
    }
    if ids.len() < seq_len {
        return Err(BenchError::ShortCorpus {
            path: corpus.to_path_buf(),
            tokens: seq_len,
        });
    }
    ids.truncate(seq_len);
    Ok(ids)
}

/// ms per window of each stage and its share of the total.
fn stage_shares(times: &StageTimes, batch: usize) -> Vec<StageShare> {
    let total: f64 = times.seconds.iter().sum();
    let windows = (times.passes * batch).max(1) as f64;
    Stage::ALL
        .iter()
        .zip(&times.seconds)
        .map(|(stage, &s)| StageShare {
            stage: stage.name(),
            ms_per_window: s * 1e3 / windows,
            percent: 100.0 * s / total.max(1e-12),
        })
        .collect()
}
