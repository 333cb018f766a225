//! A run over a corpus file (`odqa train pretrain-data`): its articles
//! streamed into [`generate`], the printed summary of the report and the
//! statistics file beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use odqa_corpus::{CorpusError, PassageEvent};
use serde::Serialize;

use super::{generate, Generator, PretrainReport};
use crate::{Result, TrainError};

/// Bucket edges `[a, b)` of the printed answer-length histograms, up to one
/// past the default longest answer (30 characters, 30 tokens).
const ANSWER_CHAR_EDGES: [usize; 10] = [2, 3, 4, 5, 6, 8, 11, 16, 21, 31];
const ANSWER_TOKEN_EDGES: [usize; 9] = [1, 2, 3, 4, 5, 7, 11, 16, 31];

/// What [`generate_from_corpus`] made and what the corpus stream dropped.
#[derive(Debug, Clone)]
pub struct CorpusRun {
    pub report: PretrainReport,
    /// Whether cloze questions were asked (the summary says how many).
    pub cloze: bool,
    /// Exact repeats of an earlier article, read once.
    pub repeated_articles: u64,
    /// Malformed records skipped (only when skipping was allowed).
    pub skipped_records: u64,
}

/// Generates examples from the articles of the corpus file `corpus` into
/// `out` ([`generate`]). With `skip_bad_records` a malformed record is
/// handed to `on_skipped` and left out instead of failing the run; repeated
/// articles are read once.
pub fn generate_from_corpus(
    generator: &Generator<'_>,
    corpus: &Path,
    skip_bad_records: bool,
    out: &Path,
    progress: bool,
    on_skipped: &mut dyn FnMut(&CorpusError),
) -> Result<CorpusRun> {
    let mut stream = odqa_corpus::articles(corpus, skip_bad_records)?;
    let articles = stream.by_ref().filter_map(|event| match event {
        Ok(PassageEvent::Article { record, .. }) => Some(Ok(record.article)),
        Ok(PassageEvent::Repeat { .. }) => None,
        Ok(PassageEvent::Skipped(err)) => {
            on_skipped(&err);
            None
        }
        Err(err) => Some(Err(TrainError::from(err))),
    });
    let report = generate(generator, articles, out, progress)?;
    let counts = stream.counts();
    Ok(CorpusRun {
        report,
        cloze: generator.config().cloze,
        repeated_articles: counts.repeated_articles,
        skipped_records: counts.skipped_records,
    })
}

impl CorpusRun {
    /// The report `odqa train pretrain-data` prints of a run into `out`:
    /// counts and throughput, examples and windows per kind, answer-length
    /// histograms, the samples, what the corpus stream dropped.
    pub fn summary<'a>(&'a self, out: &'a Path) -> PretrainSummary<'a> {
        PretrainSummary { run: self, out }
    }
}

/// [`CorpusRun::summary`]: lines, each ending in a newline.
#[derive(Debug, Clone, Copy)]
pub struct PretrainSummary<'a> {
    run: &'a CorpusRun,
    out: &'a Path,
}

impl fmt::Display for PretrainSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (run, r) = (self.run, &self.run.report);
        writeln!(
            f,
            "{} examples, {} windows, {} tokens from {} articles ({} passages) → {}",
            r.examples,
            r.windows,
            r.tokens,
            r.articles,
            r.passages,
            self.out.display()
        )?;
        writeln!(
            f,
            "{:.1} s, {:.0} examples/s on {} threads; mask token {}{}",
            r.seconds,
            r.examples_per_second,
            r.threads,
            r.mask_token,
            if r.reached_max_examples {
                "; stopped at --max-examples"
            } else {
                ""
            }
        )?;
        if run.cloze {
            writeln!(
                f,
                "cloze: {} questions searched, {} answered in other articles",
                r.cloze_queries, r.cloze_questions_answered
            )?;
        }
        writeln!(
            f,
            "{:<22} {:>9} {:>7} {:>9} {:>7}",
            "kind", "examples", "dev", "windows", "dev"
        )?;
        let kinds: BTreeSet<&str> = r
            .examples_by_kind
            .keys()
            .chain(r.windows_by_kind.keys())
            .copied()
            .collect();
        for kind in kinds {
            let [e, ed] = r.examples_by_kind.get(kind).copied().unwrap_or([0, 0]);
            let [w, wd] = r.windows_by_kind.get(kind).copied().unwrap_or([0, 0]);
            writeln!(f, "{kind:<22} {e:>9} {ed:>7} {w:>9} {wd:>7}")?;
        }
        // Every answer has a length in characters and one in tokens: both
        // histograms are shares of the same total.
        let answers: usize = r.answer_chars.values().sum();
        for (what, histogram, edges) in [
            ("answer chars", &r.answer_chars, &ANSWER_CHAR_EDGES[..]),
            ("answer tokens", &r.answer_tokens, &ANSWER_TOKEN_EDGES[..]),
        ] {
            writeln!(f, "{what}: {}", histogram_cells(histogram, edges, answers))?;
        }
        for sample in &r.samples {
            writeln!(f, "\n[{}] {}", sample.kind.name(), sample.id)?;
            writeln!(f, "  Q: {}", sample.question)?;
            writeln!(
                f,
                "  A: {}",
                sample.answer.as_deref().unwrap_or("(no answer)")
            )?;
            writeln!(f, "  C: {}", sample.context.replace('\n', " "))?;
        }
        let (repeated, skipped) = (run.repeated_articles, run.skipped_records);
        if repeated + skipped > 0 {
            writeln!(
                f,
                "{repeated} repeated articles read once, {skipped} malformed records skipped"
            )?;
        }
        Ok(())
    }
}

/// `2: 38.0%, 3: 36.0%, 6-7: 6.0%, …`: the share of `answers` in each
/// bucket of `edges`.
fn histogram_cells(histogram: &BTreeMap<usize, usize>, edges: &[usize], answers: usize) -> String {
    let cells: Vec<String> = edges
        .windows(2)
        .map(|w| {
            let n: usize = histogram.range(w[0]..w[1]).map(|(_, n)| n).sum();
            let label = if w[1] - w[0] == 1 {
                w[0].to_string()
            } else {
                format!("{}-{}", w[0], w[1] - 1)
            };
            format!("{label}: {:.1}%", 100.0 * n as f64 / answers.max(1) as f64)
        })
        .collect();
    cells.join(", ")
}

/// Where a run's statistics came from, recorded beside them.
#[derive(Debug, Clone, Serialize)]
pub struct RunProvenance<'a> {
    /// The command line that made them.
    pub command: String,
    pub corpus: &'a Path,
    /// The BM25 index cloze questions searched, if any.
    pub index: Option<&'a Path>,
    pub out: &'a Path,
}

impl PretrainReport {
    /// Writes the report with its `provenance` as pretty JSON (keys sorted)
    /// to `path`, creating its directory.
    pub fn write_stats(&self, path: &Path, provenance: &RunProvenance<'_>) -> Result<()> {
        #[derive(Serialize)]
        struct Stats<'a> {
            #[serde(flatten)]
            report: &'a PretrainReport,
            #[serde(flatten)]
            provenance: &'a RunProvenance<'a>,
        }
        let stats = serde_json::to_value(Stats {
            report: self,
            provenance,
        })
        .map_err(|e| TrainError::Context {
            context: format!("writing {}", path.display()),
            source: std::io::Error::other(e),
        })?;
        crate::write_creating_parent(path, &format!("{stats:#}"))
    }
}
