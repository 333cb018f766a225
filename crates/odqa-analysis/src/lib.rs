//! Korean text analysis for odqa: ko-dic morphology through lindera, the
//! part-of-speech stop-tag filter, normalization, and the tantivy tokenizer
//! that the index and the query side share.
//!
//! This crate owns how text becomes search terms, and nothing else: it does
//! not read corpora, build indexes or score anything. Index and query side
//! must analyze identically, so both get their analyzer from an
//! [`AnalyzerConfig`] that the index records in its manifest.
//!
//! It also owns the two ways ko-dic's analysis is extended: decompounding
//! (nori's `decompound_mode`: a compound such as 서울특별시 also or instead
//! yields its parts 서울, 특별시, from the expression ko-dic stores with it)
//! and user dictionaries (words lindera then treats as single entries, e.g.
//! Wikipedia titles the dictionary splits badly). Which entries a user
//! dictionary holds is the caller's to store; this crate turns them into a
//! lindera user dictionary.
//!
//! Offsets reported here are byte offsets into the caller's original text
//! (normalization is applied per character and mapped back), so they are
//! safe for highlighting; answer spans must never be derived from them.
//!
//! ```rust
//! use odqa_analysis::{AnalyzerConfig, DictionarySource, KoreanAnalyzer};
//! # fn main() -> Result<(), odqa_analysis::AnalysisError> {
//! // The prebuilt ko-dic beside the repository; a binary built with
//! // `embed-ko-dic` would use `DictionarySource::resolve(None)`.
//! let dictionary = DictionarySource::Directory(
//!     "../../../shared/ko-dic/lindera-cache/6.2.0-fmt2/lindera-ko-dic".into(),
//! );
//! let analyzer = KoreanAnalyzer::new(AnalyzerConfig::default(), &dictionary)?;
//! let terms = analyzer.terms("대한민국의 수도는 서울이다")?;
//! assert!(terms.iter().any(|t| t == "서울"));
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lindera::dictionary::{load_dictionary, load_fs_dictionary, DictionaryBuilder};
use lindera::mode::Mode;
use lindera::segmenter::Segmenter;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Name under which [`KoreanAnalyzer::tokenizer`] is registered in tantivy.
pub const TOKENIZER_NAME: &str = "odqa_ko";

/// Environment variable naming a ko-dic directory to load at run time.
pub const KO_DIC_ENV: &str = "ODQA_KO_DIC";

/// Part-of-speech tags (mecab-ko-dic tag set) that do not become terms, in
/// the spirit of Elasticsearch nori's default stop tags. A trailing `*`
/// matches every tag with that prefix. Compound tags (`VV+EP`) are judged by
/// their first tag.
pub const DEFAULT_STOP_TAGS: &[&str] = &[
    "J*",  // particles (조사)
    "E*",  // endings (어미)
    "SF",  // sentence-final punctuation
    "SE",  // ellipsis
    "SSO", // opening brackets
    "SSC", // closing brackets
    "SC",  // separators
    "SY",  // other symbols
    "VCP", // copula 이다
    "VCN", // negative copula 아니다
    "XPN", // noun prefix
    "XSN", // noun suffix
    "XSV", // verb suffix (공부+하다)
    "XSA", // adjective suffix
    "IC",  // interjections
    "MAJ", // conjunctive adverbs
    "MM",  // determiners
];

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("cannot load ko-dic from {location}: {message}")]
    Dictionary { location: String, message: String },
    #[error("this odqa was built without an embedded ko-dic; pass --ko-dic DIR or set {KO_DIC_ENV} to a lindera ko-dic directory")]
    NoEmbeddedDictionary,
    #[error("morphological analysis failed: {0}")]
    Segment(String),
    #[error("invalid stop tag {tag:?}: tags are upper-case letters, optionally ending in '*'")]
    InvalidStopTag { tag: String },
    #[error("user dictionary: {0}")]
    UserDictionary(String),
    #[error("the analyzer configuration names a user dictionary ({file}, {entries} entries) but its entries were not given")]
    MissingUserDictionary { file: String, entries: usize },
}

/// Which tokenization the analyzer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalyzerKind {
    /// ko-dic morphemes, filtered by stop tags.
    Morphological,
    /// Whitespace-separated words with edge punctuation trimmed: the
    /// no-morphology floor that benchmarks compare against.
    Whitespace,
}

/// What happens to a token that ko-dic describes as made of parts: a
/// compound noun (`Compound`, 서울특별시 = 서울/NNP + 특별시/NNG) or a
/// pre-analysed form (`Preanalysis`). Elasticsearch nori's
/// `decompound_mode`. Inflected predicates (`Inflect`) are governed by
/// [`AnalyzerConfig::stem_inflections`] instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Decompound {
    /// The token as written only (what indexes built before this option
    /// did: a manifest without the field means this).
    #[default]
    None,
    /// Its parts only.
    Discard,
    /// The token and its parts.
    Mixed,
}

impl Decompound {
    pub fn name(self) -> &'static str {
        match self {
            Decompound::None => "none",
            Decompound::Discard => "discard",
            Decompound::Mixed => "mixed",
        }
    }
}

/// What an analyzer's user dictionary was made from; the entries themselves
/// travel separately ([`UserWords`]), the index keeps them in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDictionaryInfo {
    /// File name of the entries (lindera's CSV), relative to the index.
    pub file: String,
    pub entries: usize,
    /// Corpus titles among the entries.
    pub from_titles: usize,
    /// The user file the other entries came from, if any.
    pub user_file: Option<String>,
}

/// Everything that decides which terms a text yields; recorded in an index's
/// manifest so queries are analyzed exactly as the documents were.
///
/// Fields added after the first index format default, when a manifest lacks
/// them, to what indexes built before them did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzerConfig {
    pub kind: AnalyzerKind,
    pub stop_tags: Vec<String>,
    /// Index inflected predicates by their stem (태어났 → 태어나), so that
    /// 태어난 in a question meets 태어났다 in a passage.
    pub stem_inflections: bool,
    #[serde(default)]
    pub decompound: Decompound,
    /// Entries added to ko-dic through lindera's user dictionary.
    #[serde(default)]
    pub user_dictionary: Option<UserDictionaryInfo>,
    /// Also index each pair of adjacent terms as one term ([`term_pairs`]),
    /// so a query can reward passages that use its words together
    /// (대한민국 수도) over passages that only contain them apart.
    #[serde(default)]
    pub term_pairs: bool,
}

/// Default decompounding of new indexes, chosen on the dev question sets
/// (bench/README.md, "Korean analysis options").
pub const DEFAULT_DECOMPOUND: Decompound = Decompound::None;

/// Default [`AnalyzerConfig::term_pairs`] of new indexes, chosen on the dev
/// question sets (bench/README.md, "Term pairs").
pub const DEFAULT_TERM_PAIRS: bool = true;

/// Joins the two terms of a pair term. Terms never contain whitespace (both
/// analyzer kinds split on it), so a pair cannot collide with a term.
pub const PAIR_SEPARATOR: char = ' ';

/// The pair terms of a term sequence: each term joined with the next by
/// [`PAIR_SEPARATOR`], in order (`[대한민국, 수도, 서울]` → `대한민국 수도`,
/// `수도 서울`). Terms dropped by stop tags are not in the sequence, so
/// 대한민국의 수도 pairs 대한민국 with 수도; under decompounding the parts
/// follow their compound in the sequence and pair like any term.
pub fn term_pairs<S: AsRef<str>>(terms: &[S]) -> Vec<String> {
    terms
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0].as_ref(), w[1].as_ref());
            let mut pair = String::with_capacity(a.len() + b.len() + 1);
            pair.push_str(a);
            pair.push(PAIR_SEPARATOR);
            pair.push_str(b);
            pair
        })
        .collect()
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            kind: AnalyzerKind::Morphological,
            stop_tags: DEFAULT_STOP_TAGS.iter().map(|t| t.to_string()).collect(),
            stem_inflections: true,
            decompound: DEFAULT_DECOMPOUND,
            user_dictionary: None,
            term_pairs: DEFAULT_TERM_PAIRS,
        }
    }
}

impl AnalyzerConfig {
    pub fn whitespace() -> Self {
        AnalyzerConfig {
            kind: AnalyzerKind::Whitespace,
            stop_tags: Vec::new(),
            stem_inflections: false,
            decompound: Decompound::None,
            user_dictionary: None,
            term_pairs: false,
        }
    }
}

/// Where the ko-dic dictionary comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DictionarySource {
    /// Compiled into the binary (`embed-ko-dic` feature).
    Embedded,
    /// A lindera ko-dic directory, memory-mapped at run time.
    Directory(PathBuf),
}

impl DictionarySource {
    /// An explicit directory wins, then [`KO_DIC_ENV`], then the embedded
    /// dictionary.
    pub fn resolve(explicit: Option<&Path>) -> Self {
        if let Some(dir) = explicit {
            return DictionarySource::Directory(dir.to_path_buf());
        }
        match std::env::var_os(KO_DIC_ENV) {
            Some(dir) if !dir.is_empty() => DictionarySource::Directory(PathBuf::from(dir)),
            _ => DictionarySource::Embedded,
        }
    }
}

/// One unit of the analyzed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Morpheme {
    /// The text as written (after per-character NFKC).
    pub surface: String,
    /// Part-of-speech tag (`NNP`, `VV+EP`, …); `WS` for whitespace words.
    pub tag: String,
    /// Byte range in the original text.
    pub byte_start: usize,
    pub byte_end: usize,
    /// The search term this morpheme yields, `None` when a stop tag drops it.
    pub term: Option<String>,
    /// Further terms at the same place: the parts of a compound under
    /// [`Decompound::Mixed`] (under `Discard` the first part is `term`).
    pub extra_terms: Vec<String>,
}

impl Morpheme {
    /// `term` then `extra_terms`.
    pub fn all_terms(&self) -> impl Iterator<Item = &String> {
        self.term.iter().chain(self.extra_terms.iter())
    }
}

#[derive(Debug, Clone)]
struct StopTags {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl StopTags {
    fn parse(tags: &[String]) -> Result<Self, AnalysisError> {
        let mut exact = Vec::new();
        let mut prefixes = Vec::new();
        for tag in tags {
            let (body, is_prefix) = match tag.strip_suffix('*') {
                Some(body) => (body, true),
                None => (tag.as_str(), false),
            };
            if body.is_empty() || !body.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(AnalysisError::InvalidStopTag { tag: tag.clone() });
            }
            if is_prefix {
                prefixes.push(body.to_string());
            } else {
                exact.push(body.to_string());
            }
        }
        Ok(StopTags { exact, prefixes })
    }

    fn stops(&self, tag: &str) -> bool {
        let first = tag.split('+').next().unwrap_or(tag);
        self.exact.iter().any(|t| t == first) || self.prefixes.iter().any(|p| first.starts_with(p))
    }
}

struct Inner {
    config: AnalyzerConfig,
    stop_tags: StopTags,
    segmenter: Option<Segmenter>,
}

/// A configured analyzer; cheap to clone and safe to share across threads.
#[derive(Clone)]
pub struct KoreanAnalyzer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KoreanAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KoreanAnalyzer")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl KoreanAnalyzer {
    /// Builds an analyzer; loads ko-dic only for the morphological kind.
    /// A configuration naming a user dictionary needs
    /// [`KoreanAnalyzer::with_user_words`].
    pub fn new(
        config: AnalyzerConfig,
        dictionary: &DictionarySource,
    ) -> Result<Self, AnalysisError> {
        if let Some(info) = &config.user_dictionary {
            return Err(AnalysisError::MissingUserDictionary {
                file: info.file.clone(),
                entries: info.entries,
            });
        }
        Self::build(config, dictionary, None)
    }

    /// Builds an analyzer whose ko-dic is extended by `words` through
    /// lindera's user dictionary (the segmenter itself then finds them:
    /// no tokens are merged afterwards).
    pub fn with_user_words(
        config: AnalyzerConfig,
        dictionary: &DictionarySource,
        words: &UserWords,
    ) -> Result<Self, AnalysisError> {
        if let Some(info) = &config.user_dictionary {
            if info.entries != words.len() {
                return Err(AnalysisError::UserDictionary(format!(
                    "{} holds {} entries, the configuration says {}",
                    info.file,
                    words.len(),
                    info.entries
                )));
            }
        }
        Self::build(config, dictionary, Some(words))
    }

    fn build(
        config: AnalyzerConfig,
        dictionary: &DictionarySource,
        words: Option<&UserWords>,
    ) -> Result<Self, AnalysisError> {
        let stop_tags = StopTags::parse(&config.stop_tags)?;
        let segmenter = match config.kind {
            AnalyzerKind::Whitespace => None,
            AnalyzerKind::Morphological => Some(load_segmenter(dictionary, words)?),
        };
        Ok(KoreanAnalyzer {
            inner: Arc::new(Inner {
                config,
                stop_tags,
                segmenter,
            }),
        })
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.inner.config
    }

    /// Every morpheme of `text`, kept or not, with its tag and offsets.
    pub fn morphemes(&self, text: &str) -> Result<Vec<Morpheme>, AnalysisError> {
        let normalized = NormalizedText::new(text);
        match &self.inner.segmenter {
            None => Ok(whitespace_morphemes(&normalized)),
            Some(segmenter) => self.segment(segmenter, &normalized),
        }
    }

    /// The search terms of `text`, in order (a compound's parts follow it).
    pub fn terms(&self, text: &str) -> Result<Vec<String>, AnalysisError> {
        let mut out = Vec::new();
        for m in self.morphemes(text)? {
            out.extend(m.term);
            out.extend(m.extra_terms);
        }
        Ok(out)
    }

    /// What the index holds for `text`: [`Self::terms`], then their
    /// [`term_pairs`] when the configuration asks for them. The tantivy
    /// tokenizer yields exactly these.
    pub fn indexed_terms(&self, text: &str) -> Result<Vec<String>, AnalysisError> {
        let mut terms = self.terms(text)?;
        if self.inner.config.term_pairs {
            let pairs = term_pairs(&terms);
            terms.extend(pairs);
        }
        Ok(terms)
    }

    /// The kept parts of a `Compound` or `Preanalysis` token, from its
    /// expression (`서울/NNP/*+특별시/NNG/*`), lower-cased; parts whose tag
    /// is a stop tag are left out. Empty for any other token.
    fn compound_parts(&self, token: &mut lindera::token::Token) -> Vec<String> {
        match token.get_detail(4) {
            Some("Compound") | Some("Preanalysis") => {}
            _ => return Vec::new(),
        }
        let Some(expression) = token.get_detail(7) else {
            return Vec::new();
        };
        let mut parts = Vec::new();
        for part in expression.split('+') {
            let mut fields = part.split('/');
            let (Some(surface), Some(tag)) = (fields.next(), fields.next()) else {
                continue;
            };
            if surface.is_empty() || self.inner.stop_tags.stops(tag) {
                continue;
            }
            parts.push(surface.to_lowercase());
        }
        // A one-part expression is the token itself.
        if parts.len() < 2 {
            parts.clear();
        }
        parts
    }

    /// The byte length of `text` without trailing function morphemes:
    /// particles (`J*`), endings (`E*`) and copulas (`VCP`, `VCN`), e.g.
    /// `서울이다` → `서울`, `1545년에` → `1545년`, `최성원이` → `최성원`.
    /// A reader's span often drags these along; gold answers rarely hold
    /// them. Never trims to nothing; whitespace before the cut goes too.
    pub fn trim_function_suffix(&self, text: &str) -> Result<usize, AnalysisError> {
        let morphemes = self.morphemes(text)?;
        let is_function = |tag: &str| {
            let first = tag.split('+').next().unwrap_or(tag);
            first.starts_with('J') || first.starts_with('E') || first == "VCP" || first == "VCN"
        };
        let mut end = text.len();
        for m in morphemes.iter().rev() {
            if m.byte_end < end && !text[m.byte_end..end].trim().is_empty() {
                break; // text between morphemes that the analyzer skipped
            }
            if !is_function(&m.tag) || m.byte_start == 0 {
                break;
            }
            end = m.byte_start;
        }
        Ok(text[..end].trim_end().len())
    }

    /// A tantivy tokenizer producing exactly [`KoreanAnalyzer::terms`].
    pub fn tokenizer(&self) -> KoreanTokenizer {
        KoreanTokenizer {
            analyzer: self.clone(),
        }
    }

    fn segment(
        &self,
        segmenter: &Segmenter,
        normalized: &NormalizedText,
    ) -> Result<Vec<Morpheme>, AnalysisError> {
        let tokens = segmenter
            .segment(Cow::Borrowed(normalized.text.as_str()))
            .map_err(|e| AnalysisError::Segment(e.to_string()))?;
        let mut morphemes = Vec::with_capacity(tokens.len());
        for mut token in tokens {
            let surface = token.surface.to_string();
            if surface.trim().is_empty() {
                continue;
            }
            let (byte_start, byte_end) = (token.byte_start, token.byte_end);
            let tag = token.get_detail(0).unwrap_or("UNK").to_string();
            let mut extra_terms = Vec::new();
            let term = if self.inner.stop_tags.stops(&tag) {
                None
            } else {
                let base = if self.inner.config.stem_inflections {
                    inflection_stem(&mut token).unwrap_or_else(|| surface.clone())
                } else {
                    surface.clone()
                };
                let whole = base.to_lowercase();
                match self.inner.config.decompound {
                    Decompound::None => Some(whole),
                    mode => {
                        let parts = self.compound_parts(&mut token);
                        if parts.is_empty() {
                            Some(whole)
                        } else if mode == Decompound::Discard {
                            let mut parts = parts.into_iter();
                            let first = parts.next();
                            extra_terms.extend(parts);
                            first
                        } else {
                            extra_terms.extend(parts.into_iter().filter(|p| *p != whole));
                            Some(whole)
                        }
                    }
                }
            };
            morphemes.push(Morpheme {
                surface,
                tag,
                byte_start: normalized.original_offset(byte_start),
                byte_end: normalized.original_offset(byte_end),
                term,
                extra_terms,
            });
        }
        Ok(morphemes)
    }
}

fn load_segmenter(
    source: &DictionarySource,
    words: Option<&UserWords>,
) -> Result<Segmenter, AnalysisError> {
    let dictionary = match source {
        DictionarySource::Embedded => {
            if !cfg!(feature = "embed-ko-dic") {
                return Err(AnalysisError::NoEmbeddedDictionary);
            }
            load_dictionary("embedded://ko-dic").map_err(|e| AnalysisError::Dictionary {
                location: "embedded://ko-dic".into(),
                message: e.to_string(),
            })?
        }
        DictionarySource::Directory(dir) => {
            load_fs_dictionary(dir).map_err(|e| AnalysisError::Dictionary {
                location: dir.display().to_string(),
                message: e.to_string(),
            })?
        }
    };
    let user_dictionary = match words {
        Some(words) if !words.is_empty() => Some(
            DictionaryBuilder::new((*dictionary.metadata).clone())
                .build_user_dict_from_reader(words.to_csv().as_bytes())
                .map_err(|e| AnalysisError::UserDictionary(e.to_string()))?,
        ),
        _ => None,
    };
    Ok(Segmenter::new(Mode::Normal, dictionary, user_dictionary))
}

/// ko-dic describes an inflected form (`태어났`, type `Inflect`) by its
/// expression `태어나/VV/*+았/EP/*`; the first component is the stem.
fn inflection_stem(token: &mut lindera::token::Token) -> Option<String> {
    if token.get_detail(4)? != "Inflect" {
        return None;
    }
    let expression = token.get_detail(7)?;
    let stem = expression.split('+').next()?.split('/').next()?;
    (!stem.is_empty()).then(|| stem.to_string())
}

fn whitespace_morphemes(normalized: &NormalizedText) -> Vec<Morpheme> {
    let text = normalized.text.as_str();
    let mut out = Vec::new();
    let mut offset = 0;
    for word in text.split_whitespace() {
        // split_whitespace yields subslices in order, so find is exact.
        let start = offset + text[offset..].find(word).unwrap_or(0);
        offset = start + word.len();
        let trimmed = word.trim_matches(|c: char| !c.is_alphanumeric());
        if trimmed.is_empty() {
            continue;
        }
        let trim_start = start
            + (word.len()
                - word
                    .trim_start_matches(|c: char| !c.is_alphanumeric())
                    .len());
        out.push(Morpheme {
            surface: trimmed.to_string(),
            tag: "WS".into(),
            byte_start: normalized.original_offset(trim_start),
            byte_end: normalized.original_offset(trim_start + trimmed.len()),
            term: Some(trimmed.to_lowercase()),
            extra_terms: Vec::new(),
        });
    }
    out
}

/// NFKC applied character by character, remembering where each normalized
/// byte came from so offsets map back to the original text.
struct NormalizedText {
    text: String,
    /// `(normalized byte offset, original byte offset)` at each character start.
    starts: Vec<(usize, usize)>,
    original_len: usize,
}

impl NormalizedText {
    fn new(original: &str) -> Self {
        let mut text = String::with_capacity(original.len());
        let mut starts = Vec::with_capacity(original.len() / 2);
        let mut buf = [0u8; 4];
        for (orig_offset, c) in original.char_indices() {
            starts.push((text.len(), orig_offset));
            if c.is_ascii() {
                text.push(c);
            } else {
                text.extend(c.encode_utf8(&mut buf).nfkc());
            }
        }
        NormalizedText {
            text,
            starts,
            original_len: original.len(),
        }
    }

    fn original_offset(&self, normalized: usize) -> usize {
        if normalized >= self.text.len() {
            return self.original_len;
        }
        match self.starts.binary_search_by_key(&normalized, |&(n, _)| n) {
            Ok(i) => self.starts[i].1,
            // Inside one character's expansion: map to that character's start.
            Err(i) => self.starts[i.saturating_sub(1)].1,
        }
    }
}

/// tantivy tokenizer over [`KoreanAnalyzer`].
#[derive(Clone)]
pub struct KoreanTokenizer {
    analyzer: KoreanAnalyzer,
}

pub struct KoreanTokenStream {
    tokens: Vec<tantivy::tokenizer::Token>,
    cursor: usize,
}

impl tantivy::tokenizer::Tokenizer for KoreanTokenizer {
    type TokenStream<'a> = KoreanTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> KoreanTokenStream {
        // tantivy's tokenizer cannot fail; lindera only errs on internal
        // lattice problems, and then whitespace words keep the text findable.
        let morphemes = self
            .analyzer
            .morphemes(text)
            .unwrap_or_else(|_| whitespace_morphemes(&NormalizedText::new(text)));
        let terms: Vec<(usize, usize, String)> = morphemes
            .into_iter()
            .flat_map(|m| {
                let (start, end) = (m.byte_start, m.byte_end);
                m.term
                    .into_iter()
                    .chain(m.extra_terms)
                    .map(move |term| (start, end, term))
            })
            .collect();
        // A pair spans from its first term's start to its second's end.
        let pairs: Vec<(usize, usize, String)> = if self.analyzer.config().term_pairs {
            let texts: Vec<&str> = terms.iter().map(|(_, _, t)| t.as_str()).collect();
            term_pairs(&texts)
                .into_iter()
                .zip(terms.windows(2))
                .map(|(pair, w)| (w[0].0, w[1].1.max(w[0].0), pair))
                .collect()
        } else {
            Vec::new()
        };
        let tokens = terms
            .into_iter()
            .chain(pairs)
            .enumerate()
            .map(
                |(position, (offset_from, offset_to, text))| tantivy::tokenizer::Token {
                    offset_from,
                    offset_to,
                    position,
                    text,
                    position_length: 1,
                },
            )
            .collect();
        KoreanTokenStream { tokens, cursor: 0 }
    }
}

impl tantivy::tokenizer::TokenStream for KoreanTokenStream {
    fn advance(&mut self) -> bool {
        if self.cursor < self.tokens.len() {
            self.cursor += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &tantivy::tokenizer::Token {
        &self.tokens[self
            .cursor
            .saturating_sub(1)
            .min(self.tokens.len().saturating_sub(1))]
    }

    fn token_mut(&mut self) -> &mut tantivy::tokenizer::Token {
        let i = self
            .cursor
            .saturating_sub(1)
            .min(self.tokens.len().saturating_sub(1));
        &mut self.tokens[i]
    }
}

mod user_words;
pub use user_words::{UserWord, UserWords};

#[cfg(test)]
mod tests {
    use super::*;

    fn analyzer() -> KoreanAnalyzer {
        KoreanAnalyzer::new(AnalyzerConfig::default(), &DictionarySource::resolve(None))
            .expect("ko-dic loads")
    }

    #[test]
    fn capital_sentence_keeps_content_morphemes() {
        let terms = analyzer().terms("대한민국의 수도는 서울이다").unwrap();
        assert_eq!(terms, ["대한민국", "수도", "서울"]);
    }

    #[test]
    fn numbers_counters_and_stems_are_kept() {
        let terms = analyzer().terms("이순신은 1545년에 태어났다.").unwrap();
        assert_eq!(terms, ["이순신", "1545", "년", "태어나"]);
    }

    #[test]
    fn question_and_passage_meet_on_the_stem() {
        let a = analyzer();
        let q = a.terms("이순신이 태어난 해는?").unwrap();
        let p = a.terms("이순신은 1545년에 태어났다.").unwrap();
        assert!(q.contains(&"태어나".to_string()), "{q:?}");
        assert!(p.contains(&"태어나".to_string()), "{p:?}");
    }

    #[test]
    fn latin_is_lowercased_and_fullwidth_normalized() {
        let a = analyzer();
        let terms = a
            .terms("ＫＴＸ는 2004년에 개통한 Korea Train eXpress이다.")
            .unwrap();
        assert!(terms.contains(&"ktx".to_string()), "{terms:?}");
        assert!(terms.contains(&"express".to_string()), "{terms:?}");
        assert!(terms.contains(&"2004".to_string()), "{terms:?}");
        assert!(
            !terms.iter().any(|t| t == "." || t == "는" || t == "에"),
            "{terms:?}"
        );
    }

    #[test]
    fn hanja_and_punctuation() {
        let terms = analyzer()
            .terms("노동조합(勞動組合)은 단체를 말한다.")
            .unwrap();
        assert!(
            terms.contains(&"勞動組合".to_string()) || terms.iter().any(|t| t.contains('勞')),
            "{terms:?}"
        );
        assert!(
            !terms.iter().any(|t| t == "(" || t == ")" || t == "."),
            "{terms:?}"
        );
    }

    #[test]
    fn offsets_point_into_the_original_text() {
        let text = "ＫＴＸ는 서울에서 부산까지 달린다.";
        for m in analyzer().morphemes(text).unwrap() {
            let slice = &text[m.byte_start..m.byte_end];
            assert!(!slice.is_empty(), "{m:?}");
            assert_eq!(slice.nfkc().collect::<String>(), m.surface, "{m:?}");
        }
    }

    #[test]
    fn stop_tags_are_configurable() {
        let config = AnalyzerConfig {
            stop_tags: vec!["J*".into(), "E*".into(), "SF".into(), "NNP".into()],
            ..AnalyzerConfig::default()
        };
        let a = KoreanAnalyzer::new(config, &DictionarySource::resolve(None)).unwrap();
        assert_eq!(
            a.terms("대한민국의 수도는 서울이다").unwrap(),
            ["수도", "이"]
        );
    }

    #[test]
    fn invalid_stop_tag_is_rejected() {
        let config = AnalyzerConfig {
            stop_tags: vec!["j*".into()],
            ..AnalyzerConfig::default()
        };
        let err = KoreanAnalyzer::new(config, &DictionarySource::Embedded).unwrap_err();
        assert!(err.to_string().contains("\"j*\""), "{err}");
    }

    #[test]
    fn missing_dictionary_directory_is_an_error() {
        let err = KoreanAnalyzer::new(
            AnalyzerConfig::default(),
            &DictionarySource::Directory("/nonexistent/ko-dic".into()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ko-dic"), "{err}");
    }

    #[test]
    fn whitespace_kind_splits_words_and_trims_punctuation() {
        let a =
            KoreanAnalyzer::new(AnalyzerConfig::whitespace(), &DictionarySource::Embedded).unwrap();
        assert_eq!(
            a.terms("대한민국의 수도는 (서울)이다.").unwrap(),
            ["대한민국의", "수도는", "서울)이다"]
        );
    }

    #[test]
    fn tantivy_tokenizer_yields_the_same_terms() {
        use tantivy::tokenizer::{TokenStream, Tokenizer};
        let a = analyzer();
        let text = "세종대왕은 1443년에 훈민정음을 창제하였다.";
        let mut tokenizer = a.tokenizer();
        let mut stream = tokenizer.token_stream(text);
        let mut seen = Vec::new();
        while stream.advance() {
            seen.push(stream.token().text.clone());
        }
        assert_eq!(seen, a.indexed_terms(text).unwrap());
        assert!(
            seen.len() > a.terms(text).unwrap().len(),
            "pairs follow the terms"
        );
    }

    fn tokens_of(a: &KoreanAnalyzer, text: &str) -> Vec<tantivy::tokenizer::Token> {
        use tantivy::tokenizer::{TokenStream, Tokenizer};
        let mut tokenizer = a.tokenizer();
        let mut stream = tokenizer.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            tokens.push(stream.token().clone());
        }
        tokens
    }

    #[test]
    fn adjacent_terms_are_indexed_as_pairs_across_dropped_particles() {
        let a = analyzer();
        let text = "대한민국의 수도는 서울이다";
        assert_eq!(
            a.indexed_terms(text).unwrap(),
            ["대한민국", "수도", "서울", "대한민국 수도", "수도 서울"]
        );
        // The query side asks for pairs through the same function.
        assert_eq!(
            term_pairs(&a.terms(text).unwrap()),
            ["대한민국 수도", "수도 서울"]
        );
        // A pair token covers both of its words in the original text.
        let tokens = tokens_of(&a, text);
        let pair = tokens.iter().find(|t| t.text == "대한민국 수도").unwrap();
        assert_eq!(&text[pair.offset_from..pair.offset_to], "대한민국의 수도");
    }

    #[test]
    fn without_term_pairs_the_index_holds_only_the_terms() {
        let config = AnalyzerConfig {
            term_pairs: false,
            ..AnalyzerConfig::default()
        };
        let a = KoreanAnalyzer::new(config, &DictionarySource::resolve(None)).unwrap();
        let text = "이순신은 1545년에 태어났다.";
        let seen: Vec<String> = tokens_of(&a, text).into_iter().map(|t| t.text).collect();
        assert_eq!(seen, a.terms(text).unwrap());
        assert_eq!(seen, ["이순신", "1545", "년", "태어나"]);
        assert!(term_pairs::<&str>(&[]).is_empty());
        assert!(term_pairs(&["하나"]).is_empty());
    }

    #[test]
    fn trailing_particles_endings_and_copulas_are_trimmed() {
        let analyzer = analyzer();
        let trim = |t: &str| {
            let end = analyzer.trim_function_suffix(t).unwrap();
            t[..end].to_string()
        };
        assert_eq!(trim("서울이다"), "서울");
        assert_eq!(trim("최성원이"), "최성원");
        assert_eq!(trim("4월 20일에"), "4월 20일");
        assert_eq!(trim("7,729개를"), "7,729개");
        assert_eq!(trim("50명이"), "50명");
        assert_eq!(trim("독선적인 군주전제를"), "독선적인 군주전제");
        // Content words, counters and inner particles stay.
        assert_eq!(trim("1545년"), "1545년");
        assert_eq!(trim("히로시마와 나가사키"), "히로시마와 나가사키");
        assert_eq!(trim("복사(復社)"), "복사(復社)");
        assert_eq!(trim("이순신"), "이순신");
        // Never to nothing.
        assert_eq!(trim("에서"), "에서");
    }

    fn with(decompound: Decompound) -> KoreanAnalyzer {
        let config = AnalyzerConfig {
            decompound,
            ..AnalyzerConfig::default()
        };
        KoreanAnalyzer::new(config, &DictionarySource::resolve(None)).unwrap()
    }

    #[test]
    fn decompound_modes_follow_nori() {
        let text = "교통사고가 박물관 앞에서 났다";
        let none = with(Decompound::None).terms(text).unwrap();
        let discard = with(Decompound::Discard).terms(text).unwrap();
        let mixed = with(Decompound::Mixed).terms(text).unwrap();
        assert_eq!(none[..2], ["교통사고", "박물관"]);
        assert_eq!(discard[..4], ["교통", "사고", "박물", "관"]);
        assert_eq!(
            mixed[..6],
            ["교통사고", "교통", "사고", "박물관", "박물", "관"]
        );
        // A question and a passage meet on the parts.
        let q = with(Decompound::Mixed).terms("사고가 난 곳은?").unwrap();
        assert!(q.contains(&"사고".to_string()) && mixed.contains(&"사고".to_string()));
    }

    #[test]
    fn old_manifests_without_the_new_fields_mean_the_old_analysis() {
        let json = r#"{"kind":"morphological","stop_tags":["J*"],"stem_inflections":true}"#;
        let config: AnalyzerConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.decompound, Decompound::None);
        assert_eq!(config.user_dictionary, None);
        assert!(!config.term_pairs, "indexes built before pairs have none");
    }

    #[test]
    fn user_dictionary_keeps_a_badly_split_title_whole() {
        let plain = analyzer();
        let before = plain.terms("엔터테인먼트 회사의 대표").unwrap();
        assert!(!before.contains(&"엔터테인먼트".to_string()), "{before:?}");
        let words = plain
            .title_words(["엔터테인먼트", "교통사고", "대한민국", "지미 카터", "KBS"])
            .unwrap();
        // Only titles ko-dic splits, in Hangul, without spaces.
        assert!(words
            .get("엔터테인먼트")
            .is_some_and(|w| w.parts.is_empty()));
        assert!(words.get("대한민국").is_none());
        assert!(words.get("지미 카터").is_none());
        let config = AnalyzerConfig {
            user_dictionary: Some(UserDictionaryInfo {
                file: "user-dictionary.csv".into(),
                entries: words.len(),
                from_titles: words.len(),
                user_file: None,
            }),
            ..AnalyzerConfig::default()
        };
        // Written and read back as the index stores it.
        let stored = UserWords::from_csv(&words.to_csv(), "test").unwrap();
        assert_eq!(stored, words);
        let a = KoreanAnalyzer::with_user_words(
            config.clone(),
            &DictionarySource::resolve(None),
            &stored,
        )
        .unwrap();
        for text in ["엔터테인먼트 회사의 대표", "엔터테인먼트는 무엇인가?"] {
            let terms = a.terms(text).unwrap();
            assert_eq!(terms[0], "엔터테인먼트", "{terms:?}");
        }
        // The same analyzer config without its entries is refused.
        assert!(matches!(
            KoreanAnalyzer::new(config, &DictionarySource::resolve(None)),
            Err(AnalysisError::MissingUserDictionary { .. })
        ));
    }

    #[test]
    fn user_word_list_is_parsed_and_checked() {
        let words = UserWords::parse_list("# names\n카카오톡\n넷플릭스,NNG\n\n", "list").unwrap();
        assert_eq!(words.len(), 2);
        assert_eq!(words.get("넷플릭스").unwrap().tag, "NNG");
        let err = UserWords::parse_list("좋은 말\n", "list.txt").unwrap_err();
        assert!(err.to_string().contains("list.txt line 1"), "{err}");
    }

    #[test]
    fn index_and_query_side_get_the_same_terms_with_decompounding() {
        use tantivy::tokenizer::{TokenStream, Tokenizer};
        let a = with(Decompound::Mixed);
        let text = "가톨릭교회의 교통사고 통계";
        let mut tokenizer = a.tokenizer();
        let mut stream = tokenizer.token_stream(text);
        let mut seen = Vec::new();
        while stream.advance() {
            seen.push(stream.token().text.clone());
        }
        assert_eq!(seen, a.indexed_terms(text).unwrap());
        assert!(seen.contains(&"교통".to_string()), "{seen:?}");
    }
}
