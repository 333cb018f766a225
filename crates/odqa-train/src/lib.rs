//! Training data for odqa's span reader.
//!
//! Owns: reading SQuAD-format training sets with their answer offsets
//! ([`squad`]), deterministic held-out splits ([`split`]), labelling a
//! window with the token positions of its answer or the no-answer position
//! ([`labels`]), and the export of labelled windows as compact token-id
//! files that a trainer reads ([`export`]). Windows come from
//! `odqa_reader::Windower`, the very code the reader runs at inference, and
//! relation questions from `odqa_relations::questions`, the very templates
//! relation extraction asks. Span-selection pre-training examples
//! (recurring spans and retrieval-backed cloze, [`pretrain`]) go through
//! the same windows and the same exporter. Parity of odqa's reader with the
//! trainer ([`parity`]): the trainer's reference logits read, the windows
//! laid out, both sides' best spans decoded alike and the typed report;
//! the forward pass itself is the caller's. Reports print as summaries
//! ([`ExportReport::summary`], [`CorpusRun::summary`]); the model
//! tokenizer every export windows with loads through [`load_tokenizer`].
//! With the `clap` feature [`ExportConfig`] and [`PretrainConfig`] are
//! also the command line's flags, their defaults stated once.
//!
//! Must not touch: model weights or training itself (the recipe under
//! `train/` reads what this crate writes), retrieval scoring, span scoring.
//!
//! ```rust
//! use odqa_train::split::held_out_keys;
//! // The held-out set depends on the keys and the seed, not on their order.
//! let titles = ["서울", "부산", "대구", "인천", "광주", "대전"];
//! let dev = held_out_keys(titles, 0.5, 7);
//! assert_eq!(dev, held_out_keys(titles.iter().rev().copied(), 0.5, 7));
//! assert!(dev.iter().all(|t| titles.contains(&t.as_str())));
//! ```

pub mod export;
pub mod labels;
pub mod parity;
pub mod pretrain;
pub mod split;
pub mod squad;

pub use export::{
    export, ExportConfig, ExportReport, ExportSummary, Kind, RelationTemplates, Sources,
};
pub use pretrain::{
    generate, generate_from_corpus, CorpusRun, Generator, PretrainConfig, PretrainExample,
    PretrainReport, PretrainSummary, RunProvenance,
};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Data { path: PathBuf, detail: String },
    #[error(transparent)]
    Reader(#[from] odqa_reader::ReaderError),
    #[error(transparent)]
    Relations(#[from] odqa_relations::RelationError),
    #[error(transparent)]
    Index(#[from] odqa_index::IndexError),
    #[error(transparent)]
    Analysis(#[from] odqa_analysis::AnalysisError),
    #[error(transparent)]
    Corpus(#[from] odqa_corpus::CorpusError),
    #[error("invalid export setting: {0}")]
    Config(String),
    /// Reference files that disagree with each other or with the export.
    #[error("{0}")]
    Parity(String),
    /// The model's `tokenizer.json` is missing or not a tokenizer.
    #[error("{path}: {detail}")]
    Tokenizer { path: PathBuf, detail: String },
    /// The forward pass the caller gave [`parity::Parity::run`] failed.
    #[error(transparent)]
    Forward(Box<dyn std::error::Error + Send + Sync>),
    /// An I/O or format failure, `context` naming the file.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, TrainError>;

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The tokenizer of the model in `model_dir` (its `tokenizer.json`), which
/// makes the windows of every export.
pub fn load_tokenizer(model_dir: &Path) -> Result<tokenizers::Tokenizer> {
    let path = model_dir.join("tokenizer.json");
    tokenizers::Tokenizer::from_file(&path).map_err(|e| TrainError::Tokenizer {
        detail: e.to_string(),
        path,
    })
}

/// Writes `text` to `path`, creating its parent directories first.
pub(crate) fn write_creating_parent(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| TrainError::Context {
            context: format!("creating {}", parent.display()),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| TrainError::Context {
        context: format!("writing {}", path.display()),
        source,
    })
}
