//! Build parameters and the manifest of a complete index.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{DenseError, Result};
use crate::store::FileEntry;

/// HNSW parameters (hnsw_rs). With the `clap` feature they are also the
/// `--m`, `--ef-construction` and `--ef-search` flags, with the same defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "clap"), derive(clap::Args))]
pub struct HnswParams {
    /// HNSW links per node and layer (`max_nb_connection`), 2..=255.
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = HnswParams::DEFAULT.m))]
    pub m: usize,
    /// HNSW candidate list width while building, ≥ 1.
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = HnswParams::DEFAULT.ef_construction))]
    pub ef_construction: usize,
    /// Default HNSW candidate list width (ef) at query time, ≥ 1 (raised to
    /// `k` when smaller).
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = HnswParams::DEFAULT.ef_search))]
    pub ef_search: usize,
}

impl HnswParams {
    /// The defaults, as a constant (the flags' defaults read it).
    pub const DEFAULT: HnswParams = HnswParams {
        m: 16,
        ef_construction: 200,
        ef_search: 64,
    };
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams::DEFAULT
    }
}

/// Passages per encoder call when [`DenseBuildOptions`] is not told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 16;

impl HnswParams {
    pub fn validate(&self) -> Result<()> {
        if !(2..=255).contains(&self.m) {
            return Err(DenseError::InvalidParams {
                field: "hnsw.m",
                reason: format!("{} is outside 2..=255", self.m),
            });
        }
        if self.ef_construction == 0 {
            return Err(DenseError::InvalidParams {
                field: "hnsw.ef_construction",
                reason: "must be at least 1".into(),
            });
        }
        if self.ef_search == 0 {
            return Err(DenseError::InvalidParams {
                field: "hnsw.ef_search",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Options of [`crate::build_dense_index`].
#[derive(Debug, Clone, PartialEq)]
pub struct DenseBuildOptions {
    /// Index directory (e.g. `index/NAME/dense`); created if missing.
    pub dir: PathBuf,
    pub hnsw: HnswParams,
    /// Passages per encoder call (≥ 1). Partial files are flushed after
    /// each batch.
    pub batch_size: usize,
    /// Show progress bars (passages/s) on stderr.
    pub progress: bool,
    /// Model name or directory, recorded in the manifest; a resume with a
    /// different value is refused.
    pub model: String,
    /// For tests and benchmarks: stop with [`DenseError::Interrupted`] after
    /// this many batches embedded *in this call* (the partial files are
    /// kept, as for an interrupt). `None` (the default) = no limit.
    pub max_batches: Option<usize>,
}

impl DenseBuildOptions {
    /// Defaults (`HnswParams::default()`, batch 16, progress on,
    /// no batch limit) for `dir` and `model`.
    pub fn new(dir: impl Into<PathBuf>, model: impl Into<String>) -> Self {
        DenseBuildOptions {
            dir: dir.into(),
            hnsw: HnswParams::default(),
            batch_size: DEFAULT_BATCH_SIZE,
            progress: true,
            model: model.into(),
            max_batches: None,
        }
    }
}

/// Current manifest format.
pub const MANIFEST_FORMAT: u32 = 1;

/// `dense-manifest.json`: written last by a build; its presence marks the
/// directory as a complete index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// [`DenseBuildOptions::model`].
    pub model: String,
    pub dim: usize,
    /// Number of passages (rows).
    pub count: usize,
    pub hnsw: HnswParams,
    /// Encoder time of the build call that completed the index.
    pub seconds_embedding: f64,
    /// Graph build + dump time.
    pub seconds_graph: f64,
    /// Rows embedded by the completing call / `seconds_embedding`.
    pub passages_per_s: f64,
    /// Rows embedded by the completing call.
    pub rows_embedded: usize,
    /// Rows taken over from an interrupted earlier build.
    pub rows_resumed: usize,
    /// Data files with their sizes and checksums (embeddings, ids, graph).
    pub files: Vec<FileEntry>,
}

impl DenseManifest {
    /// What `odqa index dense` says of the index it built in `dir`.
    pub fn summary<'a>(&'a self, dir: &'a std::path::Path) -> DenseSummary<'a> {
        DenseSummary {
            manifest: self,
            dir,
        }
    }
}

/// [`DenseManifest::summary`]: one line, without a newline.
#[derive(Debug, Clone, Copy)]
pub struct DenseSummary<'a> {
    manifest: &'a DenseManifest,
    dir: &'a std::path::Path,
}

impl std::fmt::Display for DenseSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.manifest;
        write!(
            f,
            "dense index {}: {} passages, dim {}, {:.1} passages/s embedding ({} resumed), graph {:.1} s",
            self.dir.display(),
            m.count,
            m.dim,
            m.passages_per_s,
            m.rows_resumed,
            m.seconds_graph
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        hnsw: HnswParams,
    }

    #[test]
    fn flags_default_to_the_library_defaults() {
        assert_eq!(Cli::parse_from(["odqa"]).hnsw, HnswParams::default());
        let given = Cli::parse_from(["odqa", "--m", "8", "--ef-search", "10"]);
        assert_eq!(
            given.hnsw,
            HnswParams {
                m: 8,
                ef_construction: 200,
                ef_search: 10
            }
        );
    }
}
