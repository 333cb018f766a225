use std::collections::HashSet;

use odqa_analysis::KoreanAnalyzer;
use serde::{Deserialize, Serialize};

/// A window of a passage around the query's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snippet {
    pub text: String,
    /// Byte ranges in `text` of morphemes whose term is a query term.
    pub highlights: Vec<(usize, usize)>,
}

impl Snippet {
    /// The text with each highlight between `open` and `close`
    /// (`«서울»`), on one line (newlines become spaces).
    pub fn marked(&self, open: &str, close: &str) -> String {
        let mut marked = String::with_capacity(self.text.len());
        let mut last = 0;
        for &(start, end) in &self.highlights {
            marked.push_str(&self.text[last..start]);
            marked.push_str(open);
            marked.push_str(&self.text[start..end]);
            marked.push_str(close);
            last = end;
        }
        marked.push_str(&self.text[last..]);
        marked.replace('\n', " ")
    }
}

/// The `max_chars` window of `text` holding the most query-term matches,
/// widened to word boundaries.
pub fn snippet(analyzer: &KoreanAnalyzer, text: &str, query: &str, max_chars: usize) -> Snippet {
    let query_terms: HashSet<String> = analyzer
        .terms(query)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let matches: Vec<(usize, usize)> = analyzer
        .morphemes(text)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.term.as_ref().is_some_and(|t| query_terms.contains(t)))
        .map(|m| (m.byte_start, m.byte_end))
        .collect();
    let max_bytes = text
        .char_indices()
        .nth(max_chars)
        .map_or(text.len(), |(i, _)| i)
        .max(1);
    // The window start (a match start) that covers the most matches.
    let mut best = (0usize, 0usize);
    for (i, &(start, _)) in matches.iter().enumerate() {
        let covered = matches[i..]
            .iter()
            .take_while(|m| m.1 <= start + max_bytes)
            .count();
        if covered > best.1 {
            best = (start, covered);
        }
    }
    let mut start = best.0.saturating_sub(max_bytes / 4);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    if let Some(space) = text[..start].rfind(char::is_whitespace) {
        if start - space < 16 {
            start = space + 1;
        }
    }
    let mut end = (start + max_bytes).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        if let Some(space) = text[start..end].rfind(char::is_whitespace) {
            end = start + space;
        }
    }
    let highlights = matches
        .iter()
        .filter(|m| m.0 >= start && m.1 <= end)
        .map(|m| (m.0 - start, m.1 - start))
        .collect();
    Snippet {
        text: text[start..end].to_string(),
        highlights,
    }
}

#[cfg(test)]
mod tests {
    use super::Snippet;

    #[test]
    fn marked_wraps_each_highlight_on_one_line() {
        let snippet = Snippet {
            text: "수도는 서울이다.\n서울은 크다.".to_string(),
            highlights: vec![(10, 16), (24, 30)],
        };
        assert_eq!(
            snippet.marked("«", "»"),
            "수도는 «서울»이다. «서울»은 크다."
        );
    }
}
