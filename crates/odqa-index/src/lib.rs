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
//!
//! ```rust
//! use std::sync::atomic::AtomicBool;
//! use odqa_analysis::DictionarySource;
//! use odqa_index::{build_index, BuildOptions, PassageIndex};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let corpus = dir.path().join("corpus.jsonl");
//! std::fs::write(&corpus, concat!(
//!     r#"{"id": 1, "title": "서울", "text": "서울은 대한민국의 수도이다."}"#, "\n",
//!     r#"{"id": 2, "title": "부산", "text": "부산은 항구 도시이다."}"#, "\n",
//! ))?;
//! let mut options = BuildOptions::new(corpus, dir.path().join("index"));
//! options.dictionary = DictionarySource::Directory(
//!     "../../../shared/ko-dic/lindera-cache/6.2.0-fmt2/lindera-ko-dic".into(),
//! );
//! options.threads = 1;
//! let manifest = build_index(&options, &AtomicBool::new(false))?;
//! assert_eq!(manifest.counts.passages, 2);
//! let index = PassageIndex::open(&options.out, &options.dictionary)?;
//! let hits = index.search("대한민국의 수도", 1)?;
//! assert_eq!(hits[0].article_id, "1");
//! # Ok(())
//! # }
//! ```

mod build;
mod manifest;
mod search;
mod snippet;

pub use build::{
    build_index, BuildOptions, DEFAULT_MEMORY_MB, DEFAULT_TITLE_DICTIONARY, USER_DICTIONARY_FILE,
};
pub use manifest::{
    Bm25Params, BuildCounts, BuildSummary, IndexManifest, DEFAULT_QUESTION_WEIGHT, MANIFEST_FILE,
    QUESTION_TERMS,
};
pub use search::{Hit, PassageIndex, RankedPassage, PAIR_RERANK_DEPTH};
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
    #[error("{} yields {yields} passages but the index at {} holds {holds}: the corpus changed since the build; rebuild the index", corpus.display(), index.display())]
    CorpusChanged {
        corpus: PathBuf,
        index: PathBuf,
        yields: u64,
        holds: u64,
    },
}
