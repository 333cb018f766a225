use std::path::{Path, PathBuf};

use odqa_analysis::AnalyzerConfig;
use odqa_corpus::PassageConfig;
use serde::{Deserialize, Serialize};

use crate::IndexError;

/// The build manifest's file name inside an index directory.
pub const MANIFEST_FILE: &str = "odqa-manifest.json";
const FORMAT_VERSION: u32 = 1;

/// BM25 parameters. They act at query time, so a search may override the
/// ones an index was built with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bm25Params {
    pub k1: f32,
    pub b: f32,
    /// Weight of the title field's BM25 score next to the text's (1.0).
    pub title_weight: f32,
    /// Weight of question words and light verbs in a query
    /// ([`QUESTION_TERMS`]: 누구, 어디, 언제, 무엇, 하다, 되다 …): 1 counts them
    /// like any term (what indexes before this option did), 0 drops them.
    #[serde(default = "one")]
    pub question_weight: f32,
    /// Weight of a query's pair terms (each two adjacent query terms, question
    /// words left out) next to its single terms. They re-rank the single
    /// terms' best `max(k, crate::PAIR_RERANK_DEPTH)` passages, and act only on an
    /// index built with term pairs ([`odqa_analysis::AnalyzerConfig::term_pairs`]).
    #[serde(default = "default_pair_weight")]
    pub pair_weight: f32,
    /// Score every posting (term at a time) instead of the MaxScore top-k
    /// path; both give the same ranking, this one is the reference.
    #[serde(default)]
    pub exhaustive: bool,
}

fn one() -> f32 {
    1.0
}

fn default_pair_weight() -> f32 {
    DEFAULT_PAIR_WEIGHT
}

/// Query terms (as the analyzer yields them) that ask rather than name:
/// interrogatives and the stems of light verbs. They are weighted by
/// [`Bm25Params::question_weight`] in queries; documents are unchanged.
pub const QUESTION_TERMS: &[&str] = &[
    "누구", "어디", "언제", "무엇", "얼마", "왜", "어떻", "하", "되", "있", "이름",
];

/// Chosen on korquad-early-dev-repaired over kowiki-2020-10k (MRR@100 over
/// k1 0.3–1.6, b 0.3–0.9, title weight 0–2; see bench/README.md): short
/// questions want early term saturation and little length normalization,
/// and a separate title match only adds noise once passages are scored.
impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params {
            k1: 0.6,
            b: 0.3,
            title_weight: 0.0,
            question_weight: DEFAULT_QUESTION_WEIGHT,
            pair_weight: DEFAULT_PAIR_WEIGHT,
            exhaustive: false,
        }
    }
}

/// Chosen on the dev question sets (bench/README.md).
pub const DEFAULT_QUESTION_WEIGHT: f32 = 0.3;

/// Chosen on korquad-early-dev-repaired over kowiki-2020-10k
/// (bench/README.md, "Term pairs").
pub const DEFAULT_PAIR_WEIGHT: f32 = 0.3;

impl Bm25Params {
    pub fn validate(&self) -> Result<(), IndexError> {
        let ok = self.k1.is_finite()
            && self.k1 >= 0.0
            && (0.0..=1.0).contains(&self.b)
            && self.title_weight.is_finite()
            && self.title_weight >= 0.0
            && self.question_weight.is_finite()
            && self.question_weight >= 0.0
            && self.pair_weight.is_finite()
            && self.pair_weight >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(IndexError::InvalidOption(format!(
                "BM25 parameters out of range: k1 = {} (≥ 0), b = {} (0..=1), title weight = {} (≥ 0), question weight = {} (≥ 0), pair weight = {} (≥ 0)",
                self.k1, self.b, self.title_weight, self.question_weight, self.pair_weight
            )))
        }
    }
}

/// Articles, passages, skipped records, repeats and text size of a build:
/// the counts of its corpus pass ([`odqa_corpus::passages`]).
pub type BuildCounts = odqa_corpus::CorpusCounts;

/// What an index was built from and how; written last, so its presence
/// marks a complete index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexManifest {
    pub format_version: u32,
    pub odqa_version: String,
    pub corpus: PathBuf,
    pub passages: PassageConfig,
    pub analyzer: AnalyzerConfig,
    pub bm25: Bm25Params,
    pub counts: BuildCounts,
    pub build_seconds: f64,
    pub threads: usize,
    pub created_unix: u64,
}

impl IndexManifest {
    /// What `odqa index build` says of a finished build into `out`: counts,
    /// text size, time, throughput and what was skipped.
    pub fn summary<'a>(&'a self, out: &'a Path) -> BuildSummary<'a> {
        BuildSummary {
            manifest: self,
            out,
        }
    }

    pub(crate) fn new(
        corpus: PathBuf,
        passages: PassageConfig,
        analyzer: AnalyzerConfig,
        bm25: Bm25Params,
    ) -> Self {
        IndexManifest {
            format_version: FORMAT_VERSION,
            odqa_version: env!("CARGO_PKG_VERSION").to_string(),
            corpus,
            passages,
            analyzer,
            bm25,
            counts: BuildCounts::default(),
            build_seconds: 0.0,
            threads: 0,
            created_unix: 0,
        }
    }

    pub fn read(index_dir: &Path) -> Result<Self, IndexError> {
        let path = index_dir.join(MANIFEST_FILE);
        if !index_dir.is_dir() || !path.is_file() {
            return Err(IndexError::NotAnIndex {
                path: index_dir.to_path_buf(),
            });
        }
        let bytes = std::fs::read(&path).map_err(|source| IndexError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: IndexManifest =
            serde_json::from_slice(&bytes).map_err(|e| IndexError::BadManifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(IndexError::BadManifest {
                path,
                message: format!(
                    "format version {} (this odqa reads {FORMAT_VERSION}); rebuild the index",
                    manifest.format_version
                ),
            });
        }
        Ok(manifest)
    }

    pub(crate) fn write(&self, index_dir: &Path) -> Result<(), IndexError> {
        let path = index_dir.join(MANIFEST_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| IndexError::BadManifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, json).map_err(|source| IndexError::Io { path, source })
    }
}

/// [`IndexManifest::summary`]: one line, without a newline.
#[derive(Debug, Clone, Copy)]
pub struct BuildSummary<'a> {
    manifest: &'a IndexManifest,
    out: &'a Path,
}

impl std::fmt::Display for BuildSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (counts, seconds) = (&self.manifest.counts, self.manifest.build_seconds);
        let megabytes = counts.text_bytes as f64 / 1e6;
        write!(
            f,
            "built {}: {} articles, {} passages, {megabytes:.1} MB of text in {seconds:.1} s ({:.2} MB/s)",
            self.out.display(),
            counts.articles,
            counts.passages,
            megabytes / seconds.max(1e-9),
        )?;
        if counts.skipped_records + counts.repeated_articles > 0 {
            write!(
                f,
                ", {} malformed records skipped, {} exact repeats indexed once",
                counts.skipped_records, counts.repeated_articles
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_summary_names_counts_and_skips() {
        let mut manifest = IndexManifest::new(
            PathBuf::from("c.jsonl"),
            PassageConfig::default(),
            AnalyzerConfig::default(),
            Bm25Params::default(),
        );
        manifest.counts.articles = 2;
        manifest.counts.passages = 5;
        manifest.counts.text_bytes = 3_000_000;
        manifest.build_seconds = 2.0;
        let out = Path::new("index/c");
        assert_eq!(
            manifest.summary(out).to_string(),
            "built index/c: 2 articles, 5 passages, 3.0 MB of text in 2.0 s (1.50 MB/s)"
        );
        manifest.counts.repeated_articles = 1;
        assert!(manifest
            .summary(out)
            .to_string()
            .ends_with(", 0 malformed records skipped, 1 exact repeats indexed once"));
    }
}
