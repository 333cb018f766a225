//! Hugging Face extractive-QA checkpoints as people already have them:
//! which architecture a directory holds (`config.json`'s `architectures`,
//! else `model_type`), its weights (`model.safetensors` or sharded through
//! `model.safetensors.index.json`) split into body and `qa_outputs` head,
//! its tokenizer (`tokenizer.json`, or a WordPiece tokenizer built from
//! `vocab.txt` with `tokenizer_config.json`'s flags), and the settings the
//! checkpoint implies ([`CheckpointSettings`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_transformers::models::bert::Config;
use candle_transformers::models::debertav2::Config as DebertaConfig;
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::cpu::BodyShape;
use crate::encoder::{config_from_value, read_safetensors, TensorMap, SAFETENSORS_FILE};
use crate::error::{EncoderError, Result};
use crate::fetch::{CONFIG_FILE, TOKENIZER_FILE};

/// The index of a sharded safetensors checkpoint.
pub const SAFETENSORS_INDEX_FILE: &str = "model.safetensors.index.json";
/// A BERT-style checkpoint's vocabulary, used when it has no `tokenizer.json`.
pub const VOCAB_FILE: &str = "vocab.txt";
/// The tokenizer flags beside `vocab.txt` (`do_lower_case`, `strip_accents`).
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// A QA architecture odqa loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Architecture {
    Bert,
    Roberta,
    XlmRoberta,
    Electra,
    DebertaV2,
}

impl Architecture {
    pub const ALL: [Architecture; 5] = [
        Architecture::Bert,
        Architecture::Roberta,
        Architecture::XlmRoberta,
        Architecture::Electra,
        Architecture::DebertaV2,
    ];

    /// The transformers class name (`config.json`'s `architectures`).
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::Bert => "BertForQuestionAnswering",
            Architecture::Roberta => "RobertaForQuestionAnswering",
            Architecture::XlmRoberta => "XLMRobertaForQuestionAnswering",
            Architecture::Electra => "ElectraForQuestionAnswering",
            Architecture::DebertaV2 => "DebertaV2ForQuestionAnswering",
        }
    }

    /// `config.json`'s `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::Roberta => "roberta",
            Architecture::XlmRoberta => "xlm-roberta",
            Architecture::Electra => "electra",
            Architecture::DebertaV2 => "deberta-v2",
        }
    }

    /// The prefix of the body's weight names in a `*ForQuestionAnswering`
    /// checkpoint.
    pub fn prefix(self) -> &'static str {
        match self {
            Architecture::Bert => "bert.",
            Architecture::Roberta | Architecture::XlmRoberta => "roberta.",
            Architecture::Electra => "electra.",
            Architecture::DebertaV2 => "deberta.",
        }
    }

    /// Whether the body is BERT's (odqa's CPU kernels run it at every
    /// precision); DeBERTa-v2 runs on candle-transformers at f32.
    pub fn is_bert_like(self) -> bool {
        self != Architecture::DebertaV2
    }

    fn from_class(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.class_name() == name)
    }

    fn from_model_type(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.model_type() == name)
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.class_name())
    }
}

/// What a checkpoint implies for reading, read from its files (never
/// guessed): printed by the binary, kept by [`crate::QaModel`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointSettings {
    pub architecture: Architecture,
    /// Longest window in tokens: `max_position_embeddings`, less RoBERTa's
    /// position offset (`pad_token_id + 1`). Longer windows are an error
    /// ([`crate::QaModel::check_window`]), not cut silently.
    pub max_len: usize,
    /// Where `max_len` comes from (`max_position_embeddings 514 − offset 2`).
    pub max_len_source: String,
    /// Added to each token's index for its position id.
    pub position_offset: usize,
    /// Whether the model reads token type ids; when `type_vocab_size` is 1
    /// or 0 (RoBERTa, XLM-R, most DeBERTa-v2) every type id is sent as 0,
    /// as transformers users do with such models.
    pub uses_token_types: bool,
    /// Whether the checkpoint says it was trained to predict "no answer"
    /// at position 0 (SQuAD 2 style). A Hugging Face `config.json` does
    /// not record it, so for these checkpoints it is `false` and odqa's
    /// no-answer scoring stays off unless asked for.
    pub trained_no_answer: bool,
    /// Where each value came from, one line each.
    pub notes: Vec<String>,
}

/// A Hugging Face QA checkpoint's config: the architecture and the body
/// config the loaders need.
#[derive(Debug, Clone)]
pub(crate) struct HfCheckpoint {
    pub arch: Architecture,
    /// BERT-like bodies: candle's BERT config (also for RoBERTa/ELECTRA:
    /// the same fields).
    pub bert: Config,
    pub shape: BodyShape,
    pub deberta: Option<DebertaConfig>,
    pub settings: CheckpointSettings,
}

/// Reads the `config.json` of a Hugging Face `*ForQuestionAnswering`
/// checkpoint in `dir`: the [`Architecture`] from `architectures` (else
/// `model_type`), the body's config and the settings it implies; a missing
/// config or an architecture odqa cannot run is an error naming it.
pub(crate) fn read_checkpoint(dir: &Path) -> Result<HfCheckpoint> {
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(EncoderError::MissingFile {
            path,
            what: "the model config".into(),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| EncoderError::io(&path, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| EncoderError::Config {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    let classes: Vec<&str> = json
        .get("architectures")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let model_type = json.get("model_type").and_then(|m| m.as_str());
    let supported = || {
        Architecture::ALL
            .iter()
            .map(|a| a.class_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let arch = match classes.first() {
        Some(class) => Architecture::from_class(class).ok_or_else(|| {
            let hint = if class.ends_with("ForQuestionAnswering") {
                ""
            } else {
                " — not a question-answering head"
            };
            EncoderError::UnsupportedModel {
                path: path.clone(),
                model_type: format!("{class}{hint} (supported: {})", supported()),
            }
        })?,
        None => model_type
            .and_then(Architecture::from_model_type)
            .ok_or_else(|| EncoderError::UnsupportedModel {
                path: path.clone(),
                model_type: format!(
                    "model_type {:?} and no `architectures` (supported: {})",
                    model_type.unwrap_or("missing"),
                    supported()
                ),
            })?,
    };
    if let Some(mt) = model_type {
        if Architecture::from_model_type(mt) != Some(arch) {
            return Err(EncoderError::UnsupportedModel {
                path,
                model_type: format!("{arch} with model_type {mt:?}: the two disagree"),
            });
        }
    }
    let mut notes = vec![format!(
        "architecture {arch}: from config.json `{}`",
        if classes.is_empty() {
            "model_type"
        } else {
            "architectures"
        }
    )];
    let (bert, deberta, shape, max_positions, type_vocab) = if arch.is_bert_like() {
        let mut v = json.clone();
        if let Some(o) = v.as_object_mut() {
            // candle's BERT config reads the BERT fields; the type is ours.
            o.insert("model_type".into(), "bert".into());
        }
        let bert = config_from_value(&path, v)?;
        let position_offset = match arch {
            Architecture::Roberta | Architecture::XlmRoberta => {
                let pad = json
                    .get("pad_token_id")
                    .and_then(|p| p.as_u64())
                    .ok_or_else(|| EncoderError::Config {
                        path: path.clone(),
                        detail: "field `pad_token_id` missing: RoBERTa positions start at \
                                 pad_token_id + 1"
                            .into(),
                    })? as usize;
                notes.push(format!(
                    "position ids from pad_token_id + 1 = {} (RoBERTa)",
                    pad + 1
                ));
                pad + 1
            }
            _ => 0,
        };
        let embedding_size = match arch {
            Architecture::Electra => {
                let e = json
                    .get("embedding_size")
                    .and_then(|e| e.as_u64())
                    .map_or(bert.hidden_size, |e| e as usize);
                if e != bert.hidden_size {
                    notes.push(format!(
                        "embeddings {e} wide, projected to hidden {} (embeddings_project)",
                        bert.hidden_size
                    ));
                }
                e
            }
            _ => bert.hidden_size,
        };
        let shape = BodyShape {
            position_offset,
            embedding_size,
        };
        let (mp, tv) = (bert.max_position_embeddings, bert.type_vocab_size);
        (bert, None, shape, mp, tv)
    } else {
        let deberta: DebertaConfig =
            serde_json::from_value(json.clone()).map_err(|e| EncoderError::Config {
                path: path.clone(),
                detail: format!("DeBERTa-v2 config: {e}"),
            })?;
        if deberta.conv_kernel_size.unwrap_or(0) > 0 {
            return Err(EncoderError::UnsupportedModel {
                path,
                model_type: "DeBERTa-v2 with a convolution layer (conv_kernel_size): \
                             candle-transformers has no implementation of it"
                    .into(),
            });
        }
        let mut v = json.clone();
        if let Some(o) = v.as_object_mut() {
            o.insert("model_type".into(), "bert".into());
            o.entry("type_vocab_size").or_insert(0.into());
        }
        // Only the shared fields are read from this one.
        let bert = config_from_value(&path, v).or_else(|_| {
            serde_json::from_value::<Config>(serde_json::json!({
                "vocab_size": deberta.vocab_size, "hidden_size": deberta.hidden_size,
                "num_hidden_layers": deberta.num_hidden_layers,
                "num_attention_heads": deberta.num_attention_heads,
                "intermediate_size": deberta.intermediate_size, "hidden_act": "gelu",
                "hidden_dropout_prob": 0.0, "max_position_embeddings": deberta.max_position_embeddings,
                "type_vocab_size": deberta.type_vocab_size, "initializer_range": 0.02,
                "layer_norm_eps": deberta.layer_norm_eps, "pad_token_id": 0
            }))
            .map_err(|e| EncoderError::Config {
                path: path.clone(),
                detail: e.to_string(),
            })
        })?;
        let shape = BodyShape::bert(&bert);
        let (mp, tv) = (deberta.max_position_embeddings, deberta.type_vocab_size);
        notes.push("runs on candle-transformers' DeBERTa-v2, f32 only".into());
        (bert, Some(deberta), shape, mp, tv)
    };
    let max_len = max_positions.saturating_sub(shape.position_offset);
    let max_len_source = format!(
        "max_position_embeddings {max_positions}{}",
        if shape.position_offset > 0 {
            format!(" − offset {}", shape.position_offset)
        } else {
            String::new()
        }
    );
    notes.push(format!("max window {max_len} tokens: {max_len_source}"));
    let uses_token_types = type_vocab > 1;
    if !uses_token_types {
        notes.push(format!(
            "type_vocab_size {type_vocab}: token type ids sent as 0"
        ));
    }
    notes.push(
        "no-answer: config.json does not say the model was trained with a null \
         position (SQuAD 2), so no-answer scoring is off unless asked for"
            .into(),
    );
    Ok(HfCheckpoint {
        arch,
        bert,
        shape,
        deberta,
        settings: CheckpointSettings {
            architecture: arch,
            max_len,
            max_len_source,
            position_offset: shape.position_offset,
            uses_token_types,
            trained_no_answer: false,
            notes,
        },
    })
}

/// All tensors of `dir`'s `model.safetensors`, or of the shards its
/// `model.safetensors.index.json` lists, as f32.
pub(crate) fn load_weights(dir: &Path, device: &Device) -> Result<(TensorMap, PathBuf)> {
    let single = dir.join(SAFETENSORS_FILE);
    let index = dir.join(SAFETENSORS_INDEX_FILE);
    let read = |path: &Path| read_safetensors(path, device);
    let (raw, source) = if single.is_file() {
        (read(&single)?, single)
    } else if index.is_file() {
        let (shards, tensor_names) = read_shard_index(&index)?;
        let mut all = HashMap::new();
        for shard in shards {
            let path = dir.join(shard);
            if !path.is_file() {
                return Err(EncoderError::MissingFile {
                    path,
                    what: format!("a weights shard listed in {SAFETENSORS_INDEX_FILE}"),
                });
            }
            all.extend(read(&path)?);
        }
        for name in tensor_names {
            if !all.contains_key(&name) {
                return Err(EncoderError::MissingTensor {
                    path: index.clone(),
                    name,
                });
            }
        }
        (all, index)
    } else {
        return Err(EncoderError::NoWeights {
            dir: dir.to_path_buf(),
        });
    };
    let mut out = HashMap::with_capacity(raw.len());
    for (k, t) in raw {
        out.insert(k, t.to_dtype(DType::F32)?);
    }
    Ok((out, source))
}

/// The shard file names (sorted, each once) and the tensor names of a
/// sharded checkpoint's `model.safetensors.index.json`; a shard name that
/// is not a plain file name is an error.
pub(crate) fn read_shard_index(index: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let text = std::fs::read_to_string(index).map_err(|e| EncoderError::io(index, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| EncoderError::Config {
            path: index.to_path_buf(),
            detail: e.to_string(),
        })?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| EncoderError::Config {
            path: index.to_path_buf(),
            detail: "field `weight_map` missing or not an object".into(),
        })?;
    let mut shards: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str())
        .map(str::to_string)
        .collect();
    shards.sort_unstable();
    shards.dedup();
    if let Some(bad) = shards
        .iter()
        .find(|s| s.is_empty() || s.contains('/') || s.contains('\\') || s.starts_with('.'))
    {
        return Err(EncoderError::Config {
            path: index.to_path_buf(),
            detail: format!("shard name {bad:?} is not a file name"),
        });
    }
    Ok((shards, map.keys().cloned().collect()))
}

/// Splits a checkpoint's tensors into the body's (prefix removed, old
/// `gamma`/`beta` LayerNorm names renamed) and the rest (`qa_outputs.*`).
pub(crate) fn split_body(tensors: TensorMap, prefix: &str) -> (TensorMap, TensorMap) {
    let mut body = HashMap::new();
    let mut heads = HashMap::new();
    // Some exports keep the body's names without the prefix.
    let prefixed = tensors.keys().any(|k| k.starts_with(prefix));
    for (k, t) in tensors {
        let stripped = if prefixed {
            k.strip_prefix(prefix)
        } else if k.starts_with("qa_outputs.") {
            None
        } else {
            Some(k.as_str())
        };
        match stripped {
            Some(rest) => {
                let rest = if let Some(s) = rest.strip_suffix("LayerNorm.gamma") {
                    format!("{s}LayerNorm.weight")
                } else if let Some(s) = rest.strip_suffix("LayerNorm.beta") {
                    format!("{s}LayerNorm.bias")
                } else {
                    rest.to_string()
                };
                body.insert(rest, t);
            }
            None => {
                heads.insert(k, t);
            }
        }
    }
    (body, heads)
}

/// The checkpoint's tokenizer: `tokenizer.json` as shipped, else a
/// WordPiece tokenizer built from `vocab.txt` with `tokenizer_config.json`'s
/// `do_lower_case` (default true, as transformers' BertTokenizer) and
/// `strip_accents` (default: follows `do_lower_case`); padding off.
pub(crate) fn load_any_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let json = dir.join(TOKENIZER_FILE);
    if json.is_file() {
        return crate::encoder::load_tokenizer(dir);
    }
    let vocab = dir.join(VOCAB_FILE);
    if !vocab.is_file() {
        return Err(EncoderError::MissingFile {
            path: json,
            what: format!("the tokenizer (neither {TOKENIZER_FILE} nor {VOCAB_FILE} is there)"),
        });
    }
    wordpiece_from_vocab(dir, &vocab)
}

fn wordpiece_from_vocab(dir: &Path, vocab: &Path) -> Result<Tokenizer> {
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::normalizers::BertNormalizer;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::processors::bert::BertProcessing;
    use tokenizers::AddedToken;

    let cfg_path = dir.join(TOKENIZER_CONFIG_FILE);
    let cfg: serde_json::Value = if cfg_path.is_file() {
        let text =
            std::fs::read_to_string(&cfg_path).map_err(|e| EncoderError::io(&cfg_path, e))?;
        serde_json::from_str(&text).map_err(|e| EncoderError::Config {
            path: cfg_path.clone(),
            detail: e.to_string(),
        })?
    } else {
        serde_json::json!({})
    };
    let flag = |k: &str| cfg.get(k).and_then(|v| v.as_bool());
    let lowercase = flag("do_lower_case").unwrap_or(true);
    let strip_accents = flag("strip_accents");
    let token = |k: &str, d: &str| {
        cfg.get(k)
            .and_then(|v| {
                v.as_str()
                    .or_else(|| v.get("content").and_then(|c| c.as_str()))
            })
            .unwrap_or(d)
            .to_string()
    };
    let (unk, cls, sep, pad, mask) = (
        token("unk_token", "[UNK]"),
        token("cls_token", "[CLS]"),
        token("sep_token", "[SEP]"),
        token("pad_token", "[PAD]"),
        token("mask_token", "[MASK]"),
    );
    let tok_err = |detail: String| EncoderError::Tokenizer {
        path: vocab.to_path_buf(),
        detail,
    };
    let vocab_str = vocab
        .to_str()
        .ok_or_else(|| tok_err("path is not UTF-8".into()))?;
    let model = WordPiece::from_file(vocab_str)
        .unk_token(unk.clone())
        .build()
        .map_err(|e| tok_err(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(model);
    let id = |t: &str| {
        tokenizer
            .token_to_id(t)
            .ok_or_else(|| tok_err(format!("special token {t} is not in the vocabulary")))
    };
    let (cls_id, sep_id) = (id(&cls)?, id(&sep)?);
    id(&unk)?;
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(
            true,
            true,
            strip_accents,
            lowercase,
        )))
        .map_err(|e| tok_err(e.to_string()))?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        (sep.clone(), sep_id),
        (cls.clone(), cls_id),
    )));
    tokenizer.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
    let specials: Vec<AddedToken> = [&unk, &cls, &sep, &pad, &mask]
        .into_iter()
        .filter(|t| tokenizer.token_to_id(t).is_some())
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
    let _ = tokenizer.add_special_tokens(specials);
    Ok(tokenizer)
}
