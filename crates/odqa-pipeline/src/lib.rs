//! Retrieve-then-read: odqa's question answering pipeline.
//!
//! This crate owns the glue between retrieval and reading: an index
//! directory's layout ([`IndexDir`]: BM25 at its root, dense in `dense/`),
//! opening, choosing and fusing retrievers ([`Retriever`]: BM25, dense,
//! hybrid), running the span
//! model over question/passage windows in batches ([`Reader`]), and
//! answering a question over an index with evidence ([`Pipeline`]): reading
//! in retrieval order with early stopping, retrieval and span scores fused
//! (the math is `odqa_reader::fusion`), equal answers merged, "no answer"
//! below a threshold. It must
//! not tokenize corpora, build indexes, define model architectures or score
//! spans itself: those belong to `odqa-index`, `odqa-encoder` and
//! `odqa-reader`.
//!
//! ```rust
//! use std::sync::atomic::AtomicBool;
//! use odqa_analysis::DictionarySource;
//! use odqa_index::{build_index, BuildOptions, PassageIndex};
//! use odqa_pipeline::{RetrievalOptions, Retriever};
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
//! build_index(&options, &AtomicBool::new(false))?;
//! let bm25 = PassageIndex::open(&options.out, &options.dictionary)?;
//! // BM25 only; a dense index and encoder make it dense or hybrid.
//! let retriever = Retriever::new(bm25, None, RetrievalOptions::default())?;
//! let hits = retriever.retrieve("항구 도시", 1)?;
//! assert_eq!(hits[0].article_id, "2");
//! # Ok(())
//! # }
//! ```

mod ask;
mod reader;
mod retrieve;

pub use ask::{
    AnswersText, AskOptions, AskResult, Evidence, Pipeline, PipelineAnswer, StageTimings,
    DEFAULT_ANSWERS, DEFAULT_BATCH_WINDOWS, DEFAULT_NO_ANSWER_THRESHOLD, DEFAULT_RETRIEVAL_WEIGHT,
    DEFAULT_TOP_K,
};
pub use odqa_reader::fusion::{FusionSettings, ReadPassage, ReadSpan};
pub use reader::{ReadOutput, Reader, ReaderOptions};
pub use retrieve::{IndexDir, RetrievalMode, RetrievalOptions, Retriever};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Index(#[from] odqa_index::IndexError),
    #[error(transparent)]
    Reader(#[from] odqa_reader::ReaderError),
    #[error(transparent)]
    Model(#[from] odqa_encoder::EncoderError),
    #[error(transparent)]
    Dense(#[from] odqa_dense::DenseError),
    #[error(transparent)]
    Analysis(#[from] odqa_analysis::AnalysisError),
    #[error("{0}")]
    InvalidOption(String),
}

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
