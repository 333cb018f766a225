//! Span-selection pre-training data (Splinter-style recurring spans and
//! retrieval-backed cloze), written through the very windows and exporter
//! of the fine-tuning data ([`crate::export`]), so the reader sees
//! identical inputs.
//!
//! **Answer spans** come from odqa's Korean analyzer: runs of content
//! morphemes — common and proper nouns, numerals and numbers with their
//! counters (`1545년 3월`), foreign words and hanja, joined inside a word
//! or across single spaces (noun phrases: `대한민국 임시정부`). A span starts
//! at a word start, ends where the next morpheme of its word is not a noun
//! (before a particle, ending, copula or noun suffix: `이순신|은`; not
//! before a verb-making suffix: `인정|하다` is no noun), and never
//! holds or touches a particle (`J*`), an ending (`E*`), a prefix or suffix
//! (`X*`), a bound noun (`NNB`: 것, 수, 등) or a verb. A counter may only end a
//! span right after a number. Spans shorter than
//! [`PretrainConfig::min_answer_chars`] or longer than
//! [`PretrainConfig::max_answer_chars`] / [`PretrainConfig::max_answer_tokens`],
//! generic nouns ([`STOP_NOUNS`]), bare unit abbreviations (`km`) and
//! pieces of underscore identifiers (`formula_16`) are dropped. Every answer
//! must also start and end on a token boundary of the model tokenizer, so
//! its label is exactly its text.
//!
//! **Recurring spans** ([`Kind::RecurringSpan`]): in one passage, a span
//! found two or more times (up to [`PretrainConfig::recurring_per_passage`]
//! per passage, names, numbers and foreign words first, then longer nouns
//! and noun phrases, then two-letter nouns). One occurrence (seeded choice) stays; every
//! other occurrence of its text is replaced by the tokenizer's mask token
//! (`<mask>` for multilingual-e5-small, `[MASK]` for BERT vocabularies).
//! The question is the sentence around one masked occurrence — preferably
//! another sentence than the kept one's — with the span masked there too,
//! cut to [`PretrainConfig::max_question_chars`] around the mask at word
//! boundaries; the context is the masked passage, the answer the kept
//! occurrence. Windows of the passage without it are
//! [`Kind::RecurringNoAnswer`].
//!
//! **Cloze with retrieved contexts** ([`Kind::ClozeAnswer`],
//! [`Kind::ClozeNoAnswer`]): a sentence with one entity-like span (one with a
//! proper noun, number, foreign word or hanja) masked is the question; odqa's
//! BM25 searches it (mask removed); passages of *other* articles that hold
//! the span at span boundaries are answer contexts (first such occurrence
//! labelled), the best-ranked passages without it (not even with different
//! spacing) are no-answer examples. A question whose search finds no
//! answer context is dropped with its negatives.
//!
//! Everything is seeded: each article gets its own RNG from the seed and its
//! id, and examples are written in corpus order whatever the thread
//! scheduling, so one seed gives byte-identical output on any thread count.
//! A share of articles ([`PretrainConfig::dev_fraction`], by a seeded hash
//! of the id) is marked dev.

mod generator;
mod run;
mod spans;
mod text;
mod writer;

pub use generator::Generator;
pub use run::{generate_from_corpus, CorpusRun, PretrainSummary, RunProvenance};
pub use spans::{content_spans, is_content_span, ContentSpan, STOP_NOUNS};
pub use text::sentences;
pub use writer::generate;

use std::collections::BTreeMap;

use odqa_corpus::PassageConfig;
use odqa_reader::WindowConfig;
use serde::Serialize;

use crate::export::{Kind, DEFAULT_WINDOWS};

/// [`PretrainConfig::seed`].
pub const DEFAULT_SEED: u64 = 20261126;
/// [`PretrainConfig::dev_fraction`].
pub const DEFAULT_DEV_FRACTION: f64 = 0.01;
/// [`PretrainConfig::max_answer_chars`].
pub const DEFAULT_MAX_ANSWER_CHARS: usize = 30;
/// [`PretrainConfig::recurring_per_passage`].
pub const DEFAULT_RECURRING_PER_PASSAGE: usize = 2;
/// [`PretrainConfig::cloze_per_article`].
pub const DEFAULT_CLOZE_PER_ARTICLE: usize = 2;
/// [`PretrainConfig::cloze_depth`].
pub const DEFAULT_CLOZE_DEPTH: usize = 10;
/// [`PretrainConfig::samples`].
pub const DEFAULT_SAMPLES: usize = 3;

/// Generation settings; every random choice is seeded by `seed`.
///
/// With the `clap` feature these are the flags of `odqa train
/// pretrain-data`: `windows` comes from [`crate::export::WindowArgs`],
/// `recurring` and `cloze` from [`PretrainKinds`] (`--kinds`); the other
/// fields without a flag keep their defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(any(test, feature = "clap"), derive(clap::Args))]
pub struct PretrainConfig {
    #[cfg_attr(any(test, feature = "clap"), arg(skip = DEFAULT_WINDOWS))]
    pub windows: WindowConfig,
    #[cfg_attr(any(test, feature = "clap"), arg(skip))]
    pub passages: PassageConfig,
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_SEED))]
    pub seed: u64,
    /// Make recurring-span examples.
    #[cfg_attr(any(test, feature = "clap"), arg(skip = PretrainConfig::default().recurring))]
    pub recurring: bool,
    /// Make cloze examples (needs a BM25 index).
    #[cfg_attr(any(test, feature = "clap"), arg(skip = PretrainConfig::default().cloze))]
    pub cloze: bool,
    /// Share of articles marked dev (seeded hash of the article id).
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_DEV_FRACTION)
    )]
    pub dev_fraction: f64,
    #[cfg_attr(any(test, feature = "clap"), arg(skip = PretrainConfig::default().min_answer_chars))]
    pub min_answer_chars: usize,
    /// Longest answer in characters.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_MAX_ANSWER_CHARS)
    )]
    pub max_answer_chars: usize,
    /// Answers longer than this many model tokens are dropped (the reader's span limit).
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(skip = PretrainConfig::default().max_answer_tokens)
    )]
    pub max_answer_tokens: usize,
    /// Content morphemes in one span at most.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(skip = PretrainConfig::default().max_span_morphemes)
    )]
    pub max_span_morphemes: usize,
    /// Recurring-span examples per passage at most.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_RECURRING_PER_PASSAGE)
    )]
    pub recurring_per_passage: usize,
    /// Answered cloze questions per article at most.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_CLOZE_PER_ARTICLE)
    )]
    pub cloze_per_article: usize,
    /// BM25 hits searched per cloze question.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(long, default_value_t = DEFAULT_CLOZE_DEPTH)
    )]
    pub cloze_depth: usize,
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(skip = PretrainConfig::default().cloze_answers_per_question)
    )]
    pub cloze_answers_per_question: usize,
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(skip = PretrainConfig::default().cloze_negatives_per_question)
    )]
    pub cloze_negatives_per_question: usize,
    /// Cloze questions come from sentences at least this long.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(skip = PretrainConfig::default().min_cloze_sentence_chars)
    )]
    pub min_cloze_sentence_chars: usize,
    /// Questions are cut to this many characters around the mask (and
    /// further until they fit `windows.max_query_len` tokens).
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(skip = PretrainConfig::default().max_question_chars)
    )]
    pub max_question_chars: usize,
    /// Non-space characters a question needs besides its masks.
    #[cfg_attr(
        any(test, feature = "clap"),
        arg(skip = PretrainConfig::default().min_question_chars)
    )]
    pub min_question_chars: usize,
    /// Stop after this many examples (in corpus order).
    #[cfg_attr(any(test, feature = "clap"), arg(long))]
    pub max_examples: Option<usize>,
    /// Worker threads (the output does not depend on it).
    #[serde(skip)]
    #[cfg_attr(any(test, feature = "clap"), arg(skip = PretrainConfig::default().threads))]
    pub threads: usize,
    /// Examples printed per kind (the report keeps them for its summary).
    #[serde(skip)]
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_SAMPLES))]
    pub samples: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            windows: DEFAULT_WINDOWS,
            passages: PassageConfig::default(),
            seed: DEFAULT_SEED,
            recurring: true,
            cloze: true,
            dev_fraction: DEFAULT_DEV_FRACTION,
            min_answer_chars: 2,
            max_answer_chars: DEFAULT_MAX_ANSWER_CHARS,
            max_answer_tokens: 30,
            max_span_morphemes: 6,
            recurring_per_passage: DEFAULT_RECURRING_PER_PASSAGE,
            cloze_per_article: DEFAULT_CLOZE_PER_ARTICLE,
            cloze_depth: DEFAULT_CLOZE_DEPTH,
            cloze_answers_per_question: 2,
            cloze_negatives_per_question: 1,
            min_cloze_sentence_chars: 20,
            max_question_chars: 100,
            min_question_chars: 8,
            max_examples: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            samples: DEFAULT_SAMPLES,
        }
    }
}

/// A kind of pre-training example, a value of `--kinds` ([`PretrainKinds`]).
#[cfg(any(test, feature = "clap"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PretrainKind {
    /// A span found twice or more in one passage: one kept, the others masked.
    Recurring,
    /// A sentence with a span masked, answered in BM25-retrieved passages of other articles.
    Cloze,
}

/// The `--kinds` flag of `odqa train pretrain-data`: which of
/// [`PretrainConfig::recurring`] and [`PretrainConfig::cloze`] are on
/// ([`PretrainKinds::apply`]); default both.
#[cfg(any(test, feature = "clap"))]
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PretrainKinds {
    /// Kinds to make, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "recurring,cloze"
    )]
    pub kinds: Vec<PretrainKind>,
}

#[cfg(any(test, feature = "clap"))]
impl PretrainKinds {
    /// Sets `config.recurring` and `config.cloze` to the kinds asked for.
    pub fn apply(&self, config: &mut PretrainConfig) {
        config.recurring = self.kinds.contains(&PretrainKind::Recurring);
        config.cloze = self.kinds.contains(&PretrainKind::Cloze);
    }
}

/// An answer: its text and character offsets in the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnswerSpan {
    pub text: String,
    pub char_start: usize,
    pub char_end: usize,
}

/// One generated example, as the model will read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PretrainExample {
    /// `{passage id}/r{n}` (recurring) or `{article id}/c{n}/{passage id}` (cloze).
    pub id: String,
    /// [`Kind::RecurringSpan`], [`Kind::ClozeAnswer`] or [`Kind::ClozeNoAnswer`].
    pub kind: Kind,
    pub dev: bool,
    pub question: String,
    /// The passage the context is (a masked copy of, for recurring spans).
    pub context_id: String,
    pub context: String,
    /// `None` for no-answer examples.
    pub answer: Option<AnswerSpan>,
    /// The span text asked for (the answer's text; for no-answer examples the
    /// span the context lacks).
    pub span: String,
}

/// A few examples for the printed report.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub kind: Kind,
    pub id: String,
    pub question: String,
    pub answer: Option<String>,
    /// Up to 80 characters either side of the answer, marked `[[…]]`, or the
    /// context's start for no-answer examples.
    pub context: String,
}

/// Counts, histograms and throughput of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PretrainReport {
    pub examples: usize,
    pub windows: usize,
    pub tokens: u64,
    /// Examples per kind: `[train, dev]`.
    pub examples_by_kind: BTreeMap<&'static str, [usize; 2]>,
    /// Windows per kind: `[train, dev]`.
    pub windows_by_kind: BTreeMap<&'static str, [usize; 2]>,
    pub articles: usize,
    pub passages: usize,
    pub cloze_queries: usize,
    pub cloze_questions_answered: usize,
    /// Answer length in characters → examples.
    pub answer_chars: BTreeMap<usize, usize>,
    /// Answer length in model tokens → examples.
    pub answer_tokens: BTreeMap<usize, usize>,
    pub reached_max_examples: bool,
    pub threads: usize,
    pub seconds: f64,
    pub examples_per_second: f64,
    pub mask_token: String,
    pub samples: Vec<Sample>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::export::WindowArgs;

    /// The flags `odqa train pretrain-data` flattens.
    #[derive(clap::Parser)]
    struct PretrainFlags {
        #[command(flatten)]
        windows: WindowArgs,
        #[command(flatten)]
        kinds: PretrainKinds,
        #[command(flatten)]
        config: PretrainConfig,
    }

    impl PretrainFlags {
        fn config(&self) -> PretrainConfig {
            let mut config = PretrainConfig {
                windows: self.windows.config(),
                ..self.config.clone()
            };
            self.kinds.apply(&mut config);
            config
        }
    }

    #[test]
    fn no_flags_give_the_default_config() {
        let flags = PretrainFlags::try_parse_from(["pretrain-data"]).unwrap();
        assert_eq!(flags.config(), PretrainConfig::default());
    }

    #[test]
    fn kinds_turn_the_generators_on() {
        let flags = PretrainFlags::try_parse_from(["pretrain-data", "--kinds", "cloze"]).unwrap();
        let config = flags.config();
        assert!(config.cloze && !config.recurring);
        let flags =
            PretrainFlags::try_parse_from(["pretrain-data", "--kinds", "recurring,cloze"]).unwrap();
        assert!(flags.config().recurring && flags.config().cloze);
        assert!(PretrainFlags::try_parse_from(["pretrain-data", "--kinds", "both"]).is_err());
    }
}
