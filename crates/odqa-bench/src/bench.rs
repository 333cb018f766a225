use std::fmt::Display;
use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};

use crate::{first_hit_rank, percentile, BenchError, Question};

/// One passage returned by the caller's search closure, best first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetrievedPassage {
    pub passage_id: String,
    pub text: String,
    pub score: f32,
}

/// Settings of one retrieval benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalBenchOptions {
    /// Cut-offs for recall@k; each must be in `1..=depth`. Sorted and
    /// deduplicated in the report. Default `[1, 5, 10, 20, 50, 100]`.
    pub ks: Vec<usize>,
    /// How many passages to ask the search closure for; MRR is MRR@depth.
    /// Default 100.
    pub depth: usize,
    /// The first `warmup` questions (at most all of them) are searched once
    /// before the measured pass; those calls are neither timed nor scored.
    /// Default 20.
    pub warmup: usize,
    /// Name of the run, first column of the Markdown table and plot legend.
    pub label: String,
    /// Which index was searched (copied into the report).
    pub index: String,
    /// Which question file was used (copied into the report).
    pub questions_file: String,
    /// Retrieval mode, e.g. `"bm25"` (copied into the report).
    pub mode: String,
    /// Show an indicatif progress bar on stderr.
    pub show_progress: bool,
}

impl Default for RetrievalBenchOptions {
    fn default() -> Self {
        Self {
            ks: vec![1, 5, 10, 20, 50, 100],
            depth: 100,
            warmup: 20,
            label: String::new(),
            index: String::new(),
            questions_file: String::new(),
            mode: String::new(),
            show_progress: false,
        }
    }
}

/// Recall at one cut-off: the fraction of questions whose first answer-bearing
/// passage is ranked `<= k`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecallAt {
    pub k: usize,
    pub recall: f64,
}

/// Per-query search latency in milliseconds (warm-up excluded); percentiles
/// are nearest-rank (see [`percentile`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencySummary {
    /// Mean and nearest-rank percentiles of `samples` (milliseconds).
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let n = samples.len().max(1) as f64;
        LatencySummary {
            mean: samples.iter().sum::<f64>() / n,
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
            max: samples.last().copied().unwrap_or(0.0),
        }
    }
}

/// Result of [`run_retrieval_bench`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RetrievalReport {
    pub label: String,
    pub index: String,
    pub questions_file: String,
    pub mode: String,
    /// Number of scored questions.
    pub questions: usize,
    /// Search depth; MRR is MRR@depth.
    pub depth: usize,
    /// Recall@k for each k of the options, ascending.
    pub recall: Vec<RecallAt>,
    /// Mean reciprocal rank of the first answer-bearing passage (0 when none
    /// within `depth`).
    pub mrr: f64,
    pub latency_ms: LatencySummary,
    /// Latency of the ranking alone (top-k ids and scores, no stored
    /// passage text read), where the caller measured it: the figure to set
    /// beside engines benchmarked on document ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranking_latency_ms: Option<LatencySummary>,
    /// Number of threads issuing queries. This runner issues them one at a
    /// time, so it writes 1; a caller that parallelises inside its closure
    /// may overwrite it.
    pub threads: usize,
    /// Seconds since the Unix epoch when the run finished.
    pub created_unix: u64,
    /// Free-form caller data (index settings etc.); `null` by default.
    #[serde(default)]
    pub extra: serde_json::Value,
}

impl RetrievalReport {
    /// Recall at cut-off `k`, if `k` was measured.
    pub fn recall_at(&self, k: usize) -> Option<f64> {
        self.recall.iter().find(|r| r.k == k).map(|r| r.recall)
    }
}

#[derive(serde::Serialize)]
struct HitLine<'a> {
    id: &'a str,
    hits: Vec<HitRef<'a>>,
}

#[derive(serde::Serialize)]
struct HitRef<'a> {
    passage_id: &'a str,
    score: f32,
}

/// Runs every question through `search(question, depth)` and measures
/// recall@k, MRR@depth and per-query latency.
///
/// A question counts as hit at rank r when the r-th returned passage (of
/// the first `depth`) contains any of its answers (see [`first_hit_rank`]).
/// Before the measured pass, the first `options.warmup` questions are
/// searched untimed and unscored. Only the search call itself is timed.
///
/// When `hits_out` is given, one JSON line per question is written to it:
/// `{"id": .., "hits": [{"passage_id": .., "score": ..}, ..]}` (at most
/// `depth` hits, in rank order).
///
/// Errors: no questions, invalid `ks`/`depth`, a search error (naming the
/// question id and the closure's message) or a failed hits write.
pub fn run_retrieval_bench<E: Display>(
    questions: &[Question],
    options: &RetrievalBenchOptions,
    mut search: impl FnMut(&str, usize) -> Result<Vec<RetrievedPassage>, E>,
    mut hits_out: Option<&mut dyn Write>,
) -> Result<RetrievalReport, BenchError> {
    if questions.is_empty() {
        return Err(BenchError::NoQuestions);
    }
    let depth = options.depth;
    if depth == 0 {
        return Err(BenchError::InvalidOptions(
            "depth must be at least 1".into(),
        ));
    }
    let mut ks = options.ks.clone();
    ks.sort_unstable();
    ks.dedup();
    if ks.is_empty() {
        return Err(BenchError::InvalidOptions("ks must not be empty".into()));
    }
    if let Some(&k) = ks.iter().find(|&&k| k == 0 || k > depth) {
        return Err(BenchError::InvalidOptions(format!(
            "recall cut-off k={k} must be in 1..={depth} (depth)"
        )));
    }

    let warmup = options.warmup.min(questions.len());
    let progress = if options.show_progress {
        let pb = ProgressBar::new((warmup + questions.len()) as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        ) {
            pb.set_style(style);
        }
        pb.set_message(if options.label.is_empty() {
            "retrieval".to_owned()
        } else {
            options.label.clone()
        });
        pb
    } else {
        ProgressBar::hidden()
    };

    let search_err = |q: &Question, e: E| BenchError::Search {
        id: q.id.clone(),
        message: e.to_string(),
    };

    for q in &questions[..warmup] {
        search(&q.question, depth).map_err(|e| search_err(q, e))?;
        progress.inc(1);
    }

    let mut hit_counts = vec![0usize; ks.len()];
    let mut rr_sum = 0.0f64;
    let mut latencies = Vec::with_capacity(questions.len());
    for q in questions {
        let start = Instant::now();
        let result = search(&q.question, depth);
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        let mut hits = result.map_err(|e| search_err(q, e))?;
        hits.truncate(depth);

        if let Some(rank) = first_hit_rank(&q.answers, &hits) {
            rr_sum += 1.0 / rank as f64;
            for (count, &k) in hit_counts.iter_mut().zip(&ks) {
                if rank <= k {
                    *count += 1;
                }
            }
        }

        if let Some(out) = hits_out.as_mut() {
            let line = HitLine {
                id: &q.id,
                hits: hits
                    .iter()
                    .map(|h| HitRef {
                        passage_id: &h.passage_id,
                        score: h.score,
                    })
                    .collect(),
            };
            let mut buf = serde_json::to_vec(&line).map_err(|source| BenchError::Serialize {
                what: format!("hits of question {:?}", q.id),
                source,
            })?;
            buf.push(b'\n');
            out.write_all(&buf)
                .map_err(|source| BenchError::HitsWrite {
                    id: q.id.clone(),
                    source,
                })?;
        }
        progress.inc(1);
    }
    if let Some(out) = hits_out.as_mut() {
        out.flush().map_err(|source| BenchError::HitsWrite {
            id: questions[questions.len() - 1].id.clone(),
            source,
        })?;
    }
    progress.finish_and_clear();

    let n = questions.len() as f64;
    let latency_ms = LatencySummary::of(latencies);
    Ok(RetrievalReport {
        label: options.label.clone(),
        index: options.index.clone(),
        questions_file: options.questions_file.clone(),
        mode: options.mode.clone(),
        questions: questions.len(),
        depth,
        recall: ks
            .iter()
            .zip(&hit_counts)
            .map(|(&k, &c)| RecallAt {
                k,
                recall: c as f64 / n,
            })
            .collect(),
        mrr: rr_sum / n,
        latency_ms,
        ranking_latency_ms: None,
        threads: 1,
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        extra: serde_json::Value::Null,
    })
}
