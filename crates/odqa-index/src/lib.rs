//! odqa's BM25 passage index: building it from a corpus on disk (tantivy),
//! its build manifest, and ranked search.
//!
//! This crate owns the index directory and everything inside it. It takes
//! articles and passages from `odqa-corpus` and terms from `odqa-analysis`;
//! it must not parse corpora, analyze text itself, or know about models,
//! benchmarks or the command line.
//!
//! Scoring is BM25 computed here over tantivy's postings and field norms:
//! tantivy fixes k1 = 1.2 and b = 0.75 as constants (and keeps its block-max
//! WAND private to its own term scorers), and odqa needs them configurable
//! (and changeable at query time without a rebuild). The top-k path is
//! MaxScore (document at a time, skipping through tantivy's skip lists with
//! `seek`), exact against the exhaustive term-at-a-time scorer kept beside it.

mod build;
mod manifest;
mod search;
mod snippet;

pub use build::{build_index, BuildOptions, DEFAULT_TITLE_DICTIONARY, USER_DICTIONARY_FILE};
pub use manifest::{
    Bm25Params, BuildCounts, IndexManifest, DEFAULT_QUESTION_WEIGHT, MANIFEST_FILE, QUESTION_TERMS,
};
pub use search::{Hit, PassageIndex};
pub use snippet::{snippet, Snippet};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Corpus(#[from] odqa_corpus::CorpusError),
    #[error(transparent)]
    Analysis(#[from] odqa_analysis::AnalysisError),
    #[error("index {path}: {source}")]
    Tantivy {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an odqa index (no {MANIFEST_FILE}); build one with `odqa index build --corpus … --out {path}`")]
    NotAnIndex { path: PathBuf },
    #[error("corrupt index manifest {path}: {message}")]
    BadManifest { path: PathBuf, message: String },
    #[error("{path} already exists; pass --force to replace it")]
    AlreadyExists { path: PathBuf },
    #[error("{0}")]
    InvalidOption(String),
    #[error("the query {query:?} has no searchable terms after analysis")]
    EmptyQuery { query: String },
    #[error("corpus {path} yielded no passages")]
    NoPassages { path: PathBuf },
    #[error("build interrupted")]
    Interrupted,
}
