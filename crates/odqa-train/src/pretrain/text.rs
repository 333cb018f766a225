//! Text utilities of the generators: masking occurrences, questions cut
//! at word boundaries around a mask, sentences.

use std::ops::Range;

/// `text` with every (non-overlapping, left to right) occurrence of `span`
/// replaced by `mask`, except the one starting at byte `keep`; with the
/// `(old, new)` byte start of each occurrence.
pub(super) fn mask_occurrences(
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
pub(super) fn words_around(text: &str, target: usize, max_chars: usize) -> String {
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
