//! [`QaModel`]: a BERT-family encoder with Hugging Face's
//! `*ForQuestionAnswering` head (`qa_outputs`: hidden → 2), giving start and
//! end logits per token.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::{Linear, Module};
use odqa_reader::{Batch, SpanLogits, SpanModel, Window};
use tokenizers::Tokenizer;

use crate::cpu::{Precision, PrecisionChoice, StageTimes};
use crate::delta::{apply_delta, delta_path, is_delta_reader, ReaderManifest};
use crate::encoder::{
    backbone_from_body, backbone_from_tensors, load_backbone, load_config, load_f32_tensors,
    load_tokenizer, pad_id, read_safetensors, Backbone, Hidden, WeightFormat,
};
use crate::error::{EncoderError, Result};
use crate::fetch::{CONFIG_FILE, WEIGHTS_FILE};
use crate::hf::{
    load_any_tokenizer, load_weights, read_checkpoint, split_body, CheckpointSettings,
};

/// The head of odqa's own reader, beside the base model's E5S1 weights.
pub const QA_HEAD_FILE: &str = "qa-head.safetensors";

/// What the config of odqa's reader layout (base weights + [`QA_HEAD_FILE`])
/// may name besides the base `BertModel`; other Hugging Face QA classes load
/// through [`QaModel::load_hf`].
const SUPPORTED_ARCHITECTURES: &[&str] = &["BertForQuestionAnswering"];

/// A span-extraction model and its tokenizer.
pub struct QaModel {
    backbone: Backbone,
    precision: PrecisionChoice,
    qa_outputs: Linear,
    /// The head as plain rows for the CPU backend: start weights, end
    /// weights, then the two biases.
    head_rows: (Vec<f32>, Vec<f32>, [f32; 2]),
    tokenizer: Tokenizer,
    /// What windows are padded with ([`pad_id`]).
    pad_id: u32,
    device: Device,
    dir: PathBuf,
    settings: Option<CheckpointSettings>,
    /// `type_vocab_size` ≤ 1: every token type id goes in as 0.
    zero_types: bool,
}

impl std::fmt::Debug for QaModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QaModel")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl QaModel {
    /// Loads a Hugging Face QA checkpoint directory (`config.json`,
    /// `tokenizer.json`, `model.safetensors` with `qa_outputs.*`); a base
    /// model directory with a head beside it (the base model's
    /// `e5-small-q4.bin` plus [`QA_HEAD_FILE`]); or odqa's trained reader
    /// (a directory with `odqa-reader.json`: deltas on the fetched
    /// multilingual-e5-small, see [`QaModel::load_delta`]).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_at(dir, device, Precision::F32)
    }

    /// [`QaModel::load`] with the linear layers at `precision` (CPU).
    pub fn load_at(dir: &Path, device: &Device, precision: Precision) -> Result<Self> {
        if is_delta_reader(dir) {
            let base = crate::fetch::fetch_model(&crate::fetch::default_home())?;
            return Self::load_delta_at(dir, &base, device, precision);
        }
        let config_path = dir.join(CONFIG_FILE);
        // odqa's reader layout: the base model's weights (its config says
        // BertModel) with the QA head in a file of its own beside them.
        if !dir.join(WEIGHTS_FILE).is_file() {
            return Self::load_hf(dir, device, precision);
        }
        check_architecture(&config_path)?;
        let config = load_config(&config_path)?;
        let (backbone, _, precision) =
            load_backbone(dir, &config, WeightFormat::F32, precision, device)?;
        let head_source = dir.join(QA_HEAD_FILE);
        if !head_source.is_file() {
            return Err(EncoderError::MissingTensor {
                path: head_source,
                name: "qa_outputs.weight (the reader head file is missing)".into(),
            });
        }
        let mut heads = read_safetensors(&head_source, device)?;
        let qa_outputs = qa_head(&mut heads, &head_source, config.hidden_size)?;
        let tokenizer = load_tokenizer(dir)?;
        Ok(QaModel {
            backbone,
            precision,
            head_rows: head_rows(&qa_outputs)?,
            qa_outputs,
            pad_id: pad_id(&tokenizer, config.pad_token_id),
            tokenizer,
            device: device.clone(),
            dir: dir.to_path_buf(),
            settings: None,
            zero_types: false,
        })
    }

    /// A Hugging Face `*ForQuestionAnswering` checkpoint directory
    /// ([`Architecture`]): `config.json`, `model.safetensors` (or sharded,
    /// `model.safetensors.index.json`), `tokenizer.json` or `vocab.txt`.
    /// BERT, RoBERTa, XLM-R and ELECTRA run on odqa's CPU kernels at any
    /// precision; DeBERTa-v2 on candle-transformers at f32 (`auto` gives
    /// f32 and says so; bf16/int8 are an error).
    pub fn load_hf(dir: &Path, device: &Device, precision: Precision) -> Result<Self> {
        let ckpt = read_checkpoint(dir)?;
        let tokenizer = load_any_tokenizer(dir)?;
        let (tensors, source) = load_weights(dir, device)?;
        let (body, mut heads) = split_body(tensors, ckpt.arch.prefix());
        if body.is_empty() {
            return Err(EncoderError::MissingTensor {
                path: source,
                name: format!("{}* (the {} body)", ckpt.arch.prefix(), ckpt.arch),
            });
        }
        let (backbone, precision) = match &ckpt.deberta {
            None => backbone_from_body(body, &ckpt.bert, ckpt.shape, precision, device)?,
            Some(cfg) => {
                if !matches!(precision, Precision::Auto | Precision::F32) {
                    return Err(EncoderError::Precision(format!(
                        "{precision}: DeBERTa-v2 runs on candle-transformers at f32 only \
                         (odqa's reduced-precision kernels are BERT's); use --precision f32 or auto"
                    )));
                }
                let vb = candle_nn::VarBuilder::from_tensors(body, candle_core::DType::F32, device);
                let model = candle_transformers::models::debertav2::DebertaV2Model::load(vb, cfg)
                    .map_err(|e| EncoderError::ShapeMismatch {
                    path: source.clone(),
                    name: "deberta.*".into(),
                    detail: e.to_string(),
                })?;
                let choice = PrecisionChoice {
                    requested: precision,
                    chosen: Precision::F32,
                    reason: "DeBERTa-v2: candle-transformers, f32 (no reduced-precision kernels)"
                        .into(),
                };
                (
                    Backbone::DebertaV2(Box::new(model), cfg.type_vocab_size > 0),
                    choice,
                )
            }
        };
        let qa_outputs = qa_head(&mut heads, &source, ckpt.bert.hidden_size)?;
        Ok(QaModel {
            backbone,
            precision,
            head_rows: head_rows(&qa_outputs)?,
            qa_outputs,
            pad_id: pad_id(&tokenizer, ckpt.bert.pad_token_id),
            tokenizer,
            device: device.clone(),
            dir: dir.to_path_buf(),
            zero_types: !ckpt.settings.uses_token_types,
            settings: Some(ckpt.settings),
        })
    }

    /// What a Hugging Face checkpoint implies for reading (architecture,
    /// longest window, token types, no-answer); `None` for odqa's own
    /// reader layouts.
    pub fn settings(&self) -> Option<&CheckpointSettings> {
        self.settings.as_ref()
    }

    /// Longest window the model takes, in tokens, special tokens included
    /// (`None`: odqa's own readers, whose base model allows 512).
    pub fn max_len(&self) -> Option<usize> {
        self.settings.as_ref().map(|s| s.max_len)
    }

    /// Checks that windows of `max_len` tokens (special tokens included)
    /// fit the checkpoint: longer than its position embeddings allow
    /// ([`CheckpointSettings::max_len`]) is [`EncoderError::WindowTooLong`],
    /// never a silent cut. odqa's own readers (no settings) are not checked
    /// here.
    pub fn check_window(&self, max_len: usize) -> Result<()> {
        match &self.settings {
            Some(s) if max_len > s.max_len => Err(EncoderError::WindowTooLong {
                dir: self.dir.clone(),
                asked: max_len,
                allowed: s.max_len,
                why: s.max_len_source.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// odqa's trained reader in `reader_dir` on top of the base model in
    /// `base_dir` (multilingual-e5-small, or a pruned copy of it: the word
    /// embeddings are the base model's own).
    pub fn load_delta(reader_dir: &Path, base_dir: &Path, device: &Device) -> Result<Self> {
        Self::load_delta_at(reader_dir, base_dir, device, Precision::F32)
    }

    /// [`QaModel::load_delta`] with the linear layers at `precision` (CPU).
    pub fn load_delta_at(
        reader_dir: &Path,
        base_dir: &Path,
        device: &Device,
        precision: Precision,
    ) -> Result<Self> {
        ReaderManifest::read(reader_dir)?;
        let config = load_config(&base_dir.join(CONFIG_FILE))?;
        let (mut tensors, _) = load_f32_tensors(base_dir, &config, device)?;
        let delta = delta_path(reader_dir);
        let mut heads = apply_delta(&mut tensors, &delta, device)?;
        let qa_outputs = qa_head(&mut heads, &delta, config.hidden_size)?;
        let (backbone, precision) = backbone_from_tensors(tensors, &config, precision, device)?;
        let tokenizer = load_tokenizer(base_dir)?;
        Ok(QaModel {
            backbone,
            precision,
            head_rows: head_rows(&qa_outputs)?,
            qa_outputs,
            pad_id: pad_id(&tokenizer, config.pad_token_id),
            tokenizer,
            device: device.clone(),
            dir: reader_dir.to_path_buf(),
            settings: None,
            zero_types: false,
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// What windows are padded with: the tokenizer's padding token, else
    /// the config's `pad_token_id`.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Start/end logits of `batch` ([`Batch::pack`] with [`QaModel::pad_id`]).
    pub fn batch_logits(&self, batch: &Batch) -> Result<SpanLogits> {
        self.logits(
            &batch.input_ids,
            &batch.attention_mask,
            &batch.token_type_ids,
            batch.size,
            batch.seq_len,
        )
    }

    /// The precision the model runs at, and why it was chosen.
    pub fn precision(&self) -> &PrecisionChoice {
        &self.precision
    }

    /// Start/end logits for padded, row-major token ids.
    pub fn logits(
        &self,
        ids: &[u32],
        mask: &[u32],
        type_ids: &[u32],
        batch: usize,
        seq_len: usize,
    ) -> Result<SpanLogits> {
        self.logits_profiled(ids, mask, type_ids, batch, seq_len, None)
    }

    /// [`QaModel::logits`], adding the CPU backend's time per stage to
    /// `profile` (left as is on other backends).
    pub fn logits_profiled(
        &self,
        ids: &[u32],
        mask: &[u32],
        type_ids: &[u32],
        batch: usize,
        seq_len: usize,
        profile: Option<&mut StageTimes>,
    ) -> Result<SpanLogits> {
        let zeros;
        let type_ids = if self.zero_types {
            zeros = vec![0u32; type_ids.len()];
            &zeros[..]
        } else {
            type_ids
        };
        let hidden = self.backbone.hidden(
            (ids, mask, type_ids),
            (batch, seq_len),
            &self.device,
            profile,
        )?;
        let hidden = match hidden {
            Hidden::Padded(hidden) => hidden,
            Hidden::Tokens(tokens, rows) => {
                // Padding positions were not computed: their logits are 0,
                // and no span scoring reads them.
                let (ws, we, [bs, be]) = &self.head_rows;
                let h = ws.len();
                let mut start = vec![0f32; batch * seq_len];
                let mut end = vec![0f32; batch * seq_len];
                for (row, &at) in rows.chunks_exact(h).zip(&tokens.padded_index) {
                    start[at] = dot(row, ws) + bs;
                    end[at] = dot(row, we) + be;
                }
                return Ok(SpanLogits {
                    start,
                    end,
                    batch,
                    seq_len,
                });
            }
        };
        let logits = self.qa_outputs.forward(&hidden)?; // [batch, seq, 2]
        let start = logits
            .narrow(2, 0, 1)?
            .squeeze(2)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let end = logits
            .narrow(2, 1, 1)?
            .squeeze(2)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(SpanLogits {
            start,
            end,
            batch,
            seq_len,
        })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn head_rows(head: &Linear) -> Result<(Vec<f32>, Vec<f32>, [f32; 2])> {
    let w = head.weight().to_vec2::<f32>()?;
    let b = head
        .bias()
        .map(|b| b.to_vec1::<f32>())
        .transpose()?
        .unwrap_or_else(|| vec![0.0, 0.0]);
    Ok((w[0].clone(), w[1].clone(), [b[0], b[1]]))
}

fn check_architecture(config_path: &Path) -> Result<()> {
    let bytes = std::fs::read(config_path).map_err(|e| EncoderError::io(config_path, e))?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| EncoderError::Config {
            path: config_path.to_path_buf(),
            detail: e.to_string(),
        })?;
    let architectures: Vec<&str> = json
        .get("architectures")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let supported = |a: &&str| SUPPORTED_ARCHITECTURES.contains(a) || *a == "BertModel";
    match architectures.iter().find(|a| !supported(a)) {
        Some(other) => Err(EncoderError::UnsupportedModel {
            path: config_path.to_path_buf(),
            model_type: format!(
                "{other} (supported QA architectures: {})",
                SUPPORTED_ARCHITECTURES.join(", ")
            ),
        }),
        None => Ok(()),
    }
}

fn qa_head(heads: &mut HashMap<String, Tensor>, path: &Path, hidden: usize) -> Result<Linear> {
    let mut take = |name: &str| {
        heads
            .remove(name)
            .ok_or_else(|| EncoderError::MissingTensor {
                path: path.to_path_buf(),
                name: name.to_string(),
            })
    };
    let weight = take("qa_outputs.weight")?.to_dtype(candle_core::DType::F32)?;
    let bias = take("qa_outputs.bias")?.to_dtype(candle_core::DType::F32)?;
    if weight.dims() != [2, hidden] || bias.dims() != [2] {
        return Err(EncoderError::ShapeMismatch {
            path: path.to_path_buf(),
            name: "qa_outputs".into(),
            detail: format!(
                "weight {:?} and bias {:?}, expected [2, {hidden}] and [2]",
                weight.dims(),
                bias.dims()
            ),
        });
    }
    Ok(Linear::new(weight, Some(bias)))
}

/// odqa's reading engine drives the candle model through this seam
/// (`odqa_reader::run_windows`).
impl SpanModel for QaModel {
    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn span_logits(&self, windows: &[Window]) -> odqa_reader::Result<SpanLogits> {
        self.batch_logits(&Batch::pack(windows, self.pad_id))
            .map_err(|e| odqa_reader::ReaderError::Model(Box::new(e)))
    }
}
