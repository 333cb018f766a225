//! Sentence splitting: the one rule that passages and pre-training share.

use std::ops::Range;

/// Sentence terminators.
fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | '。')
}

/// Closing quotes and brackets that may follow a terminator.
fn is_closer(c: char) -> bool {
    matches!(c, '"' | '”' | '’' | '\'' | ')' | ']' | '」' | '』')
}

/// Sentence spans of `chars`, in char indices, whitespace-trimmed and
/// non-empty: a sentence ends after `.`, `?`, `!` or `。`, with any closing
/// quotes and brackets that follow it (`"`, `”`, `’`, `'`, `)`, `]`, `」`,
/// `』`), when whitespace or the end comes next (`3.14` is no end), and at
/// every newline.
pub fn sentence_spans(chars: &[char]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let push = |start: usize, end: usize, out: &mut Vec<Range<usize>>| {
        let (mut s, mut e) = (start, end);
        while s < e && chars[s].is_whitespace() {
            s += 1;
        }
        while e > s && chars[e - 1].is_whitespace() {
            e -= 1;
        }
        if s < e {
            out.push(s..e);
        }
    };
    let n = chars.len();
    let mut start = 0;
    let mut i = 0;
    while i < n {
        if chars[i] == '\n' {
            push(start, i, &mut out);
            start = i;
        } else if is_terminator(chars[i]) {
            let mut j = i + 1;
            while j < n && is_closer(chars[j]) {
                j += 1;
            }
            if j == n || chars[j].is_whitespace() {
                push(start, j, &mut out);
                start = j;
                i = j;
                continue;
            }
        }
        i += 1;
    }
    push(start, n, &mut out);
    out
}

/// Byte ranges of the sentences of `text` by the rule of [`sentence_spans`].
pub fn sentences(text: &str) -> Vec<Range<usize>> {
    let (offsets, chars): (Vec<usize>, Vec<char>) = text.char_indices().unzip();
    let byte = |i: usize| offsets.get(i).copied().unwrap_or(text.len());
    sentence_spans(&chars)
        .into_iter()
        .map(|r| byte(r.start)..byte(r.end))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_and_char_spans_agree() {
        let text = "  첫 문장이다. 값은 3.14이다!\n둘째 줄 \"인용.\" 끝?! 마지막.)x 끝 ";
        let chars: Vec<char> = text.chars().collect();
        let by_char: Vec<String> = sentence_spans(&chars)
            .into_iter()
            .map(|r| chars[r].iter().collect())
            .collect();
        let by_byte: Vec<&str> = sentences(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(by_char, by_byte);
        assert_eq!(
            by_byte,
            [
                "첫 문장이다.",
                "값은 3.14이다!",
                "둘째 줄 \"인용.\"",
                "끝?!",
                "마지막.)x 끝"
            ]
        );
        assert!(sentences(" \n ").is_empty());
    }
}
