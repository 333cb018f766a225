//! The two generators (recurring spans, retrieval-backed cloze) over one
//! article's passages.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use odqa_analysis::KoreanAnalyzer;
use odqa_corpus::{split_passages, Article, Passage};
use odqa_index::{Hit, IndexError, PassageIndex};
use odqa_reader::{answer_tokens, PassageTokens, Window, Windower};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokenizers::Tokenizer;

use super::spans::{content_spans, is_content_span, ContentSpan, SpanFinder};
use super::text::{mask_occurrences, sentences, words_around};
use super::{AnswerSpan, PretrainConfig, PretrainExample};
use crate::export::Kind;
use crate::split::split_hash;
use crate::{Result, TrainError};

/// Makes examples from articles; shareable across threads.
pub struct Generator<'a> {
    analyzer: &'a KoreanAnalyzer,
    pub(super) windower: Windower<'a>,
    index: Option<&'a PassageIndex>,
    pub(super) config: PretrainConfig,
    pub(super) mask: String,
}

/// An example with its windows and the passage tokens of its answer.
pub(super) struct Prepared {
    pub(super) example: PretrainExample,
    pub(super) windows: Vec<Window>,
    pub(super) answer_tokens: Option<(usize, usize)>,
}

#[derive(Default)]
pub(super) struct ArticleOutput {
    pub(super) examples: Vec<Prepared>,
    pub(super) passages: usize,
    pub(super) cloze_queries: usize,
    pub(super) cloze_answered: usize,
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

    pub(super) fn prepare(&self, article: &Article) -> Result<ArticleOutput> {
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
