//! Generation on worker threads with output written in article order
//! (the ordered parallel writer), through the exporter's [`Writer`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use odqa_corpus::Article;
use serde::Serialize;

use super::generator::{ArticleOutput, Generator};
use super::{PretrainConfig, PretrainExample, PretrainReport, Sample};
use crate::export::{manifest, Kind, Staging, Writer};
use crate::{io_error, Result};

#[derive(Serialize)]
struct PretrainLine<'a> {
    example: usize,
    id: &'a str,
    kind: Kind,
    split: &'static str,
    question: &'a str,
    answer: Option<&'a str>,
    /// Character offsets of the answer in the context.
    answer_start: Option<usize>,
    answer_end: Option<usize>,
    /// The passage the context is (masked, for recurring spans).
    context_id: &'a str,
}

/// Generates examples from `articles` into `out` (a directory replaced only
/// when complete): the files of [`crate::export`] plus `pretrain-stats.json`
/// (the [`PretrainReport`]). Articles are processed on
/// [`PretrainConfig::threads`] threads and written in their order.
pub fn generate<I>(
    generator: &Generator<'_>,
    articles: I,
    out: &Path,
    progress: bool,
) -> Result<PretrainReport>
where
    I: IntoIterator<Item = Result<Article>>,
{
    let staging = Staging::create(out)?;
    let report = match generate_into(generator, articles.into_iter(), &staging.dir, progress) {
        Ok(report) => report,
        Err(e) => {
            staging.abandon();
            return Err(e);
        }
    };
    let stats_path = staging.dir.join("pretrain-stats.json");
    let stats = serde_json::to_string_pretty(&report)
        .map_err(|e| io_error(&stats_path)(std::io::Error::other(e)))?;
    std::fs::write(&stats_path, stats).map_err(io_error(&stats_path))?;
    let export_report = crate::ExportReport {
        examples: report.examples,
        windows: report.windows,
        tokens: report.tokens,
        windows_by_kind: report.windows_by_kind.clone(),
        ..crate::ExportReport::default()
    };
    let mut manifest = manifest(
        generator.windower.pad_id(),
        &generator.config,
        &export_report,
    );
    manifest["generator"] = serde_json::json!("pretrain");
    manifest["mask_token"] = serde_json::json!(generator.mask);
    manifest["examples_by_kind"] = serde_json::json!(report.examples_by_kind);
    staging.commit(&manifest, out)?;
    Ok(report)
}

type Job = (usize, Article);
type Done = (usize, Result<ArticleOutput>);

fn generate_into(
    generator: &Generator<'_>,
    articles: impl Iterator<Item = Result<Article>>,
    dir: &Path,
    progress: bool,
) -> Result<PretrainReport> {
    let started = Instant::now();
    let threads = generator.config.threads.max(1);
    let writer = Writer::create(dir)?;
    let bar = progress_bar(progress, generator.config.max_examples);
    let stop = AtomicBool::new(false);
    let (job_tx, job_rx) = sync_channel::<Job>(threads * 8);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = sync_channel::<Done>(threads * 8);
    let (writer, mut report) = std::thread::scope(|scope| -> Result<(Writer, PretrainReport)> {
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || loop {
                let job = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok((seq, article)) = job else {
                    return;
                };
                if done_tx.send((seq, generator.prepare(&article))).is_err() {
                    return;
                }
            });
        }
        // Workers own the only receivers: when they all stop, sends fail.
        drop(job_rx);
        drop(done_tx);
        let stop = &stop;
        let bar = &bar;
        let writing = scope.spawn(move || write_in_order(generator, writer, done_rx, stop, bar));
        let mut read = Ok(());
        for (seq, article) in articles.enumerate() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match article {
                Ok(article) => {
                    if job_tx.send((seq, article)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    read = Err(e);
                    break;
                }
            }
        }
        drop(job_tx);
        let written = writing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        read?;
        written
    })?;
    bar.finish_and_clear();
    let export = writer.finish()?;
    report.examples = export.examples;
    report.windows = export.windows;
    report.tokens = export.tokens;
    report.windows_by_kind = export.windows_by_kind;
    report.threads = threads;
    report.seconds = started.elapsed().as_secs_f64();
    report.examples_per_second = report.examples as f64 / report.seconds.max(1e-9);
    report.mask_token = generator.mask.clone();
    Ok(report)
}

fn progress_bar(progress: bool, max: Option<usize>) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let (bar, template) = match max {
        Some(max) => (
            ProgressBar::new(max as u64),
            "{msg} {wide_bar} {pos}/{len} examples [{elapsed_precise}<{eta_precise}, {per_sec}]",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {msg}, {pos} examples [{elapsed_precise}, {per_sec}]",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

/// The writer thread: results arrive in any order and are written in
/// article order until the input ends, an error comes, or the maximum is
/// reached (then `stop` tells the reader).
fn write_in_order(
    generator: &Generator<'_>,
    mut writer: Writer,
    done: Receiver<Done>,
    stop: &AtomicBool,
    bar: &ProgressBar,
) -> Result<(Writer, PretrainReport)> {
    let config = &generator.config;
    let mut report = PretrainReport::default();
    let mut pending: BTreeMap<usize, Result<ArticleOutput>> = BTreeMap::new();
    let mut next = 0;
    let mut outcome = Ok(());
    'receive: for (seq, result) in done.iter() {
        pending.insert(seq, result);
        while let Some(result) = pending.remove(&next) {
            next += 1;
            let more = result
                .and_then(|output| write_article(config, &mut writer, &mut report, output, bar));
            match more {
                Ok(true) => {}
                Ok(false) => {
                    report.reached_max_examples = true;
                    break 'receive;
                }
                Err(e) => {
                    outcome = Err(e);
                    break 'receive;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(done);
    outcome.map(|()| (writer, report))
}

/// Writes one article's examples; `false` once the maximum is reached.
fn write_article(
    config: &PretrainConfig,
    writer: &mut Writer,
    report: &mut PretrainReport,
    output: ArticleOutput,
    bar: &ProgressBar,
) -> Result<bool> {
    report.articles += 1;
    report.passages += output.passages;
    report.cloze_queries += output.cloze_queries;
    report.cloze_questions_answered += output.cloze_answered;
    for p in output.examples {
        if config
            .max_examples
            .is_some_and(|max| writer.examples() >= max)
        {
            return Ok(false);
        }
        let e = &p.example;
        writer.windows(e.kind, &p.windows, p.answer_tokens, e.dev)?;
        let line = PretrainLine {
            example: writer.examples(),
            id: &e.id,
            kind: e.kind,
            split: if e.dev { "dev" } else { "train" },
            question: &e.question,
            answer: e.answer.as_ref().map(|a| a.text.as_str()),
            answer_start: e.answer.as_ref().map(|a| a.char_start),
            answer_end: e.answer.as_ref().map(|a| a.char_end),
            context_id: &e.context_id,
        };
        writer.line(&line)?;
        report
            .examples_by_kind
            .entry(e.kind.name())
            .or_insert([0, 0])[usize::from(e.dev)] += 1;
        if let (Some(a), Some((first, last))) = (&e.answer, p.answer_tokens) {
            *report
                .answer_chars
                .entry(a.char_end - a.char_start)
                .or_insert(0) += 1;
            *report.answer_tokens.entry(last + 1 - first).or_insert(0) += 1;
        }
        if report.samples.iter().filter(|s| s.kind == e.kind).count() < config.samples {
            report.samples.push(sample(e));
        }
        bar.inc(1);
    }
    if report.articles.is_multiple_of(64) {
        bar.set_message(format!("{} articles", report.articles));
    }
    Ok(config
        .max_examples
        .is_none_or(|max| writer.examples() < max))
}

fn sample(e: &PretrainExample) -> Sample {
    let chars: Vec<char> = e.context.chars().collect();
    let context = match &e.answer {
        Some(a) => {
            let from = a.char_start.saturating_sub(80);
            let to = (a.char_end + 80).min(chars.len());
            let piece = |r: Range<usize>| chars[r].iter().collect::<String>();
            format!(
                "{}[[{}]]{}",
                piece(from..a.char_start),
                piece(a.char_start..a.char_end),
                piece(a.char_end..to)
            )
        }
        None => chars.iter().take(160).collect(),
    };
    Sample {
        kind: e.kind,
        id: e.id.clone(),
        question: e.question.clone(),
        answer: e.answer.as_ref().map(|a| a.text.clone()),
        context,
    }
}
