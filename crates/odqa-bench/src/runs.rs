//! The benchmarks that drive odqa-pipeline's [`Reader`], [`Pipeline`] and
//! [`Retriever`] over a question set: reading with the gold paragraph
//! (`bench mrc`), retrieve-then-read (`bench odqa`), building a read cache
//! and re-scoring it over a grid, and retrieval (`bench retrieval`).
//!
//! The caller loads the reader and opens the indexes; a run answers the
//! questions, scores them ([`run_reading_bench`], [`run_retrieval_bench`])
//! and records in the report's `extra` what produced it. Reading runs hand
//! their report back unwritten ([`ReadingReport::write`]) because the
//! caller reports the read cache, and prints the sweep table, before the
//! result files are written.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use odqa_encoder::Machine;
use odqa_pipeline::{AskOptions, Pipeline, PipelineError, Reader, Retriever};
use odqa_reader::SpanModel;
use serde_json::{json, Value};

use crate::{
    load_questions, run_reading_bench, run_retrieval_bench, sweep, sweep_table, write_report,
    BenchError, CachedQuestion, LatencySummary, Question, ReadCache, ReadingPrediction,
    ReadingReport, ReportFiles, RetrievalBenchOptions, RetrievalReport, RetrievedPassage,
    SweepReport, SweepRow,
};

/// Predictions `{question_id: answer}`, the official evaluation script's
/// input format.
pub type Predictions = BTreeMap<String, String>;

/// A reading benchmark: its question set, the reader it records and how
/// its results are named.
#[derive(Debug, Clone)]
pub struct ReadingBench<'a> {
    /// SQuAD/KorQuAD JSON or the KLUE-MRC list format.
    pub questions_file: &'a Path,
    /// The reader as the user named it (a directory or `hf:ORG/NAME`),
    /// recorded in the results; its last component is the default label.
    pub reader: &'a Path,
    pub label: Option<String>,
    /// Only the first `limit` questions (of the set, or of a read cache).
    pub limit: Option<usize>,
    /// An indicatif progress bar on stderr.
    pub show_progress: bool,
}

/// The axes of a read-cache sweep; an empty axis sweeps the options' own
/// value.
#[derive(Debug, Clone, Copy, Default)]
pub struct SweepGrid<'a> {
    /// Retrieval weights μ.
    pub weights: &'a [f32],
    /// Depths, each at most the depth the cache was read at.
    pub top_ks: &'a [usize],
    /// No-answer thresholds.
    pub thresholds: &'a [f32],
}

/// A read cache re-scored over a [`SweepGrid`], with and without early
/// stopping.
#[derive(Debug, Clone)]
pub struct CacheSweep {
    pub cache: PathBuf,
    /// What produced the cache ([`ReadCache::source`]).
    pub source: Value,
    /// Questions re-scored.
    pub questions: usize,
    /// The depth the cache was read at.
    pub top_k: usize,
    pub rows: Vec<SweepRow>,
    /// The rows as a Markdown table ([`sweep_table`]).
    pub table: String,
    /// `odqa-sweep-<questions file stem>-<label>`.
    pub stem: String,
}

impl CacheSweep {
    /// Writes `<stem>.md` and `<stem>.json` into `out_dir`
    /// ([`SweepReport::write`]); returns both paths.
    pub fn write(&self, out_dir: &Path) -> Result<(PathBuf, PathBuf), BenchError> {
        SweepReport {
            cache: &self.cache,
            source: &self.source,
            rows: &self.rows,
        }
        .write(out_dir, &self.stem, self.questions, self.top_k, &self.table)
    }
}

impl ReadingBench<'_> {
    /// The label given, else the reader's last path component.
    pub fn label(&self) -> String {
        self.label.clone().unwrap_or_else(|| {
            self.reader
                .file_name()
                .map_or_else(|| "reader".into(), |n| n.to_string_lossy().into_owned())
        })
    }

    /// The first `limit` questions of the set.
    pub fn questions(&self) -> Result<Vec<Question>, BenchError> {
        let mut questions = load_questions(self.questions_file)?;
        if let Some(limit) = self.limit {
            questions.truncate(limit);
        }
        Ok(questions)
    }

    /// [`ReadingBench::questions`], refusing any without a gold paragraph:
    /// what [`ReadingBench::mrc`] reads.
    pub fn mrc_questions(&self) -> Result<Vec<Question>, BenchError> {
        let questions = self.questions()?;
        if let Some(q) = questions
            .iter()
            .find(|q| q.context.as_deref().is_none_or(|c| c.trim().is_empty()))
        {
            return Err(BenchError::NoContext {
                id: q.id.clone(),
                path: self.questions_file.to_path_buf(),
            });
        }
        Ok(questions)
    }

    fn questions_name(&self) -> String {
        self.questions_file.display().to_string()
    }

    /// Reads each question's gold paragraph with `reader` (kind `mrc`);
    /// `machine` describes where it ran, for the report.
    pub fn mrc<M: SpanModel>(
        &self,
        reader: &Reader<M>,
        questions: &[Question],
        machine: &Machine,
    ) -> Result<(ReadingReport, Predictions), BenchError> {
        let (mut report, predictions) = run_reading_bench(
            questions,
            &self.label(),
            "mrc",
            &self.questions_name(),
            self.show_progress,
            |q| {
                let context = q.context.as_deref().unwrap_or_default();
                reader
                    .read(&q.question, &[context])
                    .map(|out| ReadingPrediction {
                        answer: out
                            .answers
                            .first()
                            .map(|a| a.text.clone())
                            .unwrap_or_default(),
                        retrieve_ms: 0.0,
                        read_ms: out.seconds * 1e3,
                        windows: out.windows,
                    })
            },
        )?;
        report.extra = with_machine(
            json!({"reader": self.reader, "options": reader.options()}),
            machine,
        );
        Ok((report, predictions))
    }

    /// Asks `pipeline` (over the index at `index`) every question (kind
    /// `odqa`); a "no answer" counts as the empty answer.
    pub fn odqa<M: SpanModel>(
        &self,
        pipeline: &Pipeline<M>,
        index: &Path,
        options: &AskOptions,
        questions: &[Question],
        machine: &Machine,
    ) -> Result<(ReadingReport, Predictions), BenchError> {
        let (mut report, predictions) = run_reading_bench(
            questions,
            &self.label(),
            "odqa",
            &self.questions_name(),
            self.show_progress,
            |q| {
                pipeline
                    .ask(&q.question, options)
                    .map(|result| ReadingPrediction {
                        answer: result
                            .answers
                            .first()
                            .filter(|_| !result.no_answer)
                            .map(|a| a.text.clone())
                            .unwrap_or_default(),
                        retrieve_ms: result.timings.retrieve_ms,
                        read_ms: result.timings.read_ms,
                        windows: result.timings.windows,
                    })
            },
        )?;
        report.extra = with_machine(
            json!({"reader": self.reader, "index": index, "ask": options, "retrieval": pipeline.retriever().options(), "options": pipeline.reader().options()}),
            machine,
        );
        Ok((report, predictions))
    }

    /// Reads every top-k passage of every question once and writes their
    /// n-best spans to `cache` (re-scored by [`ReadingBench::sweep`]); the
    /// report scores the answers at `options` without early stopping,
    /// labelled `<label>-cache-top<k>`.
    pub fn build_read_cache<M: SpanModel>(
        &self,
        pipeline: &Pipeline<M>,
        index: &Path,
        options: &AskOptions,
        questions: &[Question],
        cache: &Path,
        machine: &Machine,
    ) -> Result<(ReadingReport, Predictions), BenchError> {
        // A sweep may ask for any depth up to top-k, so nothing is skipped.
        let read_all = AskOptions {
            early_stop: false,
            ..*options
        };
        let settings = read_all.fusion();
        let mut cached = Vec::with_capacity(questions.len());
        let (mut report, predictions) = run_reading_bench(
            questions,
            &format!("{}-cache-top{}", self.label(), options.top_k),
            "odqa",
            &self.questions_name(),
            self.show_progress,
            |q| -> Result<ReadingPrediction, PipelineError> {
                let t = Instant::now();
                let hits = pipeline.retriever().retrieve(&q.question, options.top_k)?;
                let retrieve_ms = t.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                let passages = pipeline.read_hits(&q.question, &hits, None)?;
                let read_ms = t.elapsed().as_secs_f64() * 1e3;
                let gold_in_passage = hits
                    .iter()
                    .map(|h| q.answers.iter().any(|a| h.text.contains(a.as_str())))
                    .collect();
                let decision = odqa_reader::fusion::decide(&passages, &settings);
                let windows = passages.iter().map(|p| p.windows).sum();
                cached.push(CachedQuestion {
                    id: q.id.clone(),
                    question: q.question.clone(),
                    answers: q.answers.clone(),
                    passages,
                    gold_in_passage,
                    retrieve_ms,
                    read_ms,
                });
                Ok(ReadingPrediction {
                    answer: decision
                        .answers
                        .first()
                        .filter(|_| !decision.no_answer)
                        .map(|a| a.text.clone())
                        .unwrap_or_default(),
                    retrieve_ms,
                    read_ms,
                    windows,
                })
            },
        )?;
        let source = json!({"reader": self.reader, "index": index, "questions": self.questions_file, "retrieval": pipeline.retriever().options(), "options": pipeline.reader().options(), "machine": machine});
        ReadCache {
            top_k: options.top_k,
            source: source.clone(),
            questions: cached,
        }
        .write(cache)?;
        report.extra = with_machine(
            json!({"cache": cache, "ask": read_all, "source": source}),
            machine,
        );
        Ok((report, predictions))
    }

    /// Re-scores the read cache at every point of `grid` (the rest from
    /// `options`), with and without early stopping.
    pub fn sweep(
        &self,
        cache: &Path,
        options: &AskOptions,
        grid: &SweepGrid,
    ) -> Result<CacheSweep, BenchError> {
        let mut data = ReadCache::read(cache)?;
        if let Some(limit) = self.limit {
            data.questions.truncate(limit);
        }
        let rows = sweep(
            &data,
            &options.fusion(),
            or_own(grid.weights, &options.retrieval_weight),
            or_own(grid.top_ks, &options.top_k),
            &[false, true],
            or_own(grid.thresholds, &options.no_answer_threshold),
        )?;
        let stem = format!(
            "odqa-sweep-{}-{}",
            self.questions_file
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
            self.label()
        );
        Ok(CacheSweep {
            cache: cache.to_path_buf(),
            table: sweep_table(&rows),
            questions: data.questions.len(),
            top_k: data.top_k,
            source: data.source,
            rows,
            stem,
        })
    }
}

/// `axis`, or the one value `own` where it is empty.
fn or_own<'a, T>(axis: &'a [T], own: &'a T) -> &'a [T] {
    if axis.is_empty() {
        std::slice::from_ref(own)
    } else {
        axis
    }
}

/// `extra` with the machine recorded last, as every reading result has it.
fn with_machine(mut extra: Value, machine: &Machine) -> Value {
    extra["machine"] = json!(machine);
    extra
}

/// A retrieval benchmark over an opened [`Retriever`].
#[derive(Debug, Clone)]
pub struct RetrievalRun<'a> {
    /// SQuAD/KorQuAD JSON or the KLUE-MRC list format.
    pub questions_file: &'a Path,
    /// The index directory searched (recorded; its name is the default label).
    pub index: &'a Path,
    pub label: Option<String>,
    /// The retrieval mode's name (`bm25`, `dense`, `hybrid`), recorded.
    pub mode: &'a str,
    /// Passages retrieved per question (the deepest recall@k).
    pub depth: usize,
    /// Questions searched first, untimed and unscored.
    pub warmup: usize,
    /// Also write `{id, hits: [{passage_id, score}]}` per question here.
    pub export_hits: Option<&'a Path>,
    pub out_dir: &'a Path,
    /// An indicatif progress bar on stderr.
    pub show_progress: bool,
}

/// Runs every question of `run` through `retriever`
/// ([`run_retrieval_bench`]), records the retriever's options, BM25
/// parameters, analyzer and passages in the report, and writes
/// `retrieval-<questions file stem>-<label>.{json,md,svg}` into the output
/// directory ([`write_report`]).
pub fn bench_retrieval(
    retriever: &Retriever,
    run: &RetrievalRun,
) -> Result<(RetrievalReport, ReportFiles), BenchError> {
    let index = retriever.bm25();
    let params = retriever.options().bm25.unwrap_or(index.manifest().bm25);
    let questions = load_questions(run.questions_file)?;
    let name = |path: Option<&std::ffi::OsStr>| {
        path.map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let label = run
        .label
        .clone()
        .unwrap_or_else(|| name(run.index.file_name()));
    let options = RetrievalBenchOptions {
        depth: run.depth,
        warmup: run.warmup,
        label: label.clone(),
        index: run.index.display().to_string(),
        questions_file: run.questions_file.display().to_string(),
        mode: run.mode.into(),
        show_progress: run.show_progress,
        ..RetrievalBenchOptions::default()
    };
    let mut hits_file = match run.export_hits {
        Some(path) => Some(BufWriter::new(std::fs::File::create(path).map_err(
            |source| BenchError::Create {
                path: path.to_path_buf(),
                source,
            },
        )?)),
        None => None,
    };
    let search = |query: &str, k: usize| {
        retriever.retrieve(query, k).map(|hits| {
            hits.into_iter()
                .map(|h| RetrievedPassage {
                    passage_id: h.passage_id,
                    text: h.text,
                    score: h.score,
                })
                .collect::<Vec<_>>()
        })
    };
    // The runner flushes the hits file itself and reports a failed flush.
    let mut report = run_retrieval_bench(
        &questions,
        &options,
        search,
        hits_file.as_mut().map(|w| w as &mut dyn Write),
    )?;
    if run.mode == "bm25" {
        report.ranking_latency_ms = Some(time_ranking(index, &params, &questions, run.depth)?);
    }
    report.extra = json!({
        "retrieval": retriever.options(),
        "bm25": params,
        "analyzer": index.manifest().analyzer,
        "passages": index.manifest().passages,
        "passage_count": index.num_passages(),
    });
    let stem = format!("retrieval-{}-{label}", name(run.questions_file.file_stem()));
    let files = write_report(&report, run.out_dir, &stem)?;
    Ok((report, files))
}

/// Times `index.rank_with` alone (no stored text read) over the questions,
/// one at a time, after the measured run has warmed the index.
fn time_ranking(
    index: &odqa_index::PassageIndex,
    params: &odqa_index::Bm25Params,
    questions: &[Question],
    depth: usize,
) -> Result<LatencySummary, BenchError> {
    let mut latencies = Vec::with_capacity(questions.len());
    for q in questions {
        let start = std::time::Instant::now();
        index
            .rank_with(&q.question, depth, params)
            .map_err(|e| BenchError::Search {
                id: q.id.clone(),
                message: e.to_string(),
            })?;
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(LatencySummary::of(latencies))
}
