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

use crate::export::Kind;

/// Generation settings; every random choice is seeded by `seed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PretrainConfig {
    pub windows: WindowConfig,
    pub passages: PassageConfig,
    pub seed: u64,
    /// Make recurring-span examples.
    pub recurring: bool,
    /// Make cloze examples (needs a BM25 index).
    pub cloze: bool,
    /// Share of articles marked dev (seeded hash of the article id).
    pub dev_fraction: f64,
    pub min_answer_chars: usize,
    pub max_answer_chars: usize,
    /// Answers longer than this many model tokens are dropped (the reader's span limit).
    pub max_answer_tokens: usize,
    /// Content morphemes in one span at most.
    pub max_span_morphemes: usize,
    /// Recurring-span examples per passage at most.
    pub recurring_per_passage: usize,
    /// Answered cloze questions per article at most.
    pub cloze_per_article: usize,
    /// BM25 hits searched per cloze question.
    pub cloze_depth: usize,
    pub cloze_answers_per_question: usize,
    pub cloze_negatives_per_question: usize,
    /// Cloze questions come from sentences at least this long.
    pub min_cloze_sentence_chars: usize,
    /// Questions are cut to this many characters around the mask (and
    /// further until they fit `windows.max_query_len` tokens).
    pub max_question_chars: usize,
    /// Non-space characters a question needs besides its masks.
    pub min_question_chars: usize,
    /// Stop after this many examples (in corpus order).
    pub max_examples: Option<usize>,
    /// Worker threads (the output does not depend on it).
    #[serde(skip)]
    pub threads: usize,
    /// Examples per kind kept in the report for printing.
    #[serde(skip)]
    pub samples: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            windows: WindowConfig {
                max_len: 256,
                doc_stride: 128,
                max_query_len: 64,
            },
            passages: PassageConfig::default(),
            seed: 20261126,
            recurring: true,
            cloze: true,
            dev_fraction: 0.01,
            min_answer_chars: 2,
            max_answer_chars: 30,
            max_answer_tokens: 30,
            max_span_morphemes: 6,
            recurring_per_passage: 2,
            cloze_per_article: 2,
            cloze_depth: 10,
            cloze_answers_per_question: 2,
            cloze_negatives_per_question: 1,
            min_cloze_sentence_chars: 20,
            max_question_chars: 100,
            min_question_chars: 8,
            max_examples: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            samples: 3,
        }
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
