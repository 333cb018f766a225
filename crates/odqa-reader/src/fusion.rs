//! Answers over several retrieved passages: retrieval and span scores fused
//! (BERTserini's linear interpolation), answers with the same text merged,
//! the early-stopping bound, and the no-answer decision.
//!
//! Everything here works on numbers the reader and the retriever already
//! produced ([`ReadPassage`]), so a benchmark can store them once and
//! re-score any weight, depth or threshold without running the model.

use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::metrics::normalize_answer;
use crate::{ReaderError, Result};

/// One span of a passage as the reader scored it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadSpan {
    pub text: String,
    /// Character offsets in the passage.
    pub char_start: usize,
    pub char_end: usize,
    /// `p_start × p_end` in its window (the best over windows).
    pub probability: f32,
}

/// What the reader made of one retrieved passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadPassage {
    /// 0-based position in the retrieval ranking.
    pub rank: usize,
    pub retrieval_score: f32,
    /// Reader windows the passage took.
    pub windows: usize,
    /// The passage's n-best spans, best first.
    pub spans: Vec<ReadSpan>,
    /// The lowest no-answer probability over its windows, when the scoring
    /// has one.
    pub no_answer_score: Option<f32>,
}

/// The retrieval score normalized per question: divided by the best
/// retrieval score of the question (rank 1), so it lies in 0..=1 for
/// non-negative scores (BM25). `best` ≤ 0 (no positive score) gives 0.
pub fn normalized_retrieval(score: f32, best: f32) -> f32 {
    if best > 0.0 && score.is_finite() {
        (score / best).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// An answer's final score: `(1 − μ) × span probability + μ × normalized
/// retrieval score`. `weight` (μ) must be within 0..=1.
pub fn fused_score(span_probability: f32, normalized_retrieval: f32, weight: f32) -> f32 {
    (1.0 - weight) * span_probability.clamp(0.0, 1.0) + weight * normalized_retrieval
}

/// The highest fused score any span of a passage with this normalized
/// retrieval score could get (its span probability is at most 1).
pub fn score_bound(normalized_retrieval: f32, weight: f32) -> f32 {
    fused_score(1.0, normalized_retrieval, weight)
}

/// `weight` within 0..=1 (and not NaN).
pub fn check_weight(weight: f32) -> Result<()> {
    if (0.0..=1.0).contains(&weight) {
        Ok(())
    } else {
        Err(ReaderError::Config(format!(
            "retrieval weight {weight} is outside 0..=1"
        )))
    }
}

/// Where one answer text was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedEvidence {
    /// Index of the passage in the list given to [`rank_answers`].
    pub passage: usize,
    pub char_start: usize,
    pub char_end: usize,
    pub span_probability: f32,
    pub score: f32,
}

/// One distinct answer: its best occurrence first in `evidence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedAnswer {
    pub text: String,
    /// The best fused score over its occurrences.
    pub score: f32,
    /// Every passage span with this answer (after normalization), best first.
    pub evidence: Vec<FusedEvidence>,
}

impl FusedAnswer {
    /// The best occurrence.
    pub fn best(&self) -> &FusedEvidence {
        &self.evidence[0]
    }
}

/// The distinct answers over `passages`, best first, at most `answers`.
///
/// Each span's score is [`fused_score`] of its probability and its
/// passage's retrieval score normalized by `best_retrieval` (the question's
/// top retrieval score). Spans whose texts are equal after KorQuAD
/// normalization are one answer: its score is their maximum and every
/// occurrence is listed as evidence. Ties go to the earlier passage (lower
/// retrieval rank), then the earlier span, so the ranking is deterministic
/// and a passage read later can never win a tie.
pub fn rank_answers(
    passages: &[ReadPassage],
    best_retrieval: f32,
    weight: f32,
    answers: usize,
) -> Vec<FusedAnswer> {
    let mut order: Vec<(f32, usize, usize)> = Vec::new(); // score, passage, span
    for (p, passage) in passages.iter().enumerate() {
        let r = normalized_retrieval(passage.retrieval_score, best_retrieval);
        for (s, span) in passage.spans.iter().enumerate() {
            order.push((fused_score(span.probability, r, weight), p, s));
        }
    }
    order.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(passages[a.1].rank.cmp(&passages[b.1].rank))
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    let mut by_text: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<FusedAnswer> = Vec::new();
    for (score, p, s) in order {
        let span = &passages[p].spans[s];
        let key = normalize_answer(&span.text);
        let key = if key.is_empty() {
            span.text.clone()
        } else {
            key
        };
        let evidence = FusedEvidence {
            passage: p,
            char_start: span.char_start,
            char_end: span.char_end,
            span_probability: span.probability,
            score,
        };
        match by_text.get(&key) {
            Some(&i) => {
                let same_span = out[i].evidence.iter().any(|e| {
                    (e.passage, e.char_start, e.char_end) == (p, span.char_start, span.char_end)
                });
                if !same_span {
                    out[i].evidence.push(evidence);
                }
            }
            None => {
                if out.len() == answers {
                    continue;
                }
                by_text.insert(key, out.len());
                out.push(FusedAnswer {
                    text: span.text.clone(),
                    score,
                    evidence: vec![evidence],
                });
            }
        }
    }
    out
}

/// Passages (given their window counts, in retrieval order) grouped into
/// reading batches: consecutive passages until the batch holds at least
/// `batch_windows` windows (a passage is never split; every batch has at
/// least one passage).
pub fn reading_batches(windows: &[usize], batch_windows: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut held = 0;
    for (i, &w) in windows.iter().enumerate() {
        held += w;
        if held >= batch_windows.max(1) {
            out.push(start..i + 1);
            start = i + 1;
            held = 0;
        }
    }
    if start < windows.len() {
        out.push(start..windows.len());
    }
    out
}

/// Whether reading can stop after `read` (the passages read so far):
/// no passage from `retrieval_scores[next]` on (retrieval scores sorted
/// best first) can reach a fused score above the best answer read, because
/// a span probability is at most 1. True when nothing is left to read.
pub fn can_stop(
    read: &[ReadPassage],
    retrieval_scores: &[f32],
    next: usize,
    best_retrieval: f32,
    weight: f32,
) -> bool {
    let Some(&next_score) = retrieval_scores.get(next) else {
        return true;
    };
    let Some(best) = rank_answers(read, best_retrieval, weight, 1)
        .into_iter()
        .next()
    else {
        return false;
    };
    best.score >= score_bound(normalized_retrieval(next_score, best_retrieval), weight)
}

/// The outcome of scoring one question from its read passages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub answers: Vec<FusedAnswer>,
    /// Passages read (a prefix of the ranking).
    pub passages_read: usize,
    pub windows_read: usize,
    /// True when the best answer's score is below the no-answer threshold
    /// (the answers are still listed: the best is the best candidate).
    pub no_answer: bool,
}

/// Settings of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FusionSettings {
    /// μ: weight of the normalized retrieval score.
    pub weight: f32,
    /// Passages considered (a prefix of the ranking).
    pub top_k: usize,
    /// Distinct answers kept.
    pub answers: usize,
    /// Stop reading when the bound says no unread passage can win.
    pub early_stop: bool,
    /// Windows per reading batch (early stopping is checked between batches).
    pub batch_windows: usize,
    /// "No answer" when the best fused score is below this (0 = never).
    pub no_answer_threshold: f32,
}

/// Re-scores a question from all its read passages (as a cache holds them,
/// in retrieval order), reading only what early stopping would have read.
/// This is the same loop the pipeline runs live, without the model.
pub fn decide(passages: &[ReadPassage], settings: &FusionSettings) -> Decision {
    let all = &passages[..settings.top_k.min(passages.len())];
    let best_retrieval = all.first().map_or(0.0, |p| p.retrieval_score);
    let scores: Vec<f32> = all.iter().map(|p| p.retrieval_score).collect();
    let windows: Vec<usize> = all.iter().map(|p| p.windows).collect();
    let mut read = 0;
    for batch in reading_batches(&windows, settings.batch_windows) {
        read = batch.end;
        if settings.early_stop
            && can_stop(&all[..read], &scores, read, best_retrieval, settings.weight)
        {
            break;
        }
    }
    let used = &all[..read];
    let answers = rank_answers(used, best_retrieval, settings.weight, settings.answers);
    let no_answer = answers
        .first()
        .is_none_or(|a| a.score < settings.no_answer_threshold);
    Decision {
        answers,
        passages_read: read,
        windows_read: used.iter().map(|p| p.windows).sum(),
        no_answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(rank: usize, retrieval: f32, spans: &[(&str, f32)]) -> ReadPassage {
        ReadPassage {
            rank,
            retrieval_score: retrieval,
            windows: 1,
            spans: spans
                .iter()
                .enumerate()
                .map(|(i, (t, p))| ReadSpan {
                    text: t.to_string(),
                    char_start: i * 10,
                    char_end: i * 10 + t.chars().count(),
                    probability: *p,
                })
                .collect(),
            no_answer_score: None,
        }
    }

    fn settings(weight: f32, early_stop: bool) -> FusionSettings {
        FusionSettings {
            weight,
            top_k: 100,
            answers: 5,
            early_stop,
            batch_windows: 1,
            no_answer_threshold: 0.0,
        }
    }

    #[test]
    fn fusion_interpolates_span_and_normalized_retrieval_scores() {
        assert_eq!(normalized_retrieval(5.0, 10.0), 0.5);
        assert_eq!(normalized_retrieval(5.0, 0.0), 0.0);
        assert!((fused_score(0.8, 0.5, 0.25) - (0.75 * 0.8 + 0.25 * 0.5)).abs() < 1e-7);
        assert_eq!(fused_score(0.3, 1.0, 0.0), 0.3);
        assert_eq!(fused_score(0.3, 0.6, 1.0), 0.6);
        assert_eq!(score_bound(0.5, 0.5), 0.75);
        assert!(check_weight(1.5).is_err() && check_weight(f32::NAN).is_err());
        // Passage 2 has the surer span, passage 1 the better retrieval score.
        let ps = [
            passage(0, 10.0, &[("서울", 0.5)]),
            passage(1, 4.0, &[("부산", 0.7)]),
        ];
        assert_eq!(rank_answers(&ps, 10.0, 0.0, 5)[0].text, "부산");
        // μ = 0.5: 0.5·0.5 + 0.5·1 = 0.75 against 0.5·0.7 + 0.5·0.4 = 0.55.
        let ranked = rank_answers(&ps, 10.0, 0.5, 5);
        assert_eq!(ranked[0].text, "서울");
        assert!((ranked[0].score - 0.75).abs() < 1e-6 && (ranked[1].score - 0.55).abs() < 1e-6);
    }

    #[test]
    fn same_answers_from_different_passages_are_one_answer_with_all_evidence() {
        let ps = [
            passage(0, 10.0, &[("서울", 0.4), ("부산", 0.3)]),
            passage(1, 9.0, &[("서울", 0.6), ("인천", 0.1)]),
            passage(2, 8.0, &[("서울 ", 0.2)]),
        ];
        let ranked = rank_answers(&ps, 10.0, 0.0, 2);
        let texts: Vec<&str> = ranked.iter().map(|a| a.text.as_str()).collect();
        assert_eq!(texts, ["서울", "부산"]);
        let seoul = &ranked[0];
        assert!((seoul.score - 0.6).abs() < 1e-6);
        let from: Vec<usize> = seoul.evidence.iter().map(|e| e.passage).collect();
        assert_eq!(from, [1, 0, 2], "best occurrence first, all listed");
    }

    #[test]
    fn batches_never_split_a_passage() {
        assert_eq!(reading_batches(&[1, 3, 1, 1, 2], 2), vec![0..2, 2..4, 4..5]);
        assert_eq!(reading_batches(&[5], 16), vec![0..1]);
        assert!(reading_batches(&[], 4).is_empty());
    }

    #[test]
    fn early_stopping_stops_only_when_the_bound_allows_and_keeps_the_answer() {
        // μ = 0.5, best read: 0.5·0.9 + 0.5·1 = 0.95; the next passage can
        // reach at most 0.5 + 0.5·0.8 = 0.9: stop after the first.
        let ps = [
            passage(0, 10.0, &[("서울", 0.9)]),
            passage(1, 8.0, &[("부산", 1.0)]),
            passage(2, 7.0, &[("대구", 1.0)]),
        ];
        let stopped = decide(&ps, &settings(0.5, true));
        assert_eq!(stopped.passages_read, 1);
        assert_eq!(stopped.answers[0].text, "서울");
        assert_eq!(decide(&ps, &settings(0.5, false)).answers[0].text, "서울");
        // μ = 0 the bound is 1: a span of probability 1 further down must be read.
        let full = decide(&ps, &settings(0.0, true));
        assert_eq!(
            full.passages_read, 2,
            "stops once a probability-1 span is read"
        );
        assert_eq!(full.answers[0].text, "부산");
    }

    #[test]
    fn early_stopping_never_changes_the_best_answer() {
        // Deterministic pseudo-random cases over weights and score shapes.
        let mut seed = 0x2545_f491_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 10_000) as f32 / 10_000.0
        };
        let words = ["서울", "부산", "대구", "인천", "광주", "대전"];
        for case in 0..400 {
            let n = 1 + case % 12;
            let mut retrieval: Vec<f32> = (0..n).map(|_| 1.0 + 20.0 * next()).collect();
            retrieval.sort_by(|a, b| b.total_cmp(a));
            let ps: Vec<ReadPassage> = retrieval
                .iter()
                .enumerate()
                .map(|(rank, &r)| {
                    let spans: Vec<(&str, f32)> = (0..1 + rank % 3)
                        .map(|j| (words[(rank * 7 + j * 3 + case) % words.len()], next()))
                        .collect();
                    let mut p = passage(rank, r, &spans);
                    p.windows = 1 + (rank + case) % 3;
                    p
                })
                .collect();
            for weight in [0.0, 0.2, 0.5, 0.8, 1.0] {
                for batch_windows in [1, 4] {
                    let mut s = settings(weight, false);
                    s.batch_windows = batch_windows;
                    let full = decide(&ps, &s);
                    s.early_stop = true;
                    let early = decide(&ps, &s);
                    assert!(early.windows_read <= full.windows_read);
                    assert_eq!(
                        (&early.answers[0].text, early.answers[0].score),
                        (&full.answers[0].text, full.answers[0].score),
                        "case {case} μ {weight}"
                    );
                }
            }
        }
    }

    #[test]
    fn below_the_threshold_is_no_answer_with_the_best_candidate() {
        let ps = [passage(0, 10.0, &[("서울", 0.3)])];
        let mut s = settings(0.0, false);
        s.no_answer_threshold = 0.5;
        let d = decide(&ps, &s);
        assert!(d.no_answer);
        assert_eq!(d.answers[0].text, "서울");
        s.no_answer_threshold = 0.2;
        assert!(!decide(&ps, &s).no_answer);
        assert!(decide(&[], &s).no_answer, "nothing read is no answer");
    }
}
