//! A tiny randomly initialised BERT QA checkpoint, for tests of the
//! plumbing around models (never for results).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::error::Result;
use crate::{EncoderError, CONFIG_FILE, SAFETENSORS_FILE};

const HIDDEN: usize = 16;
const INTERMEDIATE: usize = 32;

/// Writes `config.json` and `model.safetensors` of a one-layer
/// `architecture` model (Hugging Face names, `bert.` prefix, `qa_outputs`
/// head) with `vocab_size` tokens into `dir`; the caller adds
/// `tokenizer.json`.
pub fn write_random_bert_qa(dir: &Path, vocab_size: usize, architecture: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| EncoderError::io(dir, e))?;
    let config = serde_json::json!({
        "architectures": [architecture], "model_type": "bert", "vocab_size": vocab_size,
        "hidden_size": HIDDEN, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": INTERMEDIATE, "hidden_act": "gelu", "max_position_embeddings": 512,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0
    });
    let config_path = dir.join(CONFIG_FILE);
    std::fs::write(&config_path, config.to_string())
        .map_err(|e| EncoderError::io(&config_path, e))?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, shape: &[usize]| -> Result<()> {
        tensors.insert(name, Tensor::randn(0f32, 0.5, shape, &Device::Cpu)?);
        Ok(())
    };
    put(
        "bert.embeddings.word_embeddings.weight".into(),
        &[vocab_size, HIDDEN],
    )?;
    put(
        "bert.embeddings.position_embeddings.weight".into(),
        &[512, HIDDEN],
    )?;
    put(
        "bert.embeddings.token_type_embeddings.weight".into(),
        &[2, HIDDEN],
    )?;
    for norm in [
        "bert.embeddings.LayerNorm",
        "bert.encoder.layer.0.attention.output.LayerNorm",
        "bert.encoder.layer.0.output.LayerNorm",
    ] {
        put(format!("{norm}.weight"), &[HIDDEN])?;
        put(format!("{norm}.bias"), &[HIDDEN])?;
    }
    for (name, out, inp) in [
        ("attention.self.query", HIDDEN, HIDDEN),
        ("attention.self.key", HIDDEN, HIDDEN),
        ("attention.self.value", HIDDEN, HIDDEN),
        ("attention.output.dense", HIDDEN, HIDDEN),
        ("intermediate.dense", INTERMEDIATE, HIDDEN),
        ("output.dense", HIDDEN, INTERMEDIATE),
    ] {
        put(format!("bert.encoder.layer.0.{name}.weight"), &[out, inp])?;
        put(format!("bert.encoder.layer.0.{name}.bias"), &[out])?;
    }
    put("qa_outputs.weight".into(), &[2, HIDDEN])?;
    put("qa_outputs.bias".into(), &[2])?;
    candle_core::safetensors::save(&tensors, dir.join(SAFETENSORS_FILE))?;
    Ok(())
}
