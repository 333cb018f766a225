//! The dense passage index of odqa.
//!
//! This crate owns the dense side of retrieval and nothing else: passage
//! embeddings on disk, the HNSW graph ([hnsw_rs]), exact (brute-force)
//! search for evaluation, and rank fusion of result lists ([`fusion`]). It
//! does not read corpora, run BM25 or parse questions: callers hand it
//! `(passage_id, text)` pairs and query vectors (from
//! [`odqa_encoder::Encoder::embed`] with [`odqa_encoder::TextKind::Query`]).
//!
//! # Building
//!
//! [`build_dense_index`] embeds every passage with
//! [`odqa_encoder::TextKind::Passage`] in batches (progress bar with
//! passages/s), appending each batch to `embeddings.f32.partial` and its ids
//! to `ids.partial` (flushed and synced). The build is restartable: a rerun
//! with the same passages (same ids in the same order, same model and
//! dimension — checked) resumes after the rows already there; torn last
//! batches are truncated. The `interrupt` flag is polled between batches
//! and returns [`DenseError::Interrupted`], keeping the partial files. When
//! all rows are embedded they are renamed to `embeddings.f32` / `ids.txt`,
//! the graph is built (parallel inserts) and dumped (`graph.hnsw.graph`,
//! `graph.hnsw.data`), and `dense-manifest.json` is written last (atomic
//! rename), with the model, dimension, count, HNSW parameters, timings and
//! each file's size and checksum. A directory without the manifest is
//! never opened, so an interruption cannot leave an index that looks
//! complete. Rebuilding into a directory with a complete index starts from
//! scratch.
//!
//! # Searching
//!
//! [`DenseIndex::open`] verifies the manifest and every file (size,
//! checksum, finite values) before handing anything to hnsw_rs, and turns
//! hnsw_rs panics into errors. [`DenseIndex::search`] walks the graph;
//! [`DenseIndex::search_exact`] scans all rows. Both normalize the query and
//! score hits by exact cosine (dot product with the stored normalized
//! embedding), sorted descending with ties by row.
//!
//! Errors are [`DenseError`]s naming the file and field; no input reaches
//! an `unwrap`/`expect`.
//!
//! [hnsw_rs]: https://crates.io/crates/hnsw_rs
//!
//! ```rust
//! use std::sync::atomic::AtomicBool;
//! use odqa_dense::{build_dense_index_from_embeddings, DenseBuildOptions, DenseIndex};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let ids = ["서울-0".to_string(), "부산-0".to_string()];
//! let embeddings = [1.0, 0.0, 0.0, 1.0]; // two passages, dimension 2
//! let options = DenseBuildOptions::new(dir.path(), "tiny");
//! build_dense_index_from_embeddings(&ids, &embeddings, 2, &options, &AtomicBool::new(false))?;
//! let index = DenseIndex::open(dir.path())?;
//! let hits = index.search(&[0.9, 0.1], 1, None)?;
//! assert_eq!(hits[0].passage_id, "서울-0");
//! # Ok(())
//! # }
//! ```

mod build;
mod error;
pub mod fusion;
mod graph;
mod index;
mod params;
mod store;

pub use build::{build_dense_index, build_dense_index_from_embeddings};
pub use error::{DenseError, Result};
pub use fusion::{fuse, Fusion};
pub use graph::CosineDot;
pub use index::{DenseHit, DenseIndex};
pub use params::{
    DenseBuildOptions, DenseManifest, DenseSummary, HnswParams, DEFAULT_BATCH_SIZE, MANIFEST_FORMAT,
};
pub use store::{
    Checksum, FileEntry, EMBEDDINGS_FILE, EMBEDDINGS_PARTIAL_FILE, GRAPH_DATA_FILE, GRAPH_FILE,
    IDS_FILE, IDS_PARTIAL_FILE, MANIFEST_FILE, PARTIAL_META_FILE,
};
