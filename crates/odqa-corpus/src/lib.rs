//! Corpus reading and passage splitting for odqa.
//!
//! This crate owns:
//! * the corpus formats: JSON lines (`{"id", "title", "text"}` per line,
//!   optionally zstd-compressed as `.zst`), WikiExtractor plain shards
//!   (`<doc id=… title=…>` … `</doc>`), and directories of such files, read
//!   as a stream of [`ArticleRecord`]s with their [`SourceLocation`]s
//!   ([`open_corpus`], [`CorpusReader`]);
//! * splitting an [`Article`] into [`Passage`]s with exact character offsets
//!   into the article text ([`split_passages`], [`PassageConfig`]);
//! * the sentence rule that passages and pre-training share
//!   ([`sentence_spans`] in chars, [`sentences`] in bytes);
//! * the one pass "corpus → unique articles (exact repeats dropped,
//!   malformed records skipped on request) → passages" with its counts,
//!   which index builds, exports and pre-training all use ([`passages`],
//!   [`articles`], [`Passages`], [`CorpusCounts`]);
//! * naming corpora: `corpora/NAME.toml` manifests and the defaults
//!   ([`resolve_corpus`], [`ResolvedCorpus`]);
//! * writing passages as JSON lines for other systems ([`export_passages`]).
//!
//! It must not touch text analysis (tokenizing, normalization), indexing or
//! retrieval, and writes no file but a passage export. Bad input never
//! panics and is never skipped silently: every malformed record is reported
//! as a [`CorpusError`], and the caller decides whether to go on
//! ([`CorpusError::is_recoverable`]).
//!
//! ```rust
//! use odqa_corpus::{passages, PassageConfig, PassageEvent};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("corpus.jsonl");
//! std::fs::write(&path, r#"{"id": 7, "title": "서울", "text": "서울은 수도이다.\n한강이 흐른다."}"#)?;
//! let mut stream = passages(&path, &PassageConfig::default(), false)?;
//! for event in stream.by_ref() {
//!     if let PassageEvent::Article { passages, .. } = event? {
//!         assert_eq!(passages[0].id, "7-0");
//!         assert_eq!(passages[0].text, "서울은 수도이다.\n한강이 흐른다.");
//!     }
//! }
//! assert_eq!((stream.counts().articles, stream.counts().passages), (1, 1));
//! assert_eq!(odqa_corpus::sentences("서울은 수도이다. 한강이 흐른다.").len(), 2);
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

mod catalog;
mod duplicates;
mod error;
mod export;
mod passage;
mod reader;
mod sentence;
mod stream;

pub use catalog::{manifests_dir, resolve_corpus, CatalogError, ResolvedCorpus, DEFAULT_CORPORA};
pub use duplicates::{CorpusEvent, DuplicateIds, Occurrence, UniqueArticles};
pub use error::{CorpusError, SourceLocation};
pub use export::export_passages;
pub use passage::{split_passages, Passage, PassageConfig};
pub use reader::{open_corpus, ArticleRecord, CorpusReader};
pub use sentence::{sentence_spans, sentences};
pub use stream::{articles, passages, CorpusCounts, PassageEvent, Passages};

/// One article of a corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    /// Page id (a JSON integer id is converted to its decimal string).
    pub id: String,
    /// Title.
    pub title: String,
    /// Plain text; paragraphs are separated by `\n`. May be empty.
    pub text: String,
}
