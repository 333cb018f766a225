//! Subcommands that run the span reader: `read`, `ask`, `bench mrc`,
//! `bench odqa`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use odqa_bench::{load_questions, run_reading_bench, ReadingPrediction};
use odqa_pipeline::{AskOptions, AskResult, Pipeline, Reader, ReaderOptions};

use crate::{Ctx, ReaderArgs};

/// The directory a `--reader` value names: itself, or for
/// `hf:ORG/NAME[@REVISION]` the checkpoint's snapshot in the Hugging Face
/// cache (`HF_HOME`; downloaded into it unless `HF_HUB_OFFLINE` is set).
pub(crate) fn reader_dir(arg: &Path) -> Result<PathBuf> {
    match odqa_encoder::ReaderLocation::parse(arg)? {
        odqa_encoder::ReaderLocation::Dir(dir) => Ok(dir),
        odqa_encoder::ReaderLocation::Hub(id) => {
            let mut settings = odqa_encoder::HubSettings::from_env()?;
            settings.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let found = id.resolve(&settings)?;
            eprintln!("reader {}", found.describe());
            Ok(found.dir)
        }
    }
}

impl ReaderArgs {
    pub(crate) fn load(&self, ctx: &Ctx) -> Result<Reader> {
        let dir = reader_dir(&self.reader)?;
        let mut options = ReaderOptions::default();
        options.windows.max_len = self.max_len;
        options.windows.doc_stride = self.doc_stride;
        options.scoring.max_answer_tokens = self.max_answer_tokens;
        options.batch_size = self.batch_size;
        options.precision = ctx.precision;
        // odqa's reader was trained with "no answer" at position 0: its
        // probabilities are normalised over the passage tokens and that position.
        options.scoring.allow_no_answer = odqa_encoder::is_delta_reader(&dir);
        let reader = Reader::load(&dir, options, &ctx.device)
            .with_context(|| format!("loading the reader from {}", dir.display()))?;
        crate::report_precision("reader", reader.model().precision());
        if let Some(settings) = reader.model().settings() {
            for note in &settings.notes {
                eprintln!("reader: {note}");
            }
        }
        if self.no_trim {
            return Ok(reader);
        }
        let analyzer = odqa_analysis::KoreanAnalyzer::new(
            odqa_analysis::AnalyzerConfig::default(),
            &ctx.dictionary,
        )
        .context("loading the Korean analyzer that trims answers")?;
        Ok(reader.with_trimmer(analyzer))
    }
}

pub fn read(
    ctx: &Ctx,
    question: &str,
    context: Option<&str>,
    context_file: Option<&Path>,
    args: &ReaderArgs,
    json: bool,
) -> Result<()> {
    let context = match (context, context_file) {
        (Some(text), None) => text.to_string(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        _ => bail!("give the passage with --context TEXT or --context-file FILE"),
    };
    if question.trim().is_empty() {
        bail!("the question is empty");
    }
    let reader = args.load(ctx)?;
    let output = reader.read(question, &[context.as_str()])?;
    if json {
        let answers: Vec<_> = output
            .answers
            .iter()
            .map(|a| serde_json::json!({"text": a.text, "score": a.score, "char_start": a.char_start, "char_end": a.char_end}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"answers": answers, "windows": output.windows})
            )?
        );
    } else {
        for (rank, a) in output.answers.iter().enumerate() {
            println!(
                "{:>2}. {:.4}  {}  [{}..{}]",
                rank + 1,
                a.score,
                a.text,
                a.char_start,
                a.char_end
            );
        }
    }
    Ok(())
}

pub fn ask(ctx: &Ctx, args: &crate::AskArgs, index_dir: PathBuf) -> Result<()> {
    if args.question.trim().is_empty() {
        bail!("the question is empty");
    }
    let retriever = args
        .retrieval
        .open(ctx, &index_dir, &crate::Bm25Args::default())?;
    let pipeline = Pipeline::new(retriever, args.reader.load(ctx)?);
    let options = args.fusion.options(args.answers);
    let result = pipeline.ask(&args.question, &options)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &result)?;
        writeln!(out)?;
    } else {
        print_answers(&mut out, &result)?;
    }
    Ok(())
}

/// The sentence with the answer marked 【like this】 (its first occurrence).
fn marked(sentence: &str, answer: &str) -> String {
    let sentence = sentence.replace('\n', " ");
    if answer.is_empty() {
        return sentence;
    }
    sentence.replacen(answer, &format!("【{answer}】"), 1)
}

pub(crate) fn print_answers(out: &mut impl Write, result: &AskResult) -> Result<()> {
    match result.answers.first() {
        None => writeln!(out, "  no answer found")?,
        Some(best) if result.no_answer => writeln!(
            out,
            "  no answer (best candidate {:?} scores {:.3}, below the threshold)",
            best.text, best.score
        )?,
        Some(_) => {}
    }
    for (rank, answer) in result.answers.iter().enumerate() {
        let ev = &answer.evidence;
        writeln!(
            out,
            "{:>2}. {}  (score {:.3}, span p {:.3}, retrieval #{} {:.2})\n    {}  — {} [{}]",
            rank + 1,
            answer.text,
            answer.score,
            answer.span_probability,
            ev.retrieval_rank,
            ev.retrieval_score,
            marked(&ev.sentence, &answer.text),
            ev.title,
            ev.passage_id,
        )?;
        if !answer.other_evidence.is_empty() {
            let also: Vec<String> = answer
                .other_evidence
                .iter()
                .map(|e| format!("{} [{}] #{}", e.title, e.passage_id, e.retrieval_rank))
                .collect();
            writeln!(out, "    also in: {}", also.join("; "))?;
        }
    }
    writeln!(
        out,
        "  retrieve {:.1} ms · read {:.1} ms ({} windows, {} of {} passages)",
        result.timings.retrieve_ms,
        result.timings.read_ms,
        result.timings.windows,
        result.timings.passages_read,
        result.hits.len()
    )?;
    Ok(())
}

pub struct ReadingBench<'a> {
    pub questions: &'a Path,
    pub reader: &'a ReaderArgs,
    pub label: Option<String>,
    pub limit: Option<usize>,
    pub out_dir: &'a Path,
    pub ctx: &'a Ctx,
}

impl ReadingBench<'_> {
    fn questions(&self) -> Result<Vec<odqa_bench::Question>> {
        let mut questions = load_questions(self.questions)?;
        if let Some(limit) = self.limit {
            questions.truncate(limit);
        }
        Ok(questions)
    }

    fn label(&self) -> String {
        self.label.clone().unwrap_or_else(|| {
            self.reader
                .reader
                .file_name()
                .map_or_else(|| "reader".into(), |n| n.to_string_lossy().into_owned())
        })
    }

    fn write(
        &self,
        mut report: odqa_bench::ReadingReport,
        predictions: &std::collections::BTreeMap<String, String>,
        mut extra: serde_json::Value,
        precision: &odqa_encoder::PrecisionChoice,
    ) -> Result<()> {
        extra["machine"] = self.ctx.machine(Some(precision));
        report.extra = extra;
        let (json, preds) = report.write(self.out_dir, self.questions, predictions)?;
        println!("{}", report.summary());
        eprintln!("wrote {} and {}", json.display(), preds.display());
        Ok(())
    }

    pub fn mrc(&self) -> Result<()> {
        let questions = self.questions()?;
        if let Some(q) = questions
            .iter()
            .find(|q| q.context.as_deref().is_none_or(|c| c.trim().is_empty()))
        {
            bail!(
                "question {:?} in {} has no context: bench mrc needs gold paragraphs",
                q.id,
                self.questions.display()
            );
        }
        let reader = self.reader.load(self.ctx)?;
        let (report, predictions) = run_reading_bench(
            &questions,
            &self.label(),
            "mrc",
            &self.questions.display().to_string(),
            self.ctx.progress,
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
        self.write(
            report,
            &predictions,
            serde_json::json!({"reader": self.reader.reader, "options": reader.options()}),
            reader.model().precision(),
        )
    }

    pub fn odqa(
        &self,
        index_dir: &Path,
        retrieval: &crate::RetrievalArgs,
        options: AskOptions,
    ) -> Result<()> {
        let questions = self.questions()?;
        let retriever = retrieval.open(self.ctx, index_dir, &crate::Bm25Args::default())?;
        let pipeline = Pipeline::new(retriever, self.reader.load(self.ctx)?);
        let (report, predictions) = run_reading_bench(
            &questions,
            &self.label(),
            "odqa",
            &self.questions.display().to_string(),
            self.ctx.progress,
            |q| {
                pipeline
                    .ask(&q.question, &options)
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
        self.write(
            report,
            &predictions,
            serde_json::json!({"reader": self.reader.reader, "index": index_dir, "ask": options, "retrieval": pipeline.retriever().options(), "options": pipeline.reader().options()}),
            pipeline.reader().model().precision(),
        )
    }
}

impl ReadingBench<'_> {
    /// Reads every top-k passage of every question once and stores their
    /// n-best spans in `cache` (re-scored by [`ReadingBench::sweep`]).
    pub fn build_cache(
        &self,
        index_dir: &Path,
        retrieval: &crate::RetrievalArgs,
        options: AskOptions,
        cache: &Path,
    ) -> Result<()> {
        let questions = self.questions()?;
        let retriever = retrieval.open(self.ctx, index_dir, &crate::Bm25Args::default())?;
        let pipeline = Pipeline::new(retriever, self.reader.load(self.ctx)?);
        let mut cached = Vec::with_capacity(questions.len());
        let settings = AskOptions {
            early_stop: false,
            ..options
        }
        .fusion();
        let (mut report, predictions) = run_reading_bench(
            &questions,
            &format!("{}-cache-top{}", self.label(), options.top_k),
            "odqa",
            &self.questions.display().to_string(),
            self.ctx.progress,
            |q| -> Result<ReadingPrediction> {
                let t = std::time::Instant::now();
                let hits = pipeline.retriever().retrieve(&q.question, options.top_k)?;
                let retrieve_ms = t.elapsed().as_secs_f64() * 1e3;
                let t = std::time::Instant::now();
                let passages = pipeline.read_hits(&q.question, &hits, None)?;
                let read_ms = t.elapsed().as_secs_f64() * 1e3;
                let gold_in_passage = hits
                    .iter()
                    .map(|h| q.answers.iter().any(|a| h.text.contains(a.as_str())))
                    .collect();
                let decision = odqa_reader::fusion::decide(&passages, &settings);
                let windows = passages.iter().map(|p| p.windows).sum();
                cached.push(odqa_bench::CachedQuestion {
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
        let source = serde_json::json!({"reader": self.reader.reader, "index": index_dir, "questions": self.questions, "retrieval": pipeline.retriever().options(), "options": pipeline.reader().options(), "machine": self.ctx.machine(Some(pipeline.reader().model().precision()))});
        odqa_bench::ReadCache {
            top_k: options.top_k,
            source: source.clone(),
            questions: cached,
        }
        .write(cache)?;
        eprintln!("wrote the read cache {}", cache.display());
        report.label = format!("{}-cache-top{}", self.label(), options.top_k);
        self.write(
            report,
            &predictions,
            serde_json::json!({"cache": cache, "ask": AskOptions { early_stop: false, ..options }, "source": source}),
            pipeline.reader().model().precision(),
        )
    }

    /// Re-scores a read cache at every combination of the given weights,
    /// depths and thresholds, with and without early stopping: a table on
    /// stdout and `odqa-sweep-<questions>-<label>.{md,json}` in the results.
    pub fn sweep(
        &self,
        cache: &Path,
        options: AskOptions,
        weights: &[f32],
        top_ks: &[usize],
        thresholds: &[f32],
    ) -> Result<()> {
        let mut data = odqa_bench::ReadCache::read(cache)?;
        if let Some(limit) = self.limit {
            data.questions.truncate(limit);
        }
        let rows = odqa_bench::sweep(
            &data,
            &options.fusion(),
            weights,
            top_ks,
            &[false, true],
            thresholds,
        )?;
        let table = odqa_bench::sweep_table(&rows);
        println!("{table}");
        let stem = format!(
            "odqa-sweep-{}-{}",
            self.questions
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
            self.label()
        );
        let sweep = odqa_bench::SweepReport {
            cache,
            source: &data.source,
            rows: &rows,
        };
        let (md, json) = sweep.write(
            self.out_dir,
            &stem,
            data.questions.len(),
            data.top_k,
            &table,
        )?;
        eprintln!("wrote {} and {}", md.display(), json.display());
        Ok(())
    }
}

pub struct Throughput<'a> {
    pub reader: &'a Path,
    pub embed: bool,
    pub profile: bool,
    pub seq_len: usize,
    pub batch_sizes: &'a [usize],
    pub windows: usize,
    pub corpus: Option<&'a str>,
    pub out_dir: &'a Path,
    pub label: Option<String>,
}

/// The model a throughput run times: QA logits or passage embeddings.
enum Timed {
    Reader(odqa_encoder::QaModel),
    Encoder(odqa_encoder::Encoder),
}

impl Timed {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        match self {
            Timed::Reader(m) => m.tokenizer(),
            Timed::Encoder(e) => e.tokenizer(),
        }
    }

    fn precision(&self) -> &odqa_encoder::PrecisionChoice {
        match self {
            Timed::Reader(m) => m.precision(),
            Timed::Encoder(e) => e.precision(),
        }
    }

    /// One forward pass over `batch` copies of `window`.
    fn run(&self, window: &[u32], batch: usize) -> Result<()> {
        self.run_profiled(window, batch, None)
    }

    fn run_profiled(
        &self,
        window: &[u32],
        batch: usize,
        profile: Option<&mut odqa_encoder::StageTimes>,
    ) -> Result<()> {
        match self {
            Timed::Reader(model) => {
                let flat: Vec<u32> = window
                    .iter()
                    .copied()
                    .cycle()
                    .take(batch * window.len())
                    .collect();
                let mask = vec![1u32; flat.len()];
                let types = vec![0u32; flat.len()];
                model.logits_profiled(&flat, &mask, &types, batch, window.len(), profile)?;
            }
            Timed::Encoder(encoder) => {
                let texts = vec![window.to_vec(); batch];
                encoder.embed_ids(&texts)?;
            }
        }
        Ok(())
    }
}

/// Prints ms per window for each stage and its share; returns them.
fn print_stages(
    times: &odqa_encoder::StageTimes,
    batch: usize,
) -> std::collections::BTreeMap<String, f64> {
    let total: f64 = times.seconds.iter().sum();
    let windows = (times.passes * batch).max(1) as f64;
    let mut out = std::collections::BTreeMap::new();
    for (stage, &s) in odqa_encoder::Stage::ALL.iter().zip(&times.seconds) {
        let ms = s * 1e3 / windows;
        println!(
            "    {:<38} {ms:>8.2} ms/window {:>5.1}%",
            stage.name(),
            100.0 * s / total.max(1e-12)
        );
        out.insert(stage.name().to_string(), ms);
    }
    out
}

/// Windows of exactly `seq_len` real tokens (Korean article text) through
/// the QA model (or the encoder, `embed`), timed per batch size.
pub fn throughput(ctx: &Ctx, args: &Throughput) -> Result<()> {
    if args.seq_len < 8 || args.windows == 0 || args.batch_sizes.contains(&0) {
        bail!("--seq-len must be at least 8, --windows and every batch size at least 1");
    }
    let model = if args.embed {
        let dir = crate::dense::default_model_dir()?;
        let options = odqa_encoder::EncoderOptions {
            precision: ctx.precision,
            batch_size: args.batch_sizes.iter().copied().max().unwrap_or(1),
            ..Default::default()
        };
        Timed::Encoder(
            odqa_encoder::Encoder::load_with(&dir, &ctx.device, &options)
                .with_context(|| format!("loading {}", dir.display()))?,
        )
    } else {
        let dir = reader_dir(args.reader)?;
        let model = odqa_encoder::QaModel::load_at(&dir, &ctx.device, ctx.precision)
            .with_context(|| format!("loading {}", dir.display()))?;
        model.check_window(args.seq_len)?;
        Timed::Reader(model)
    };
    crate::report_precision(
        if args.embed { "encoder" } else { "reader" },
        model.precision(),
    );
    let corpus = crate::corpora::resolve(args.corpus.or(Some("odqa-demo")))?;
    let mut ids: Vec<u32> = Vec::new();
    for record in odqa_corpus::open_corpus(&corpus.path)? {
        let text = record?.article.text;
        let encoding = model
            .tokenizer()
            .encode(text.as_str(), false)
            .map_err(|e| anyhow::anyhow!("tokenizing {}: {e}", corpus.path.display()))?;
        ids.extend_from_slice(encoding.get_ids());
        if ids.len() >= args.seq_len * 4 {
            break;
        }
    }
    if ids.len() < args.seq_len {
        bail!(
            "{} has fewer than {} tokens",
            corpus.path.display(),
            args.seq_len
        );
    }
    let window: Vec<u32> = ids[..args.seq_len].to_vec();
    let mut rows = Vec::new();
    for &batch in args.batch_sizes {
        model.run(&window, batch)?; // warm-up
        let passes = args.windows.div_ceil(batch);
        let started = std::time::Instant::now();
        for _ in 0..passes {
            model.run(&window, batch)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let windows_per_second = (passes * batch) as f64 / seconds;
        println!("batch {batch:>3}: {windows_per_second:.2} windows/s ({} windows of {} tokens in {seconds:.2} s)", passes * batch, args.seq_len);
        let mut row = odqa_bench::ThroughputRow {
            batch,
            windows: passes * batch,
            seconds,
            windows_per_second,
            stages_ms_per_window: None,
        };
        if args.profile && !args.embed {
            let mut times = odqa_encoder::StageTimes::default();
            for _ in 0..passes {
                model.run_profiled(&window, batch, Some(&mut times))?;
            }
            row.stages_ms_per_window = Some(print_stages(&times, batch));
        }
        rows.push(row);
    }
    let kind = if args.embed { "embed" } else { "reader" };
    let report = odqa_bench::ThroughputReport {
        label: args.label.clone().unwrap_or_else(|| kind.into()),
        kind,
        reader: (!args.embed).then(|| args.reader.to_path_buf()),
        seq_len: args.seq_len,
        device: ctx.device_name(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        machine: ctx.machine(Some(model.precision())),
        rows,
        created_unix: odqa_bench::now_unix(),
    };
    let path = report.write(args.out_dir)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
