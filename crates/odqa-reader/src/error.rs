//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// A [`crate::WindowConfig`] or [`crate::ScoringConfig`] that cannot work.
    #[error("invalid config: {0}")]
    Config(String),
    /// The tokenizer has neither `<s>`/`</s>` nor `[CLS]`/`[SEP]`.
    #[error("tokenizer has no <s>/</s> or [CLS]/[SEP] special tokens")]
    NoSpecialTokens,
    /// The tokenizer failed on some input.
    #[error("tokenizer failed on {what}: {detail}")]
    Tokenizer { what: String, detail: String },
    /// The question is empty or whitespace-only, or tokenizes to nothing.
    #[error("question is empty")]
    EmptyQuestion,
    /// A passage is empty or whitespace-only, or tokenizes to nothing.
    #[error("passage {index} is empty")]
    EmptyPassage { index: usize },
    /// Logits do not fit the window they are said to belong to.
    #[error("logits: {0}")]
    Logits(String),
    /// Windows, logits and passages handed together do not belong together.
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// The model failed on a batch (its own error inside).
    #[error("model: {0}")]
    Model(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A dataset JSON that is not KorQuAD/SQuAD-shaped.
    #[error("dataset: {0}")]
    Dataset(String),
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `Result` with [`ReaderError`].
pub type Result<T, E = ReaderError> = std::result::Result<T, E>;
