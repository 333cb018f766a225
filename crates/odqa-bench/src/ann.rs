//! HNSW against exact dense search (`bench ann`): recall@k of the graph
//! search and queries/s at several `ef_search` values, on real question
//! embeddings.

use std::path::{Path, PathBuf};
use std::time::Instant;

use odqa_dense::DenseIndex;
use odqa_encoder::{Encoder, TextKind};

use crate::{load_questions, AnnReport, AnnRow, BenchError};

/// What an ANN run measures.
#[derive(Debug, Clone)]
pub struct AnnOptions<'a> {
    /// The index directory (recorded; its name names the result file).
    pub index: &'a Path,
    /// SQuAD/KorQuAD JSON or the KLUE-MRC list format.
    pub questions_file: &'a Path,
    /// Neighbours per query (at least 1).
    pub k: usize,
    /// The `ef_search` values HNSW is timed at (at least one, each at least 1).
    pub ef_searches: &'a [usize],
    pub out_dir: &'a Path,
}

impl AnnOptions<'_> {
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.k == 0 || self.ef_searches.is_empty() || self.ef_searches.contains(&0) {
            return Err(BenchError::InvalidOptions(
                "k and every ef_search must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// What [`bench_ann`] reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum AnnEvent {
    /// Exact search was timed over the index's `passages`.
    Exact {
        queries_per_second: f64,
        passages: usize,
    },
    /// HNSW was timed at one `ef_search`; `recall` is recall@k against
    /// exact search.
    Hnsw {
        ef_search: usize,
        recall: f64,
        queries_per_second: f64,
    },
}

/// Embeds the questions with `encoder` first (excluded from the timings),
/// then times exact search and HNSW at each `ef_search` over `dense`,
/// reporting each as it is measured, and writes `ann-<index name>.json`
/// into the output directory.
pub fn bench_ann(
    dense: &DenseIndex,
    encoder: &Encoder,
    options: &AnnOptions,
    on_event: &mut dyn FnMut(AnnEvent),
) -> Result<(AnnReport, PathBuf), BenchError> {
    options.validate()?;
    let k = options.k;
    let questions = load_questions(options.questions_file)?;
    let texts: Vec<&str> = questions.iter().map(|q| q.question.as_str()).collect();
    let vectors = encoder.embed(&texts, TextKind::Query)?;
    let started = Instant::now();
    let exact: Vec<Vec<usize>> = vectors
        .iter()
        .map(|v| {
            Ok(dense
                .search_exact(v, k)?
                .into_iter()
                .map(|h| h.row)
                .collect())
        })
        .collect::<Result<_, BenchError>>()?;
    let exact_qps = vectors.len() as f64 / started.elapsed().as_secs_f64();
    on_event(AnnEvent::Exact {
        queries_per_second: exact_qps,
        passages: dense.len(),
    });
    let mut rows = vec![AnnRow {
        method: "exact",
        ef_search: None,
        recall_vs_exact: None,
        queries_per_second: exact_qps,
    }];
    let truths = exact.iter().map(Vec::len).sum::<usize>().max(1) as f64;
    for &ef in options.ef_searches {
        let started = Instant::now();
        let mut found = 0usize;
        for (vector, truth) in vectors.iter().zip(&exact) {
            let hits = dense.search(vector, k, Some(ef))?;
            found += hits.iter().filter(|h| truth.contains(&h.row)).count();
        }
        let qps = vectors.len() as f64 / started.elapsed().as_secs_f64();
        let recall = found as f64 / truths;
        on_event(AnnEvent::Hnsw {
            ef_search: ef,
            recall,
            queries_per_second: qps,
        });
        rows.push(AnnRow {
            method: "hnsw",
            ef_search: Some(ef),
            recall_vs_exact: Some(recall),
            queries_per_second: qps,
        });
    }
    let report = AnnReport {
        index: options.index.to_path_buf(),
        passages: dense.len(),
        queries: vectors.len(),
        k,
        hnsw: dense.manifest().hnsw,
        rows,
    };
    let path = report.write(options.out_dir)?;
    Ok((report, path))
}
