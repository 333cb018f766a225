//! [`QaModel`]: a BERT-family encoder with Hugging Face's
//! `*ForQuestionAnswering` head (`qa_outputs`: hidden → 2), giving start and
//! end logits per token.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::{Linear, Module};
use tokenizers::Tokenizer;

use crate::delta::{apply_delta, delta_path, is_delta_reader, ReaderManifest};
use crate::encoder::{
    backbone_from_tensors, load_backbone, load_config, load_f32_tensors, load_tokenizer, Backbone,
    WeightFormat, SAFETENSORS_FILE,
};
use crate::error::{EncoderError, Result};
use crate::fetch::{CONFIG_FILE, WEIGHTS_FILE};

/// The head of odqa's own reader, beside the base model's E5S1 weights.
pub const QA_HEAD_FILE: &str = "qa-head.safetensors";

/// Architectures whose QA checkpoints load here: BERT layout with absolute
/// positions from 0.
const SUPPORTED_ARCHITECTURES: &[&str] = &["BertForQuestionAnswering"];

/// Start and end logits of a batch, row-major `[batch × seq_len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLogits {
    pub start: Vec<f32>,
    pub end: Vec<f32>,
    pub batch: usize,
    pub seq_len: usize,
}

/// A span-extraction model and its tokenizer.
pub struct QaModel {
    backbone: Backbone,
    qa_outputs: Linear,
    tokenizer: Tokenizer,
    device: Device,
    dir: PathBuf,
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
        if is_delta_reader(dir) {
            let base = crate::fetch::fetch_model(&crate::fetch::default_home())?;
            return Self::load_delta(dir, &base, device);
        }
        let config_path = dir.join(CONFIG_FILE);
        // odqa's reader layout keeps the base model's config (BertModel).
        let reader_layout = dir.join(WEIGHTS_FILE).is_file();
        check_architecture(&config_path, reader_layout)?;
        let config = load_config(&config_path)?;
        let (backbone, mut heads) = load_backbone(dir, &config, WeightFormat::F32, device)?;
        let head_source = if reader_layout {
            let head_path = dir.join(QA_HEAD_FILE);
            if !head_path.is_file() {
                return Err(EncoderError::MissingTensor {
                    path: head_path,
                    name: "qa_outputs.weight (the reader head file is missing)".into(),
                });
            }
            heads = candle_core::safetensors::load(&head_path, device).map_err(|e| {
                EncoderError::Config {
                    path: head_path.clone(),
                    detail: format!("cannot read safetensors: {e}"),
                }
            })?;
            head_path
        } else {
            dir.join(SAFETENSORS_FILE)
        };
        let qa_outputs = qa_head(&mut heads, &head_source, config.hidden_size)?;
        Ok(QaModel {
            backbone,
            qa_outputs,
            tokenizer: load_tokenizer(dir)?,
            device: device.clone(),
            dir: dir.to_path_buf(),
        })
    }

    /// odqa's trained reader in `reader_dir` on top of the base model in
    /// `base_dir` (multilingual-e5-small, or a pruned copy of it: the word
    /// embeddings are the base model's own).
    pub fn load_delta(reader_dir: &Path, base_dir: &Path, device: &Device) -> Result<Self> {
        ReaderManifest::read(reader_dir)?;
        let config = load_config(&base_dir.join(CONFIG_FILE))?;
        let (mut tensors, _) = load_f32_tensors(base_dir, &config, device)?;
        let delta = delta_path(reader_dir);
        let mut heads = apply_delta(&mut tensors, &delta, device)?;
        let qa_outputs = qa_head(&mut heads, &delta, config.hidden_size)?;
        Ok(QaModel {
            backbone: backbone_from_tensors(tensors, &config, device)?,
            qa_outputs,
            tokenizer: load_tokenizer(base_dir)?,
            device: device.clone(),
            dir: reader_dir.to_path_buf(),
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
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
        let shape = (batch, seq_len);
        let ids = Tensor::from_slice(ids, shape, &self.device)?;
        let mask = Tensor::from_slice(mask, shape, &self.device)?;
        let types = Tensor::from_slice(type_ids, shape, &self.device)?;
        let hidden = self.backbone.forward(&ids, &types, &mask)?;
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

fn check_architecture(config_path: &Path, base_allowed: bool) -> Result<()> {
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
    let supported =
        |a: &&str| SUPPORTED_ARCHITECTURES.contains(a) || (base_allowed && *a == "BertModel");
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
