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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use odqa_analysis::{KoreanAnalyzer, Morpheme};
use odqa_corpus::{split_passages, Article, Passage, PassageConfig};
use odqa_index::{Hit, IndexError, PassageIndex};
use odqa_reader::{answer_tokens, PassageTokens, Window, WindowConfig, Windower};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::export::{manifest, Kind, Staging, Writer};
use crate::split::split_hash;
use crate::{io_error, Result, TrainError};

/// Generic nouns that never make an answer on their own.
pub const STOP_NOUNS: &[&str] = &[
    "이후",
    "이전",
    "때문",
    "경우",
    "사용",
    "이상",
    "이하",
    "정도",
    "자신",
    "당시",
    "사람",
    "여러",
    "다음",
    "사이",
    "부분",
    "일부",
    "대부분",
    "가지",
    "하나",
    "관련",
    "대한",
    "위치",
    "현재",
    "최근",
    "처음",
    "마지막",
    "동안",
    "이름",
    "시작",
    "모두",
    "전체",
    "각각",
    "자체",
    "가운데",
    "이번",
    "한편",
    "그동안",
    "오늘",
    "지금",
    "우리",
    "그것",
    "이것",
    "저것",
    "무엇",
    "어디",
    "누구",
    "문제",
    "결과",
    "이유",
    "방법",
    "내용",
    "과정",
    "상태",
    "기간",
    "시기",
    "시간",
    "사실",
    "의미",
    "역할",
    "영향",
    "관계",
    "형태",
    "방식",
    "종류",
    "기록",
    "활동",
    "생각",
    "다른",
    "이용",
    "포함",
    "통해",
    "대해",
    "위해",
    "중심",
    "주요",
    "일반",
    "기타",
    "해당",
    "당해",
    "정의",
    "개념",
    "등장",
    "이후로",
    "둘",
    "셋",
    "넷",
    "첫째",
    "둘째",
    "셋째",
    "여기",
    "거기",
    "이곳",
    "그곳",
    "자기",
    "본인",
    "서로",
];

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

/// A candidate answer span of an analyzed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSpan {
    /// Byte range in the text.
    pub bytes: Range<usize>,
    /// Holds a proper noun, number, foreign word or hanja.
    pub entity: bool,
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

/// Makes examples from articles; shareable across threads.
pub struct Generator<'a> {
    analyzer: &'a KoreanAnalyzer,
    windower: Windower<'a>,
    index: Option<&'a PassageIndex>,
    config: PretrainConfig,
    mask: String,
}

/// An example with its windows and the passage tokens of its answer.
struct Prepared {
    example: PretrainExample,
    windows: Vec<Window>,
    answer_tokens: Option<(usize, usize)>,
}

#[derive(Default)]
struct ArticleOutput {
    examples: Vec<Prepared>,
    passages: usize,
    cloze_queries: usize,
    cloze_answered: usize,
}

struct Analyzed {
    passage: Passage,
    spans: Vec<ContentSpan>,
    sentences: Vec<Range<usize>>,
}

impl<'a> Generator<'a> {
    /// Checks the settings and finds the tokenizer's mask token.
    pub fn new(
        tokenizer: &'a Tokenizer,
        analyzer: &'a KoreanAnalyzer,
        index: Option<&'a PassageIndex>,
        config: PretrainConfig,
    ) -> Result<Self> {
        let bad = |m: &str| Err(TrainError::Config(m.to_string()));
        if !config.recurring && !config.cloze {
            return bad("no kinds to generate: choose recurring, cloze or both");
        }
        if config.cloze && index.is_none() {
            return bad("cloze examples need a BM25 index (--index)");
        }
        if !(0.0..1.0).contains(&config.dev_fraction) {
            return bad("the dev fraction must be in [0, 1)");
        }
        if config.min_answer_chars == 0 || config.min_answer_chars > config.max_answer_chars {
            return bad("answer lengths need 1 <= min_answer_chars <= max_answer_chars");
        }
        if config.max_answer_tokens == 0 || config.max_span_morphemes == 0 {
            return bad("max_answer_tokens and max_span_morphemes must be at least 1");
        }
        if config.max_question_chars < 10 || config.threads == 0 {
            return bad("max_question_chars must be at least 10 and threads at least 1");
        }
        config.passages.validate()?;
        let windower = Windower::new(tokenizer, config.windows)?;
        let mask = mask_token(tokenizer)?;
        Ok(Generator {
            analyzer,
            windower,
            index,
            config,
            mask,
        })
    }

    pub fn config(&self) -> &PretrainConfig {
        &self.config
    }

    /// The token that replaces masked occurrences.
    pub fn mask_token(&self) -> &str {
        &self.mask
    }

    pub fn windower(&self) -> &Windower<'a> {
        &self.windower
    }

    /// All examples of one article, in output order.
    pub fn article(&self, article: &Article) -> Result<Vec<PretrainExample>> {
        Ok(self
            .prepare(article)?
            .examples
            .into_iter()
            .map(|p| p.example)
            .collect())
    }

    fn prepare(&self, article: &Article) -> Result<ArticleOutput> {
        let c = &self.config;
        let mut rng =
            ChaCha8Rng::seed_from_u64(split_hash(c.seed, &format!("pretrain/{}", article.id)));
        let dev = c.dev_fraction > 0.0
            && (split_hash(c.seed, &format!("dev/{}", article.id)) as f64 / u64::MAX as f64)
                < c.dev_fraction;
        let mut analyzed = Vec::new();
        for passage in split_passages(article, &c.passages) {
            let morphemes = self.analyzer.morphemes(&passage.text)?;
            let spans = content_spans(&passage.text, &morphemes, c);
            let sentences = sentences(&passage.text);
            analyzed.push(Analyzed {
                passage,
                spans,
                sentences,
            });
        }
        let mut out = ArticleOutput {
            passages: analyzed.len(),
            ..ArticleOutput::default()
        };
        if c.recurring {
            for a in &analyzed {
                self.recurring(a, dev, &mut rng, &mut out)?;
            }
        }
        if let (true, Some(index)) = (c.cloze, self.index) {
            self.cloze(article, &analyzed, index, dev, &mut rng, &mut out)?;
        }
        Ok(out)
    }

    fn recurring(
        &self,
        a: &Analyzed,
        dev: bool,
        rng: &mut ChaCha8Rng,
        out: &mut ArticleOutput,
    ) -> Result<()> {
        let quota = self.config.recurring_per_passage;
        if quota == 0 {
            return Ok(());
        }
        let text = a.passage.text.as_str();
        let mut by_text: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<(&str, Vec<usize>, bool)> = Vec::new();
        for span in &a.spans {
            let t = &text[span.bytes.clone()];
            match by_text.get(t) {
                Some(&g) => groups[g].1.push(span.bytes.start),
                None => {
                    by_text.insert(t, groups.len());
                    groups.push((t, vec![span.bytes.start], span.entity));
                }
            }
        }
        groups.retain(|(_, starts, _)| starts.len() >= 2);
        // Random order within tiers: names, numbers and foreign words first,
        // then longer nouns and noun phrases, then two-letter nouns.
        groups.shuffle(rng);
        groups.sort_by_key(|(t, _, entity)| {
            match (entity, t.chars().count() >= 3 || t.contains(' ')) {
                (true, _) => 0,
                (false, true) => 1,
                (false, false) => 2,
            }
        });
        let mut made = 0;
        for (span, starts, _) in groups.iter().take(quota * 3) {
            if made == quota {
                break;
            }
            if let Some(p) = self.recurring_example(a, span, starts, made, dev, rng)? {
                out.examples.push(p);
                made += 1;
            }
        }
        Ok(())
    }

    fn recurring_example(
        &self,
        a: &Analyzed,
        span: &str,
        starts: &[usize],
        n: usize,
        dev: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<Prepared>> {
        let text = a.passage.text.as_str();
        let raw: Vec<usize> = text.match_indices(span).map(|(i, _)| i).collect();
        let keepable: Vec<usize> = starts.iter().copied().filter(|s| raw.contains(s)).collect();
        let Some(&kept) = keepable.choose(rng) else {
            return Ok(None);
        };
        let sentence_of = |at: usize| a.sentences.iter().position(|r| r.contains(&at));
        // Ask at another occurrence: a span occurrence (not one inside a
        // longer word) in another sentence than the kept one when possible.
        let score = |r: usize| {
            2 * usize::from(starts.contains(&r)) + usize::from(sentence_of(r) != sentence_of(kept))
        };
        let others: Vec<usize> = raw.iter().copied().filter(|&r| r != kept).collect();
        let Some(best) = others.iter().map(|&r| score(r)).max() else {
            return Ok(None);
        };
        let tier: Vec<usize> = others.into_iter().filter(|&r| score(r) == best).collect();
        let Some(&asked) = tier.choose(rng) else {
            return Ok(None);
        };
        let Some(sentence) = sentence_of(asked).map(|s| a.sentences[s].clone()) else {
            return Ok(None);
        };
        let Some(question) = self.question(text, sentence, span, asked)? else {
            return Ok(None);
        };
        let (context, positions) = mask_occurrences(text, span, Some(kept), &self.mask);
        let Some(kept_at) = positions.iter().find(|(o, _)| *o == kept).map(|(_, n)| *n) else {
            return Ok(None);
        };
        // What the model reads must hold the span once, at a span boundary.
        if context.matches(span).count() != 1 || question.contains(span) {
            return Ok(None);
        }
        let morphemes = self.analyzer.morphemes(&context)?;
        if !is_content_span(
            &context,
            &morphemes,
            kept_at..kept_at + span.len(),
            &self.config,
        ) {
            return Ok(None);
        }
        let Some((answer, tokens)) = self.answer(&context, kept_at, span)? else {
            return Ok(None);
        };
        let windows = self.windower.windows(&question, &[&context])?;
        Ok(Some(Prepared {
            example: PretrainExample {
                id: format!("{}/r{n}", a.passage.id),
                kind: Kind::RecurringSpan,
                dev,
                question,
                context_id: a.passage.id.clone(),
                context,
                answer: Some(answer),
                span: span.to_string(),
            },
            windows,
            answer_tokens: Some(tokens),
        }))
    }

    fn cloze(
        &self,
        article: &Article,
        analyzed: &[Analyzed],
        index: &PassageIndex,
        dev: bool,
        rng: &mut ChaCha8Rng,
        out: &mut ArticleOutput,
    ) -> Result<()> {
        let c = &self.config;
        if c.cloze_per_article == 0 || c.cloze_depth == 0 {
            return Ok(());
        }
        let mut candidates: Vec<(usize, usize)> = Vec::new();
        for (p, a) in analyzed.iter().enumerate() {
            for (s, span) in a.spans.iter().enumerate() {
                // Entity-like spans of one or two words: long noun chains
                // ("3월 8일 한성") make poor cloze answers.
                if span.entity
                    && a.passage.text[span.bytes.clone()]
                        .split_whitespace()
                        .count()
                        <= 2
                {
                    candidates.push((p, s));
                }
            }
        }
        candidates.shuffle(rng);
        let mut used_sentences = HashSet::new();
        let mut used_spans = HashSet::new();
        let mut asked = 0;
        let mut answered = 0;
        for (p, s) in candidates {
            if answered == c.cloze_per_article || asked == c.cloze_per_article * 3 {
                break;
            }
            let a = &analyzed[p];
            let text = a.passage.text.as_str();
            let bytes = a.spans[s].bytes.clone();
            let span = &text[bytes.clone()];
            let Some(si) = a.sentences.iter().position(|r| r.contains(&bytes.start)) else {
                continue;
            };
            let sentence = a.sentences[si].clone();
            if text[sentence.clone()].chars().count() < c.min_cloze_sentence_chars
                || used_sentences.contains(&(p, si))
                || used_spans.contains(span)
            {
                continue;
            }
            let Some(question) = self.question(text, sentence, span, bytes.start)? else {
                continue;
            };
            used_sentences.insert((p, si));
            used_spans.insert(span);
            asked += 1;
            out.cloze_queries += 1;
            let query = question.replace(&self.mask, " ");
            let hits = match index.search(&query, c.cloze_depth) {
                Ok(hits) => hits,
                Err(IndexError::EmptyQuery { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let squeezed_span: String = span.split_whitespace().collect();
            let mut answers = Vec::new();
            let mut negatives: Vec<&Hit> = Vec::new();
            for hit in &hits {
                if hit.article_id == article.id || hit.text.trim().is_empty() {
                    continue;
                }
                if hit.text.contains(span) {
                    if answers.len() < c.cloze_answers_per_question {
                        if let Some(prepared) =
                            self.cloze_answer(&question, span, hit, &article.id, asked, dev)?
                        {
                            answers.push(prepared);
                        }
                    }
                } else if negatives.len() < c.cloze_negatives_per_question {
                    let squeezed: String = hit.text.split_whitespace().collect();
                    if !squeezed.contains(&squeezed_span) {
                        negatives.push(hit);
                    }
                }
            }
            if answers.is_empty() {
                continue;
            }
            answered += 1;
            out.cloze_answered += 1;
            out.examples.extend(answers);
            for hit in negatives {
                let windows = self.windower.windows(&question, &[&hit.text])?;
                out.examples.push(Prepared {
                    example: PretrainExample {
                        id: format!("{}/c{asked}/{}", article.id, hit.passage_id),
                        kind: Kind::ClozeNoAnswer,
                        dev,
                        question: question.clone(),
                        context_id: hit.passage_id.clone(),
                        context: hit.text.clone(),
                        answer: None,
                        span: span.to_string(),
                    },
                    windows,
                    answer_tokens: None,
                });
            }
        }
        Ok(())
    }

    fn cloze_answer(
        &self,
        question: &str,
        span: &str,
        hit: &Hit,
        article_id: &str,
        n: usize,
        dev: bool,
    ) -> Result<Option<Prepared>> {
        let text = hit.text.as_str();
        let morphemes = self.analyzer.morphemes(text)?;
        let finder = SpanFinder::new(text, &morphemes, &self.config);
        let Some(at) = text
            .match_indices(span)
            .map(|(i, _)| i)
            .find(|&i| finder.is_span(i..i + span.len()))
        else {
            return Ok(None);
        };
        let Some((answer, tokens)) = self.answer(text, at, span)? else {
            return Ok(None);
        };
        let windows = self.windower.windows(question, &[text])?;
        Ok(Some(Prepared {
            example: PretrainExample {
                id: format!("{article_id}/c{n}/{}", hit.passage_id),
                kind: Kind::ClozeAnswer,
                dev,
                question: question.to_string(),
                context_id: hit.passage_id.clone(),
                context: hit.text.clone(),
                answer: Some(answer),
                span: span.to_string(),
            },
            windows,
            answer_tokens: Some(tokens),
        }))
    }

    /// The answer at byte `at` of `context` with its passage tokens, when
    /// it starts and ends on token boundaries and is short enough in tokens.
    fn answer(
        &self,
        context: &str,
        at: usize,
        span: &str,
    ) -> Result<Option<(AnswerSpan, (usize, usize))>> {
        let char_start = context[..at].chars().count();
        let char_end = char_start + span.chars().count();
        let tokens = self.windower.tokenize_passage(0, context)?;
        let Some((first, last)) = aligned_tokens(&tokens, &(char_start..char_end)) else {
            return Ok(None);
        };
        if last + 1 - first > self.config.max_answer_tokens {
            return Ok(None);
        }
        let answer = AnswerSpan {
            text: span.to_string(),
            char_start,
            char_end,
        };
        Ok(Some((answer, (first, last))))
    }

    /// The sentence `sentence` of `text` as a question about the occurrence
    /// of `span` at byte `at`: every occurrence masked, cut at word
    /// boundaries around that one to fit the character and token limits.
    fn question(
        &self,
        text: &str,
        sentence: Range<usize>,
        span: &str,
        at: usize,
    ) -> Result<Option<String>> {
        let c = &self.config;
        let (masked, positions) = mask_occurrences(&text[sentence.clone()], span, None, &self.mask);
        let Some(target) = positions
            .iter()
            .find(|(o, _)| sentence.start + o == at)
            .map(|(_, n)| *n)
        else {
            return Ok(None);
        };
        let mut budget = c.max_question_chars;
        for _ in 0..4 {
            let question = words_around(&masked, target, budget);
            if question.contains(span) || !question.contains(&self.mask) {
                return Ok(None);
            }
            let content = question
                .replace(&self.mask, "")
                .chars()
                .filter(|c| !c.is_whitespace())
                .count();
            if content < c.min_question_chars {
                return Ok(None);
            }
            // tokenize_question truncates at max_query_len: fewer means it fits.
            if self.windower.tokenize_question(&question)?.len() < c.windows.max_query_len {
                return Ok(Some(question));
            }
            budget = budget * 2 / 3;
        }
        Ok(None)
    }
}

/// `<mask>` or `[MASK]`, whichever the tokenizer has as one token.
fn mask_token(tokenizer: &Tokenizer) -> Result<String> {
    for name in ["<mask>", "[MASK]"] {
        if let Some(id) = tokenizer.token_to_id(name) {
            let encoding = tokenizer
                .encode(name, false)
                .map_err(|e| TrainError::Config(format!("cannot encode {name}: {e}")))?;
            if encoding.get_ids().contains(&id) {
                return Ok(name.to_string());
            }
        }
    }
    Err(TrainError::Config(
        "the tokenizer has no <mask> or [MASK] token to mask spans with".into(),
    ))
}

/// The passage tokens covering `chars` when the first starts and the last
/// ends exactly there.
fn aligned_tokens(tokens: &PassageTokens, chars: &Range<usize>) -> Option<(usize, usize)> {
    let (first, last) = answer_tokens(tokens, chars)?;
    (tokens.char_offsets[first].0 == chars.start && tokens.char_offsets[last].1 == chars.end)
        .then_some((first, last))
}

/// `text` with every (non-overlapping, left to right) occurrence of `span`
/// replaced by `mask`, except the one starting at byte `keep`; with the
/// `(old, new)` byte start of each occurrence.
fn mask_occurrences(
    text: &str,
    span: &str,
    keep: Option<usize>,
    mask: &str,
) -> (String, Vec<(usize, usize)>) {
    let mut out = String::with_capacity(text.len() + mask.len());
    let mut positions = Vec::new();
    let mut last = 0;
    for (i, _) in text.match_indices(span) {
        out.push_str(&text[last..i]);
        positions.push((i, out.len()));
        out.push_str(if Some(i) == keep { span } else { mask });
        last = i + span.len();
    }
    out.push_str(&text[last..]);
    (out, positions)
}

/// Whitespace-separated words around the one holding byte `target`, joined
/// by single spaces, growing right then left while within `max_chars`.
fn words_around(text: &str, target: usize, max_chars: usize) -> String {
    let words = word_ranges(text);
    let Some(t) = words
        .iter()
        .position(|w| w.start <= target && target < w.end)
    else {
        return String::new();
    };
    let len = |w: &Range<usize>| text[w.clone()].chars().count();
    let (mut lo, mut hi, mut total) = (t, t, len(&words[t]));
    loop {
        let mut grew = false;
        if hi + 1 < words.len() && total + 1 + len(&words[hi + 1]) <= max_chars {
            hi += 1;
            total += 1 + len(&words[hi]);
            grew = true;
        }
        if lo > 0 && total + 1 + len(&words[lo - 1]) <= max_chars {
            lo -= 1;
            total += 1 + len(&words[lo]);
            grew = true;
        }
        if !grew {
            break;
        }
    }
    words[lo..=hi]
        .iter()
        .map(|w| &text[w.clone()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn word_ranges(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(s..i);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// Byte ranges of the sentences of `text`, whitespace-trimmed: a sentence
/// ends after `.`, `?`, `!` or `。` (with closing quotes and brackets) that
/// whitespace or the end follows, and at every newline (the corpus's rule,
/// [`odqa_corpus::sentences`]).
pub use odqa_corpus::sentences;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Noun,
    Proper,
    Counter,
    Numeral,
    Number,
    Foreign,
    /// `,` or `.` inside a number (`1,000`, `3.14`).
    Joiner,
    Punct,
    Other,
}

impl Class {
    fn of(tag: &str) -> Class {
        if tag.contains('+') {
            // A compound analysis is content only when made of nouns alone.
            let mut parts = tag.split('+');
            return if parts.all(|p| p == "NNG" || p == "NNP") {
                if tag.split('+').any(|p| p == "NNP") {
                    Class::Proper
                } else {
                    Class::Noun
                }
            } else {
                Class::Other
            };
        }
        match tag {
            "NNG" => Class::Noun,
            "NNP" => Class::Proper,
            "NNBC" => Class::Counter,
            "NR" => Class::Numeral,
            "SN" => Class::Number,
            "SL" | "SH" => Class::Foreign,
            "SF" | "SE" | "SSO" | "SSC" | "SC" | "SY" => Class::Punct,
            _ => Class::Other,
        }
    }

    fn content(self) -> bool {
        !matches!(self, Class::Punct | Class::Other)
    }

    fn starts(self) -> bool {
        matches!(
            self,
            Class::Noun | Class::Proper | Class::Numeral | Class::Number | Class::Foreign
        )
    }

    fn entity(self) -> bool {
        matches!(self, Class::Proper | Class::Number | Class::Foreign)
    }
}

/// A generic noun ([`STOP_NOUNS`]) or a bare unit-like abbreviation
/// (up to three lower-case Latin letters: `km`, `kg`).
fn trivial(text: &str) -> bool {
    STOP_NOUNS.contains(&text) || (text.len() <= 3 && text.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Finds content spans over one analysis.
struct SpanFinder<'t> {
    text: &'t str,
    morphemes: &'t [Morpheme],
    classes: Vec<Class>,
    config: &'t PretrainConfig,
}

impl<'t> SpanFinder<'t> {
    fn new(text: &'t str, morphemes: &'t [Morpheme], config: &'t PretrainConfig) -> Self {
        let mut classes: Vec<Class> = morphemes
            .iter()
            .map(|m| {
                let sound = m.byte_start < m.byte_end
                    && m.byte_end <= text.len()
                    && text.is_char_boundary(m.byte_start)
                    && text.is_char_boundary(m.byte_end);
                if sound {
                    Class::of(&m.tag)
                } else {
                    Class::Other
                }
            })
            .collect();
        for i in 1..morphemes.len().saturating_sub(1) {
            let m = &morphemes[i];
            if classes[i] == Class::Punct
                && (m.surface == "," || m.surface == ".")
                && classes[i - 1] == Class::Number
                && classes[i + 1] == Class::Number
                && morphemes[i - 1].byte_end == m.byte_start
                && m.byte_end == morphemes[i + 1].byte_start
            {
                classes[i] = Class::Joiner;
            }
        }
        SpanFinder {
            text,
            morphemes,
            classes,
            config,
        }
    }

    fn adjacent(&self, a: usize, b: usize) -> bool {
        self.morphemes[a].byte_end == self.morphemes[b].byte_start
    }

    /// Same word, or words separated by one or two spaces.
    fn joined(&self, a: usize, b: usize) -> bool {
        let (end, start) = (self.morphemes[a].byte_end, self.morphemes[b].byte_start);
        end == start
            || (end < start
                && start - end <= 2
                && self.text.as_bytes()[end..start].iter().all(|&c| c == b' '))
    }

    /// The span starts its word or follows punctuation — not an
    /// underscore: `formula_16` is one identifier (WikiExtractor's
    /// placeholders for removed markup).
    fn left_boundary(&self, i: usize) -> bool {
        i == 0
            || !self.adjacent(i - 1, i)
            || (self.classes[i - 1] == Class::Punct
                && !self.morphemes[i - 1].surface.ends_with('_'))
    }

    /// The span ends its word, or stops before a particle, ending, copula
    /// or noun suffix — not before another noun or a verb-making suffix
    /// (`인정|하면서` is a predicate, not a noun).
    fn right_boundary(&self, j: usize) -> bool {
        if j + 1 == self.morphemes.len() || !self.adjacent(j, j + 1) {
            return true;
        }
        let next = &self.morphemes[j + 1];
        !self.classes[j + 1].content()
            && !next.tag.starts_with("XSV")
            && !next.tag.starts_with("XSA")
            && !next.surface.starts_with('_')
    }

    fn can_end(&self, i: usize, j: usize) -> bool {
        match self.classes[j] {
            Class::Noun | Class::Proper | Class::Numeral | Class::Number | Class::Foreign => true,
            Class::Counter => {
                j > i && matches!(self.classes[j - 1], Class::Number | Class::Numeral)
            }
            _ => false,
        }
    }

    fn is_span(&self, span: Range<usize>) -> bool {
        let Some(i) = self
            .morphemes
            .iter()
            .position(|m| m.byte_start == span.start)
        else {
            return false;
        };
        let mut found = false;
        self.spans_from(i, |j, _| found |= self.morphemes[j].byte_end == span.end);
        found
    }

    /// Calls `emit(j, entity)` for every span of morphemes `i..=j`.
    fn spans_from(&self, i: usize, mut emit: impl FnMut(usize, bool)) {
        let c = self.config;
        if !self.classes[i].starts() || !self.left_boundary(i) {
            return;
        }
        let start = self.morphemes[i].byte_start;
        let mut entity = false;
        let mut j = i;
        loop {
            entity |= self.classes[j].entity();
            let text = &self.text[start..self.morphemes[j].byte_end];
            let chars = text.chars().count();
            if chars > c.max_answer_chars {
                break;
            }
            if chars >= c.min_answer_chars
                && self.can_end(i, j)
                && self.right_boundary(j)
                && !trivial(text)
            {
                emit(j, entity);
            }
            let next = j + 1;
            if next - i >= c.max_span_morphemes
                || next >= self.morphemes.len()
                || !self.classes[next].content()
                || !self.joined(j, next)
            {
                break;
            }
            j = next;
        }
    }
}

/// Every content span of `text` (analyzed as `morphemes`), by start, then end.
pub fn content_spans(
    text: &str,
    morphemes: &[Morpheme],
    config: &PretrainConfig,
) -> Vec<ContentSpan> {
    let finder = SpanFinder::new(text, morphemes, config);
    let mut out = Vec::new();
    for i in 0..morphemes.len() {
        finder.spans_from(i, |j, entity| {
            out.push(ContentSpan {
                bytes: morphemes[i].byte_start..morphemes[j].byte_end,
                entity,
            })
        });
    }
    out
}

/// Whether bytes `span` of `text` are a content span of its analysis.
pub fn is_content_span(
    text: &str,
    morphemes: &[Morpheme],
    span: Range<usize>,
    config: &PretrainConfig,
) -> bool {
    SpanFinder::new(text, morphemes, config).is_span(span)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_end_at_terminators_followed_by_space_and_at_newlines() {
        let text = "첫 문장이다. 값은 3.14이다!\n둘째 줄 \"인용.\" 끝";
        let got: Vec<&str> = sentences(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            got,
            ["첫 문장이다.", "값은 3.14이다!", "둘째 줄 \"인용.\"", "끝"]
        );
    }

    #[test]
    fn masking_keeps_one_occurrence() {
        let (masked, at) = mask_occurrences("가 나 가 다 가", "가", Some(8), "<mask>");
        assert_eq!(masked, "<mask> 나 가 다 <mask>");
        assert_eq!(at, vec![(0, 0), (8, 11), (16, 19)]);
    }

    #[test]
    fn question_grows_around_the_mask_within_budget() {
        let text = "하나 둘 셋 <mask>은 넷 다섯 여섯";
        let target = text.find("<mask>").unwrap();
        assert_eq!(words_around(text, target, 12), "셋 <mask>은 넷");
        assert_eq!(words_around(text, target, 1), "<mask>은");
        assert_eq!(words_around(text, target, 100), text);
    }
}
