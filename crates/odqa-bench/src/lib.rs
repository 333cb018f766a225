//! Question sets, retrieval metrics and benchmark reports for odqa.
//!
//! This crate owns:
//!
//! * loading question sets ([`load_questions`]) from SQuAD v1 JSON
//!   (KorQuAD) or the KLUE-MRC open-domain list format,
//! * retrieval metrics: answer-containment hit rank ([`first_hit_rank`]),
//!   recall@k, MRR and latency percentiles ([`percentile`]),
//! * running a retrieval benchmark ([`run_retrieval_bench`]) and writing
//!   its report as JSON, a Markdown table and an SVG recall@k plot
//!   ([`write_report`], [`markdown_table`], [`plot_recall_svg`]).
//!
//! * reading benchmarks ([`run_reading_bench`]): EM/F1 as the official
//!   KorQuAD 1.0 script defines them, per-stage latency, windows/s.
//! * the read cache ([`ReadCache`]): every passage's n-best spans stored
//!   once, re-scored at other retrieval weights, depths, thresholds and
//!   with early stopping ([`rescore`], [`sweep`]) without the model.
//!
//! * typed results of the reader-throughput and ANN benchmarks
//!   ([`ThroughputReport`], [`AnnReport`]), the result files of the reading
//!   benchmarks and sweeps ([`ReadingReport::write`], [`SweepReport`]) and
//!   of comparing retrieval results ([`compare`]).
//!
//! It must not touch indexes, analyzers or models: the caller passes a
//! search closure that maps a question string and a depth to ranked
//! [`RetrievedPassage`]s, and this crate only measures what comes back.
//!
//! ```rust
//! use odqa_bench::percentile;
//! // Latencies in milliseconds, sorted: no interpolation, p50 is the 2nd of 4.
//! let sorted_ms = [3.0, 5.0, 8.0, 13.0];
//! assert_eq!(percentile(&sorted_ms, 50.0), 5.0);
//! assert_eq!(percentile(&sorted_ms, 100.0), 13.0);
//! ```

mod bench;
mod cache;
mod error;
mod metrics;
mod questions;
mod reading;
mod report;
mod results;

pub use bench::{
    run_retrieval_bench, LatencySummary, RecallAt, RetrievalBenchOptions, RetrievalReport,
    RetrievedPassage,
};
pub use cache::{rescore, sweep, sweep_table, CachedQuestion, ReadCache, SweepRow};
pub use error::BenchError;
pub use metrics::{first_hit_rank, percentile};
pub use questions::{load_questions, Question};
pub use reading::{run_reading_bench, ReadingPrediction, ReadingReport};
pub use report::{markdown_table, plot_recall_svg, write_report, ReportFiles};
pub use results::{
    compare, now_unix, reading_stem, AnnReport, AnnRow, SweepReport, ThroughputReport,
    ThroughputRow,
};
