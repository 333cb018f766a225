//! Opening and searching a complete dense index.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DenseError, Result};
use crate::graph::{self, Graph};
use crate::params::{DenseManifest, MANIFEST_FORMAT};
use crate::store::{self, EMBEDDINGS_FILE, GRAPH_DATA_FILE, GRAPH_FILE, IDS_FILE, MANIFEST_FILE};

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseHit {
    /// Row in the index (0-based, passage order of the build).
    pub row: usize,
    pub passage_id: String,
    /// Cosine similarity: dot product of the normalized query and the
    /// passage embedding, computed exactly (also for HNSW hits).
    pub score: f32,
}

/// A complete dense index loaded into memory: embeddings (row-major f32),
/// passage ids and the HNSW graph. `Send + Sync`; searches take `&self`.
///
/// Memory: the embeddings are held twice (once here for exact search and
/// exact rescoring, once inside the hnsw_rs graph), i.e. about
/// `2 × count × dim × 4` bytes plus the graph's links.
pub struct DenseIndex {
    dir: PathBuf,
    manifest: DenseManifest,
    ids: Vec<String>,
    rows: Vec<f32>,
    graph: Option<Graph>,
}

impl std::fmt::Debug for DenseIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenseIndex")
            .field("dir", &self.dir)
            .field("count", &self.manifest.count)
            .field("dim", &self.manifest.dim)
            .finish_non_exhaustive()
    }
}

fn manifest_err(path: &Path, field: &str, reason: impl Into<String>) -> DenseError {
    DenseError::Manifest {
        path: path.to_path_buf(),
        field: field.into(),
        reason: reason.into(),
    }
}

impl DenseIndex {
    /// Opens the index in `dir`: reads the manifest, verifies every data
    /// file's size and checksum, loads the embeddings, ids and graph.
    /// [`DenseError::NotBuilt`] when there is no manifest (never built, or
    /// a build that did not finish).
    pub fn open(dir: &Path) -> Result<Self> {
        let mpath = dir.join(MANIFEST_FILE);
        let bytes = match fs::read(&mpath) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DenseError::NotBuilt {
                    dir: dir.to_path_buf(),
                    manifest: mpath,
                })
            }
            Err(e) => return Err(DenseError::io(&mpath, "read", e)),
        };
        let manifest: DenseManifest = serde_json::from_slice(&bytes)
            .map_err(|e| manifest_err(&mpath, "(json)", e.to_string()))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(manifest_err(
                &mpath,
                "format",
                format!(
                    "format {} is not supported (expected {MANIFEST_FORMAT}); rebuild the index",
                    manifest.format
                ),
            ));
        }
        if manifest.dim == 0 {
            return Err(manifest_err(&mpath, "dim", "must be at least 1"));
        }
        manifest
            .hnsw
            .validate()
            .map_err(|e| manifest_err(&mpath, "hnsw", e.to_string()))?;
        let mut needed = vec![EMBEDDINGS_FILE, IDS_FILE];
        if manifest.count > 0 {
            needed.extend([GRAPH_FILE, GRAPH_DATA_FILE]);
        }
        for name in &needed {
            if !manifest.files.iter().any(|f| f.name == *name) {
                return Err(manifest_err(
                    &mpath,
                    "files",
                    format!("no entry for {name}"),
                ));
            }
        }
        for entry in &manifest.files {
            if entry.name.contains(['/', '\\']) || entry.name.starts_with('.') {
                return Err(manifest_err(
                    &mpath,
                    "files",
                    format!("bad file name {:?}", entry.name),
                ));
            }
        }

        // Embeddings: exact size, checksum, finite values.
        let epath = dir.join(EMBEDDINGS_FILE);
        let (rows, sum) = store::read_embeddings(&epath, manifest.count, manifest.dim)?;
        if let Some(entry) = manifest.files.iter().find(|f| f.name == EMBEDDINGS_FILE) {
            if entry.checksum != sum {
                return Err(DenseError::corrupt(
                    &epath,
                    format!(
                        "checksum {sum} differs from the manifest's {}",
                        entry.checksum
                    ),
                ));
            }
        }
        // Everything else: size + checksum before parsing.
        for entry in manifest.files.iter().filter(|f| f.name != EMBEDDINGS_FILE) {
            store::verify_entry(dir, entry)?;
        }

        let ipath = dir.join(IDS_FILE);
        let (ids, torn) = store::read_ids(&ipath)?;
        if torn || ids.len() != manifest.count {
            return Err(DenseError::corrupt(
                &ipath,
                format!(
                    "{} complete lines, the manifest records {} passages",
                    ids.len(),
                    manifest.count
                ),
            ));
        }

        let graph = if manifest.count > 0 {
            Some(graph::load(dir, manifest.count, manifest.dim)?)
        } else {
            None
        };
        Ok(DenseIndex {
            dir: dir.to_path_buf(),
            manifest,
            ids,
            rows,
            graph,
        })
    }

    pub fn manifest(&self) -> &DenseManifest {
        &self.manifest
    }

    /// The directory the index was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.manifest.dim
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn passage_id(&self, row: usize) -> Option<&str> {
        self.ids.get(row).map(String::as_str)
    }

    /// The stored embedding of `row`.
    pub fn embedding(&self, row: usize) -> Option<&[f32]> {
        let d = self.manifest.dim;
        self.rows.get(row * d..(row + 1) * d)
    }

    /// Checks the query's dimension and values and returns it normalized.
    fn prepare_query(&self, query: &[f32]) -> Result<Vec<f32>> {
        if query.len() != self.manifest.dim {
            return Err(DenseError::DimensionMismatch {
                expected: self.manifest.dim,
                got: query.len(),
            });
        }
        if let Some(i) = query.iter().position(|x| !x.is_finite()) {
            return Err(DenseError::InvalidQuery {
                reason: format!("non-finite value {} at dim {i}", query[i]),
            });
        }
        let norm = graph::dot(query, query).sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return Err(DenseError::InvalidQuery {
                reason: format!("norm is {norm}"),
            });
        }
        Ok(query.iter().map(|x| x / norm).collect())
    }

    fn hit(&self, row: usize, score: f32) -> DenseHit {
        DenseHit {
            row,
            passage_id: self.ids[row].clone(),
            score,
        }
    }

    /// Approximate top-`k` by the HNSW graph, with candidate list width
    /// `ef_search` (default: the manifest's; raised to `k` when smaller).
    /// The query is normalized; scores are exact cosines, sorted
    /// descending (ties by row).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef_search: Option<usize>,
    ) -> Result<Vec<DenseHit>> {
        let q = self.prepare_query(query)?;
        let graph = match &self.graph {
            Some(g) if k > 0 => g,
            _ => return Ok(Vec::new()),
        };
        let k = k.min(self.len());
        let ef = ef_search.unwrap_or(self.manifest.hnsw.ef_search).max(k);
        let found = graph::search(graph, &q, k, ef)?;
        let d = self.manifest.dim;
        let mut hits = Vec::with_capacity(found.len());
        for n in found {
            let row = n.d_id;
            if row >= self.len() {
                return Err(DenseError::corrupt(
                    self.dir.join(GRAPH_FILE),
                    format!("graph returned row {row}, the index has {}", self.len()),
                ));
            }
            let score = graph::dot(&q, &self.rows[row * d..(row + 1) * d]);
            hits.push(self.hit(row, score));
        }
        sort_hits(&mut hits);
        hits.dedup_by_key(|h| h.row);
        hits.truncate(k);
        Ok(hits)
    }

    /// Exact top-`k` by brute force over all rows (for evaluation). The
    /// query is normalized; sorted by score descending, ties by row.
    pub fn search_exact(&self, query: &[f32], k: usize) -> Result<Vec<DenseHit>> {
        let q = self.prepare_query(query)?;
        let k = k.min(self.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        let d = self.manifest.dim;
        let mut scored: Vec<(f32, usize)> = self
            .rows
            .chunks_exact(d)
            .enumerate()
            .map(|(row, v)| (graph::dot(&q, v), row))
            .collect();
        let cmp = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if k < scored.len() {
            scored.select_nth_unstable_by(k - 1, cmp);
            scored.truncate(k);
        }
        scored.sort_by(cmp);
        Ok(scored
            .into_iter()
            .map(|(score, row)| self.hit(row, score))
            .collect())
    }
}

fn sort_hits(hits: &mut [DenseHit]) {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row.cmp(&b.row)));
}
