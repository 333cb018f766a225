//! Splitting an article into passages with exact character offsets.

use serde::{Deserialize, Serialize};

use crate::{Article, CorpusError};

/// How large passages should be, in characters (Unicode scalar values).
/// With the `clap` feature it is also the `--target-chars`/`--max-chars`
/// flags of the command line, with the same defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "clap"), derive(clap::Args))]
#[serde(default)]
pub struct PassageConfig {
    /// Target passage length in characters: paragraphs and sentences are
    /// packed while the packed span stays within it.
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_TARGET_CHARS))]
    pub target_chars: usize,
    /// Hard bound on a passage's length in characters: a sentence longer than
    /// it is cut, never mid-word (a longer whitespace-free run stays whole).
    #[cfg_attr(any(test, feature = "clap"), arg(long, default_value_t = DEFAULT_MAX_CHARS))]
    pub max_chars: usize,
}

/// The default [`PassageConfig::target_chars`].
pub const DEFAULT_TARGET_CHARS: usize = 500;
/// The default [`PassageConfig::max_chars`].
pub const DEFAULT_MAX_CHARS: usize = 1000;

impl Default for PassageConfig {
    fn default() -> Self {
        PassageConfig {
            target_chars: DEFAULT_TARGET_CHARS,
            max_chars: DEFAULT_MAX_CHARS,
        }
    }
}

impl PassageConfig {
    /// Checks `target_chars > 0` and `max_chars >= target_chars`.
    pub fn validate(&self) -> Result<(), CorpusError> {
        if self.target_chars == 0 {
            return Err(CorpusError::InvalidConfig(
                "target_chars must be greater than 0".to_string(),
            ));
        }
        if self.max_chars < self.target_chars {
            return Err(CorpusError::InvalidConfig(format!(
                "max_chars ({}) must be at least target_chars ({})",
                self.max_chars, self.target_chars
            )));
        }
        Ok(())
    }
}

/// A contiguous, whitespace-trimmed span of an article's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// `"{article_id}-{ordinal}"`.
    pub id: String,
    /// The article's id.
    pub article_id: String,
    /// The article's title.
    pub title: String,
    /// Position of the passage in its article, from 0.
    pub ordinal: u32,
    /// Start offset in characters (Unicode scalar values) into `article.text`.
    pub char_start: usize,
    /// End offset (exclusive) in characters into `article.text`.
    pub char_end: usize,
    /// Exactly `article.text` chars `char_start..char_end`.
    pub text: String,
}

/// Splits `article.text` into passages.
///
/// Rules (deterministic; all offsets are in chars):
/// * paragraphs are separated by `\n`; whitespace-only paragraphs are skipped
///   and every passage is trimmed of surrounding whitespace by moving its
///   offsets (the text itself is never modified);
/// * consecutive paragraphs are packed into one passage while the span from
///   the first paragraph's start to the last paragraph's end (inner `\n`s
///   included) is at most `target_chars`;
/// * a paragraph longer than `target_chars` gets passages of its own: it is
///   cut into sentences (ending after `.`, `?`, `!` or `。`, optionally
///   followed by closing quotes/brackets, when whitespace or the paragraph
///   end follows), a sentence longer than `max_chars` is cut at whitespace
///   into pieces of at most `max_chars`, and these units are packed greedily
///   up to `target_chars`;
/// * a whitespace-free run longer than `max_chars` stays whole.
///
/// The config is not validated here; a `max_chars` below `target_chars`
/// lowers the effective target to `max_chars`, so `max_chars` always bounds
/// passages (except single overlong words). No passage is empty.
pub fn split_passages(article: &Article, config: &PassageConfig) -> Vec<Passage> {
    let chars: Vec<char> = article.text.chars().collect();
    let max = config.max_chars;
    let target = config.target_chars.min(max);
    let spans = passage_spans(&chars, target, max);
    spans
        .into_iter()
        .enumerate()
        .map(|(i, (start, end))| {
            // More than u32::MAX passages would need a text of several GiB.
            let ordinal = u32::try_from(i).unwrap_or(u32::MAX);
            Passage {
                id: format!("{}-{}", article.id, ordinal),
                article_id: article.id.clone(),
                title: article.title.clone(),
                ordinal,
                char_start: start,
                char_end: end,
                text: chars[start..end].iter().collect(),
            }
        })
        .collect()
}

/// Trims whitespace off `[start, end)`; `None` if nothing is left.
fn trim_span(chars: &[char], mut start: usize, mut end: usize) -> Option<(usize, usize)> {
    while start < end && chars[start].is_whitespace() {
        start += 1;
    }
    while end > start && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    (start < end).then_some((start, end))
}

/// The passage spans `[start, end)` of a text.
fn passage_spans(chars: &[char], target: usize, max: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut group: Option<(usize, usize)> = None;
    let mut para_start = 0;
    for i in 0..=chars.len() {
        if i < chars.len() && chars[i] != '\n' {
            continue;
        }
        let para = trim_span(chars, para_start, i);
        para_start = i + 1;
        let Some((ps, pe)) = para else { continue };
        if pe - ps > target {
            if let Some(g) = group.take() {
                out.push(g);
            }
            split_long_paragraph(chars, ps, pe, target, max, &mut out);
        } else {
            group = match group {
                Some((gs, _)) if pe - gs <= target => Some((gs, pe)),
                Some(g) => {
                    out.push(g);
                    Some((ps, pe))
                }
                None => Some((ps, pe)),
            };
        }
    }
    if let Some(g) = group {
        out.push(g);
    }
    out
}

/// Sentence spans (trimmed, non-empty) of the trimmed paragraph `[ps, pe)`
/// ([`crate::sentence_spans`]).
fn sentences(chars: &[char], ps: usize, pe: usize) -> Vec<(usize, usize)> {
    crate::sentence_spans(&chars[ps..pe])
        .into_iter()
        .map(|r| (ps + r.start, ps + r.end))
        .collect()
}

/// Cuts the trimmed span `[s, e)` at whitespace into pieces of at most `max`
/// chars (greedy); a single word longer than `max` is one piece.
fn word_pieces(chars: &[char], s: usize, e: usize, max: usize, out: &mut Vec<(usize, usize)>) {
    let mut piece: Option<(usize, usize)> = None;
    let mut i = s;
    while i < e {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let ws = i;
        while i < e && !chars[i].is_whitespace() {
            i += 1;
        }
        let we = i;
        piece = match piece {
            Some((ps, _)) if we - ps <= max => Some((ps, we)),
            Some(p) => {
                out.push(p);
                Some((ws, we))
            }
            None => Some((ws, we)),
        };
    }
    if let Some(p) = piece {
        out.push(p);
    }
}

/// Passages of one paragraph longer than `target`.
fn split_long_paragraph(
    chars: &[char],
    ps: usize,
    pe: usize,
    target: usize,
    max: usize,
    out: &mut Vec<(usize, usize)>,
) {
    let mut units = Vec::new();
    for (s, e) in sentences(chars, ps, pe) {
        if e - s > max {
            word_pieces(chars, s, e, max, &mut units);
        } else {
            units.push((s, e));
        }
    }
    let mut group: Option<(usize, usize)> = None;
    for (s, e) in units {
        group = match group {
            Some((gs, _)) if e - gs <= target => Some((gs, e)),
            Some(g) => {
                out.push(g);
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some(g) = group {
        out.push(g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(text: &str) -> Article {
        Article {
            id: "7".to_string(),
            title: "T".to_string(),
            text: text.to_string(),
        }
    }

    #[test]
    fn flags_default_to_the_library_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            passages: PassageConfig,
        }
        assert_eq!(Cli::parse_from(["odqa"]).passages, PassageConfig::default());
        let given = Cli::parse_from(["odqa", "--target-chars", "300", "--max-chars", "600"]);
        assert_eq!(
            given.passages,
            PassageConfig {
                target_chars: 300,
                max_chars: 600
            }
        );
    }

    #[test]
    fn sentence_ends_need_whitespace_or_end() {
        let chars: Vec<char> = "값은 3.14이다. 그렇다!\"  끝?".chars().collect();
        let s = sentences(&chars, 0, chars.len());
        let texts: Vec<String> = s
            .iter()
            .map(|&(a, b)| chars[a..b].iter().collect())
            .collect();
        assert_eq!(texts, vec!["값은 3.14이다.", "그렇다!\"", "끝?"]);
    }

    #[test]
    fn zero_config_does_not_panic() {
        let cfg = PassageConfig {
            target_chars: 0,
            max_chars: 0,
        };
        let ps = split_passages(&art("가 나. 다\n\n라"), &cfg);
        let texts: Vec<&str> = ps.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, vec!["가", "나.", "다", "라"]);
    }

    #[test]
    fn whitespace_only_text_has_no_passages() {
        assert!(split_passages(&art(" \n\t\n  "), &PassageConfig::default()).is_empty());
        assert!(split_passages(&art(""), &PassageConfig::default()).is_empty());
    }

    #[test]
    fn validate() {
        assert!(PassageConfig::default().validate().is_ok());
        let bad = PassageConfig {
            target_chars: 0,
            max_chars: 10,
        };
        assert!(matches!(bad.validate(), Err(CorpusError::InvalidConfig(_))));
        let bad = PassageConfig {
            target_chars: 10,
            max_chars: 9,
        };
        assert!(matches!(bad.validate(), Err(CorpusError::InvalidConfig(_))));
    }
}
