#![allow(dead_code)]

use odqa_corpus::{Article, Passage, PassageConfig};

/// Checks every documented invariant of `split_passages`; returns a message
/// on the first violation.
pub fn check_passages(
    article: &Article,
    config: &PassageConfig,
    passages: &[Passage],
) -> Result<(), String> {
    let chars: Vec<char> = article.text.chars().collect();
    let mut covered = vec![0u32; chars.len()];
    let mut prev_end = 0usize;
    for (i, p) in passages.iter().enumerate() {
        let ctx = format!("passage {i} {:?} of article {}", p.text, article.id);
        if p.ordinal as usize != i || p.id != format!("{}-{}", article.id, i) {
            return Err(format!("{ctx}: bad id/ordinal {} {}", p.id, p.ordinal));
        }
        if p.article_id != article.id || p.title != article.title {
            return Err(format!("{ctx}: bad article_id/title"));
        }
        if p.char_start >= p.char_end || p.char_end > chars.len() {
            return Err(format!("{ctx}: bad span {}..{}", p.char_start, p.char_end));
        }
        let expected: String = article
            .text
            .chars()
            .skip(p.char_start)
            .take(p.char_end - p.char_start)
            .collect();
        if p.text != expected {
            return Err(format!("{ctx}: text differs from offsets"));
        }
        if p.text.trim() != p.text || p.text.is_empty() {
            return Err(format!("{ctx}: empty or untrimmed"));
        }
        let len = p.char_end - p.char_start;
        let single_word = !p.text.chars().any(char::is_whitespace);
        if len > config.max_chars && !single_word {
            return Err(format!("{ctx}: {len} chars > max {}", config.max_chars));
        }
        if p.text.contains('\n') && len > config.target_chars {
            return Err(format!(
                "{ctx}: multi-paragraph passage of {len} chars > target {}",
                config.target_chars
            ));
        }
        if i > 0 && p.char_start < prev_end {
            return Err(format!("{ctx}: overlaps or out of order"));
        }
        prev_end = p.char_end;
        for c in &mut covered[p.char_start..p.char_end] {
            *c += 1;
        }
    }
    for (i, c) in chars.iter().enumerate() {
        if !c.is_whitespace() && covered[i] != 1 {
            return Err(format!(
                "article {}: char {i} {c:?} covered {} times",
                article.id, covered[i]
            ));
        }
    }
    Ok(())
}
