//! Question sets, metrics, the benchmark runners and their typed reports
//! for odqa.
//!
//! This crate owns:
//!
//! * loading question sets ([`load_questions`]) from SQuAD v1 JSON
//!   (KorQuAD) or the KLUE-MRC open-domain list format,
//! * retrieval metrics: answer-containment hit rank ([`first_hit_rank`]),
//!   recall@k, MRR and latency percentiles ([`percentile`]),
//! * scoring a retrieval benchmark ([`run_retrieval_bench`]) and writing
//!   its report as JSON, a Markdown table and an SVG recall@k plot
//!   ([`write_report`], [`markdown_table`], [`plot_recall_svg`]),
//! * scoring reading benchmarks ([`run_reading_bench`]): EM/F1 as the
//!   official KorQuAD 1.0 script defines them, per-stage latency,
//!   windows/s,
//! * the read cache ([`ReadCache`]): every passage's n-best spans stored
//!   once, re-scored at other retrieval weights, depths, thresholds and
//!   with early stopping ([`rescore`], [`sweep`]) without the model,
//! * the runners behind `odqa bench`: reading with the gold paragraph,
//!   retrieve-then-read, building and sweeping a read cache
//!   ([`ReadingBench`]), retrieval ([`bench_retrieval`]), reader and
//!   encoder throughput ([`bench_throughput`]) and HNSW against exact
//!   search ([`bench_ann`]),
//! * their typed results ([`ReadingReport`], [`RetrievalReport`],
//!   [`ThroughputReport`], [`AnnReport`], [`SweepReport`]) and result
//!   files, and comparing retrieval results ([`compare`]).
//!
//! The scoring functions stay model-free: they take a closure that answers
//! or searches for one question and measure what comes back, so they are
//! tested without models. The runners supply those closures from what the
//! caller has loaded: odqa-pipeline's [`odqa_pipeline::Reader`],
//! [`odqa_pipeline::Pipeline`] and [`odqa_pipeline::Retriever`],
//! odqa-encoder's models and odqa-dense's index. This crate must not load
//! models, build indexes or train, and it never prints: runners that take
//! long report progress through events ([`ThroughputEvent`], [`AnnEvent`])
//! or an indicatif bar.
//!
//! ```rust
//! use odqa_bench::percentile;
//! // Latencies in milliseconds, sorted: no interpolation, p50 is the 2nd of 4.
//! let sorted_ms = [3.0, 5.0, 8.0, 13.0];
//! assert_eq!(percentile(&sorted_ms, 50.0), 5.0);
//! assert_eq!(percentile(&sorted_ms, 100.0), 13.0);
//! ```

mod ann;
mod bench;
mod cache;
mod error;
mod metrics;
mod questions;
mod reading;
mod report;
mod results;
mod runs;
mod throughput;

pub use ann::{bench_ann, AnnEvent, AnnOptions};
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
pub use runs::{bench_retrieval, CacheSweep, Predictions, ReadingBench, RetrievalRun, SweepGrid};
pub use throughput::{
    bench_throughput, StageShare, ThroughputEvent, ThroughputOptions, TimedModel,
};
