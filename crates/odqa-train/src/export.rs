//! Labelled windows → compact files a trainer reads without odqa:
//!
//! | file | content |
//! | --- | --- |
//! | `ids.u32` | every window's token ids, concatenated, little-endian `u32` |
//! | `windows.u32` | one row of [`ROW_FIELDS`] little-endian `u32` per window |
//! | `examples.jsonl` | one line per example (question, answer, kind, split, source id) |
//! | `manifest.json` | counts, settings, the tokenizer's special ids, column names |
//! | `korquad-dev.json` | the held-out KorQuAD articles, SQuAD v1 (for `odqa bench mrc`) |
//! | `klue-re-dev.jsonl` | the held-out KLUE-RE examples (for relation benchmarks) |
//!
//! A window's label is `(start, end)` window positions of the answer, or
//! `(0, 0)` — the first token — for "no answer here". Everything is written
//! into a hidden staging directory that replaces `out` only when complete.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use odqa_index::PassageIndex;
use odqa_reader::{Window, WindowConfig, Windower};
use odqa_relations::{questions, read_klue_re, KlueReExample, Relation, SubjectType};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::labels::{answer_tokens, window_label};
use crate::split::held_out_keys;
use crate::squad::{read_squad, write_squad, SquadArticle};
use crate::{io_error, Result, TrainError};

/// Columns of `windows.u32`.
pub const ROW_FIELDS: [&str; 9] = [
    "ids_offset",
    "len",
    "start",
    "end",
    "kind",
    "split",
    "example",
    "context_start",
    "context_end",
];

/// What a window teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A KorQuAD question and a window holding its answer.
    Answer = 0,
    /// A KorQuAD question and a window of its own paragraph without the answer.
    ParagraphNoAnswer = 1,
    /// A KorQuAD question and another paragraph of the same article.
    ArticleNegative = 2,
    /// A KorQuAD question and a passage of another article that BM25 retrieves for it.
    RetrievedNegative = 3,
    /// A relation question whose answer is the KLUE-RE object span.
    RelationAnswer = 4,
    /// A question for a relation the example does not hold (KLUE labels another one).
    RelationWrong = 5,
    /// A relation question about a pair KLUE labels `no_relation`.
    NoRelation = 6,
    /// Span-selection pre-training ([`crate::pretrain`]): a sentence with a
    /// recurring span masked asks for the one occurrence kept in its passage.
    RecurringSpan = 7,
    /// A window of a recurring-span passage that does not hold the kept occurrence.
    RecurringNoAnswer = 8,
    /// A cloze sentence and a passage of another article, retrieved by BM25, holding the span.
    ClozeAnswer = 9,
    /// A cloze sentence and a retrieved passage of another article without the span
    /// (or a window of a [`Kind::ClozeAnswer`] passage without it).
    ClozeNoAnswer = 10,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Answer,
        Kind::ParagraphNoAnswer,
        Kind::ArticleNegative,
        Kind::RetrievedNegative,
        Kind::RelationAnswer,
        Kind::RelationWrong,
        Kind::NoRelation,
        Kind::RecurringSpan,
        Kind::RecurringNoAnswer,
        Kind::ClozeAnswer,
        Kind::ClozeNoAnswer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Answer => "answer",
            Kind::ParagraphNoAnswer => "paragraph_no_answer",
            Kind::ArticleNegative => "article_negative",
            Kind::RetrievedNegative => "retrieved_negative",
            Kind::RelationAnswer => "relation_answer",
            Kind::RelationWrong => "relation_wrong",
            Kind::NoRelation => "no_relation",
            Kind::RecurringSpan => "recurring_span",
            Kind::RecurringNoAnswer => "recurring_no_answer",
            Kind::ClozeAnswer => "cloze_answer",
            Kind::ClozeNoAnswer => "cloze_no_answer",
        }
    }

    /// The kind of a window of this kind's example that does not hold the
    /// answer (itself for kinds that teach "no answer" anyway).
    pub fn without_answer(self) -> Kind {
        match self {
            Kind::Answer => Kind::ParagraphNoAnswer,
            Kind::RecurringSpan => Kind::RecurringNoAnswer,
            Kind::ClozeAnswer => Kind::ClozeNoAnswer,
            other => other,
        }
    }
}

/// Where the examples come from.
#[derive(Default)]
pub struct Sources<'a> {
    /// A SQuAD v1 file (KorQuAD).
    pub korquad: Option<&'a Path>,
    /// A KLUE-RE JSONL file.
    pub klue_re: Option<&'a Path>,
    /// A BM25 index to draw retrieved negatives from.
    pub negatives_index: Option<&'a PassageIndex>,
}

/// The windows of every training export (fine-tuning and pre-training
/// data): shorter than the reader's default ([`WindowConfig::default`]), so
/// more windows fit a training batch.
pub const DEFAULT_WINDOWS: WindowConfig = WindowConfig {
    max_len: 256,
    doc_stride: 128,
    max_query_len: 64,
};
/// [`ExportConfig::seed`].
pub const DEFAULT_SEED: u64 = 20261126;
/// [`ExportConfig::dev_fraction`].
pub const DEFAULT_DEV_FRACTION: f64 = 0.1;
/// [`ExportConfig::article_negatives`].
pub const DEFAULT_ARTICLE_NEGATIVES: bool = true;
/// [`ExportConfig::retrieved_negative_depth`] when there is an index to search.
pub const DEFAULT_RETRIEVED_NEGATIVE_DEPTH: usize = 10;
/// [`ExportConfig::relation_wrong_rate`].
pub const DEFAULT_RELATION_WRONG_RATE: f64 = 0.3;
/// [`ExportConfig::relation_wrong_per_example`].
pub const DEFAULT_RELATION_WRONG_PER_EXAMPLE: usize = 1;

/// The window flags of the training commands (`--max-len`, `--doc-stride`,
/// `--max-query-len`), defaults [`DEFAULT_WINDOWS`]: flattened into a
/// command next to [`ExportConfig`] or [`crate::PretrainConfig`], whose
/// `windows` they give ([`WindowArgs::config`]).
#[cfg(any(test, feature = "clap"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct WindowArgs {
    /// Tokens per window.
    #[arg(long, default_value_t = DEFAULT_WINDOWS.max_len)]
    pub max_len: usize,
    #[arg(long, default_value_t = DEFAULT_WINDOWS.doc_stride)]
    pub doc_stride: usize,
    #[arg(long, default_value_t = DEFAULT_WINDOWS.max_query_len)]
    pub max_query_len: usize,
}

#[cfg(any(test, feature = "clap"))]
impl WindowArgs {
    /// The windows these flags ask for.
    pub fn config(&self) -> WindowConfig {
        WindowConfig {
            max_len: self.max_len,
            doc_stride: self.doc_stride,
            max_query_len: self.max_query_len,
        }
    }
}

/// Export settings; every choice is seeded.
///
/// With the `clap` feature these are the flags of `odqa train export`
/// (`windows` comes from [`WindowArgs`], the other fields without a flag
/// keep their defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(any(test, feature = "clap"), derive(clap::Args))]
pub struct ExportConfig {
    #[cfg_attr(any(test, feature = "clap"), arg(skip = DEFAULT_WINDOWS))]
    pub windows: WindowConfig,
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_SEED))]
    pub seed: u64,
    /// Share of KorQuAD articles and KLUE-RE sentences held out as dev.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_DEV_FRACTION)
    )]
    pub dev_fraction: f64,
    /// One other paragraph of the same article per training question.
    #[cfg_attr(any(test, feature = "clap"), arg(skip = DEFAULT_ARTICLE_NEGATIVES))]
    pub article_negatives: bool,
    /// Hits searched for a retrieved negative (0: none).
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(skip = DEFAULT_RETRIEVED_NEGATIVE_DEPTH)
    )]
    pub retrieved_negative_depth: usize,
    /// Probability of an extra question for a relation the example does not
    /// hold (of its subject type, labelled no-answer), per labelled KLUE-RE
    /// training example.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_RELATION_WRONG_RATE)
    )]
    pub relation_wrong_rate: f64,
    /// Wrong relations asked (distinct, each labelled no-answer) when an
    /// example gets them: the reader tends to answer by the object's type
    /// rather than by the relation, and each is a counter-example.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_RELATION_WRONG_PER_EXAMPLE)
    )]
    pub relation_wrong_per_example: usize,
    /// Ask each relation question with one drawn template or with every template.
    #[cfg_attr(any(test, feature = "clap"), arg(long, value_enum, default_value_t))]
    pub relation_templates: RelationTemplates,
}

/// How many of a relation's question templates (`odqa_relations::questions`) are asked;
/// default [`RelationTemplates::One`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(any(test, feature = "clap"), derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum RelationTemplates {
    /// One template, drawn (seeded) per question.
    #[default]
    One,
    /// Every template: one example per template, so the reader sees each phrasing.
    Every,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            windows: DEFAULT_WINDOWS,
            seed: DEFAULT_SEED,
            dev_fraction: DEFAULT_DEV_FRACTION,
            article_negatives: DEFAULT_ARTICLE_NEGATIVES,
            retrieved_negative_depth: DEFAULT_RETRIEVED_NEGATIVE_DEPTH,
            relation_wrong_rate: DEFAULT_RELATION_WRONG_RATE,
            relation_wrong_per_example: DEFAULT_RELATION_WRONG_PER_EXAMPLE,
            relation_templates: RelationTemplates::default(),
        }
    }
}

/// Counts of one export.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportReport {
    pub examples: usize,
    pub windows: usize,
    pub tokens: u64,
    /// Windows per kind name: `[train, dev]`.
    pub windows_by_kind: BTreeMap<&'static str, [usize; 2]>,
    pub dev_articles: Vec<String>,
    pub korquad_dev_questions: usize,
    pub klue_re_dev_examples: usize,
    /// Questions for which no retrieved passage of another article lacked the answer.
    pub retrieved_negative_misses: usize,
}

impl ExportReport {
    /// The report `odqa train export` prints of an export into `out`: the
    /// counts, the windows per kind and split, what was held out.
    pub fn summary<'a>(&'a self, out: &'a Path) -> ExportSummary<'a> {
        ExportSummary { report: self, out }
    }
}

/// [`ExportReport::summary`]: lines, each ending in a newline.
#[derive(Debug, Clone, Copy)]
pub struct ExportSummary<'a> {
    report: &'a ExportReport,
    out: &'a Path,
}

impl fmt::Display for ExportSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        writeln!(
            f,
            "{} examples, {} windows, {} tokens → {}",
            r.examples,
            r.windows,
            r.tokens,
            self.out.display()
        )?;
        writeln!(f, "{:<22} {:>8} {:>8}", "windows", "train", "dev")?;
        for (kind, [train, dev]) in &r.windows_by_kind {
            writeln!(f, "{kind:<22} {train:>8} {dev:>8}")?;
        }
        writeln!(
            f,
            "held out: {} KorQuAD articles ({} questions), {} KLUE-RE examples",
            r.dev_articles.len(),
            r.korquad_dev_questions,
            r.klue_re_dev_examples
        )?;
        if r.retrieved_negative_misses > 0 {
            writeln!(
                f,
                "{} questions found no retrieved passage without the answer",
                r.retrieved_negative_misses
            )?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct ExampleLine<'a> {
    example: usize,
    id: &'a str,
    kind: Kind,
    split: &'static str,
    question: &'a str,
    answer: Option<&'a str>,
}

/// Appends labelled windows to `ids.u32` / `windows.u32` and example lines
/// to `examples.jsonl` (shared by [`export`] and [`crate::pretrain`]).
pub(crate) struct Writer {
    ids: BufWriter<std::fs::File>,
    rows: BufWriter<std::fs::File>,
    examples: BufWriter<std::fs::File>,
    dir: PathBuf,
    report: ExportReport,
}

impl Writer {
    pub(crate) fn create(dir: &Path) -> Result<Self> {
        let open = |name: &str| -> Result<BufWriter<std::fs::File>> {
            let path = dir.join(name);
            Ok(BufWriter::new(
                std::fs::File::create(&path).map_err(io_error(&path))?,
            ))
        };
        Ok(Writer {
            ids: open("ids.u32")?,
            rows: open("windows.u32")?,
            examples: open("examples.jsonl")?,
            dir: dir.to_path_buf(),
            report: ExportReport::default(),
        })
    }

    /// Writes one example: all its windows, each labelled with the answer's
    /// positions when it holds the answer tokens, else no-answer.
    fn example(
        &mut self,
        line: ExampleLine<'_>,
        windows: &[Window],
        answer: Option<(usize, usize)>,
        dev: bool,
    ) -> Result<()> {
        self.windows(line.kind, windows, answer, dev)?;
        let line = ExampleLine {
            example: self.report.examples,
            split: if dev { "dev" } else { "train" },
            ..line
        };
        self.line(&line)
    }

    /// Writes one example's windows (the example number is the next
    /// [`Writer::line`]'s), each labelled with the answer's positions when it
    /// holds the answer's passage tokens `answer`, else no-answer under
    /// [`Kind::without_answer`].
    pub(crate) fn windows(
        &mut self,
        example_kind: Kind,
        windows: &[Window],
        answer: Option<(usize, usize)>,
        dev: bool,
    ) -> Result<()> {
        let split = usize::from(dev);
        let path = self.dir.clone();
        let io = |e| TrainError::Io {
            path: path.clone(),
            source: e,
        };
        for w in windows {
            let (start, end) = answer.and_then(|a| window_label(w, a)).unwrap_or((0, 0));
            // A positive example's windows without the answer teach "not here".
            let kind = match start {
                0 => example_kind.without_answer(),
                _ => example_kind,
            };
            let row = [
                u32::try_from(self.report.tokens).map_err(|_| {
                    TrainError::Config("more than 2^32 tokens in one export".into())
                })?,
                w.input_ids.len() as u32,
                start as u32,
                end as u32,
                kind as u32,
                split as u32,
                self.report.examples as u32,
                w.context_range.start as u32,
                w.context_range.end as u32,
            ];
            for v in row {
                self.rows.write_all(&v.to_le_bytes()).map_err(io)?;
            }
            for id in &w.input_ids {
                self.ids.write_all(&id.to_le_bytes()).map_err(io)?;
            }
            self.report.tokens += w.input_ids.len() as u64;
            self.report.windows += 1;
            self.report
                .windows_by_kind
                .entry(kind.name())
                .or_insert([0, 0])[split] += 1;
        }
        Ok(())
    }

    /// Appends one line to `examples.jsonl` and counts the example.
    pub(crate) fn line<T: Serialize>(&mut self, line: &T) -> Result<()> {
        let path = self.dir.clone();
        let io = |e| TrainError::Io {
            path: path.clone(),
            source: e,
        };
        serde_json::to_writer(&mut self.examples, line)
            .map_err(|e| io(std::io::Error::other(e)))?;
        self.examples.write_all(b"\n").map_err(io)?;
        self.report.examples += 1;
        Ok(())
    }

    /// Examples written so far (the next example's number).
    pub(crate) fn examples(&self) -> usize {
        self.report.examples
    }

    pub(crate) fn finish(mut self) -> Result<ExportReport> {
        let dir = self.dir.clone();
        for w in [&mut self.ids, &mut self.rows, &mut self.examples] {
            w.flush().map_err(io_error(&dir))?;
        }
        Ok(self.report)
    }
}

/// Exports every example of `sources` into `out` (replaced atomically).
pub fn export(
    tokenizer: &Tokenizer,
    sources: &Sources<'_>,
    config: &ExportConfig,
    out: &Path,
    progress: bool,
) -> Result<ExportReport> {
    if sources.korquad.is_none() && sources.klue_re.is_none() {
        return Err(TrainError::Config(
            "nothing to export: give a KorQuAD file, a KLUE-RE file or both".into(),
        ));
    }
    if !(0.0..1.0).contains(&config.dev_fraction) {
        return Err(TrainError::Config(format!(
            "dev fraction {} must be in [0, 1)",
            config.dev_fraction
        )));
    }
    if !(0.0..=1.0).contains(&config.relation_wrong_rate) {
        return Err(TrainError::Config(format!(
            "relation wrong rate {} must be in [0, 1]",
            config.relation_wrong_rate
        )));
    }
    let windower = Windower::new(tokenizer, config.windows)?;
    let staging = Staging::create(out)?;
    let result = export_into(&windower, sources, config, &staging.dir, progress);
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            staging.abandon();
            return Err(e);
        }
    };
    let manifest = manifest(windower.pad_id(), config, &report);
    staging.commit(&manifest, out)?;
    Ok(report)
}

/// The `manifest.json` every window export starts from: format, columns,
/// kind codes, padding id, settings and counts.
pub(crate) fn manifest(
    pad_id: Option<u32>,
    config: &impl Serialize,
    report: &impl Serialize,
) -> serde_json::Value {
    serde_json::json!({
        "format": "odqa-train-windows/1",
        "row_fields": ROW_FIELDS,
        "no_answer_position": 0,
        "kinds": Kind::ALL.iter().map(|k| (k.name(), *k as u32)).collect::<BTreeMap<_, _>>(),
        "pad_id": pad_id,
        "config": config,
        "report": report,
    })
}

/// A hidden sibling directory that replaces `out` only when complete.
pub(crate) struct Staging {
    pub(crate) dir: PathBuf,
    parent: PathBuf,
    name: String,
}

impl Staging {
    pub(crate) fn create(out: &Path) -> Result<Self> {
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        std::fs::create_dir_all(&parent).map_err(io_error(&parent))?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export".into());
        let dir = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(Staging { dir, parent, name })
    }

    /// Removes the staging directory (after a failure).
    pub(crate) fn abandon(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Writes `manifest.json` and renames the staging directory to `out`,
    /// replacing what was there.
    pub(crate) fn commit(self, manifest: &serde_json::Value, out: &Path) -> Result<()> {
        let manifest_path = self.dir.join("manifest.json");
        if let Err(e) = std::fs::write(&manifest_path, format!("{manifest:#}")) {
            let err = io_error(&manifest_path)(e);
            self.abandon();
            return Err(err);
        }
        if out.exists() {
            let old = self
                .parent
                .join(format!(".{}.old-{}", self.name, std::process::id()));
            std::fs::rename(out, &old).map_err(io_error(out))?;
            std::fs::rename(&self.dir, out).map_err(io_error(out))?;
            std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
        } else {
            std::fs::rename(&self.dir, out).map_err(io_error(out))?;
        }
        Ok(())
    }
}

fn export_into(
    windower: &Windower<'_>,
    sources: &Sources<'_>,
    config: &ExportConfig,
    dir: &Path,
    progress: bool,
) -> Result<ExportReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut writer = Writer::create(dir)?;
    let mut dev_articles = Vec::new();
    let mut korquad_dev_questions = 0;
    let mut misses = 0;
    if let Some(path) = sources.korquad {
        let file = read_squad(path)?;
        let held = held_out_keys(
            file.data.iter().map(|a| a.title.as_str()),
            config.dev_fraction,
            config.seed,
        );
        let bar = bar(
            progress,
            file.data.iter().map(|a| a.paragraphs.len() as u64).sum(),
            "KorQuAD paragraphs",
        );
        for article in &file.data {
            let dev = held.contains(&article.title);
            if dev {
                dev_articles.push(article.title.clone());
                korquad_dev_questions += article
                    .paragraphs
                    .iter()
                    .map(|p| p.qas.len())
                    .sum::<usize>();
            }
            misses += korquad_article(
                windower,
                article,
                dev,
                config,
                sources.negatives_index,
                &mut rng,
                &mut writer,
            )?;
            bar.inc(article.paragraphs.len() as u64);
        }
        bar.finish_and_clear();
        let dev: Vec<&SquadArticle> = file
            .data
            .iter()
            .filter(|a| held.contains(&a.title))
            .collect();
        write_squad(&dir.join("korquad-dev.json"), &dev)?;
    }
    let mut klue_re_dev_examples = 0;
    if let Some(path) = sources.klue_re {
        let examples = read_klue_re(path)?;
        let held = held_out_keys(
            examples.iter().map(|e| e.sentence.as_str()),
            config.dev_fraction,
            config.seed,
        );
        let dev_path = dir.join("klue-re-dev.jsonl");
        let mut dev_file =
            BufWriter::new(std::fs::File::create(&dev_path).map_err(io_error(&dev_path))?);
        let bar = bar(progress, examples.len() as u64, "KLUE-RE examples");
        for (i, example) in examples.iter().enumerate() {
            let dev = held.contains(&example.sentence);
            if dev {
                klue_re_dev_examples += 1;
                serde_json::to_writer(&mut dev_file, example)
                    .map_err(|e| io_error(&dev_path)(std::io::Error::other(e)))?;
                dev_file.write_all(b"\n").map_err(io_error(&dev_path))?;
            }
            relation_example(windower, example, i, dev, config, &mut rng, &mut writer)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        dev_file.flush().map_err(io_error(&dev_path))?;
    }
    let mut report = writer.finish()?;
    report.dev_articles = dev_articles;
    report.korquad_dev_questions = korquad_dev_questions;
    report.klue_re_dev_examples = klue_re_dev_examples;
    report.retrieved_negative_misses = misses;
    Ok(report)
}

fn bar(progress: bool, len: u64, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} {wide_bar} {pos}/{len} [{elapsed_precise}<{eta_precise}]",
    ) {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// One article's questions; returns how many questions found no retrieved negative.
fn korquad_article(
    windower: &Windower<'_>,
    article: &SquadArticle,
    dev: bool,
    config: &ExportConfig,
    index: Option<&PassageIndex>,
    rng: &mut ChaCha8Rng,
    writer: &mut Writer,
) -> Result<usize> {
    let mut misses = 0;
    let title = article.title.replace('_', " ");
    for (p, paragraph) in article.paragraphs.iter().enumerate() {
        let tokens = windower.tokenize_passage(0, &paragraph.context)?;
        for qa in &paragraph.qas {
            // The first answer is the annotated span; others are alternatives.
            let gold = &qa.answers[0];
            let answer = answer_tokens(&tokens, &gold.char_range());
            let windows = windower.windows(&qa.question, &[&paragraph.context])?;
            let line = |kind| ExampleLine {
                example: 0,
                id: &qa.id,
                kind,
                split: "",
                question: &qa.question,
                answer: None,
            };
            writer.example(
                ExampleLine {
                    answer: Some(&gold.text),
                    ..line(Kind::Answer)
                },
                &windows,
                answer,
                dev,
            )?;
            if dev {
                continue;
            }
            let lacks_answer = |text: &str| qa.answers.iter().all(|a| !text.contains(&a.text));
            if config.article_negatives {
                let others: Vec<&str> = article
                    .paragraphs
                    .iter()
                    .enumerate()
                    .filter(|&(o, other)| o != p && lacks_answer(&other.context))
                    .map(|(_, other)| other.context.as_str())
                    .collect();
                if let Some(other) = others.choose(rng) {
                    let windows = windower.windows(&qa.question, &[other])?;
                    writer.example(line(Kind::ArticleNegative), &windows, None, dev)?;
                }
            }
            if let (Some(index), depth @ 1..) = (index, config.retrieved_negative_depth) {
                let hits = match index.search(&qa.question, depth) {
                    Ok(hits) => hits,
                    // A question with no searchable term retrieves nothing.
                    Err(odqa_index::IndexError::EmptyQuery { .. }) => Vec::new(),
                    Err(e) => return Err(e.into()),
                };
                match hits.iter().find(|h| {
                    h.title != title && lacks_answer(&h.text) && !h.text.trim().is_empty()
                }) {
                    Some(hit) => {
                        let windows = windower.windows(&qa.question, &[&hit.text])?;
                        writer.example(line(Kind::RetrievedNegative), &windows, None, dev)?;
                    }
                    None => misses += 1,
                }
            }
        }
    }
    Ok(misses)
}

fn relation_example(
    windower: &Windower<'_>,
    example: &KlueReExample,
    index: usize,
    dev: bool,
    config: &ExportConfig,
    rng: &mut ChaCha8Rng,
    writer: &mut Writer,
) -> Result<()> {
    let subject = &example.subject_entity;
    let subject_type = SubjectType::from_klue(&subject.entity_type);
    let id = format!("klue-re-{index}");
    // The questions asked for one relation: one drawn template, or all of them.
    let ask = |relation: Relation, rng: &mut ChaCha8Rng| {
        let mut qs = questions(relation, &subject.word, subject_type);
        match config.relation_templates {
            RelationTemplates::Every => qs,
            RelationTemplates::One => {
                let i = rng.random_range(0..qs.len());
                vec![qs.swap_remove(i)]
            }
        }
    };
    // Relations defined for the subject's type (both when KLUE's type is neither).
    let same_type: Vec<Relation> = Relation::for_subject(subject_type).collect();
    let context = [example.sentence.as_str()];
    // One example per question; `answer` None: every window labelled no-answer.
    let emit = |relation: Relation,
                kind: Kind,
                answer: Option<(&str, Option<(usize, usize)>)>,
                rng: &mut ChaCha8Rng,
                writer: &mut Writer|
     -> Result<()> {
        for question in ask(relation, rng) {
            let windows = windower.windows(&question, &context)?;
            let line = ExampleLine {
                example: 0,
                id: &id,
                kind,
                split: "",
                question: &question,
                answer: answer.map(|(text, _)| text),
            };
            writer.example(line, &windows, answer.and_then(|(_, span)| span), dev)?;
        }
        Ok(())
    };
    match example.relation() {
        Some(relation) => {
            let tokens = windower.tokenize_passage(0, &example.sentence)?;
            let span = answer_tokens(&tokens, &example.object_entity.char_range());
            let answer = Some((example.object_entity.word.as_str(), span));
            emit(relation, Kind::RelationAnswer, answer, rng, writer)?;
            if rng.random_bool(config.relation_wrong_rate) {
                let others: Vec<Relation> = same_type
                    .iter()
                    .copied()
                    .filter(|&r| r != relation)
                    .collect();
                let wrong: Vec<Relation> = match config.relation_wrong_per_example {
                    0 => Vec::new(),
                    // `choose` for one keeps the seeded draws of earlier exports.
                    1 => others.choose(rng).copied().into_iter().collect(),
                    n => others.choose_multiple(rng, n).copied().collect(),
                };
                for other in wrong {
                    emit(other, Kind::RelationWrong, None, rng, writer)?;
                }
            }
        }
        None => {
            if let Some(&relation) = same_type.choose(rng) {
                emit(relation, Kind::NoRelation, None, rng, writer)?;
            }
        }
    }
    Ok(())
}

/// Reads `windows.u32` back (for tests and checks).
pub fn read_rows(dir: &Path) -> Result<Vec<[u32; ROW_FIELDS.len()]>> {
    let path = dir.join("windows.u32");
    let bytes = std::fs::read(&path).map_err(io_error(&path))?;
    Ok(bytes
        .chunks_exact(4 * ROW_FIELDS.len())
        .map(|row| {
            let mut out = [0u32; ROW_FIELDS.len()];
            for (o, b) in out.iter_mut().zip(row.chunks_exact(4)) {
                *o = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            out
        })
        .collect())
}

/// Reads `ids.u32` back.
pub fn read_ids(dir: &Path) -> Result<Vec<u32>> {
    let path = dir.join("ids.u32");
    let bytes = std::fs::read(&path).map_err(io_error(&path))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags `odqa train export` flattens, parsed from an empty command line.
    #[derive(clap::Parser)]
    struct ExportFlags {
        #[command(flatten)]
        windows: WindowArgs,
        #[command(flatten)]
        config: ExportConfig,
    }

    #[test]
    fn no_flags_give_the_default_config() {
        use clap::Parser;
        let flags = ExportFlags::try_parse_from(["export"]).unwrap();
        let config = ExportConfig {
            windows: flags.windows.config(),
            ..flags.config
        };
        assert_eq!(config, ExportConfig::default());
        let flags = ExportFlags::try_parse_from([
            "export",
            "--max-len",
            "128",
            "--relation-templates",
            "every",
        ])
        .unwrap();
        assert_eq!(flags.windows.config().max_len, 128);
        assert_eq!(flags.config.relation_templates, RelationTemplates::Every);
    }

    #[test]
    fn the_summary_lists_counts_kinds_and_what_was_held_out() {
        let mut report = ExportReport {
            examples: 3,
            windows: 5,
            tokens: 120,
            windows_by_kind: [("answer", [2, 1]), ("relation_wrong", [2, 0])].into(),
            dev_articles: vec!["서울".into()],
            korquad_dev_questions: 1,
            klue_re_dev_examples: 0,
            retrieved_negative_misses: 0,
        };
        let expected = "3 examples, 5 windows, 120 tokens → out/x\n\
                        windows                   train      dev\n\
                        answer                        2        1\n\
                        relation_wrong                2        0\n\
                        held out: 1 KorQuAD articles (1 questions), 0 KLUE-RE examples\n";
        assert_eq!(report.summary(Path::new("out/x")).to_string(), expected);
        report.retrieved_negative_misses = 2;
        assert!(report
            .summary(Path::new("out/x"))
            .to_string()
            .ends_with("examples\n2 questions found no retrieved passage without the answer\n"));
    }
}
