//! Errors of the corpus reader and the passage splitter.

use std::fmt;
use std::path::PathBuf;

/// Where a record (or a bad line) sits in the input: a file and a 1-based line.
///
/// For a `.zst` file the line is counted in the decompressed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    /// The file the record was read from (a file under the corpus directory
    /// when the corpus is a directory).
    pub path: PathBuf,
    /// 1-based line number of the record's first line.
    pub line: usize,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// Everything that can go wrong while reading a corpus or configuring the
/// passage splitter.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// Reading or opening a file failed (this includes a corrupt zstd
    /// stream). Not recoverable: the reader stops after it.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// One record is bad: invalid JSON or UTF-8, a missing, empty or wrongly
    /// typed `id`/`title`/`text` field (the message names it), a broken
    /// WikiExtractor `<doc>` element. Recoverable: the reader goes on with
    /// the next record.
    #[error("{location}: {message}")]
    Malformed {
        /// Where the bad record starts.
        location: SourceLocation,
        /// What is wrong with it.
        message: String,
    },
    /// The corpus path does not exist.
    #[error("corpus not found: {}", .0.display())]
    NotFound(PathBuf),
    /// The corpus holds no article at all (a directory without files, an
    /// empty file, or a file whose every record was bad).
    #[error("corpus contains no article: {}", .0.display())]
    Empty(PathBuf),
    /// A [`crate::PassageConfig`] failed validation.
    #[error("invalid passage configuration: {0}")]
    InvalidConfig(String),
}

impl CorpusError {
    /// `true` for a malformed record: the caller may report it, skip it
    /// (`--skip-bad-lines`) and keep iterating. `false` for everything else
    /// (I/O errors, missing or empty corpus, bad configuration); after such
    /// an error the reader yields `None`.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, CorpusError::Malformed { .. })
    }

    /// The location of a malformed record, if this is one.
    pub fn location(&self) -> Option<&SourceLocation> {
        match self {
            CorpusError::Malformed { location, .. } => Some(location),
            _ => None,
        }
    }
}
