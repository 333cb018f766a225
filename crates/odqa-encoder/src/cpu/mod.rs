//! odqa's CPU backend for BERT-family encoders: the same computation as
//! candle-transformers' `BertModel` (Hugging Face weight names, `Config`
//! from config.json), laid out for this CPU's speed.
//!
//! Why not candle's BERT on the CPU: profiled on a reader forward pass, it
//! spent more time in a scalar softmax and GELU and in head-by-head
//! attention matmuls than in the linear layers, and had no reduced
//! precision on x86 without MKL. Here:
//! - **No padding is computed.** A batch is flattened to its real tokens
//!   (each keeps its position id); linear layers run over all tokens of
//!   all sequences at once, attention per sequence over its own tokens.
//! - **Attention in parallel** over (sequence, head, block of query rows),
//!   each task one single-threaded `gemm` for the scores, a vectorized
//!   softmax with the 1/√d scale folded in, one `gemm` into the context,
//!   reading Q/K/V in place from the fused QKV output (no copies).
//! - **Linear layers** at f32 (`gemm`, AVX-512 kernels), bf16 (AVX512_BF16)
//!   or int8 (AVX512_VNNI) — [`linear`]; LayerNorm with the residual add,
//!   GELU and softmax vectorized ([`kernels`]). Everything but the linear
//!   layers' products is f32 at every precision.
//!
//! Candle remains the loader (safetensors, E5S1, deltas) and the CUDA path.

mod features;
mod kernels;
mod linear;

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::Tensor;
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

pub use features::{cpu_features, cpu_model_name, CpuFeatures, Int8Kernel, Precision, SimdLevel};
use linear::Linear;

use crate::error::{EncoderError, Result};

/// A raw pointer that tasks writing disjoint parts of one buffer share.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);
// SAFETY: every user writes only cells no other task touches (documented
// at each use), and the buffer outlives the parallel section.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so that closures capture the whole wrapper).
    pub fn get(self) -> *mut T {
        self.0
    }
}

/// A part of the forward pass, for [`StageTimes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Embeddings,
    Qkv,
    Attention,
    AttentionOut,
    LayerNorm,
    FfnIn,
    Activation,
    FfnOut,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Embeddings,
        Stage::Qkv,
        Stage::Attention,
        Stage::AttentionOut,
        Stage::LayerNorm,
        Stage::FfnIn,
        Stage::Activation,
        Stage::FfnOut,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Embeddings => "embeddings + LayerNorm",
            Stage::Qkv => "QKV projection (linear)",
            Stage::Attention => "attention: scores, softmax, context",
            Stage::AttentionOut => "attention output (linear)",
            Stage::LayerNorm => "residual + LayerNorm",
            Stage::FfnIn => "FFN in (linear)",
            Stage::Activation => "GELU",
            Stage::FfnOut => "FFN out (linear)",
        }
    }
}

/// Seconds spent per [`Stage`] over the forward passes profiled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimes {
    pub seconds: [f64; 8],
    pub passes: usize,
}

struct StageClock<'a> {
    times: Option<&'a mut StageTimes>,
    last: std::time::Instant,
}

impl<'a> StageClock<'a> {
    fn new(times: Option<&'a mut StageTimes>) -> Self {
        StageClock {
            times,
            last: std::time::Instant::now(),
        }
    }

    fn lap(&mut self, stage: Stage) {
        if let Some(times) = self.times.as_deref_mut() {
            let now = std::time::Instant::now();
            let i = Stage::ALL.iter().position(|&s| s == stage).unwrap_or(0);
            times.seconds[i] += (now - self.last).as_secs_f64();
            self.last = now;
        }
    }
}

/// Query rows per attention task.
const ATTENTION_ROWS: usize = 96;

/// The real tokens of a batch, flattened: sequence `s` is
/// `starts[s]..starts[s + 1]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Tokens {
    pub ids: Vec<u32>,
    pub types: Vec<u32>,
    pub positions: Vec<u32>,
    pub starts: Vec<usize>,
    /// Where each token sat in the padded `[batch × seq_len]` input.
    pub padded_index: Vec<usize>,
}

impl Tokens {
    /// The tokens whose mask is non-zero, each with its column as position id.
    pub fn from_padded(
        ids: &[u32],
        mask: &[u32],
        types: &[u32],
        batch: usize,
        seq_len: usize,
    ) -> Self {
        let mut t = Tokens {
            starts: vec![0],
            ..Default::default()
        };
        for r in 0..batch {
            for c in 0..seq_len {
                let i = r * seq_len + c;
                if mask[i] != 0 {
                    t.ids.push(ids[i]);
                    t.types.push(types[i]);
                    t.positions.push(c as u32);
                    t.padded_index.push(i);
                }
            }
            t.starts.push(t.ids.len());
        }
        t
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn sequences(&self) -> usize {
        self.starts.len() - 1
    }
}

/// Word, position and token-type tables and their LayerNorm (f32 at every
/// precision; shared between the models of a precision check).
struct Embeddings {
    /// The tables' width: the hidden size, or ELECTRA's `embedding_size`.
    width: usize,
    /// Added to each token's column for its position id: 0 for BERT,
    /// `padding_idx + 1` for RoBERTa/XLM-R.
    position_offset: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    norm: (Vec<f32>, Vec<f32>),
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: (Vec<f32>, Vec<f32>),
    intermediate: Linear,
    output: Linear,
    output_norm: (Vec<f32>, Vec<f32>),
}

/// A BERT encoder held for the CPU kernels at one precision.
pub(crate) struct CpuBert {
    hidden: usize,
    heads: usize,
    intermediate: usize,
    eps: f32,
    activation: HiddenAct,
    max_positions: usize,
    type_vocab: usize,
    embeddings: Arc<Embeddings>,
    /// ELECTRA's `embeddings_project` (embedding width → hidden).
    projection: Option<Linear>,
    layers: Vec<Layer>,
    precision: Precision,
}

/// How a BERT-like body differs from BERT's embeddings: RoBERTa/XLM-R
/// count positions from `padding_idx + 1`; ELECTRA's embeddings are
/// `embedding_size` wide and projected to the hidden size
/// (`embeddings_project.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyShape {
    pub position_offset: usize,
    pub embedding_size: usize,
}

impl BodyShape {
    /// BERT's own: positions from 0, embeddings as wide as the hidden size.
    pub fn bert(config: &Config) -> Self {
        BodyShape {
            position_offset: 0,
            embedding_size: config.hidden_size,
        }
    }
}

impl std::fmt::Debug for CpuBert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuBert")
            .field("hidden", &self.hidden)
            .field("layers", &self.layers.len())
            .field("precision", &self.precision)
            .finish_non_exhaustive()
    }
}

fn take(tensors: &HashMap<String, Tensor>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = tensors
        .get(name)
        .ok_or_else(|| EncoderError::Backend(format!("missing tensor {name}")))?;
    if t.dims() != shape {
        return Err(EncoderError::Backend(format!(
            "tensor {name} has shape {:?}, expected {shape:?}",
            t.dims()
        )));
    }
    Ok(t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

impl CpuBert {
    /// The encoder from Hugging Face BERT tensors (no `bert.` prefix) at
    /// `precision` (F32, Bf16 or Int8: resolve Auto first).
    #[cfg(test)]
    pub fn from_tensors(
        tensors: &HashMap<String, Tensor>,
        config: &Config,
        precision: Precision,
    ) -> Result<Self> {
        Self::from_body(tensors, config, BodyShape::bert(config), precision)
    }

    /// [`CpuBert::from_tensors`] for a BERT-like body of `shape`.
    pub fn from_body(
        tensors: &HashMap<String, Tensor>,
        config: &Config,
        shape: BodyShape,
        precision: Precision,
    ) -> Result<Self> {
        let h = shape.embedding_size;
        let embeddings = Arc::new(Embeddings {
            width: h,
            position_offset: shape.position_offset,
            word: take(
                tensors,
                "embeddings.word_embeddings.weight",
                &[config.vocab_size, h],
            )?,
            position: take(
                tensors,
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type: take(
                tensors,
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, h],
            )?,
            norm: (
                take(tensors, "embeddings.LayerNorm.weight", &[h])?,
                take(tensors, "embeddings.LayerNorm.bias", &[h])?,
            ),
        });
        Self::with_embeddings(tensors, config, precision, embeddings)
    }

    /// The same encoder at another precision, sharing this one's embeddings.
    pub fn at_precision(
        &self,
        tensors: &HashMap<String, Tensor>,
        config: &Config,
        precision: Precision,
    ) -> Result<Self> {
        Self::with_embeddings(tensors, config, precision, self.embeddings.clone())
    }

    fn with_embeddings(
        tensors: &HashMap<String, Tensor>,
        config: &Config,
        precision: Precision,
        embeddings: Arc<Embeddings>,
    ) -> Result<Self> {
        if precision == Precision::Auto {
            return Err(EncoderError::Backend(
                "CpuBert::from_tensors needs a resolved precision".into(),
            ));
        }
        if !linear::kernel_available(precision) {
            return Err(unsupported(precision, cpu_features()));
        }
        let h = config.hidden_size;
        let i = config.intermediate_size;
        let vec = |name: &str, len: usize| take(tensors, name, &[len]);
        let norm = |prefix: &str| -> Result<(Vec<f32>, Vec<f32>)> {
            Ok((
                vec(&format!("{prefix}.weight"), h)?,
                vec(&format!("{prefix}.bias"), h)?,
            ))
        };
        let dense = |prefix: &str, n: usize, k: usize| -> Result<Linear> {
            Ok(Linear::new(
                take(tensors, &format!("{prefix}.weight"), &[n, k])?,
                vec(&format!("{prefix}.bias"), n)?,
                n,
                k,
                precision,
            ))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            // Q, K and V as one [3h × h] product: one pass over the tokens.
            let mut w = Vec::with_capacity(3 * h * h);
            let mut b = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                w.extend(take(
                    tensors,
                    &format!("{p}.attention.self.{part}.weight"),
                    &[h, h],
                )?);
                b.extend(vec(&format!("{p}.attention.self.{part}.bias"), h)?);
            }
            layers.push(Layer {
                qkv: Linear::new(w, b, 3 * h, h, precision),
                attention_out: dense(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: dense(&format!("{p}.intermediate.dense"), i, h)?,
                output: dense(&format!("{p}.output.dense"), h, i)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let width = embeddings.width;
        let projection = if width != h {
            Some(dense("embeddings_project", h, width)?)
        } else {
            None
        };
        Ok(CpuBert {
            projection,
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: i,
            eps: config.layer_norm_eps as f32,
            activation: config.hidden_act,
            max_positions: config.max_position_embeddings,
            type_vocab: config.type_vocab_size,
            embeddings,
            layers,
            precision,
        })
    }

    /// Hidden states of the last layer, `[tokens × hidden]`, row `t` for
    /// token `t` of `tokens`.
    pub fn forward(&self, tokens: &Tokens) -> Result<Vec<f32>> {
        self.forward_profiled(tokens, None)
    }

    /// [`CpuBert::forward`], adding each stage's wall time to `profile`.
    pub fn forward_profiled(
        &self,
        tokens: &Tokens,
        profile: Option<&mut StageTimes>,
    ) -> Result<Vec<f32>> {
        let mut profile = profile;
        if let Some(p) = profile.as_deref_mut() {
            p.passes += 1;
        }
        let mut clock = StageClock::new(profile);
        let h = self.hidden;
        let t = tokens.len();
        let emb = &*self.embeddings;
        let e = emb.width;
        let vocab = emb.word.len() / e;
        for (k, ((&id, &ty), &pos)) in tokens
            .ids
            .iter()
            .zip(&tokens.types)
            .zip(&tokens.positions)
            .enumerate()
        {
            if id as usize >= vocab || ty as usize >= self.type_vocab {
                return Err(EncoderError::Backend(format!(
                    "token {k}: id {id} / type {ty} outside the vocabulary ({vocab}) or type vocabulary ({})",
                    self.type_vocab
                )));
            }
            if pos as usize + emb.position_offset >= self.max_positions {
                return Err(EncoderError::Backend(format!(
                    "token {k}: position {pos} (+ offset {}) beyond max_position_embeddings {}",
                    emb.position_offset, self.max_positions
                )));
            }
        }
        let mut x = vec![0f32; t * e];
        x.par_chunks_mut(e).enumerate().for_each(|(k, row)| {
            let (id, ty, pos) = (
                tokens.ids[k] as usize,
                tokens.types[k] as usize,
                tokens.positions[k] as usize + emb.position_offset,
            );
            let w = &emb.word[id * e..(id + 1) * e];
            let p = &emb.position[pos * e..(pos + 1) * e];
            let y = &emb.token_type[ty * e..(ty + 1) * e];
            for j in 0..e {
                row[j] = w[j] + p[j] + y[j];
            }
        });
        self.layer_norm(&mut x, &[], &emb.norm);
        if let Some(projection) = &self.projection {
            let mut projected = vec![0f32; t * h];
            projection.forward(&x, t, &mut projected);
            x = projected;
        }
        clock.lap(Stage::Embeddings);
        let mut qkv = vec![0f32; t * 3 * h];
        let mut context = vec![0f32; t * h];
        let mut attended = vec![0f32; t * h];
        let mut inter = vec![0f32; t * self.intermediate];
        for layer in &self.layers {
            layer.qkv.forward(&x, t, &mut qkv);
            clock.lap(Stage::Qkv);
            self.attention(&qkv, tokens, &mut context);
            clock.lap(Stage::Attention);
            layer.attention_out.forward(&context, t, &mut attended);
            clock.lap(Stage::AttentionOut);
            self.layer_norm(&mut attended, &x, &layer.attention_norm);
            clock.lap(Stage::LayerNorm);
            layer.intermediate.forward(&attended, t, &mut inter);
            clock.lap(Stage::FfnIn);
            self.activate(&mut inter);
            clock.lap(Stage::Activation);
            layer.output.forward(&inter, t, &mut x);
            clock.lap(Stage::FfnOut);
            self.layer_norm(&mut x, &attended, &layer.output_norm);
            clock.lap(Stage::LayerNorm);
        }
        Ok(x)
    }

    fn layer_norm(&self, rows: &mut [f32], residual: &[f32], (g, b): &(Vec<f32>, Vec<f32>)) {
        let h = g.len();
        const ROWS: usize = 32;
        if residual.is_empty() {
            rows.par_chunks_mut(h * ROWS)
                .for_each(|c| kernels::add_layer_norm(c, &[], g, b, self.eps));
        } else {
            rows.par_chunks_mut(h * ROWS)
                .zip(residual.par_chunks(h * ROWS))
                .for_each(|(c, r)| kernels::add_layer_norm(c, r, g, b, self.eps));
        }
    }

    fn activate(&self, xs: &mut [f32]) {
        let f = match self.activation {
            HiddenAct::Gelu => kernels::gelu_erf,
            HiddenAct::GeluApproximate => kernels::gelu_tanh,
            HiddenAct::Relu => kernels::relu,
        };
        xs.par_chunks_mut(1 << 14).for_each(f);
    }

    /// Multi-head self-attention of each sequence over its own tokens:
    /// `context[t, head] = softmax(q·kᵀ/√d) · v`, Q/K/V read from `qkv`
    /// (`[tokens × 3h]`: Q, K, V side by side).
    fn attention(&self, qkv: &[f32], tokens: &Tokens, context: &mut [f32]) {
        let h = self.hidden;
        let d = h / self.heads;
        let stride = 3 * h;
        let scale = 1.0 / (d as f32).sqrt();
        let mut tasks = Vec::new();
        for s in 0..tokens.sequences() {
            let (start, end) = (tokens.starts[s], tokens.starts[s + 1]);
            for head in 0..self.heads {
                let mut q0 = start;
                while q0 < end {
                    let q1 = (q0 + ATTENTION_ROWS).min(end);
                    tasks.push((start, end, head, q0, q1));
                    q0 = q1;
                }
            }
        }
        let out = SendPtr(context.as_mut_ptr());
        tasks
            .into_par_iter()
            .for_each(|(start, end, head, q0, q1)| {
                let len = end - start;
                let rows = q1 - q0;
                let mut scores = vec![0f32; rows * len];
                let q = qkv[q0 * stride + head * d..].as_ptr();
                let k = qkv[start * stride + h + head * d..].as_ptr();
                let v = qkv[start * stride + 2 * h + head * d..].as_ptr();
                // SAFETY: scores is rows × len row-major; Q rows q0..q1 and K/V
                // rows start..end lie in qkv (row stride 3h, d columns from the
                // head's offset); the context cells (rows q0..q1, columns of
                // this head) belong to this task alone.
                unsafe {
                    linear::matmul(
                        (rows, len, d),
                        (scores.as_mut_ptr(), len, false),
                        (q, stride as isize, 1),
                        (k, 1, stride as isize),
                        gemm::Parallelism::None,
                    );
                }
                kernels::softmax_rows(&mut scores, len, scale);
                unsafe {
                    linear::matmul(
                        (rows, d, len),
                        (out.get().add(q0 * h + head * d), h, false),
                        (scores.as_ptr(), len as isize, 1),
                        (v, stride as isize, 1),
                        gemm::Parallelism::None,
                    );
                }
            });
    }
}

/// What a model load asked for, what it runs at, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PrecisionChoice {
    pub requested: Precision,
    pub chosen: Precision,
    pub reason: String,
}

impl std::fmt::Display for PrecisionChoice {
    /// `precision bf16 (asked auto: …)`, as the commands report a load.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "precision {} (asked {}: {})",
            self.chosen, self.requested, self.reason
        )
    }
}

/// Where a benchmark ran, as every result file records it: the CPU model
/// and the features odqa detected on it, the threads, the device and the
/// precision the model was loaded at.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Machine {
    pub cpu: String,
    pub flags: Vec<&'static str>,
    pub threads: usize,
    /// `Cpu`, `Cuda(0)` …
    pub device: String,
    pub precision: Option<PrecisionChoice>,
}

impl Machine {
    /// This machine, running on `device` at `precision`.
    pub fn describe(device: &candle_core::Device, precision: Option<&PrecisionChoice>) -> Machine {
        Machine {
            cpu: cpu_model_name(),
            flags: cpu_features().flags(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            device: format!("{:?}", device.location()),
            precision: precision.cloned(),
        }
    }
}

/// Relative L2 error of the probe's hidden states above which `auto`
/// keeps f32 (bf16 on the real model gives about a tenth of this).
const PROBE_TOLERANCE: f64 = 0.03;

/// The CPU encoder at `requested` precision. `Auto` takes this CPU's
/// preferred precision when its hidden states on a fixed probe batch stay
/// within [`PROBE_TOLERANCE`] of f32, else f32; an explicit precision the
/// CPU lacks is an error.
#[cfg(test)]
pub(crate) fn load_cpu_bert(
    tensors: &HashMap<String, Tensor>,
    config: &Config,
    requested: Precision,
) -> Result<(CpuBert, PrecisionChoice)> {
    load_cpu_body(tensors, config, BodyShape::bert(config), requested)
}

/// [`load_cpu_bert`] for a BERT-like body of `shape` (RoBERTa, XLM-R,
/// ELECTRA).
pub(crate) fn load_cpu_body(
    tensors: &HashMap<String, Tensor>,
    config: &Config,
    shape: BodyShape,
    requested: Precision,
) -> Result<(CpuBert, PrecisionChoice)> {
    load_shaped_for_features(tensors, config, shape, requested, cpu_features())
}

/// [`load_cpu_bert`] as if the CPU had `features` (a subset of the real
/// ones: the kernels themselves still check the hardware).
#[cfg(test)]
pub(crate) fn load_for_features(
    tensors: &HashMap<String, Tensor>,
    config: &Config,
    requested: Precision,
    features: &CpuFeatures,
) -> Result<(CpuBert, PrecisionChoice)> {
    load_shaped_for_features(
        tensors,
        config,
        BodyShape::bert(config),
        requested,
        features,
    )
}

fn load_shaped_for_features(
    tensors: &HashMap<String, Tensor>,
    config: &Config,
    shape: BodyShape,
    requested: Precision,
    features: &CpuFeatures,
) -> Result<(CpuBert, PrecisionChoice)> {
    if !features.supports(requested) {
        return Err(unsupported(requested, features));
    }
    if requested != Precision::Auto {
        let model = CpuBert::from_body(tensors, config, shape, requested)?;
        let reason = format!("requested; {}", cpu_model_name());
        return Ok((
            model,
            PrecisionChoice {
                requested,
                chosen: requested,
                reason,
            },
        ));
    }
    let f32_model = CpuBert::from_body(tensors, config, shape, Precision::F32)?;
    let candidate = features.preferred();
    if candidate == Precision::F32 {
        return Ok((
            f32_model,
            PrecisionChoice {
                requested,
                chosen: Precision::F32,
                reason: format!(
                    "{} has no avx512_bf16 (flags: {})",
                    cpu_model_name(),
                    features.flags().join(" ")
                ),
            },
        ));
    }
    let reduced = f32_model.at_precision(tensors, config, candidate)?;
    let probe = probe_tokens(config, shape.position_offset);
    let error = relative_error(&f32_model.forward(&probe)?, &reduced.forward(&probe)?);
    let (model, chosen, verdict) = if error <= PROBE_TOLERANCE {
        (reduced, candidate, "within")
    } else {
        (f32_model, Precision::F32, "beyond")
    };
    Ok((
        model,
        PrecisionChoice {
            requested,
            chosen,
            reason: format!(
                "{candidate} probe error {error:.4} {verdict} {PROBE_TOLERANCE} of f32; {}",
                cpu_model_name()
            ),
        },
    ))
}

fn unsupported(precision: Precision, features: &CpuFeatures) -> EncoderError {
    let needs = match precision {
        Precision::Bf16 => "avx512_bf16",
        Precision::Int8 => "avx512_vnni or avx2",
        _ => "nothing",
    };
    EncoderError::Precision(format!(
        "{precision} needs {needs}, which this CPU lacks ({}; flags: {}); use --precision auto or f32",
        cpu_model_name(),
        features.flags().join(" ")
    ))
}

/// Two fixed sequences of ids spread over the vocabulary.
fn probe_tokens(config: &Config, position_offset: usize) -> Tokens {
    let len = 48.min(
        config
            .max_position_embeddings
            .saturating_sub(position_offset),
    );
    let mut t = Tokens {
        starts: vec![0],
        ..Default::default()
    };
    for s in 0..2u64 {
        for p in 0..len {
            let id = (s * 104_729 + p as u64 * 7_919 + 13) % config.vocab_size as u64;
            t.ids.push(id as u32);
            t.types.push(0);
            t.positions.push(p as u32);
            t.padded_index.push(s as usize * len + p);
        }
        t.starts.push(t.ids.len());
    }
    t
}

/// ‖a − b‖ / ‖a‖.
pub(crate) fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += (x as f64 - y as f64).powi(2);
        den += (x as f64).powi(2);
    }
    (num / den.max(1e-30)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    use candle_core::{DType, Device};
    use candle_nn::VarBuilder;
    use candle_transformers::models::bert::BertModel;

    fn config(hidden_act: &str) -> Config {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 50, "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 128, "hidden_act": hidden_act,
            "hidden_dropout_prob": 0.1, "max_position_embeddings": 64, "type_vocab_size": 2,
            "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "classifier_dropout": null, "model_type": "bert"
        }))
        .unwrap()
    }

    fn random_tensors(c: &Config) -> HashMap<String, Tensor> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let mut shapes: Vec<(String, Vec<usize>)> = vec![
            (
                "embeddings.word_embeddings.weight".into(),
                vec![c.vocab_size, h],
            ),
            (
                "embeddings.position_embeddings.weight".into(),
                vec![c.max_position_embeddings, h],
            ),
            ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
            ("embeddings.LayerNorm.weight".into(), vec![h]),
            ("embeddings.LayerNorm.bias".into(), vec![h]),
        ];
        for l in 0..c.num_hidden_layers {
            for (name, shape) in [
                ("attention.self.query", vec![h, h]),
                ("attention.self.key", vec![h, h]),
                ("attention.self.value", vec![h, h]),
                ("attention.output.dense", vec![h, h]),
                ("intermediate.dense", vec![i, h]),
                ("output.dense", vec![h, i]),
            ] {
                let n = shape[0];
                shapes.push((format!("encoder.layer.{l}.{name}.weight"), shape));
                shapes.push((format!("encoder.layer.{l}.{name}.bias"), vec![n]));
            }
            for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
                shapes.push((format!("encoder.layer.{l}.{norm}.weight"), vec![h]));
                shapes.push((format!("encoder.layer.{l}.{norm}.bias"), vec![h]));
            }
        }
        shapes
            .into_iter()
            .map(|(name, shape)| {
                let std = if name.ends_with("LayerNorm.weight") {
                    0.1
                } else {
                    0.3
                };
                let mut t = Tensor::randn(0f32, std, shape.as_slice(), &Device::Cpu).unwrap();
                if name.ends_with("LayerNorm.weight") {
                    t = (t + 1.0).unwrap();
                }
                (name, t)
            })
            .collect()
    }

    /// Three sequences of 9, 5 and 1 tokens padded to 9.
    fn batch() -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let lens = [9usize, 5, 1];
        let (mut ids, mut mask, mut types) = (vec![], vec![], vec![]);
        for (s, &len) in lens.iter().enumerate() {
            for p in 0..9 {
                ids.push(if p < len {
                    ((s * 17 + p * 7) % 49 + 1) as u32
                } else {
                    0
                });
                mask.push(u32::from(p < len));
                types.push(u32::from(p >= 4 && p < len));
            }
        }
        (ids, mask, types)
    }

    /// candle-transformers' BERT on the same weights and batch: rows of the
    /// real tokens only.
    fn candle_rows(tensors: &HashMap<String, Tensor>, c: &Config) -> Vec<f32> {
        let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
        let model = BertModel::load(vb, c).unwrap();
        let (ids, mask, types) = batch();
        let t = |v: Vec<u32>| Tensor::from_vec(v, (3, 9), &Device::Cpu).unwrap();
        let out = model
            .forward(&t(ids), &t(types), Some(&t(mask.clone())))
            .unwrap();
        let flat = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let h = c.hidden_size;
        mask.iter()
            .enumerate()
            .filter(|(_, &m)| m == 1)
            .flat_map(|(i, _)| flat[i * h..(i + 1) * h].to_vec())
            .collect()
    }

    fn odqa_rows(tensors: &HashMap<String, Tensor>, c: &Config, p: Precision) -> Vec<f32> {
        let model = CpuBert::from_tensors(tensors, c, p).unwrap();
        let (ids, mask, types) = batch();
        model
            .forward(&Tokens::from_padded(&ids, &mask, &types, 3, 9))
            .unwrap()
    }

    #[test]
    fn f32_matches_candle_bert_for_every_activation() {
        for act in ["gelu", "geluapproximate", "relu"] {
            let c = config(act);
            let tensors = random_tensors(&c);
            let want = candle_rows(&tensors, &c);
            let got = odqa_rows(&tensors, &c, Precision::F32);
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{act}: max |diff| {worst}");
        }
    }

    #[test]
    fn reduced_precisions_stay_close_to_f32() {
        let c = config("gelu");
        let tensors = random_tensors(&c);
        let reference = odqa_rows(&tensors, &c, Precision::F32);
        for (p, tolerance) in [(Precision::Bf16, 0.03), (Precision::Int8, 0.06)] {
            if !cpu_features().supports(p) {
                eprintln!("{p}: not on this CPU, skipped");
                continue;
            }
            let err = relative_error(&reference, &odqa_rows(&tensors, &c, p));
            assert!(err < tolerance, "{p}: relative error {err}");
            assert!(err > 0.0, "{p} gave f32's exact numbers: not reduced");
        }
    }

    #[test]
    fn auto_falls_back_to_f32_without_the_features() {
        let c = config("gelu");
        let tensors = random_tensors(&c);
        let bare = CpuFeatures {
            simd: SimdLevel::Baseline,
            avx512_bf16: false,
            avx512_vnni: false,
            amx: false,
        };
        let (_, choice) = load_for_features(&tensors, &c, Precision::Auto, &bare).unwrap();
        assert_eq!(choice.chosen, Precision::F32);
        assert!(
            choice.reason.contains("no avx512_bf16"),
            "{}",
            choice.reason
        );
        for (p, flag) in [
            (Precision::Bf16, "avx512_bf16"),
            (Precision::Int8, "avx512_vnni"),
        ] {
            let err = load_for_features(&tensors, &c, p, &bare)
                .unwrap_err()
                .to_string();
            assert!(err.contains(p.name()) && err.contains(flag), "{err}");
        }
        let (_, choice) = load_cpu_bert(&tensors, &c, Precision::Auto).unwrap();
        assert_eq!(
            choice.chosen,
            cpu_features().preferred(),
            "{}",
            choice.reason
        );
    }

    #[test]
    fn bad_tokens_are_errors() {
        let c = config("gelu");
        let model = CpuBert::from_tensors(&random_tensors(&c), &c, Precision::F32).unwrap();
        let mut t = Tokens::from_padded(&[3, 99], &[1, 1], &[0, 0], 1, 2);
        assert!(model.forward(&t).unwrap_err().to_string().contains("99"));
        t.ids[1] = 4;
        t.positions[1] = 64;
        assert!(model
            .forward(&t)
            .unwrap_err()
            .to_string()
            .contains("position 64"));
    }

    #[test]
    fn tokens_keep_real_positions() {
        let ids = [5, 6, 7, 1, 8, 9, 1, 1];
        let mask = [1, 1, 1, 0, 1, 1, 0, 0];
        let types = [0, 0, 1, 0, 0, 1, 0, 0];
        let t = Tokens::from_padded(&ids, &mask, &types, 2, 4);
        assert_eq!(t.ids, vec![5, 6, 7, 8, 9]);
        assert_eq!(t.types, vec![0, 0, 1, 0, 1]);
        assert_eq!(t.positions, vec![0, 1, 2, 0, 1]);
        assert_eq!(t.starts, vec![0, 3, 5]);
        assert_eq!(t.padded_index, vec![0, 1, 2, 4, 5]);
        assert_eq!(t.sequences(), 2);
    }
}
