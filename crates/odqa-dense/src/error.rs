//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong building, opening or searching a dense
/// index. Variants name the file (and field, row or batch) they are about.
#[derive(Debug, thiserror::Error)]
pub enum DenseError {
    /// An I/O operation on `path` failed.
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The directory holds no complete dense index (no manifest).
    #[error("no dense index in {dir} (missing {manifest}); run `odqa index dense` (or `odqa index build --dense`) first")]
    NotBuilt { dir: PathBuf, manifest: PathBuf },

    /// The manifest exists but cannot be parsed or has an invalid field.
    #[error("{path}: invalid manifest field `{field}`: {reason}")]
    Manifest {
        path: PathBuf,
        field: String,
        reason: String,
    },

    /// A data file of a (supposedly complete) index is damaged: wrong size,
    /// checksum mismatch, bad values, unreadable graph.
    #[error("{path}: corrupt dense index file: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    /// Partial files from an interrupted build do not belong to this build
    /// (other passages, other model or dimension).
    #[error("{path}: cannot resume the interrupted dense build: {reason} (delete the partial files to start over)")]
    PartialMismatch { path: PathBuf, reason: String },

    /// A build parameter is out of range.
    #[error("invalid dense parameter `{field}`: {reason}")]
    InvalidParams { field: &'static str, reason: String },

    /// A passage handed to the build is unusable.
    #[error("passage {index} (id {passage_id:?}): {reason}")]
    InvalidPassage {
        index: usize,
        passage_id: String,
        reason: String,
    },

    /// A query vector has the wrong dimension.
    #[error("query vector has dimension {got}, the dense index has {expected}")]
    DimensionMismatch { expected: usize, got: usize },

    /// A query vector is unusable (non-finite values, zero norm).
    #[error("invalid query vector: {reason}")]
    InvalidQuery { reason: String },

    /// The encoder failed on a batch.
    #[error("embedding passages {start}..{end}: {source}")]
    Encoder {
        start: usize,
        end: usize,
        #[source]
        source: odqa_encoder::EncoderError,
    },

    /// The encoder returned something other than `batch` finite vectors of
    /// the expected dimension.
    #[error("embedding passages {start}..{end}: encoder output: {reason}")]
    EncoderOutput {
        start: usize,
        end: usize,
        reason: String,
    },

    /// hnsw_rs failed building, dumping or reloading the graph.
    #[error("{path}: HNSW graph: {reason}")]
    Graph { path: PathBuf, reason: String },

    /// The build was interrupted (flag or `max_batches`); the partial files
    /// are kept and a rerun resumes after the `embedded` rows.
    #[error("dense build interrupted after {embedded} of {total} passages; rerun to resume")]
    Interrupted { embedded: usize, total: usize },
}

impl DenseError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        DenseError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DenseError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` with [`DenseError`].
pub type Result<T, E = DenseError> = std::result::Result<T, E>;
