//! Fixtures for tests (behind the `testing` feature): a tiny randomly
//! initialised BERT QA checkpoint with a character-level tokenizer, and a
//! Hugging Face hub cache laid out around a checkpoint directory.
//!
//! The weights are random and tiny (one layer, hidden size 16): they check
//! the plumbing around models (loading, windows, offsets, reports), never
//! numbers — answers and scores from them are meaningless.
//!
//! Test crates enable it as a dev-dependency:
//! `odqa-encoder = { workspace = true, features = ["testing"] }`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use odqa_reader::testing::char_wordpiece_tokenizer;
pub use odqa_reader::testing::TestStyle;
use tokenizers::Tokenizer;

use crate::error::Result;
use crate::{EncoderError, CONFIG_FILE, SAFETENSORS_FILE, TOKENIZER_FILE};

const HIDDEN: usize = 16;
const INTERMEDIATE: usize = 32;

/// What [`write_tiny_bert_qa`] writes: the tokenizer's characters and
/// special tokens, and the model's architecture name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TinyBertQa<'a> {
    /// The characters the tokenizer knows, each its own token (whitespace
    /// and repeats are dropped); any other character is the unknown token.
    /// See [`odqa_reader::testing::char_wordpiece_tokenizer`].
    pub alphabet: &'a str,
    /// BERT (`[CLS]`/`[SEP]`) or RoBERTa (`<s>`/`</s>`) special tokens and
    /// pair template.
    pub style: TestStyle,
    /// `architectures[0]` in `config.json`.
    pub architecture: &'a str,
}

impl<'a> TinyBertQa<'a> {
    /// A `BertForQuestionAnswering` over `alphabet` with BERT specials.
    pub fn bert(alphabet: &'a str) -> Self {
        TinyBertQa {
            alphabet,
            ..TinyBertQa::default()
        }
    }

    /// A `BertForQuestionAnswering` over `alphabet` with RoBERTa specials
    /// (`<s>`/`</s>`, type ids all 0), as multilingual readers have.
    pub fn roberta(alphabet: &'a str) -> Self {
        TinyBertQa {
            style: TestStyle::Roberta,
            ..TinyBertQa::bert(alphabet)
        }
    }
}

impl Default for TinyBertQa<'_> {
    /// No characters (special tokens only), BERT specials,
    /// `BertForQuestionAnswering`.
    fn default() -> Self {
        TinyBertQa {
            alphabet: "",
            style: TestStyle::Bert,
            architecture: "BertForQuestionAnswering",
        }
    }
}

/// Writes a complete tiny reader into `dir`: a character-level
/// `tokenizer.json` over `options.alphabet` and the random one-layer model
/// of [`write_random_bert_qa`] with that tokenizer's vocabulary. Returns the
/// tokenizer.
pub fn write_tiny_bert_qa(dir: &Path, options: &TinyBertQa<'_>) -> Result<Tokenizer> {
    let path = dir.join(TOKENIZER_FILE);
    let tokenizer_error = |detail: String| EncoderError::Tokenizer {
        path: path.clone(),
        detail,
    };
    let tokenizer = char_wordpiece_tokenizer(options.alphabet, options.style)
        .map_err(|e| tokenizer_error(e.to_string()))?;
    write_random_bert_qa(dir, tokenizer.get_vocab_size(true), options.architecture)?;
    tokenizer
        .save(&path, false)
        .map_err(|e| tokenizer_error(e.to_string()))?;
    Ok(tokenizer)
}

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

/// Lays out the files of checkpoint directory `src` in the Hugging Face
/// hub cache `cache` (the directory holding `models--…`) as `hf-hub` and
/// `huggingface_hub` do: contents under `blobs/` (named by their SHA-256),
/// `snapshots/<commit>/<name>` linking to them (copies where links are not
/// available), and `refs/<branch>` holding `commit` for each of
/// `branches`. Returns the snapshot directory.
pub fn write_hub_cache(
    cache: &Path,
    repo: &str,
    commit: &str,
    branches: &[&str],
    src: &Path,
) -> Result<std::path::PathBuf> {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let blobs = repo_dir.join("blobs");
    let snapshot = repo_dir.join("snapshots").join(commit);
    for dir in [&blobs, &snapshot] {
        std::fs::create_dir_all(dir).map_err(|e| EncoderError::io(dir, e))?;
    }
    let entries = std::fs::read_dir(src).map_err(|e| EncoderError::io(src, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EncoderError::io(src, e))?;
        let from = entry.path();
        if !from.is_file() {
            continue;
        }
        let blob = blobs.join(crate::fetch::sha256_file(&from)?);
        std::fs::copy(&from, &blob).map_err(|e| EncoderError::io(&blob, e))?;
        let link = snapshot.join(entry.file_name());
        let _ = std::fs::remove_file(&link);
        #[cfg(unix)]
        let linked = std::os::unix::fs::symlink(
            Path::new("../../blobs").join(blob.file_name().unwrap_or_default()),
            &link,
        );
        #[cfg(not(unix))]
        let linked = std::fs::copy(&blob, &link).map(|_| ());
        linked.map_err(|e| EncoderError::io(&link, e))?;
    }
    for branch in branches {
        let path = repo_dir.join("refs").join(branch);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| EncoderError::io(parent, e))?;
        }
        std::fs::write(&path, commit).map_err(|e| EncoderError::io(&path, e))?;
    }
    Ok(snapshot)
}
