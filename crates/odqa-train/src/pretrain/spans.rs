//! Content spans: the answer candidates of an analyzed text (runs of
//! content morphemes at word and morpheme boundaries; see the module doc
//! of [`crate::pretrain`]).

use std::ops::Range;

use odqa_analysis::Morpheme;

use super::PretrainConfig;

/// Generic nouns that never make an answer on their own.
pub const STOP_NOUNS: &[&str] = &[
    "이후",
    "이전",
    "때문",
    "경우",
    "사용",
    "이상",
    "이하",
    "정도",
    "자신",
    "당시",
    "사람",
    "여러",
    "다음",
    "사이",
    "부분",
    "일부",
    "대부분",
    "가지",
    "하나",
    "관련",
    "대한",
    "위치",
    "현재",
    "최근",
    "처음",
    "마지막",
    "동안",
    "이름",
    "시작",
    "모두",
    "전체",
    "각각",
    "자체",
    "가운데",
    "이번",
    "한편",
    "그동안",
    "오늘",
    "지금",
    "우리",
    "그것",
    "이것",
    "저것",
    "무엇",
    "어디",
    "누구",
    "문제",
    "결과",
    "이유",
    "방법",
    "내용",
    "과정",
    "상태",
    "기간",
    "시기",
    "시간",
    "사실",
    "의미",
    "역할",
    "영향",
    "관계",
    "형태",
    "방식",
    "종류",
    "기록",
    "활동",
    "생각",
    "다른",
    "이용",
    "포함",
    "통해",
    "대해",
    "위해",
    "중심",
    "주요",
    "일반",
    "기타",
    "해당",
    "당해",
    "정의",
    "개념",
    "등장",
    "이후로",
    "둘",
    "셋",
    "넷",
    "첫째",
    "둘째",
    "셋째",
    "여기",
    "거기",
    "이곳",
    "그곳",
    "자기",
    "본인",
    "서로",
];

/// A candidate answer span of an analyzed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSpan {
    /// Byte range in the text.
    pub bytes: Range<usize>,
    /// Holds a proper noun, number, foreign word or hanja.
    pub entity: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Noun,
    Proper,
    Counter,
    Numeral,
    Number,
    Foreign,
    /// `,` or `.` inside a number (`1,000`, `3.14`).
    Joiner,
    Punct,
    Other,
}

impl Class {
    fn of(tag: &str) -> Class {
        if tag.contains('+') {
            // A compound analysis is content only when made of nouns alone.
            let mut parts = tag.split('+');
            return if parts.all(|p| p == "NNG" || p == "NNP") {
                if tag.split('+').any(|p| p == "NNP") {
                    Class::Proper
                } else {
                    Class::Noun
                }
            } else {
                Class::Other
            };
        }
        match tag {
            "NNG" => Class::Noun,
            "NNP" => Class::Proper,
            "NNBC" => Class::Counter,
            "NR" => Class::Numeral,
            "SN" => Class::Number,
            "SL" | "SH" => Class::Foreign,
            "SF" | "SE" | "SSO" | "SSC" | "SC" | "SY" => Class::Punct,
            _ => Class::Other,
        }
    }

    fn content(self) -> bool {
        !matches!(self, Class::Punct | Class::Other)
    }

    fn starts(self) -> bool {
        matches!(
            self,
            Class::Noun | Class::Proper | Class::Numeral | Class::Number | Class::Foreign
        )
    }

    fn entity(self) -> bool {
        matches!(self, Class::Proper | Class::Number | Class::Foreign)
    }
}

/// A generic noun ([`STOP_NOUNS`]) or a bare unit-like abbreviation
/// (up to three lower-case Latin letters: `km`, `kg`).
fn trivial(text: &str) -> bool {
    STOP_NOUNS.contains(&text) || (text.len() <= 3 && text.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Finds content spans over one analysis.
pub(super) struct SpanFinder<'t> {
    text: &'t str,
    morphemes: &'t [Morpheme],
    classes: Vec<Class>,
    config: &'t PretrainConfig,
}

impl<'t> SpanFinder<'t> {
    pub(super) fn new(
        text: &'t str,
        morphemes: &'t [Morpheme],
        config: &'t PretrainConfig,
    ) -> Self {
        let mut classes: Vec<Class> = morphemes
            .iter()
            .map(|m| {
                let sound = m.byte_start < m.byte_end
                    && m.byte_end <= text.len()
                    && text.is_char_boundary(m.byte_start)
                    && text.is_char_boundary(m.byte_end);
                if sound {
                    Class::of(&m.tag)
                } else {
                    Class::Other
                }
            })
            .collect();
        for i in 1..morphemes.len().saturating_sub(1) {
            let m = &morphemes[i];
            if classes[i] == Class::Punct
                && (m.surface == "," || m.surface == ".")
                && classes[i - 1] == Class::Number
                && classes[i + 1] == Class::Number
                && morphemes[i - 1].byte_end == m.byte_start
                && m.byte_end == morphemes[i + 1].byte_start
            {
                classes[i] = Class::Joiner;
            }
        }
        SpanFinder {
            text,
            morphemes,
            classes,
            config,
        }
    }

    fn adjacent(&self, a: usize, b: usize) -> bool {
        self.morphemes[a].byte_end == self.morphemes[b].byte_start
    }

    /// Same word, or words separated by one or two spaces.
    fn joined(&self, a: usize, b: usize) -> bool {
        let (end, start) = (self.morphemes[a].byte_end, self.morphemes[b].byte_start);
        end == start
            || (end < start
                && start - end <= 2
                && self.text.as_bytes()[end..start].iter().all(|&c| c == b' '))
    }

    /// The span starts its word or follows punctuation — not an
    /// underscore: `formula_16` is one identifier (WikiExtractor's
    /// placeholders for removed markup).
    fn left_boundary(&self, i: usize) -> bool {
        i == 0
            || !self.adjacent(i - 1, i)
            || (self.classes[i - 1] == Class::Punct
                && !self.morphemes[i - 1].surface.ends_with('_'))
    }

    /// The span ends its word, or stops before a particle, ending, copula
    /// or noun suffix — not before another noun or a verb-making suffix
    /// (`인정|하면서` is a predicate, not a noun).
    fn right_boundary(&self, j: usize) -> bool {
        if j + 1 == self.morphemes.len() || !self.adjacent(j, j + 1) {
            return true;
        }
        let next = &self.morphemes[j + 1];
        !self.classes[j + 1].content()
            && !next.tag.starts_with("XSV")
            && !next.tag.starts_with("XSA")
            && !next.surface.starts_with('_')
    }

    fn can_end(&self, i: usize, j: usize) -> bool {
        match self.classes[j] {
            Class::Noun | Class::Proper | Class::Numeral | Class::Number | Class::Foreign => true,
            Class::Counter => {
                j > i && matches!(self.classes[j - 1], Class::Number | Class::Numeral)
            }
            _ => false,
        }
    }

    pub(super) fn is_span(&self, span: Range<usize>) -> bool {
        let Some(i) = self
            .morphemes
            .iter()
            .position(|m| m.byte_start == span.start)
        else {
            return false;
        };
        let mut found = false;
        self.spans_from(i, |j, _| found |= self.morphemes[j].byte_end == span.end);
        found
    }

    /// Calls `emit(j, entity)` for every span of morphemes `i..=j`.
    fn spans_from(&self, i: usize, mut emit: impl FnMut(usize, bool)) {
        let c = self.config;
        if !self.classes[i].starts() || !self.left_boundary(i) {
            return;
        }
        let start = self.morphemes[i].byte_start;
        let mut entity = false;
        let mut j = i;
        loop {
            entity |= self.classes[j].entity();
            let text = &self.text[start..self.morphemes[j].byte_end];
            let chars = text.chars().count();
            if chars > c.max_answer_chars {
                break;
            }
            if chars >= c.min_answer_chars
                && self.can_end(i, j)
                && self.right_boundary(j)
                && !trivial(text)
            {
                emit(j, entity);
            }
            let next = j + 1;
            if next - i >= c.max_span_morphemes
                || next >= self.morphemes.len()
                || !self.classes[next].content()
                || !self.joined(j, next)
            {
                break;
            }
            j = next;
        }
    }
}

/// Every content span of `text` (analyzed as `morphemes`), by start, then end.
pub fn content_spans(
    text: &str,
    morphemes: &[Morpheme],
    config: &PretrainConfig,
) -> Vec<ContentSpan> {
    let finder = SpanFinder::new(text, morphemes, config);
    let mut out = Vec::new();
    for i in 0..morphemes.len() {
        finder.spans_from(i, |j, entity| {
            out.push(ContentSpan {
                bytes: morphemes[i].byte_start..morphemes[j].byte_end,
                entity,
            })
        });
    }
    out
}

/// Whether bytes `span` of `text` are a content span of its analysis.
pub fn is_content_span(
    text: &str,
    morphemes: &[Morpheme],
    span: Range<usize>,
    config: &PretrainConfig,
) -> bool {
    SpanFinder::new(text, morphemes, config).is_span(span)
}
