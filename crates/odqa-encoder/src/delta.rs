//! odqa's trained reader: what training changed, stored on top of the base
//! model so that the artifact stays small (the 96M-parameter word-embedding
//! table is frozen during training and never stored).
//!
//! A reader directory holds [`READER_MANIFEST_FILE`] and
//! [`READER_DELTA_FILE`], a safetensors file with, per tensor of the base
//! model's Hugging Face BERT names:
//!
//! - `NAME.delta_q` (u8, the base tensor's shape) and `NAME.delta_scale`
//!   (f32, one per row): `NAME = base + (delta_q − 128) × delta_scale[row]`
//!   (symmetric int8 per output row, zero point 128);
//! - or `NAME` itself (f32): replaces the base tensor (vectors: biases,
//!   LayerNorm);
//! - `qa_outputs.weight` / `qa_outputs.bias`: the span head.
//!
//! Every tensor must match the base model's name and shape; anything else
//! is an error naming the tensor.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use crate::encoder::{read_safetensors, TensorMap};
use crate::error::{EncoderError, Result};

/// Describes a reader directory.
pub const READER_MANIFEST_FILE: &str = "odqa-reader.json";
/// The deltas and head.
pub const READER_DELTA_FILE: &str = "reader-delta.safetensors";
/// The one delta format this build reads.
pub const READER_FORMAT: &str = "odqa-reader-delta/1";

/// `odqa-reader.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderManifest {
    /// [`READER_FORMAT`].
    pub format: String,
    /// The base model the deltas apply to (`multilingual-e5-small`).
    pub base_model: String,
    /// Window length the reader was trained with (informational).
    #[serde(default)]
    pub trained_max_len: Option<usize>,
}

impl ReaderManifest {
    /// Reads and checks the manifest of a reader directory.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(READER_MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|e| EncoderError::io(&path, e))?;
        let manifest: ReaderManifest =
            serde_json::from_slice(&bytes).map_err(|e| EncoderError::Config {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if manifest.format != READER_FORMAT {
            return Err(EncoderError::BadField {
                path,
                field: "format".into(),
                detail: format!("{:?}, this build reads {READER_FORMAT:?}", manifest.format),
            });
        }
        Ok(manifest)
    }
}

/// Whether `dir` is an odqa reader directory (deltas on a base model).
pub fn is_delta_reader(dir: &Path) -> bool {
    dir.join(READER_MANIFEST_FILE).is_file()
}

/// Applies the deltas of `path` to `base` in place; returns the head tensors.
pub(crate) fn apply_delta(base: &mut TensorMap, path: &Path, device: &Device) -> Result<TensorMap> {
    let delta = read_safetensors(path, &Device::Cpu)?;
    let shape_err = |name: &str, detail: String| EncoderError::ShapeMismatch {
        path: path.to_path_buf(),
        name: name.to_string(),
        detail,
    };
    let mut heads = TensorMap::new();
    for (name, tensor) in &delta {
        if name.starts_with("qa_outputs.") {
            heads.insert(
                name.clone(),
                tensor.to_dtype(DType::F32)?.to_device(device)?,
            );
            continue;
        }
        if let Some(target) = name.strip_suffix(".delta_scale") {
            let q_name = format!("{target}.delta_q");
            if !delta.contains_key(&q_name) {
                return Err(EncoderError::MissingTensor {
                    path: path.to_path_buf(),
                    name: q_name,
                });
            }
            continue; // read with its `.delta_q`
        }
        let (target, value) = match name.strip_suffix(".delta_q") {
            Some(target) => {
                let scale_name = format!("{target}.delta_scale");
                let scale = delta
                    .get(&scale_name)
                    .ok_or_else(|| EncoderError::MissingTensor {
                        path: path.to_path_buf(),
                        name: scale_name.clone(),
                    })?;
                if tensor.dtype() != DType::U8 || tensor.rank() != 2 {
                    return Err(shape_err(
                        name,
                        format!(
                            "expected a 2-D u8 tensor, found {:?} {:?}",
                            tensor.dtype(),
                            tensor.dims()
                        ),
                    ));
                }
                let rows = tensor.dims()[0];
                if scale.dims() != [rows] {
                    return Err(shape_err(
                        &scale_name,
                        format!("{:?}, expected [{rows}] (one scale per row)", scale.dims()),
                    ));
                }
                let q = tensor.to_dtype(DType::F32)?.affine(1.0, -128.0)?;
                let scale = scale.to_dtype(DType::F32)?.unsqueeze(1)?;
                (target, Some(q.broadcast_mul(&scale)?))
            }
            None => (name.as_str(), None),
        };
        let Some(current) = base.get(target) else {
            return Err(EncoderError::UnknownTensor {
                path: path.to_path_buf(),
                name: name.clone(),
            });
        };
        let new_dims = value.as_ref().map_or(tensor.dims(), |v| v.dims());
        if current.dims() != new_dims {
            return Err(shape_err(
                name,
                format!("{new_dims:?}, the base model has {:?}", current.dims()),
            ));
        }
        let updated = match value {
            Some(d) => (current.to_device(&Device::Cpu)? + d)?,
            None => tensor.to_dtype(DType::F32)?,
        };
        base.insert(target.to_string(), updated.to_device(device)?);
    }
    Ok(heads)
}

/// The reader directory's delta file.
pub fn delta_path(dir: &Path) -> PathBuf {
    dir.join(READER_DELTA_FILE)
}
