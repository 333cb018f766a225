//! [`Encoder`]: a BERT-family encoder plus its tokenizer, producing
//! mean-pooled, L2-normalized sentence embeddings.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use candle_transformers::models::debertav2::DebertaV2Model;
use tokenizers::{Tokenizer, TruncationParams};

use crate::cpu::{
    load_cpu_body, BodyShape, CpuBert, Precision, PrecisionChoice, StageTimes, Tokens,
};
use crate::e5s1::E5s1File;
use crate::error::{EncoderError, Result};
use crate::fetch::{CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use crate::quant::QuantBert;

/// The safetensors weights file of a standard Hugging Face model directory.
pub const SAFETENSORS_FILE: &str = "model.safetensors";

/// What a text is, for E5's instruction prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKind {
    /// A question: prefixed with `query: `.
    Query,
    /// A document passage: prefixed with `passage: `.
    Passage,
}

impl TextKind {
    /// The prefix E5 models expect before a text of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            TextKind::Query => "query: ",
            TextKind::Passage => "passage: ",
        }
    }
}

/// How the linear-layer weights are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// Everything dequantized to f32 (candle-transformers' BERT, gemm matmuls).
    #[default]
    F32,
    /// The E5S1 file's Q4_0 linear weights kept as GGML Q4_0 blocks and
    /// multiplied with candle's `QMatMul` (E5S1 weights only; embeddings and
    /// LayerNorms stay f32).
    Q4_0,
}

/// Options for [`Encoder::load_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderOptions {
    /// Longest input in tokens, special tokens included; longer texts are
    /// truncated. Capped at the model's `max_position_embeddings`.
    pub max_len: usize,
    /// Texts per forward pass in [`Encoder::embed`].
    pub batch_size: usize,
    /// How the weights are held (see [`WeightFormat`]).
    pub weight_format: WeightFormat,
    /// The linear layers' precision on the CPU (see [`Precision`]); the
    /// library default is f32, the command line's is `auto`.
    pub precision: Precision,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            max_len: 512,
            batch_size: 16,
            weight_format: WeightFormat::F32,
            precision: Precision::F32,
        }
    }
}

pub(crate) enum Backbone {
    /// candle-transformers' BERT: the CUDA path.
    F32(BertModel),
    Q4_0(QuantBert),
    /// odqa's CPU kernels (every precision).
    Cpu(CpuBert),
    /// candle-transformers' DeBERTa-v2 (f32), and whether it reads token
    /// type ids (`type_vocab_size` > 0).
    DebertaV2(Box<DebertaV2Model>, bool),
}

/// A backbone's output for a padded batch.
pub(crate) enum Hidden {
    /// `[batch, seq_len, hidden]` on the model's device.
    Padded(Tensor),
    /// `[real tokens × hidden]` rows, the tokens of `Tokens` in order.
    Tokens(Tokens, Vec<f32>),
}

impl Backbone {
    /// Hidden states for padded, row-major inputs.
    pub(crate) fn hidden(
        &self,
        (ids, mask, types): (&[u32], &[u32], &[u32]),
        (batch, seq_len): (usize, usize),
        device: &Device,
        profile: Option<&mut StageTimes>,
    ) -> Result<Hidden> {
        let want = batch * seq_len;
        if ids.len() != want || mask.len() != want || types.len() != want {
            return Err(EncoderError::Backend(format!(
                "{} ids, {} mask values and {} type ids for a batch of {batch} × {seq_len}",
                ids.len(),
                mask.len(),
                types.len()
            )));
        }
        if let Backbone::Cpu(m) = self {
            let tokens = Tokens::from_padded(ids, mask, types, batch, seq_len);
            let rows = m.forward_profiled(&tokens, profile)?;
            return Ok(Hidden::Tokens(tokens, rows));
        }
        let shape = (batch, seq_len);
        let ids = Tensor::from_slice(ids, shape, device)?;
        let mask = Tensor::from_slice(mask, shape, device)?;
        let types = Tensor::from_slice(types, shape, device)?;
        Ok(Hidden::Padded(match self {
            Backbone::F32(m) => m.forward(&ids, &types, Some(&mask))?,
            Backbone::Q4_0(m) => m.forward(&ids, &types, &mask)?,
            Backbone::DebertaV2(m, typed) => m.forward(&ids, typed.then_some(types), Some(mask))?,
            Backbone::Cpu(_) => unreachable!("handled above"),
        }))
    }
}

/// A loaded encoder: model weights, config and tokenizer.
pub struct Encoder {
    model: Backbone,
    precision: PrecisionChoice,
    config: Config,
    tokenizer: Tokenizer,
    device: Device,
    max_len: usize,
    batch_size: usize,
    pad_id: u32,
    weight_format: WeightFormat,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.config)
            .field("device", &self.device)
            .field("max_len", &self.max_len)
            .field("batch_size", &self.batch_size)
            .field("pad_id", &self.pad_id)
            .field("weight_format", &self.weight_format)
            .field("precision", &self.precision)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// Loads `model_dir` with default options (max 512 tokens, batches of 16,
    /// f32 weights). The directory holds `config.json`, `tokenizer.json` and
    /// either `e5-small-q4.bin` (E5S1) or `model.safetensors` (Hugging Face
    /// BERT; keys with or without a `bert.` prefix).
    pub fn load(model_dir: &Path, device: &Device) -> Result<Self> {
        Self::load_with(model_dir, device, &EncoderOptions::default())
    }

    /// Loads `model_dir` with explicit options.
    pub fn load_with(model_dir: &Path, device: &Device, opts: &EncoderOptions) -> Result<Self> {
        let config = load_config(&model_dir.join(CONFIG_FILE))?;
        let (model, _, precision) = load_backbone(
            model_dir,
            &config,
            opts.weight_format,
            opts.precision,
            device,
        )?;
        let max_len = opts.max_len.clamp(2, config.max_position_embeddings.max(2));
        let mut tokenizer = load_tokenizer(model_dir)?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| EncoderError::Tokenizer {
                path: model_dir.join(TOKENIZER_FILE),
                detail: e.to_string(),
            })?;
        let pad_id = pad_id(&tokenizer, config.pad_token_id);
        Ok(Encoder {
            model,
            precision,
            config,
            tokenizer,
            device: device.clone(),
            max_len,
            batch_size: opts.batch_size.max(1),
            pad_id,
            weight_format: opts.weight_format,
        })
    }

    /// The embedding dimension (hidden size).
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// The longest input, in tokens, that is not truncated.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The model's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The tokenizer (padding off, truncation at [`Encoder::max_len`]).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// How the weights are held.
    pub fn weight_format(&self) -> WeightFormat {
        self.weight_format
    }

    /// The precision the model runs at, and why it was chosen.
    pub fn precision(&self) -> &PrecisionChoice {
        &self.precision
    }

    /// Token ids of `text` as given (no prefix added), with special tokens,
    /// truncated to [`Encoder::max_len`].
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(0, text)
    }

    fn encode(&self, index: usize, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EncoderError::Tokenize {
                index,
                detail: e.to_string(),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Embeds `texts` as `kind` (the `query: ` / `passage: ` prefix is
    /// added here): one L2-normalized vector of [`Encoder::dim`] values per
    /// text, in input order. Texts are grouped by length into batches of
    /// `batch_size` to keep padding small; padding does not change results.
    pub fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>> {
        let prefix = kind.prefix();
        let ids = texts
            .iter()
            .enumerate()
            .map(|(i, t)| self.encode(i, &format!("{prefix}{t}")))
            .collect::<Result<Vec<_>>>()?;
        self.embed_ids(&ids)
    }

    /// Embeds already tokenized inputs (special tokens included, no longer
    /// than `max_position_embeddings`; ids below the vocabulary size).
    pub fn embed_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let vocab = self.config.vocab_size;
        for (i, seq) in ids.iter().enumerate() {
            if seq.len() > self.config.max_position_embeddings {
                return Err(EncoderError::Tokenize {
                    index: i,
                    detail: format!(
                        "{} tokens, more than max_position_embeddings {}",
                        seq.len(),
                        self.config.max_position_embeddings
                    ),
                });
            }
            if let Some(&bad) = seq.iter().find(|&&t| t as usize >= vocab) {
                return Err(EncoderError::Tokenize {
                    index: i,
                    detail: format!("token id {bad} outside the vocabulary ({vocab})"),
                });
            }
        }
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let vecs = self.forward_pooled(&batch)?;
            for (&i, v) in chunk.iter().zip(vecs) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// One padded forward pass, mean-pooled over real tokens, L2-normalized.
    fn forward_pooled(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let b = batch.len();
        let len = batch.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let mut flat_ids = vec![self.pad_id; b * len];
        let mut flat_mask = vec![0u32; b * len];
        for (r, seq) in batch.iter().enumerate() {
            flat_ids[r * len..r * len + seq.len()].copy_from_slice(seq);
            flat_mask[r * len..r * len + seq.len()].fill(1);
        }
        let types = vec![0u32; b * len];
        let hidden = self.model.hidden(
            (&flat_ids, &flat_mask, &types),
            (b, len),
            &self.device,
            None,
        )?;
        match hidden {
            Hidden::Tokens(tokens, rows) => Ok(pool_rows(&tokens, &rows, self.dim())),
            Hidden::Padded(hidden) => {
                let mask = Tensor::from_vec(flat_mask, (b, len), &self.device)?;
                pool_padded(&hidden, &mask)
            }
        }
    }
}

/// Mean over each sequence's token rows, L2-normalized.
fn pool_rows(tokens: &Tokens, rows: &[f32], h: usize) -> Vec<Vec<f32>> {
    (0..tokens.sequences())
        .map(|s| {
            let (a, b) = (tokens.starts[s], tokens.starts[s + 1]);
            let mut mean = vec![0f32; h];
            for row in rows[a * h..b * h].chunks_exact(h) {
                for (m, &x) in mean.iter_mut().zip(row) {
                    *m += x;
                }
            }
            let count = (b - a).max(1) as f32;
            mean.iter_mut().for_each(|m| *m /= count);
            let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            mean.iter_mut().for_each(|m| *m /= norm);
            mean
        })
        .collect()
}

/// [`pool_rows`] on a padded `[b, len, h]` tensor and its `[b, len]` mask.
fn pool_padded(hidden: &Tensor, mask: &Tensor) -> Result<Vec<Vec<f32>>> {
    let mask_f = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // [b, len, 1]
    let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?; // [b, h]
    let counts = mask_f.sum(1)?.clamp(1f32, f32::MAX)?; // [b, 1]
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    let normed = mean.broadcast_div(&norm)?;
    Ok(normed.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

/// The backbone in `model_dir` (E5S1 `e5-small-q4.bin`, else
/// `model.safetensors`), and the tensors of the safetensors file that are
/// not the backbone's (task heads such as `qa_outputs.*`).
pub(crate) fn load_backbone(
    model_dir: &Path,
    config: &Config,
    weight_format: WeightFormat,
    precision: Precision,
    device: &Device,
) -> Result<(Backbone, HashMap<String, Tensor>, PrecisionChoice)> {
    if weight_format == WeightFormat::Q4_0 {
        let e5s1_path = model_dir.join(WEIGHTS_FILE);
        if !e5s1_path.is_file() {
            return Err(EncoderError::Config {
                path: model_dir.join(SAFETENSORS_FILE),
                detail: "WeightFormat::Q4_0 needs E5S1 weights (e5-small-q4.bin)".into(),
            });
        }
        let file = E5s1File::open(&e5s1_path)?;
        check_e5s1_config(&file, config, &model_dir.join(CONFIG_FILE))?;
        let backbone = Backbone::Q4_0(QuantBert::from_e5s1(&file, config, device)?);
        let choice = PrecisionChoice {
            requested: precision,
            chosen: Precision::F32,
            reason: "Q4_0 weights (candle QMatMul), f32 activations".into(),
        };
        return Ok((backbone, HashMap::new(), choice));
    }
    let (tensors, heads) = load_f32_tensors(model_dir, config, device)?;
    let (backbone, choice) = backbone_from_tensors(tensors, config, precision, device)?;
    Ok((backbone, heads, choice))
}

/// A model directory's weights as f32 tensors under Hugging Face BERT names
/// (backbone, heads): `e5-small-q4.bin` dequantized, or `model.safetensors`.
pub(crate) fn load_f32_tensors(
    model_dir: &Path,
    config: &Config,
    device: &Device,
) -> Result<(TensorMap, TensorMap)> {
    let e5s1_path = model_dir.join(WEIGHTS_FILE);
    let st_path = model_dir.join(SAFETENSORS_FILE);
    if e5s1_path.is_file() {
        let file = E5s1File::open(&e5s1_path)?;
        check_e5s1_config(&file, config, &model_dir.join(CONFIG_FILE))?;
        Ok((file.to_hf_tensors(device)?, HashMap::new()))
    } else if st_path.is_file() {
        load_safetensors(&st_path, device)
    } else {
        Err(EncoderError::NoWeights {
            dir: model_dir.to_path_buf(),
        })
    }
}

/// On the CPU, odqa's kernels at `precision`; on a GPU, candle's BERT
/// (f32 only: the reduced precisions are CPU kernels).
pub(crate) fn backbone_from_tensors(
    tensors: TensorMap,
    config: &Config,
    precision: Precision,
    device: &Device,
) -> Result<(Backbone, PrecisionChoice)> {
    // ODQA_CPU_BACKEND=candle runs candle-transformers' BERT on the CPU
    // instead: the reference that benchmarks compare odqa's kernels with.
    backbone_from_body(tensors, config, BodyShape::bert(config), precision, device)
}

/// [`backbone_from_tensors`] for a BERT-like body of `shape` (RoBERTa,
/// XLM-R, ELECTRA): odqa's CPU kernels on the CPU; candle's BERT elsewhere
/// (RoBERTa by shifting the position table by its offset; ELECTRA's
/// projection has no candle path yet).
pub(crate) fn backbone_from_body(
    mut tensors: TensorMap,
    config: &Config,
    shape: BodyShape,
    precision: Precision,
    device: &Device,
) -> Result<(Backbone, PrecisionChoice)> {
    let candle_on_cpu = std::env::var("ODQA_CPU_BACKEND").is_ok_and(|b| b == "candle");
    if device.is_cpu() && !candle_on_cpu {
        let (model, choice) = load_cpu_body(&tensors, config, shape, precision)?;
        return Ok((Backbone::Cpu(model), choice));
    }
    if shape.embedding_size != config.hidden_size {
        return Err(EncoderError::Backend(format!(
            "ELECTRA (embedding_size {} ≠ hidden_size {}) runs on odqa's CPU backend only; \
             use --device cpu",
            shape.embedding_size, config.hidden_size
        )));
    }
    let mut config = config.clone();
    if shape.position_offset > 0 {
        // candle's BERT numbers positions from 0: drop the table's first rows.
        let name = "embeddings.position_embeddings.weight";
        if let Some(table) = tensors.remove(name) {
            let rows = table.dim(0)?.saturating_sub(shape.position_offset);
            tensors.insert(name.into(), table.narrow(0, shape.position_offset, rows)?);
            config.max_position_embeddings = rows;
        }
    }
    let config = &config;
    if !matches!(precision, Precision::Auto | Precision::F32) {
        return Err(EncoderError::Precision(format!(
            "{precision} is a CPU precision; on {device:?} odqa runs f32"
        )));
    }
    let choice = PrecisionChoice {
        requested: precision,
        chosen: Precision::F32,
        reason: format!("{:?}: candle-transformers BERT, f32", device.location()),
    };
    Ok((
        Backbone::F32(bert_from_tensors(tensors, config, device)?),
        choice,
    ))
}

/// `tokenizer.json` of `model_dir`, with its own padding switched off.
pub(crate) fn load_tokenizer(model_dir: &Path) -> Result<Tokenizer> {
    let tok_path = model_dir.join(TOKENIZER_FILE);
    let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| EncoderError::Tokenizer {
        path: tok_path.clone(),
        detail: e.to_string(),
    })?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

fn bert_from_tensors(
    tensors: HashMap<String, Tensor>,
    config: &Config,
    device: &Device,
) -> Result<BertModel> {
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(BertModel::load(vb, config)?)
}

/// Loads a safetensors file as f32 tensors, dropping a `bert.` prefix and
/// renaming old-style `LayerNorm.gamma`/`beta` to `weight`/`bias`.
pub type TensorMap = HashMap<String, Tensor>;

/// Every tensor of one safetensors file as stored; an unreadable file is
/// an error naming it.
/// What a model's inputs are padded with: the tokenizer's own padding id
/// (its padding params, `<pad>` or `[PAD]`), else the config's
/// `pad_token_id`. The one rule for every model here (attention masks
/// padding out, but RoBERTa-style positions count non-pad ids).
pub(crate) fn pad_id(tokenizer: &Tokenizer, config_pad_token_id: usize) -> u32 {
    odqa_reader::pad_id(tokenizer).unwrap_or(config_pad_token_id as u32)
}

pub(crate) fn read_safetensors(path: &Path, device: &Device) -> Result<TensorMap> {
    candle_core::safetensors::load(path, device).map_err(|e| EncoderError::Config {
        path: path.to_path_buf(),
        detail: format!("cannot read safetensors: {e}"),
    })
}

fn load_safetensors(path: &Path, device: &Device) -> Result<(TensorMap, TensorMap)> {
    let raw = read_safetensors(path, device)?;
    let prefixed = raw.keys().any(|k| k.starts_with("bert.embeddings."));
    let mut out = HashMap::with_capacity(raw.len());
    let mut heads = HashMap::new();
    for (k, t) in raw {
        let k = if prefixed {
            match k.strip_prefix("bert.") {
                Some(s) => s.to_string(),
                None => {
                    // Task heads (cls.*, qa_outputs.*) are not the backbone's.
                    heads.insert(k, t.to_dtype(DType::F32)?);
                    continue;
                }
            }
        } else if k.starts_with("qa_outputs.") {
            heads.insert(k, t.to_dtype(DType::F32)?);
            continue;
        } else {
            k
        };
        let k = if let Some(s) = k.strip_suffix(".gamma") {
            format!("{s}.weight")
        } else if let Some(s) = k.strip_suffix(".beta") {
            format!("{s}.bias")
        } else {
            k
        };
        out.insert(k, t.to_dtype(DType::F32)?);
    }
    Ok((out, heads))
}

/// Reads a Hugging Face BERT `config.json`, filling fields that older or
/// trimmed configs omit with BERT's defaults.
pub fn load_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| EncoderError::io(path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| EncoderError::Config {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if let Some(mt) = v.get("model_type").and_then(|m| m.as_str()) {
        if mt != "bert" {
            return Err(EncoderError::UnsupportedModel {
                path: path.to_path_buf(),
                model_type: format!("model_type {mt:?} (a BERT encoder is expected here)"),
            });
        }
    }
    config_from_value(path, v)
}

/// [`load_config`] on an already parsed `config.json` (`path` for errors).
pub(crate) fn config_from_value(path: &Path, mut v: serde_json::Value) -> Result<Config> {
    let obj = v.as_object_mut().ok_or_else(|| EncoderError::Config {
        path: path.to_path_buf(),
        detail: "not a JSON object".into(),
    })?;
    for (k, d) in [
        ("hidden_act", serde_json::json!("gelu")),
        ("hidden_dropout_prob", serde_json::json!(0.1)),
        ("type_vocab_size", serde_json::json!(2)),
        ("initializer_range", serde_json::json!(0.02)),
        ("layer_norm_eps", serde_json::json!(1e-12)),
        ("pad_token_id", serde_json::json!(0)),
        ("max_position_embeddings", serde_json::json!(512)),
    ] {
        obj.entry(k).or_insert(d);
    }
    for k in [
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
    ] {
        let positive = obj.get(k).and_then(|x| x.as_u64()).is_some_and(|n| n > 0);
        if !positive {
            return Err(EncoderError::Config {
                path: path.to_path_buf(),
                detail: format!("field `{k}` missing or not a positive integer"),
            });
        }
    }
    let config: Config = serde_json::from_value(v).map_err(|e| EncoderError::Config {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if !config
        .hidden_size
        .is_multiple_of(config.num_attention_heads)
    {
        return Err(EncoderError::Config {
            path: path.to_path_buf(),
            detail: format!(
                "field `num_attention_heads` {} does not divide hidden_size {}",
                config.num_attention_heads, config.hidden_size
            ),
        });
    }
    Ok(config)
}

fn check_e5s1_config(file: &E5s1File, config: &Config, config_path: &Path) -> Result<()> {
    let h = file.header();
    let pairs = [
        ("vocab_size", config.vocab_size, h.vocab),
        ("hidden_size", config.hidden_size, h.hidden),
        ("num_hidden_layers", config.num_hidden_layers, h.layers),
        ("num_attention_heads", config.num_attention_heads, h.heads),
        ("intermediate_size", config.intermediate_size, h.ffn),
        (
            "max_position_embeddings",
            config.max_position_embeddings,
            h.max_positions,
        ),
        ("type_vocab_size", config.type_vocab_size, h.type_vocab),
    ];
    for (field, c, w) in pairs {
        if c != w {
            return Err(EncoderError::Config {
                path: config_path.to_path_buf(),
                detail: format!(
                    "field `{field}` is {c} but {} says {w}",
                    file.path().display()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e5s1::testutil::{tiny_file, tiny_header};
    use crate::fetch::config_json;

    /// A word-level tokenizer over `<s> <pad> </s> <unk> query: passage: w6 .. w49`.
    fn tiny_tokenizer_json() -> serde_json::Value {
        let mut vocab = serde_json::Map::new();
        for (i, w) in ["<s>", "<pad>", "</s>", "<unk>", "query:", "passage:"]
            .iter()
            .enumerate()
        {
            vocab.insert(w.to_string(), serde_json::json!(i));
        }
        for i in 6..50 {
            vocab.insert(format!("w{i}"), serde_json::json!(i));
        }
        let special = |id: u32, s: &str| {
            serde_json::json!({"id": id, "content": s, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        };
        let st = |s: &str| serde_json::json!({"SpecialToken": {"id": s, "type_id": 0}});
        let seq = |s: &str| serde_json::json!({"Sequence": {"id": s, "type_id": 0}});
        serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [special(0, "<s>"), special(1, "<pad>"), special(2, "</s>"), special(3, "<unk>")],
            "normalizer": null,
            "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": {"type": "TemplateProcessing",
                "single": [st("<s>"), seq("A"), st("</s>")],
                "pair": [st("<s>"), seq("A"), st("</s>"), st("</s>"), seq("B"), st("</s>")],
                "special_tokens": {
                    "<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                    "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
        })
    }

    fn tiny_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WEIGHTS_FILE), tiny_file()).unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            config_json(&tiny_header()).to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join(TOKENIZER_FILE),
            tiny_tokenizer_json().to_string(),
        )
        .unwrap();
        dir
    }

    const TEXTS: [&str; 5] = [
        "w6 w7 w8",
        "w9",
        "w10 w11 w12 w13 w14 w15 w16 w17 w18 w19",
        "w20 nope w21",
        "",
    ];

    fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
            .fold(0.0, f32::max)
    }

    #[test]
    fn encoder_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Encoder>();
    }

    #[test]
    fn tiny_e5s1_model_embeds() {
        let dir = tiny_dir();
        let enc = Encoder::load(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(enc.dim(), 32);
        assert_eq!(enc.max_len(), 16);
        assert_eq!(enc.tokenize("query: w6 zz").unwrap(), vec![0, 4, 6, 3, 2]);
        let long = vec!["w7"; 40].join(" ");
        assert_eq!(enc.tokenize(&long).unwrap().len(), 16);
        let v = enc.embed(&TEXTS, TextKind::Passage).unwrap();
        assert_eq!(v.len(), TEXTS.len());
        for e in &v {
            assert_eq!(e.len(), 32);
            let n: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-4, "norm {n}");
        }
        // Batched (with padding, reordered by length) equals one by one.
        let single: Vec<Vec<f32>> = TEXTS
            .iter()
            .map(|t| enc.embed(&[t], TextKind::Passage).unwrap().remove(0))
            .collect();
        assert!(max_diff(&v, &single) < 1e-5, "{}", max_diff(&v, &single));
        // The prefix matters.
        let q = enc.embed(&TEXTS[..1], TextKind::Query).unwrap();
        assert!(max_diff(&q, &v[..1]) > 1e-3);
        assert!(enc.embed(&[], TextKind::Query).unwrap().is_empty());
        // Ids outside the vocabulary or too long are errors, not panics.
        assert!(enc.embed_ids(&[vec![0, 99, 2]]).is_err());
        assert!(enc.embed_ids(&[vec![0; 17]]).is_err());
    }

    #[test]
    fn safetensors_dir_matches_e5s1_with_and_without_prefix() {
        let dir = tiny_dir();
        let reference = Encoder::load(dir.path(), &Device::Cpu)
            .unwrap()
            .embed(&TEXTS, TextKind::Query)
            .unwrap();
        let file = E5s1File::parse(tiny_file(), Path::new("tiny.bin")).unwrap();
        let tensors = file.to_hf_tensors(&Device::Cpu).unwrap();
        for prefix in ["", "bert."] {
            let st = tempfile::tempdir().unwrap();
            for f in [CONFIG_FILE, TOKENIZER_FILE] {
                std::fs::copy(dir.path().join(f), st.path().join(f)).unwrap();
            }
            let mut named: HashMap<String, Tensor> = tensors
                .iter()
                .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
                .collect();
            if !prefix.is_empty() {
                // A head that is not part of the encoder is ignored.
                named.insert(
                    "cls.x.weight".into(),
                    Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
                );
            }
            candle_core::safetensors::save(&named, st.path().join(SAFETENSORS_FILE)).unwrap();
            let enc = Encoder::load(st.path(), &Device::Cpu).unwrap();
            let v = enc.embed(&TEXTS, TextKind::Query).unwrap();
            assert!(max_diff(&v, &reference) < 1e-6, "prefix {prefix:?}");
            let e = Encoder::load_with(
                st.path(),
                &Device::Cpu,
                &EncoderOptions {
                    weight_format: WeightFormat::Q4_0,
                    ..Default::default()
                },
            )
            .unwrap_err();
            assert!(matches!(e, EncoderError::Config { .. }), "{e}");
        }
    }

    #[test]
    fn q4_0_backbone_close_to_f32() {
        let dir = tiny_dir();
        let f32_enc = Encoder::load(dir.path(), &Device::Cpu).unwrap();
        let q_enc = Encoder::load_with(
            dir.path(),
            &Device::Cpu,
            &EncoderOptions {
                weight_format: WeightFormat::Q4_0,
                batch_size: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(q_enc.weight_format(), WeightFormat::Q4_0);
        let a = f32_enc.embed(&TEXTS, TextKind::Passage).unwrap();
        let b = q_enc.embed(&TEXTS, TextKind::Passage).unwrap();
        for (x, y) in a.iter().zip(&b) {
            let cos: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            assert!(cos > 0.99, "cosine {cos}");
        }
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tiny_dir();
        std::fs::remove_file(dir.path().join(WEIGHTS_FILE)).unwrap();
        let e = Encoder::load(dir.path(), &Device::Cpu).unwrap_err();
        assert!(matches!(e, EncoderError::NoWeights { .. }), "{e}");

        let dir = tiny_dir();
        let mut cfg = config_json(&tiny_header());
        cfg["hidden_size"] = serde_json::json!(64);
        std::fs::write(dir.path().join(CONFIG_FILE), cfg.to_string()).unwrap();
        let e = Encoder::load(dir.path(), &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("hidden_size"), "{e}");

        cfg["model_type"] = serde_json::json!("xlm-roberta");
        std::fs::write(dir.path().join(CONFIG_FILE), cfg.to_string()).unwrap();
        let e = Encoder::load(dir.path(), &Device::Cpu).unwrap_err();
        assert!(matches!(e, EncoderError::UnsupportedModel { .. }), "{e}");

        let mut cfg = config_json(&tiny_header());
        cfg.as_object_mut().unwrap().remove("vocab_size");
        std::fs::write(dir.path().join(CONFIG_FILE), cfg.to_string()).unwrap();
        let e = Encoder::load(dir.path(), &Device::Cpu).unwrap_err();
        assert!(
            e.to_string().contains("vocab_size") && e.to_string().contains("config.json"),
            "{e}"
        );

        std::fs::write(dir.path().join(CONFIG_FILE), "{not json").unwrap();
        let e = Encoder::load(dir.path(), &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");

        let dir = tiny_dir();
        std::fs::write(dir.path().join(TOKENIZER_FILE), "{}").unwrap();
        let e = Encoder::load(dir.path(), &Device::Cpu).unwrap_err();
        assert!(matches!(e, EncoderError::Tokenizer { .. }), "{e}");
    }
}
