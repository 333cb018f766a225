//! Vocabulary pruning of an E5S1 model directory (multilingual-e5-small).
//!
//! multilingual-e5-small has 250,002 SentencePiece pieces, and its word
//! embedding table (`emb.word`, 250,037 × 384 in Q4_0) is most of the weights
//! file. A Korean corpus uses a small fraction of those pieces. [`prune_model`]
//! keeps only the pieces a given set of texts uses (plus the special tokens
//! and every single-character piece) and writes a smaller model directory
//! that [`crate::Encoder::load`] reads like the original.
//!
//! # Why segmentation does not change
//!
//! The tokenizer is a Unigram model: for each pre-tokenized word it builds a
//! lattice of every vocabulary piece that matches a substring and picks the
//! path with the best total score (Viterbi). Pruning only *removes* pieces;
//! scores of the kept ones are unchanged. The pruned lattice is therefore a
//! sub-lattice of the original one, and since every piece on a text's
//! original best path was kept (they are exactly the "used" ids), that path
//! is still present and still scores at least as well as any remaining path:
//! it stays the best. Two details make the sub-lattice argument exact:
//!
//! - an `<unk>` node is inserted at a position only when no *single-character*
//!   piece starts there; all single-character pieces are kept, so `<unk>`
//!   nodes appear at the same positions as before;
//! - the `<unk>` score is derived from the lowest piece score; in
//!   multilingual-e5-small the lowest-scoring pieces are single characters,
//!   which are kept, so that score is unchanged too.
//!
//! (Exact score ties between a removed piece and the best path are the only
//! theoretical exception; the tests check real texts id for id.)
//!
//! This guarantee holds for the texts given. Other text stays encodable —
//! every character the original vocabulary knew is still a piece, alone or
//! after `▁` — but may be split into more, shorter pieces than the original
//! model would use, so its embedding can drift.
//!
//! New ids are ranks in the sorted kept set, so the specials `<s>` `<pad>`
//! `</s>` `<unk>` (ids 0..3, the lowest) keep their ids.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::Tokenizer;

use crate::e5s1::{self, E5s1DType, E5s1File, E5s1TensorData, Q4_0_BLOCK_BYTES, Q4_0_BLOCK_VALUES};
use crate::error::{EncoderError, Result};
use crate::fetch::{CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};

/// Sizes before and after [`prune_model`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneReport {
    /// Pieces kept (the new vocabulary size).
    pub kept: usize,
    /// Pieces in the original tokenizer vocabulary.
    pub original: usize,
    /// Total size of `config.json`, `tokenizer.json` and `e5-small-q4.bin`
    /// in the input directory.
    pub bytes_before: u64,
    /// The same total in the output directory.
    pub bytes_after: u64,
}

/// Texts are tokenized in batches of this many (each twice: query, passage).
const BATCH: usize = 256;

/// Special tokens kept by name, whatever `added_tokens` says.
const SPECIAL_NAMES: [&str; 5] = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];

/// The tokenizer JSON, the tokenizer built from it, and the Unigram vocab.
struct Source {
    tok_path: PathBuf,
    json: Value,
    tokenizer: Tokenizer,
    /// `(piece, score)` in id order.
    vocab: Vec<(String, f64)>,
}

fn tok_err(path: &Path, detail: impl Into<String>) -> EncoderError {
    EncoderError::Tokenizer {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(|e| EncoderError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| EncoderError::Config {
        path: path.to_path_buf(),
        detail: format!("not JSON: {e}"),
    })
}

fn load_source(model_dir: &Path) -> Result<Source> {
    let tok_path = model_dir.join(TOKENIZER_FILE);
    let json = read_json(&tok_path)?;
    let model = &json["model"];
    if model["type"] != "Unigram" {
        return Err(tok_err(
            &tok_path,
            format!(
                "vocabulary pruning needs a Unigram model, found model.type {}",
                model["type"]
            ),
        ));
    }
    let entries = model["vocab"]
        .as_array()
        .ok_or_else(|| tok_err(&tok_path, "model.vocab is not an array"))?;
    let mut vocab = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let pair = e.as_array().filter(|a| a.len() == 2);
        let piece = pair.and_then(|a| a[0].as_str());
        let score = pair.and_then(|a| a[1].as_f64());
        match (piece, score) {
            (Some(p), Some(s)) => vocab.push((p.to_string(), s)),
            _ => {
                return Err(tok_err(
                    &tok_path,
                    format!("model.vocab[{i}] is not a [piece, score] pair"),
                ))
            }
        }
    }
    let mut tokenizer =
        Tokenizer::from_file(&tok_path).map_err(|e| tok_err(&tok_path, e.to_string()))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| tok_err(&tok_path, e.to_string()))?;
    Ok(Source {
        tok_path,
        json,
        tokenizer,
        vocab,
    })
}

/// Applies `f` to every token id the tokenizer JSON holds outside
/// `model.vocab`: `model.unk_id`, `added_tokens[*].id` and the
/// post-processor's ids.
fn for_each_json_id(json: &mut Value, mut f: impl FnMut(&mut Value) -> Result<()>) -> Result<()> {
    if !json["model"]["unk_id"].is_null() {
        f(&mut json["model"]["unk_id"])?;
    }
    if let Some(added) = json["added_tokens"].as_array_mut() {
        for t in added {
            f(&mut t["id"])?;
        }
    }
    fn walk(v: &mut Value, f: &mut dyn FnMut(&mut Value) -> Result<()>) -> Result<()> {
        match v["type"].as_str() {
            Some("TemplateProcessing") => {
                if let Some(map) = v["special_tokens"].as_object_mut() {
                    for tok in map.values_mut() {
                        if let Some(ids) = tok["ids"].as_array_mut() {
                            for id in ids {
                                f(id)?;
                            }
                        }
                    }
                }
            }
            Some("RobertaProcessing") | Some("BertProcessing") => {
                for key in ["cls", "sep"] {
                    if let Some(id) = v[key].as_array_mut().and_then(|p| p.get_mut(1)) {
                        f(id)?;
                    }
                }
            }
            Some("Sequence") => {
                if let Some(ps) = v["processors"].as_array_mut() {
                    for p in ps {
                        walk(p, f)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
    if json.get("post_processor").is_some_and(|p| !p.is_null()) {
        walk(&mut json["post_processor"], &mut f)?;
    }
    Ok(())
}

/// The sorted original ids [`prune_model`] keeps for `texts`: every id the
/// tokenizer produces for `query: {text}` and `passage: {text}` (special
/// tokens added), every special token (`<s>` `<pad>` `</s>` `<unk>` `<mask>`,
/// `added_tokens`, `model.unk_id`, post-processor ids), and every piece whose
/// text without a leading `▁` is one character, plus `▁` itself.
/// Position `i` of the result is the pruned model's id `i`.
pub fn kept_ids(model_dir: &Path, texts: impl IntoIterator<Item = String>) -> Result<Vec<u32>> {
    let src = load_source(model_dir)?;
    kept_ids_of(&src, texts)
}

fn kept_ids_of(src: &Source, texts: impl IntoIterator<Item = String>) -> Result<Vec<u32>> {
    let mut kept: BTreeSet<u32> = BTreeSet::new();
    // Structural ids.
    let mut json = src.json.clone();
    for_each_json_id(&mut json, |v| {
        if let Some(id) = v.as_u64() {
            kept.insert(id as u32);
        }
        Ok(())
    })?;
    for name in SPECIAL_NAMES {
        if let Some(id) = src.tokenizer.token_to_id(name) {
            kept.insert(id);
        }
    }
    for (i, (piece, _)) in src.vocab.iter().enumerate() {
        let bare = piece.strip_prefix('\u{2581}').unwrap_or(piece);
        if piece == "\u{2581}" || bare.chars().count() == 1 {
            kept.insert(i as u32);
        }
    }
    // Used ids.
    let mut batch: Vec<String> = Vec::with_capacity(2 * BATCH);
    let mut index = 0usize;
    let mut flush = |batch: &mut Vec<String>, first: usize| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let encs = src
            .tokenizer
            .encode_batch(std::mem::take(batch), true)
            .map_err(|e| EncoderError::Tokenize {
                index: first,
                detail: e.to_string(),
            })?;
        for enc in encs {
            kept.extend(enc.get_ids().iter().copied());
        }
        Ok(())
    };
    let mut first = 0usize;
    for text in texts {
        batch.push(format!("query: {text}"));
        batch.push(format!("passage: {text}"));
        index += 1;
        if batch.len() >= 2 * BATCH {
            flush(&mut batch, first)?;
            first = index;
        }
    }
    flush(&mut batch, first)?;
    let n = src.vocab.len();
    if let Some(&bad) = kept.iter().find(|&&id| id as usize >= n) {
        return Err(tok_err(
            &src.tok_path,
            format!("token id {bad} lies outside model.vocab ({n} pieces); cannot prune"),
        ));
    }
    Ok(kept.into_iter().collect())
}

fn file_size(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| EncoderError::io(path, e))
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for f in [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE] {
        total += file_size(&dir.join(f))?;
    }
    Ok(total)
}

/// Writes a copy of the E5S1 model directory `model_dir` (`config.json`,
/// `tokenizer.json`, `e5-small-q4.bin`) to `out_dir` with its vocabulary
/// reduced to the pieces `texts` need: see [`kept_ids`] for what is kept and
/// the module docs for why the kept texts tokenize exactly as before (so
/// their embeddings are unchanged up to float noise).
///
/// - `tokenizer.json`: `model.vocab` holds only the kept `[piece, score]`
///   pairs, in new-id order; `model.unk_id`, `added_tokens[*].id` and the
///   post-processor's ids are remapped.
/// - `config.json`: `vocab_size` is the kept count (`pad/bos/eos_token_id`
///   remapped when present).
/// - `e5-small-q4.bin`: header vocab and piece table reduced, bos/eos/pad/unk
///   remapped, `emb.word` holding only the kept rows (copied byte for byte;
///   Q4_0 rows need hidden % 32 == 0), every other tensor unchanged.
///
/// The directory is built beside `out_dir` and renamed into place. An
/// existing `out_dir` is replaced only if it holds nothing but those three
/// files (an earlier output); `out_dir` may not be `model_dir`.
pub fn prune_model(
    model_dir: &Path,
    texts: impl IntoIterator<Item = String>,
    out_dir: &Path,
) -> Result<PruneReport> {
    check_out_dir(model_dir, out_dir)?;
    let src = load_source(model_dir)?;
    let kept = kept_ids_of(&src, texts)?;
    let original = src.vocab.len();
    // new_id[old] = rank in kept.
    let mut new_id: Vec<Option<u32>> = vec![None; original];
    for (rank, &old) in kept.iter().enumerate() {
        new_id[old as usize] = Some(rank as u32);
    }
    let remap = |old: i64| -> Option<u32> {
        usize::try_from(old)
            .ok()
            .and_then(|o| new_id.get(o).copied().flatten())
    };

    // tokenizer.json
    let tok_path = src.tok_path.clone();
    let mut tok_json = src.json.clone();
    tok_json["model"]["vocab"] = Value::Array(
        kept.iter()
            .map(|&i| {
                let (p, s) = &src.vocab[i as usize];
                serde_json::json!([p, s])
            })
            .collect(),
    );
    for_each_json_id(&mut tok_json, |v| {
        let old = v.as_i64();
        match old.and_then(remap) {
            Some(n) => {
                *v = Value::from(n);
                Ok(())
            }
            None => Err(tok_err(&tok_path, format!("id {v} was not kept"))),
        }
    })?;
    let tok_text =
        serde_json::to_string(&tok_json).map_err(|e| tok_err(&tok_path, e.to_string()))?;
    // The result must load as a tokenizer.
    tok_text
        .parse::<Tokenizer>()
        .map_err(|e| tok_err(&tok_path, format!("pruned tokenizer does not load: {e}")))?;

    // config.json
    let cfg_path = model_dir.join(CONFIG_FILE);
    let mut cfg = read_json(&cfg_path)?;
    if !cfg.is_object() {
        return Err(EncoderError::Config {
            path: cfg_path,
            detail: "not a JSON object".into(),
        });
    }
    cfg["vocab_size"] = Value::from(kept.len());
    for key in ["pad_token_id", "bos_token_id", "eos_token_id"] {
        if let Some(n) = cfg[key].as_i64().and_then(remap) {
            cfg[key] = Value::from(n);
        }
    }
    let cfg_text = serde_json::to_string_pretty(&cfg).map_err(|e| EncoderError::Config {
        path: cfg_path.clone(),
        detail: e.to_string(),
    })?;

    // e5-small-q4.bin
    let bin_path = model_dir.join(WEIGHTS_FILE);
    let file = E5s1File::open(&bin_path)?;
    let mut vocab = file.vocab()?;
    let mut header = *file.header();
    let bad = |field: &str, detail: String| EncoderError::BadField {
        path: bin_path.clone(),
        field: field.to_string(),
        detail,
    };
    if vocab.pieces.len() != original {
        return Err(bad(
            "n_pieces",
            format!(
                "{} pieces but tokenizer.json has {original}",
                vocab.pieces.len()
            ),
        ));
    }
    if header.vocab < original {
        return Err(bad(
            "vocab",
            format!("{} embedding rows for {original} pieces", header.vocab),
        ));
    }
    for &i in &kept {
        let (p, _) = &src.vocab[i as usize];
        if vocab.pieces[i as usize] != p.as_bytes() {
            return Err(bad(
                "piece text",
                format!(
                    "piece {i} is {:?} here but {p:?} in tokenizer.json",
                    String::from_utf8_lossy(&vocab.pieces[i as usize])
                ),
            ));
        }
    }
    let keep_pieces: Vec<Vec<u8>> = kept
        .iter()
        .map(|&i| vocab.pieces[i as usize].clone())
        .collect();
    let keep_scores: Vec<f32> = kept.iter().map(|&i| vocab.scores[i as usize]).collect();
    if vocab.unused == original as i32 {
        vocab.unused = kept.len() as i32;
    }
    vocab.pieces = keep_pieces;
    vocab.scores = keep_scores;
    let remap_i32 = |v: i32| remap(v as i64).map_or(-1, |n| n as i32);
    header.bos = remap_i32(header.bos);
    header.eos = remap_i32(header.eos);
    header.pad = remap_i32(header.pad);
    header.unk = remap_i32(header.unk);
    header.vocab = kept.len();
    header.n_pieces = kept.len();

    let mut tensors = Vec::with_capacity(file.tensors().len());
    for t in file.tensors() {
        let raw = file.raw(t);
        if t.name != "emb.word" {
            tensors.push(E5s1TensorData {
                name: t.name.clone(),
                dtype: t.dtype,
                n_elements: t.n_elements,
                bytes: Cow::Borrowed(raw),
            });
            continue;
        }
        let hidden = file.header().hidden;
        let row_bytes = match t.dtype {
            E5s1DType::F32 => hidden * 4,
            E5s1DType::Q4_0 => {
                if !hidden.is_multiple_of(Q4_0_BLOCK_VALUES) {
                    return Err(EncoderError::ShapeMismatch {
                        path: bin_path.clone(),
                        name: t.name.clone(),
                        detail: format!(
                            "Q4_0 rows of {hidden} values are not whole blocks of {Q4_0_BLOCK_VALUES}; cannot copy rows"
                        ),
                    });
                }
                hidden / Q4_0_BLOCK_VALUES * Q4_0_BLOCK_BYTES
            }
        };
        let mut rows = Vec::with_capacity(kept.len() * row_bytes);
        for &i in &kept {
            let start = i as usize * row_bytes;
            let row =
                raw.get(start..start + row_bytes)
                    .ok_or_else(|| EncoderError::ShapeMismatch {
                        path: bin_path.clone(),
                        name: t.name.clone(),
                        detail: format!("row {i} lies outside {} bytes", raw.len()),
                    })?;
            rows.extend_from_slice(row);
        }
        tensors.push(E5s1TensorData {
            name: t.name.clone(),
            dtype: t.dtype,
            n_elements: kept.len() * hidden,
            bytes: Cow::Owned(rows),
        });
    }

    // Write into a staging directory, then rename.
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| EncoderError::io(&parent, e))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let base = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pruned".into());
    let tmp = parent.join(format!(".{base}.prune-tmp-{}-{stamp}", std::process::id()));
    let result = (|| -> Result<()> {
        std::fs::create_dir_all(&tmp).map_err(|e| EncoderError::io(&tmp, e))?;
        let p = tmp.join(TOKENIZER_FILE);
        std::fs::write(&p, &tok_text).map_err(|e| EncoderError::io(&p, e))?;
        let p = tmp.join(CONFIG_FILE);
        std::fs::write(&p, &cfg_text).map_err(|e| EncoderError::io(&p, e))?;
        let p = tmp.join(WEIGHTS_FILE);
        let f = std::fs::File::create(&p).map_err(|e| EncoderError::io(&p, e))?;
        let mut w = std::io::BufWriter::new(f);
        e5s1::write_e5s1(&mut w, &header, &vocab, &tensors).map_err(|e| EncoderError::io(&p, e))?;
        let f = w
            .into_inner()
            .map_err(|e| EncoderError::io(&p, e.into_error()))?;
        f.sync_all().map_err(|e| EncoderError::io(&p, e))?;
        // The reader must accept what was written.
        E5s1File::open(&p)?;
        check_out_dir(model_dir, out_dir)?;
        if out_dir.exists() {
            std::fs::remove_dir_all(out_dir).map_err(|e| EncoderError::io(out_dir, e))?;
        }
        std::fs::rename(&tmp, out_dir).map_err(|e| EncoderError::io(out_dir, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;
    Ok(PruneReport {
        kept: kept.len(),
        original,
        bytes_before: dir_bytes(model_dir)?,
        bytes_after: dir_bytes(out_dir)?,
    })
}

/// `out_dir` must not be `model_dir`, and if it exists it may hold only the
/// three model files (it is then replaced).
fn check_out_dir(model_dir: &Path, out_dir: &Path) -> Result<()> {
    if !out_dir.exists() {
        return Ok(());
    }
    let refuse = |detail: &str| EncoderError::Config {
        path: out_dir.to_path_buf(),
        detail: detail.to_string(),
    };
    let same = match (out_dir.canonicalize(), model_dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(refuse("output directory is the model directory"));
    }
    if !out_dir.is_dir() {
        return Err(refuse("exists and is not a directory"));
    }
    let entries = std::fs::read_dir(out_dir).map_err(|e| EncoderError::io(out_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EncoderError::io(out_dir, e))?;
        let name = entry.file_name();
        if ![CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE]
            .iter()
            .any(|f| name == *f)
        {
            return Err(refuse(&format!(
                "exists and holds {:?}, which is not a model file; refusing to replace it",
                name
            )));
        }
    }
    Ok(())
}
