//! Answer spans from a span-extraction model's start/end logits.
//!
//! Per window ([`score_window`]): softmax of the start logits over the
//! window's passage positions only (plus position 0, the `[CLS]`/`<s>`
//! token, when "no answer" is allowed), the same for the end logits; every
//! span `s ≤ e` of at most [`ScoringConfig::max_answer_tokens`] passage
//! tokens scores `p_start[s] × p_end[e]`; spans are mapped to char offsets
//! in the passage (start of token `s` to end of token `e`), spans that come
//! out empty are dropped, equal char spans keep their best score, and the
//! `n_best` remain. Logits on question, special or padding positions never
//! matter.
//!
//! Across windows and passages ([`merge_answers`], [`best_answers`]): all
//! window candidates, deduplicated by (passage, char span) keeping the
//! maximum, sorted by score, `n_best` kept, each with its exact passage
//! substring as text.

use std::collections::HashMap;

use crate::error::{ReaderError, Result};
use crate::windows::Window;

/// How spans are scored and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScoringConfig {
    /// Longest answer, in tokens (`e - s + 1`).
    pub max_answer_tokens: usize,
    /// How many spans to keep (per window and overall).
    pub n_best: usize,
    /// Include position 0 in the softmax and report a no-answer score.
    pub allow_no_answer: bool,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            max_answer_tokens: 30,
            n_best: 5,
            allow_no_answer: false,
        }
    }
}

impl ScoringConfig {
    /// Both `max_answer_tokens` and `n_best` must be at least 1.
    pub fn validate(&self) -> Result<()> {
        if self.max_answer_tokens == 0 {
            return Err(ReaderError::Config(
                "max_answer_tokens must be at least 1".into(),
            ));
        }
        if self.n_best == 0 {
            return Err(ReaderError::Config("n_best must be at least 1".into()));
        }
        Ok(())
    }
}

/// One span in one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanCandidate {
    /// Window position of the first token.
    pub start_token: usize,
    /// Window position of the last token (inclusive).
    pub end_token: usize,
    /// Char offset of the span start in the passage.
    pub char_start: usize,
    /// Char offset one past the span end in the passage.
    pub char_end: usize,
    /// `p_start[start_token] × p_end[end_token]`.
    pub score: f32,
}

/// The best spans of one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpans {
    /// The window's passage.
    pub passage_index: usize,
    /// At most `n_best`, best first, distinct char spans.
    pub candidates: Vec<SpanCandidate>,
    /// `p_start[0] × p_end[0]` when no-answer is allowed.
    pub no_answer_score: Option<f32>,
}

/// An answer: an exact substring of one passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Which passage.
    pub passage_index: usize,
    /// `passage.chars().skip(char_start).take(char_end - char_start)`.
    pub text: String,
    /// Char offset of the start.
    pub char_start: usize,
    /// Char offset one past the end.
    pub char_end: usize,
    /// Span score (`p_start × p_end` within its window).
    pub score: f32,
}

/// Softmax of `logits` over `positions`; other entries 0. NaN or `+inf`
/// among them is an error; all `-inf` gives all zeros.
fn restricted_softmax(logits: &[f32], positions: &[usize]) -> Result<Vec<f64>> {
    let mut max = f64::NEG_INFINITY;
    for &i in positions {
        let x = f64::from(logits[i]);
        if x.is_nan() || x == f64::INFINITY {
            return Err(ReaderError::Logits(format!("position {i} is {x}")));
        }
        max = max.max(x);
    }
    let mut p = vec![0.0; logits.len()];
    if max == f64::NEG_INFINITY {
        return Ok(p);
    }
    let mut sum = 0.0;
    for &i in positions {
        let e = (f64::from(logits[i]) - max).exp();
        p[i] = e;
        sum += e;
    }
    for &i in positions {
        p[i] /= sum;
    }
    Ok(p)
}

/// Best spans of one window from its start and end logits (each at least
/// as long as the window; extra entries, e.g. padding, are ignored).
pub fn score_window(
    window: &Window,
    start_logits: &[f32],
    end_logits: &[f32],
    cfg: &ScoringConfig,
) -> Result<WindowSpans> {
    cfg.validate()?;
    let len = window.len();
    if start_logits.len() < len || end_logits.len() < len {
        return Err(ReaderError::Logits(format!(
            "{} start and {} end logits for a window of {len} tokens",
            start_logits.len(),
            end_logits.len()
        )));
    }
    let ctx = window.context_range.clone();
    if ctx.end > len || window.token_char_offsets.len() != len {
        return Err(ReaderError::Mismatch(format!(
            "window of {len} tokens with context {ctx:?} and {} offsets",
            window.token_char_offsets.len()
        )));
    }
    let mut positions: Vec<usize> = Vec::with_capacity(ctx.len() + 1);
    if cfg.allow_no_answer && len > 0 && !ctx.contains(&0) {
        positions.push(0);
    }
    positions.extend(ctx.clone());
    let p_start = restricted_softmax(&start_logits[..len], &positions)?;
    let p_end = restricted_softmax(&end_logits[..len], &positions)?;

    let mut best: HashMap<(usize, usize), SpanCandidate> = HashMap::new();
    for s in ctx.clone() {
        let Some((char_start, _)) = window.token_char_offsets[s] else {
            continue;
        };
        let last = (s + cfg.max_answer_tokens).min(ctx.end);
        let ends = window.token_char_offsets[s..last]
            .iter()
            .zip(&p_end[s..last]);
        for (e, (off, pe)) in (s..).zip(ends) {
            let Some((_, char_end)) = *off else {
                continue;
            };
            if char_end <= char_start {
                continue;
            }
            let score = (p_start[s] * pe) as f32;
            let cand = SpanCandidate {
                start_token: s,
                end_token: e,
                char_start,
                char_end,
                score,
            };
            best.entry((char_start, char_end))
                .and_modify(|c| {
                    if score > c.score {
                        *c = cand;
                    }
                })
                .or_insert(cand);
        }
    }
    let mut candidates: Vec<SpanCandidate> = best.into_values().collect();
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.char_start.cmp(&b.char_start))
            .then(a.char_end.cmp(&b.char_end))
    });
    candidates.truncate(cfg.n_best);
    let no_answer_score = cfg.allow_no_answer.then(|| (p_start[0] * p_end[0]) as f32);
    Ok(WindowSpans {
        passage_index: window.passage_index,
        candidates,
        no_answer_score,
    })
}

/// Merges window spans into the `n_best` answers over all passages:
/// deduplicated by (passage, char span) keeping the maximum score, best
/// first (ties: passage, then start, then end), with text cut from
/// `passages`.
pub fn merge_answers(
    passages: &[&str],
    spans: &[WindowSpans],
    n_best: usize,
) -> Result<Vec<Answer>> {
    let mut best: HashMap<(usize, usize, usize), f32> = HashMap::new();
    for ws in spans {
        for c in &ws.candidates {
            let key = (ws.passage_index, c.char_start, c.char_end);
            let v = best.entry(key).or_insert(c.score);
            if c.score > *v {
                *v = c.score;
            }
        }
    }
    let mut keys: Vec<((usize, usize, usize), f32)> = best.into_iter().collect();
    keys.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    keys.truncate(n_best);
    keys.into_iter()
        .map(|((passage_index, char_start, char_end), score)| {
            let passage = passages.get(passage_index).ok_or_else(|| {
                ReaderError::Mismatch(format!(
                    "span in passage {passage_index} but {} passages",
                    passages.len()
                ))
            })?;
            let text = char_slice(passage, char_start, char_end).ok_or_else(|| {
                ReaderError::Mismatch(format!(
                    "span {char_start}..{char_end} outside passage {passage_index} \
                     ({} chars)",
                    passage.chars().count()
                ))
            })?;
            Ok(Answer {
                passage_index,
                text: text.to_string(),
                char_start,
                char_end,
                score,
            })
        })
        .collect()
}

/// `s` from char `start` to char `end` (exclusive); `None` if out of range.
fn char_slice(s: &str, start: usize, end: usize) -> Option<&str> {
    if start > end {
        return None;
    }
    let byte = |c: usize| {
        s.char_indices()
            .map(|(b, _)| b)
            .chain(std::iter::once(s.len()))
            .nth(c)
    };
    let b0 = byte(start)?;
    let b1 = byte(end)?;
    s.get(b0..b1)
}

/// Scores every window (row `i` of the logits belongs to `windows[i]`) and
/// merges: the `cfg.n_best` answers over all windows and passages.
pub fn best_answers<S: AsRef<[f32]>>(
    passages: &[&str],
    windows: &[Window],
    start_logits: &[S],
    end_logits: &[S],
    cfg: &ScoringConfig,
) -> Result<Vec<Answer>> {
    let spans = score_windows(windows, start_logits, end_logits, cfg)?;
    merge_answers(passages, &spans, cfg.n_best)
}

/// [`score_window`] for every window; row `i` of the logits belongs to
/// `windows[i]`.
pub fn score_windows<S: AsRef<[f32]>>(
    windows: &[Window],
    start_logits: &[S],
    end_logits: &[S],
    cfg: &ScoringConfig,
) -> Result<Vec<WindowSpans>> {
    if start_logits.len() != windows.len() || end_logits.len() != windows.len() {
        return Err(ReaderError::Mismatch(format!(
            "{} windows but {} start and {} end logit rows",
            windows.len(),
            start_logits.len(),
            end_logits.len()
        )));
    }
    windows
        .iter()
        .zip(start_logits.iter().zip(end_logits))
        .enumerate()
        .map(|(i, (w, (s, e)))| {
            score_window(w, s.as_ref(), e.as_ref(), cfg).map_err(|err| match err {
                ReaderError::Logits(d) => ReaderError::Logits(format!("window {i}: {d}")),
                other => other,
            })
        })
        .collect()
}

/// [`best_answers`] on row-major `[windows.len(), seq_len]` logits, as a
/// model run on [`crate::Batch::pack`] returns them.
pub fn best_answers_flat(
    passages: &[&str],
    windows: &[Window],
    start_logits: &[f32],
    end_logits: &[f32],
    seq_len: usize,
    cfg: &ScoringConfig,
) -> Result<Vec<Answer>> {
    let want = windows.len() * seq_len;
    if start_logits.len() != want || end_logits.len() != want {
        return Err(ReaderError::Logits(format!(
            "{} start and {} end logits for {} windows × {seq_len}",
            start_logits.len(),
            end_logits.len(),
            windows.len()
        )));
    }
    if seq_len == 0 {
        return merge_answers(passages, &[], cfg.n_best);
    }
    let start_rows: Vec<&[f32]> = start_logits.chunks(seq_len).collect();
    let end_rows: Vec<&[f32]> = end_logits.chunks(seq_len).collect();
    best_answers(passages, windows, &start_rows, &end_rows, cfg)
}

/// The no-answer score over several windows: the minimum of their
/// no-answer scores (as in SQuAD 2.0 post-processing); `None` when no
/// window has one.
pub fn no_answer_score(spans: &[WindowSpans]) -> Option<f32> {
    spans
        .iter()
        .filter_map(|s| s.no_answer_score)
        .reduce(f32::min)
}

/// `p_start[s] × p_end[e]` of the span at window positions `(s, e)`
/// (inclusive, both passage positions, `s ≤ e`), normalised exactly as
/// [`score_window`] normalises: softmax over the window's passage positions,
/// plus position 0 when `allow_no_answer`. Unlike [`score_window`] no
/// maximum answer length applies: this scores a given span (relation
/// extraction asks how likely a known object span is the answer).
pub fn span_probability(
    window: &Window,
    start_logits: &[f32],
    end_logits: &[f32],
    span: (usize, usize),
    allow_no_answer: bool,
) -> Result<f32> {
    let len = window.len();
    if start_logits.len() < len || end_logits.len() < len {
        return Err(ReaderError::Logits(format!(
            "{} start and {} end logits for a window of {len} tokens",
            start_logits.len(),
            end_logits.len()
        )));
    }
    let ctx = window.context_range.clone();
    let (s, e) = span;
    if ctx.end > len || s > e || !ctx.contains(&s) || !ctx.contains(&e) {
        return Err(ReaderError::Mismatch(format!(
            "span {s}..={e} is not inside the passage positions {ctx:?} of a window of {len} tokens"
        )));
    }
    let mut positions: Vec<usize> = Vec::with_capacity(ctx.len() + 1);
    if allow_no_answer && !ctx.contains(&0) {
        positions.push(0);
    }
    positions.extend(ctx);
    let p_start = restricted_softmax(&start_logits[..len], &positions)?;
    let p_end = restricted_softmax(&end_logits[..len], &positions)?;
    Ok((p_start[s] * p_end[e]) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{char_wordpiece_tokenizer, TestStyle};
    use crate::windows::{WindowConfig, Windower};

    const ALPHA: &str = "가나다라마바사아자차카타파하서울특별시대한민국의수도는어디인가요?.,!()abcdefghijklmnopqrstuvwxyz0123456789";

    fn windows_for(passages: &[&str], max_len: usize, stride: usize) -> Vec<Window> {
        let t = char_wordpiece_tokenizer(ALPHA, TestStyle::Bert).unwrap();
        let w = Windower::new(
            &t,
            WindowConfig {
                max_len,
                doc_stride: stride,
                max_query_len: 4,
            },
        )
        .unwrap();
        w.windows("수도는?", passages).unwrap()
    }

    /// Logits 0 everywhere except `peak` at the given positions.
    fn peaked(len: usize, at: &[usize], peak: f32) -> Vec<f32> {
        let mut v = vec![0.0; len];
        for &i in at {
            v[i] = peak;
        }
        v
    }

    fn pos_of(w: &Window, passage_token: usize) -> Option<usize> {
        w.passage_token_range
            .contains(&passage_token)
            .then(|| w.context_range.start + passage_token - w.passage_token_range.start)
    }

    #[test]
    fn single_window_peak() {
        let passage = "대한민국의 수도는 서울특별시 인가요.";
        let ws = windows_for(&[passage], 64, 16);
        assert_eq!(ws.len(), 1);
        let w = &ws[0];
        // Passage tokens: 대 ##한 ##민 ##국 ##의 | 수 ##도 ##는 | 서 ##울 ##특 ##별 ##시 | ...
        let s = pos_of(w, 8).unwrap();
        let e = pos_of(w, 12).unwrap();
        let cfg = ScoringConfig::default();
        let spans = score_window(
            w,
            &peaked(w.len(), &[s], 10.0),
            &peaked(w.len(), &[e], 10.0),
            &cfg,
        )
        .unwrap();
        assert_eq!(spans.candidates[0].start_token, s);
        assert_eq!(spans.candidates[0].end_token, e);
        assert!(spans.candidates.len() <= cfg.n_best);
        assert_eq!(spans.no_answer_score, None);
        let answers = best_answers(
            &[passage],
            &ws,
            &[peaked(w.len(), &[s], 10.0)],
            &[peaked(w.len(), &[e], 10.0)],
            &cfg,
        )
        .unwrap();
        assert_eq!(answers[0].text, "서울특별시");
        assert_eq!((answers[0].char_start, answers[0].char_end), (10, 15));
        assert!(answers[0].score > 0.99);
        // Sorted, distinct, at most n_best.
        assert!(answers.len() <= 5);
        for pair in answers.windows(2) {
            assert!(pair[0].score >= pair[1].score);
        }
        // Spans crossing a space keep the space inside.
        let e2 = pos_of(w, 13).unwrap(); // 인
        let a = best_answers(
            &[passage],
            &ws,
            &[peaked(w.len(), &[s], 10.0)],
            &[peaked(w.len(), &[e2], 10.0)],
            &cfg,
        )
        .unwrap();
        assert_eq!(a[0].text, "서울특별시 인");
    }

    #[test]
    fn huge_logits_outside_the_passage_are_ignored() {
        let passage = "서울특별시";
        let ws = windows_for(&[passage], 64, 16);
        let w = &ws[0];
        let s = pos_of(w, 0).unwrap();
        let e = pos_of(w, 1).unwrap();
        // Position 1 is a question token; 0 is [CLS]; last is [SEP].
        let last = w.len() - 1;
        let mut start = peaked(w.len(), &[s], 5.0);
        let mut end = peaked(w.len(), &[e], 5.0);
        for i in [0, 1, 2, last] {
            start[i] = 1.0e30;
            end[i] = 1.0e30;
        }
        let mut padded_start = start.clone();
        padded_start.extend([f32::NAN, 1.0e30]);
        let mut padded_end = end.clone();
        padded_end.extend([f32::NAN, 1.0e30]);
        let cfg = ScoringConfig::default();
        let spans = score_window(w, &padded_start, &padded_end, &cfg).unwrap();
        assert_eq!(
            (
                spans.candidates[0].start_token,
                spans.candidates[0].end_token
            ),
            (s, e)
        );
        let a = merge_answers(&[passage], &[spans], 5).unwrap();
        assert_eq!(a[0].text, "서울");
        // The probabilities sum to one over the passage: with flat logits
        // every one-token span scores 1/n².
        let n = w.context_range.len();
        let flat = vec![0.0f32; w.len()];
        let mut start = flat.clone();
        start[1] = 1.0e30;
        let spans = score_window(w, &start, &flat, &cfg).unwrap();
        let expect = 1.0 / (n * n) as f32;
        assert!(spans
            .candidates
            .iter()
            .all(|c| (c.score - expect).abs() < 1e-6));
    }

    #[test]
    fn max_answer_tokens_is_respected() {
        let passage = "서울특별시대한민국";
        let ws = windows_for(&[passage], 64, 16);
        let w = &ws[0];
        let s = pos_of(w, 0).unwrap();
        let e = pos_of(w, 8).unwrap();
        let cfg = ScoringConfig {
            max_answer_tokens: 3,
            n_best: 50,
            allow_no_answer: false,
        };
        let spans = score_window(
            w,
            &peaked(w.len(), &[s], 10.0),
            &peaked(w.len(), &[e], 10.0),
            &cfg,
        )
        .unwrap();
        assert!(!spans.candidates.is_empty());
        for c in &spans.candidates {
            assert!(c.end_token - c.start_token < 3, "{c:?}");
        }
        // 9 + 8 + 7 spans of length 1, 2, 3.
        assert_eq!(spans.candidates.len(), 24);
        let top = spans.candidates[0];
        // Either the peak start or the peak end, never both.
        assert!((top.start_token == s) != (top.end_token == e), "{top:?}");
        // With room for the whole span, it wins.
        let cfg = ScoringConfig {
            max_answer_tokens: 9,
            ..cfg
        };
        let a = best_answers(
            &[passage],
            &ws,
            &[peaked(w.len(), &[s], 10.0)],
            &[peaked(w.len(), &[e], 10.0)],
            &cfg,
        )
        .unwrap();
        assert_eq!(a[0].text, passage);
    }

    #[test]
    fn no_answer_score_uses_position_zero() {
        let passage = "서울특별시";
        let ws = windows_for(&[passage], 64, 16);
        let w = &ws[0];
        let cfg = ScoringConfig {
            allow_no_answer: true,
            ..ScoringConfig::default()
        };
        let start = peaked(w.len(), &[0], 10.0);
        let end = peaked(w.len(), &[0], 10.0);
        let spans = score_window(w, &start, &end, &cfg).unwrap();
        let na = spans.no_answer_score.unwrap();
        assert!(na > 0.99, "{na}");
        assert!(spans.candidates.iter().all(|c| c.score < 0.01));
        // Flat logits: 1/(n+1)² for no-answer over n passage tokens.
        let n = w.context_range.len();
        let flat = vec![0.0f32; w.len()];
        let spans = score_window(w, &flat, &flat, &cfg).unwrap();
        let expect = 1.0 / ((n + 1) * (n + 1)) as f32;
        assert!((spans.no_answer_score.unwrap() - expect).abs() < 1e-6);
        assert_eq!(no_answer_score(&[spans.clone(), spans]), Some(expect));
        // Not allowed: position 0 is ignored and no score is given.
        let spans = score_window(w, &start, &end, &ScoringConfig::default()).unwrap();
        assert_eq!(spans.no_answer_score, None);
        assert!((spans.candidates[0].score - 1.0 / (n * n) as f32).abs() < 1e-6);
        assert_eq!(no_answer_score(&[spans]), None);
    }

    #[test]
    fn answers_across_overlapping_windows() {
        // 30 tokens, capacity 16 - (4 + 3) = 9, stride 4:
        // windows 0..9, 4..13, 8..17, ...
        let passage: String = "가나다라마바사아자차카타파하"
            .chars()
            .cycle()
            .take(30)
            .collect();
        let ws = windows_for(&[&passage], 16, 4);
        assert_eq!(ws[0].passage_token_range, 0..9);
        assert_eq!(ws[1].passage_token_range, 4..13);
        let cfg = ScoringConfig::default();
        let flat: Vec<Vec<f32>> = ws.iter().map(|w| vec![0.0; w.len()]).collect();
        let chars: Vec<char> = passage.chars().collect();
        let expect = |a: usize, b: usize| chars[a..=b].iter().collect::<String>();

        // In the overlap of windows 0 and 1 (tokens 5..=7), peaked in both.
        let (mut st, mut en) = (flat.clone(), flat.clone());
        for wi in [0, 1] {
            st[wi][pos_of(&ws[wi], 5).unwrap()] = 10.0;
            en[wi][pos_of(&ws[wi], 7).unwrap()] = 10.0;
        }
        let a = best_answers(&[&passage], &ws, &st, &en, &cfg).unwrap();
        assert_eq!(a[0].text, expect(5, 7));
        assert_eq!((a[0].char_start, a[0].char_end), (5, 8));
        // Deduplicated: the same span from two windows appears once.
        assert_eq!(
            a.iter()
                .filter(|x| (x.char_start, x.char_end) == (5, 8))
                .count(),
            1
        );

        // In the overlap, but only window 1 is confident.
        let (mut st, mut en) = (flat.clone(), flat.clone());
        st[1][pos_of(&ws[1], 6).unwrap()] = 10.0;
        en[1][pos_of(&ws[1], 8).unwrap()] = 10.0;
        let a = best_answers(&[&passage], &ws, &st, &en, &cfg).unwrap();
        assert_eq!(a[0].text, expect(6, 8));

        // In the second window only (tokens 10..=12).
        assert!(pos_of(&ws[0], 10).is_none());
        let (mut st, mut en) = (flat.clone(), flat.clone());
        st[1][pos_of(&ws[1], 10).unwrap()] = 10.0;
        en[1][pos_of(&ws[1], 12).unwrap()] = 10.0;
        let a = best_answers(&[&passage], &ws, &st, &en, &cfg).unwrap();
        assert_eq!(a[0].text, expect(10, 12));
        assert_eq!(a[0].passage_index, 0);

        // Flat layout gives the same.
        let packed = crate::Batch::pack(&ws, 0);
        let (ids, n, seq) = (packed.input_ids, packed.size, packed.seq_len);
        assert_eq!(n, ws.len());
        let flatten = |rows: &[Vec<f32>]| -> Vec<f32> {
            rows.iter()
                .flat_map(|r| {
                    let mut r = r.clone();
                    r.resize(seq, -1.0e4);
                    r
                })
                .collect()
        };
        let b =
            best_answers_flat(&[&passage], &ws, &flatten(&st), &flatten(&en), seq, &cfg).unwrap();
        assert_eq!(a, b);
        assert_eq!(ids.len(), n * seq);
    }

    #[test]
    fn merges_across_passages_by_score() {
        let passages = ["서울특별시", "대한민국의 수도"];
        let ws = windows_for(&passages, 64, 16);
        assert_eq!(ws.len(), 2);
        let mut st: Vec<Vec<f32>> = ws.iter().map(|w| vec![0.0; w.len()]).collect();
        let mut en = st.clone();
        st[0][pos_of(&ws[0], 0).unwrap()] = 3.0;
        en[0][pos_of(&ws[0], 1).unwrap()] = 3.0;
        st[1][pos_of(&ws[1], 5).unwrap()] = 10.0;
        en[1][pos_of(&ws[1], 6).unwrap()] = 10.0;
        let cfg = ScoringConfig {
            n_best: 3,
            ..ScoringConfig::default()
        };
        let a = best_answers(&passages, &ws, &st, &en, &cfg).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!((a[0].passage_index, a[0].text.as_str()), (1, "수도"));
        assert!(a.iter().any(|x| x.passage_index == 0 && x.text == "서울"));
    }

    #[test]
    fn errors() {
        let passage = "서울";
        let ws = windows_for(&[passage], 64, 16);
        let w = &ws[0];
        let cfg = ScoringConfig::default();
        let ok = vec![0.0f32; w.len()];
        let short = vec![0.0f32; w.len() - 1];
        assert!(matches!(
            score_window(w, &short, &ok, &cfg),
            Err(ReaderError::Logits(_))
        ));
        let mut nan = ok.clone();
        nan[w.context_range.start] = f32::NAN;
        assert!(matches!(
            score_window(w, &nan, &ok, &cfg),
            Err(ReaderError::Logits(_))
        ));
        let mut inf = ok.clone();
        inf[w.context_range.start] = f32::INFINITY;
        let row = [ok.clone()];
        let e = best_answers(&[passage], &ws, &row, &[inf], &cfg).unwrap_err();
        assert!(e.to_string().contains("window 0"), "{e}");
        // All -inf: zero probabilities, no error.
        let ninf = vec![f32::NEG_INFINITY; w.len()];
        let s = score_window(w, &ninf, &ninf, &cfg).unwrap();
        assert!(s.candidates.iter().all(|c| c.score == 0.0));
        // Bad configs.
        for bad in [
            ScoringConfig { n_best: 0, ..cfg },
            ScoringConfig {
                max_answer_tokens: 0,
                ..cfg
            },
        ] {
            assert!(matches!(
                score_window(w, &ok, &ok, &bad),
                Err(ReaderError::Config(_))
            ));
        }
        // Row count mismatch.
        assert!(matches!(
            best_answers(&[passage], &ws, &[ok.clone(), ok.clone()], &row, &cfg),
            Err(ReaderError::Mismatch(_))
        ));
        assert!(matches!(
            best_answers_flat(&[passage], &ws, &ok, &ok, w.len() + 1, &cfg),
            Err(ReaderError::Logits(_))
        ));
        // Passages that do not match the windows.
        assert!(matches!(
            best_answers(&[], &ws, &row, &row, &cfg),
            Err(ReaderError::Mismatch(_))
        ));
        assert!(matches!(
            best_answers(&["서"], &ws, &row, &row, &cfg),
            Err(ReaderError::Mismatch(_))
        ));
        // No windows: no answers.
        let none: [Vec<f32>; 0] = [];
        assert!(best_answers(&[], &[], &none, &none, &cfg)
            .unwrap()
            .is_empty());
        assert!(best_answers_flat(&[], &[], &[], &[], 0, &cfg)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn char_slice_bounds() {
        assert_eq!(char_slice("가나다", 1, 3), Some("나다"));
        assert_eq!(char_slice("가나다", 3, 3), Some(""));
        assert_eq!(char_slice("가나다", 2, 4), None);
        assert_eq!(char_slice("가나다", 2, 1), None);
    }
}

#[cfg(test)]
mod span_probability_tests {
    use super::*;
    use crate::testing::{char_wordpiece_tokenizer, TestStyle};
    use crate::windows::{WindowConfig, Windower};

    #[test]
    fn span_probability_matches_score_window() {
        let t = char_wordpiece_tokenizer("서울특별시수도는?", TestStyle::Bert).unwrap();
        let w = Windower::new(
            &t,
            WindowConfig {
                max_len: 32,
                doc_stride: 8,
                max_query_len: 4,
            },
        )
        .unwrap()
        .windows("수도는?", &["서울특별시"])
        .unwrap()
        .remove(0);
        let ctx = w.context_range.clone();
        let n = ctx.len();
        let flat = vec![0.0f32; w.len()];
        // Flat logits: 1/n² without no-answer, 1/(n+1)² with it.
        let p = span_probability(&w, &flat, &flat, (ctx.start, ctx.start + 1), false).unwrap();
        assert!((p - 1.0 / (n * n) as f32).abs() < 1e-6, "{p}");
        let p = span_probability(&w, &flat, &flat, (ctx.start, ctx.start + 1), true).unwrap();
        assert!((p - 1.0 / ((n + 1) * (n + 1)) as f32).abs() < 1e-6, "{p}");
        // Peaked logits: the same number score_window gives that span.
        let mut start = flat.clone();
        let mut end = flat.clone();
        start[ctx.start] = 4.0;
        end[ctx.start + 2] = 3.0;
        start[0] = 2.0;
        end[0] = 1.0;
        for allow_no_answer in [false, true] {
            let cfg = ScoringConfig {
                allow_no_answer,
                n_best: 100,
                ..ScoringConfig::default()
            };
            let spans = score_window(&w, &start, &end, &cfg).unwrap();
            let c = spans
                .candidates
                .iter()
                .find(|c| (c.start_token, c.end_token) == (ctx.start, ctx.start + 2))
                .unwrap();
            let p = span_probability(
                &w,
                &start,
                &end,
                (ctx.start, ctx.start + 2),
                allow_no_answer,
            )
            .unwrap();
            assert!((p - c.score).abs() < 1e-7, "{p} vs {}", c.score);
        }
        // Outside the passage, reversed, or short logits: errors.
        for bad in [
            (0, ctx.start),
            (ctx.start + 1, ctx.start),
            (ctx.start, ctx.end),
        ] {
            assert!(matches!(
                span_probability(&w, &flat, &flat, bad, true),
                Err(ReaderError::Mismatch(_))
            ));
        }
        assert!(matches!(
            span_probability(&w, &flat[1..], &flat, (ctx.start, ctx.start), true),
            Err(ReaderError::Logits(_))
        ));
    }
}
