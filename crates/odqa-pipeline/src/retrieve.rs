use odqa_dense::{fuse, DenseIndex, Fusion};
use odqa_encoder::{Encoder, TextKind};
use odqa_index::{Bm25Params, Hit, PassageIndex};
use serde::{Deserialize, Serialize};

use crate::{PipelineError, Result};

/// An index directory's layout: the BM25 index at its root, the dense
/// index ([`IndexDir::DENSE_MODEL`]'s embeddings and the HNSW graph) in
/// `dense/` inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDir(std::path::PathBuf);

impl IndexDir {
    /// The model whose embeddings the dense index holds (recorded in its
    /// manifest; resuming a build checks it).
    pub const DENSE_MODEL: &'static str = "multilingual-e5-small";

    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        IndexDir(path.into())
    }

    /// The BM25 index.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// The dense index.
    pub fn dense(&self) -> std::path::PathBuf {
        self.0.join("dense")
    }
}

/// Which retriever ranks passages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "clap"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum RetrievalMode {
    /// BM25 over the Korean analyzer's terms.
    Bm25,
    /// multilingual-e5-small embeddings searched in the HNSW graph.
    Dense,
    /// Both, fused.
    Hybrid,
}

impl RetrievalMode {
    /// The mode's name as flags, the API and result files spell it.
    pub fn name(self) -> &'static str {
        match self {
            RetrievalMode::Bm25 => "bm25",
            RetrievalMode::Dense => "dense",
            RetrievalMode::Hybrid => "hybrid",
        }
    }
}

/// Dense search and fusion settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetrievalOptions {
    pub mode: RetrievalMode,
    pub fusion: Fusion,
    /// Depth of each list before fusion (at least the requested k).
    pub fusion_depth: usize,
    /// HNSW `ef` at query time; `None` = the index's default.
    pub ef_search: Option<usize>,
    /// Brute-force dense search instead of HNSW (for evaluation).
    pub exact: bool,
    /// BM25 parameters; `None` = the index's.
    pub bm25: Option<Bm25Params>,
}

impl Default for RetrievalOptions {
    fn default() -> Self {
        RetrievalOptions {
            mode: RetrievalMode::Bm25,
            // Chosen on the dev questions over kowiki-2020-mini (bench/README.md).
            fusion: Fusion::Weighted { dense_weight: 0.5 },
            fusion_depth: 100,
            ef_search: None,
            exact: false,
            bm25: None,
        }
    }
}

/// The BM25 index, and optionally the dense index with its query encoder.
pub struct Retriever {
    bm25: PassageIndex,
    dense: Option<(DenseIndex, Encoder)>,
    options: RetrievalOptions,
}

impl Retriever {
    pub fn new(
        bm25: PassageIndex,
        dense: Option<(DenseIndex, Encoder)>,
        options: RetrievalOptions,
    ) -> Result<Self> {
        if options.mode != RetrievalMode::Bm25 && dense.is_none() {
            return Err(PipelineError::InvalidOption(
                "dense and hybrid retrieval need a dense index: build one with `odqa index dense`"
                    .into(),
            ));
        }
        Ok(Retriever {
            bm25,
            dense,
            options,
        })
    }

    /// Opens the BM25 index in `dir`, then `options` for it, then, when
    /// their mode needs them, the dense index and the query encoder.
    pub fn open<E: From<PipelineError>>(
        dir: &IndexDir,
        dictionary: &odqa_analysis::DictionarySource,
        options: impl FnOnce(&PassageIndex) -> std::result::Result<RetrievalOptions, E>,
        encoder: impl FnOnce() -> std::result::Result<Encoder, E>,
    ) -> std::result::Result<Self, E> {
        let index = PassageIndex::open(dir.path(), dictionary).map_err(PipelineError::from)?;
        let options = options(&index)?;
        let dense = match options.mode {
            RetrievalMode::Bm25 => None,
            RetrievalMode::Dense | RetrievalMode::Hybrid => {
                let dense = DenseIndex::open(&dir.dense()).map_err(PipelineError::from)?;
                Some((dense, encoder()?))
            }
        };
        Ok(Retriever::new(index, dense, options)?)
    }

    pub fn bm25(&self) -> &PassageIndex {
        &self.bm25
    }

    pub fn options(&self) -> &RetrievalOptions {
        &self.options
    }

    /// Whether a dense index is loaded (dense and hybrid modes available).
    pub fn has_dense(&self) -> bool {
        self.dense.is_some()
    }

    /// The top `k` passages for `query`, best first.
    pub fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        self.retrieve_mode(query, k, self.options.mode)
    }

    /// [`Retriever::retrieve`] in another mode than the configured one (the
    /// other settings stay); dense and hybrid need a dense index.
    pub fn retrieve_with(&self, query: &str, k: usize, mode: RetrievalMode) -> Result<Vec<Hit>> {
        if mode != RetrievalMode::Bm25 && self.dense.is_none() {
            return Err(PipelineError::InvalidOption(format!(
                "{mode:?} retrieval needs a dense index: build one with `odqa index dense`"
            )));
        }
        self.retrieve_mode(query, k, mode)
    }

    fn retrieve_mode(&self, query: &str, k: usize, mode: RetrievalMode) -> Result<Vec<Hit>> {
        match (mode, &self.dense) {
            (RetrievalMode::Bm25, _) | (_, None) => self.bm25_search(query, k),
            (RetrievalMode::Dense, Some(dense)) => {
                let ranked = self.dense_ranked(dense, query, k)?;
                self.hits(ranked)
            }
            (RetrievalMode::Hybrid, Some(dense)) => {
                let depth = self.options.fusion_depth.max(k);
                let bm25: Vec<(String, f32)> = match self.bm25_search(query, depth) {
                    Ok(hits) => hits.into_iter().map(|h| (h.passage_id, h.score)).collect(),
                    // A query of only function words still has a dense reading.
                    Err(PipelineError::Index(odqa_index::IndexError::EmptyQuery { .. })) => {
                        Vec::new()
                    }
                    Err(e) => return Err(e),
                };
                let dense = self.dense_ranked(dense, query, depth)?;
                self.hits(fuse(&bm25, &dense, self.options.fusion, k))
            }
        }
    }

    fn bm25_search(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        let params = self.options.bm25.unwrap_or(self.bm25.manifest().bm25);
        Ok(self.bm25.search_with(query, k, &params)?)
    }

    fn dense_ranked(
        &self,
        (index, encoder): &(DenseIndex, Encoder),
        query: &str,
        k: usize,
    ) -> Result<Vec<(String, f32)>> {
        let vector = encoder
            .embed(&[query], TextKind::Query)?
            .pop()
            .ok_or_else(|| {
                PipelineError::InvalidOption("the encoder returned no embedding".into())
            })?;
        let hits = if self.options.exact {
            index.search_exact(&vector, k)?
        } else {
            index.search(&vector, k, self.options.ef_search)?
        };
        Ok(hits.into_iter().map(|h| (h.passage_id, h.score)).collect())
    }

    /// Stored passages for ranked ids, carrying the ranking's scores.
    fn hits(&self, ranked: Vec<(String, f32)>) -> Result<Vec<Hit>> {
        let mut hits = Vec::with_capacity(ranked.len());
        for (passage_id, score) in ranked {
            let mut hit = self.bm25.passage(&passage_id)?.ok_or_else(|| {
                PipelineError::InvalidOption(format!(
                    "the dense index names passage {passage_id:?}, which the BM25 index lacks: rebuild the dense index"
                ))
            })?;
            hit.score = score;
            hits.push(hit);
        }
        Ok(hits)
    }
}
