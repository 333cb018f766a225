//! Typed results of the reader-throughput and ANN benchmarks, and the
//! result files of the reading benchmarks and of `bench compare`.
//!
//! JSON results go through `serde_json::Value`, whose objects keep their
//! keys sorted: the layout these files have always had.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{markdown_table, plot_recall_svg, BenchError, ReadingReport, RetrievalReport};

/// Seconds since the Unix epoch (0 before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BenchError {
    let path = path.to_path_buf();
    move |source| BenchError::Io {
        path: path.clone(),
        source,
    }
}

/// `value` pretty-printed with sorted keys (no trailing newline).
fn sorted_json<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, BenchError> {
    let ser = |source| BenchError::Serialize {
        what: what.to_string(),
        source,
    };
    serde_json::to_vec_pretty(&serde_json::to_value(value).map_err(ser)?).map_err(ser)
}

fn create_dir(dir: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir).map_err(io(dir))
}

/// One batch size of a throughput run.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    pub batch: usize,
    pub windows: usize,
    pub seconds: f64,
    pub windows_per_second: f64,
    /// ms per window of each stage of the forward pass (with `--profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages_ms_per_window: Option<BTreeMap<String, f64>>,
}

/// `<kind>-throughput-<label>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    pub label: String,
    /// `reader` (QA logits) or `embed` (passage embeddings).
    pub kind: &'static str,
    /// The reader timed (`None` for `embed`).
    pub reader: Option<PathBuf>,
    pub seq_len: usize,
    pub device: String,
    pub threads: usize,
    pub machine: odqa_encoder::Machine,
    pub rows: Vec<ThroughputRow>,
    pub created_unix: u64,
}

impl ThroughputReport {
    /// Writes the report into `out_dir`; returns its path.
    pub fn write(&self, out_dir: &Path) -> Result<PathBuf, BenchError> {
        create_dir(out_dir)?;
        let path = out_dir.join(format!("{}-throughput-{}.json", self.kind, self.label));
        let json = sorted_json(self, "the throughput report")?;
        std::fs::write(&path, json).map_err(io(&path))?;
        Ok(path)
    }
}

/// One row of an ANN run: exact search, or HNSW at one `ef_search`.
#[derive(Debug, Clone, Serialize)]
pub struct AnnRow {
    /// `exact` or `hnsw`.
    pub method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ef_search: Option<usize>,
    /// Recall@k of HNSW against exact search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall_vs_exact: Option<f64>,
    pub queries_per_second: f64,
}

/// `ann-<index name>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct AnnReport {
    pub index: PathBuf,
    pub passages: usize,
    pub queries: usize,
    pub k: usize,
    /// The dense index's HNSW parameters.
    pub hnsw: odqa_dense::HnswParams,
    pub rows: Vec<AnnRow>,
}

impl AnnReport {
    /// Writes the report into `out_dir`; returns its path.
    pub fn write(&self, out_dir: &Path) -> Result<PathBuf, BenchError> {
        create_dir(out_dir)?;
        let name = self
            .index
            .file_name()
            .map_or_else(|| "index".into(), |n| n.to_string_lossy().into_owned());
        let path = out_dir.join(format!("ann-{name}.json"));
        std::fs::write(&path, sorted_json(self, "the ANN report")?).map_err(io(&path))?;
        Ok(path)
    }
}

/// The stem of a reading benchmark's result files:
/// `<kind>-<questions file stem>-<label>`.
pub fn reading_stem(report: &ReadingReport, questions: &Path) -> String {
    format!(
        "{}-{}-{}",
        report.kind,
        questions
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        report.label
    )
}

impl ReadingReport {
    /// Writes `<stem>.json` and `<stem>.predictions.json` into `out_dir`;
    /// returns both paths.
    pub fn write(
        &self,
        out_dir: &Path,
        questions: &Path,
        predictions: &BTreeMap<String, String>,
    ) -> Result<(PathBuf, PathBuf), BenchError> {
        let stem = reading_stem(self, questions);
        create_dir(out_dir)?;
        let json = out_dir.join(format!("{stem}.json"));
        let preds = out_dir.join(format!("{stem}.predictions.json"));
        let ser = |source| BenchError::Serialize {
            what: format!("report {:?}", self.label),
            source,
        };
        std::fs::write(&json, serde_json::to_vec_pretty(self).map_err(ser)?).map_err(io(&json))?;
        std::fs::write(&preds, serde_json::to_vec_pretty(predictions).map_err(ser)?)
            .map_err(io(&preds))?;
        Ok((json, preds))
    }

    /// The one-line summary `bench mrc` and `bench odqa` print.
    pub fn summary(&self) -> String {
        format!(
            "{} {}: {} questions · EM {:.2} · F1 {:.2} · read p50 {:.1} ms · {:.1} windows/s · total p50 {:.1} ms p99 {:.1} ms",
            self.kind,
            self.label,
            self.questions,
            self.exact_match,
            self.f1,
            self.read_ms.p50,
            self.windows_per_second,
            self.total_ms.p50,
            self.total_ms.p99
        )
    }
}

/// `odqa-sweep-<questions>-<label>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport<'a> {
    pub cache: &'a Path,
    pub source: &'a serde_json::Value,
    pub rows: &'a [crate::SweepRow],
}

impl SweepReport<'_> {
    /// Writes `<stem>.md` (a header naming the cache and `table`) and
    /// `<stem>.json` into `out_dir`; returns both paths.
    pub fn write(
        &self,
        out_dir: &Path,
        stem: &str,
        questions: usize,
        top_k: usize,
        table: &str,
    ) -> Result<(PathBuf, PathBuf), BenchError> {
        create_dir(out_dir)?;
        let md = out_dir.join(format!("{stem}.md"));
        let json = out_dir.join(format!("{stem}.json"));
        std::fs::write(
            &md,
            format!(
                "# Re-scored from {} ({questions} questions, read at top-{top_k})\n\n{table}",
                self.cache.display(),
            ),
        )
        .map_err(io(&md))?;
        std::fs::write(&json, sorted_json(self, "the sweep")?).map_err(io(&json))?;
        Ok((md, json))
    }
}

/// Reads retrieval results (`bench retrieval`'s JSON files) and writes
/// `out.md` (`# title` and their [`markdown_table`]) and `out.svg` (their
/// recall@k curves); returns the table and both paths.
pub fn compare(
    results: &[PathBuf],
    out: &Path,
    title: &str,
) -> Result<(String, PathBuf, PathBuf), BenchError> {
    let mut reports = Vec::with_capacity(results.len());
    for path in results {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let report: RetrievalReport =
            serde_json::from_slice(&bytes).map_err(|source| BenchError::NotAResult {
                path: path.clone(),
                source,
            })?;
        reports.push(report);
    }
    let table = markdown_table(&reports);
    let markdown = out.with_extension("md");
    let svg = out.with_extension("svg");
    if let Some(parent) = markdown.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent)?;
    }
    std::fs::write(&markdown, format!("# {title}\n\n{table}\n")).map_err(io(&markdown))?;
    plot_recall_svg(&reports, &svg, title)?;
    Ok((table, markdown, svg))
}
