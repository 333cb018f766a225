//! User-dictionary entries: parsing a user's word list, choosing corpus
//! titles worth adding, and writing lindera's CSV rows for them.

use std::collections::BTreeMap;

use crate::{AnalysisError, KoreanAnalyzer};

/// Word cost of every entry: lindera's own default for ko-dic user entries,
/// low enough that the segmenter keeps a listed word whole.
const WORD_COST: i32 = -10000;

/// Tags a title's parts may carry for the title to count as a compound of
/// them (its parts are then also indexed under `Decompound::Mixed`).
const NOUN_LIKE: &[&str] = &[
    "NNG", "NNP", "NNB", "NNBC", "NR", "NP", "SN", "SL", "SH", "XPN", "XSN",
];

/// One entry: a surface lindera should keep whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWord {
    pub surface: String,
    /// Part-of-speech tag (ko-dic tag set); `NNP` unless the user file says.
    pub tag: String,
    /// `(surface, tag)` of its parts when it is a compound of nouns, so
    /// decompounding can still emit them; empty otherwise.
    pub parts: Vec<(String, String)>,
}

/// A set of entries, one per surface, in surface order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserWords {
    words: BTreeMap<String, UserWord>,
}

impl UserWords {
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &UserWord> {
        self.words.values()
    }

    pub fn get(&self, surface: &str) -> Option<&UserWord> {
        self.words.get(surface)
    }

    /// Adds `word`, replacing an entry with the same surface.
    pub fn insert(&mut self, word: UserWord) {
        self.words.insert(word.surface.clone(), word);
    }

    /// Adds every entry of `other`, which wins on equal surfaces.
    pub fn extend(&mut self, other: UserWords) {
        self.words.extend(other.words);
    }

    /// A user's word list: one word a line, optionally `word,TAG`; blank
    /// lines and lines starting with `#` are skipped. `source` names the
    /// file in errors.
    pub fn parse_list(text: &str, source: &str) -> Result<UserWords, AnalysisError> {
        let mut out = UserWords::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| {
                AnalysisError::UserDictionary(format!("{source} line {}: {why}: {line:?}", n + 1))
            };
            let mut fields = line.split(',').map(str::trim);
            let surface = normalize(fields.next().unwrap_or_default());
            let tag = fields.next().unwrap_or("NNP").to_string();
            if fields.next().is_some() {
                return Err(bad("expected `word` or `word,TAG`"));
            }
            if surface.is_empty() || surface.chars().any(|c| c.is_whitespace() || c == '"') {
                return Err(bad("a word must be non-empty, without spaces or quotes"));
            }
            if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(bad("a tag is upper-case letters (NNP, NNG, …)"));
            }
            out.insert(UserWord {
                surface,
                tag,
                parts: Vec::new(),
            });
        }
        Ok(out)
    }

    /// lindera's full ko-dic CSV rows (surface, context ids, cost, then the
    /// eight feature fields), the format [`UserWords::from_csv`] reads back.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for w in self.words.values() {
            let final_consonant = match w.surface.chars().last() {
                Some(c @ '가'..='힣') => {
                    if (c as u32 - '가' as u32).is_multiple_of(28) {
                        "F"
                    } else {
                        "T"
                    }
                }
                _ => "*",
            };
            let (kind, expression) = if w.parts.is_empty() {
                ("*".to_string(), "*".to_string())
            } else {
                let parts: Vec<String> =
                    w.parts.iter().map(|(s, t)| format!("{s}/{t}/*")).collect();
                ("Compound".to_string(), parts.join("+"))
            };
            out.push_str(&format!(
                "{s},0,0,{WORD_COST},{t},*,{final_consonant},{s},{kind},*,*,{expression}\n",
                s = w.surface,
                t = w.tag,
            ));
        }
        out
    }

    /// Reads rows written by [`UserWords::to_csv`].
    pub fn from_csv(text: &str, source: &str) -> Result<UserWords, AnalysisError> {
        let mut out = UserWords::default();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 12 || fields[0].is_empty() {
                return Err(AnalysisError::UserDictionary(format!(
                    "{source} line {}: expected 12 comma-separated fields: {line:?}",
                    n + 1
                )));
            }
            let parts = if fields[11] == "*" {
                Vec::new()
            } else {
                fields[11]
                    .split('+')
                    .filter_map(|p| {
                        let mut f = p.split('/');
                        Some((f.next()?.to_string(), f.next()?.to_string()))
                    })
                    .collect()
            };
            out.insert(UserWord {
                surface: fields[0].to_string(),
                tag: fields[4].to_string(),
                parts,
            });
        }
        Ok(out)
    }
}

fn normalize(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfkc().collect()
}

/// The title without a trailing disambiguation in parentheses
/// (`수도 (도시)` → `수도`).
fn strip_qualifier(title: &str) -> &str {
    match title.find(" (") {
        Some(i) if title.ends_with(')') => &title[..i],
        _ => title,
    }
}

impl KoreanAnalyzer {
    /// The titles worth a user-dictionary entry: written in Hangul only, 2–20
    /// syllables, no spaces (after dropping a trailing `(…)` qualifier), and
    /// split by ko-dic into more than one morpheme. A title that ko-dic
    /// splits into nouns only keeps those nouns as its parts; one it splits
    /// into anything else (엔터테인먼트 → 엔터/NNP 테/NNG 인/VCP+ETM …) is
    /// taken as one word. This analyzer should have no user dictionary.
    pub fn title_words<'a>(
        &self,
        titles: impl IntoIterator<Item = &'a str>,
    ) -> Result<UserWords, AnalysisError> {
        let mut out = UserWords::default();
        for title in titles {
            let title = normalize(strip_qualifier(title.trim()));
            let syllables = title.chars().count();
            if !(2..=20).contains(&syllables) || !title.chars().all(|c| ('가'..='힣').contains(&c))
            {
                continue;
            }
            if out.get(&title).is_some() {
                continue;
            }
            let morphemes = self.morphemes(&title)?;
            if morphemes.len() < 2 {
                continue;
            }
            let nouns = morphemes
                .iter()
                .all(|m| NOUN_LIKE.contains(&m.tag.as_str()));
            let parts = if nouns {
                morphemes
                    .iter()
                    .map(|m| (m.surface.clone(), m.tag.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            out.insert(UserWord {
                surface: title,
                tag: "NNP".into(),
                parts,
            });
        }
        Ok(out)
    }
}
