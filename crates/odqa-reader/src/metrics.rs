//! The official KorQuAD 1.0 evaluation script (`evaluate-v1.0.py`), ported
//! exactly: answer normalization, exact match, *character-level* F1, the
//! maximum over ground truths, and the corpus average (×100) in which an
//! unanswered question scores 0.
//!
//! The script, for reference:
//!
//! ```text
//! def normalize_answer(s):
//!     def remove_(text):               # each replaced by " "
//!         ' " 《 》 < > 〈 〉 ( ) ‘ ’
//!     def white_space_fix(text): return ' '.join(text.split())
//!     def remove_punc(text):     drop every char of string.punctuation
//!     def lower(text):           return text.lower()
//!     return white_space_fix(remove_punc(lower(remove_(s))))
//!
//! def f1_score(prediction, ground_truth):
//!     chars of all tokens of normalize_answer(prediction).split(), same for gold
//!     common = Counter(pred_chars) & Counter(gold_chars); num_same = sum(...)
//!     if num_same == 0: return 0
//!     precision = num_same / len(pred_chars); recall = num_same / len(gold_chars)
//!     return 2 * precision * recall / (precision + recall)
//! ```

use std::collections::HashMap;
use std::path::Path;

use crate::error::{ReaderError, Result};

/// Characters the script's `remove_` replaces with a space, in its order.
pub const REPLACED_WITH_SPACE: [char; 12] = [
    '\'', '"', '《', '》', '<', '>', '〈', '〉', '(', ')', '‘', '’',
];

/// Python's `string.punctuation`.
pub const PY_PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Python's `str.isspace()`: Rust's `char::is_whitespace` (Unicode
/// `White_Space`) plus the ASCII information separators U+001C..=U+001F,
/// which Python also treats as whitespace (bidi class B/S).
pub fn py_is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.split()` with no argument: runs of [`py_is_space`] separate
/// tokens, and leading/trailing whitespace yields no empty tokens.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(py_is_space).filter(|t| !t.is_empty())
}

/// The script's `normalize_answer`.
pub fn normalize_answer(s: &str) -> String {
    // remove_: replace each listed character with a space.
    let replaced: String = s
        .chars()
        .map(|c| {
            if REPLACED_WITH_SPACE.contains(&c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    // lower: Python's str.lower (full Unicode lowercase, final sigma included).
    let lowered = replaced.to_lowercase();
    // remove_punc: drop ASCII punctuation.
    let no_punc: String = lowered
        .chars()
        .filter(|c| !PY_PUNCTUATION.contains(*c))
        .collect();
    // white_space_fix
    py_split(&no_punc).collect::<Vec<_>>().join(" ")
}

/// The script's `exact_match_score`: normalized strings are equal.
pub fn exact_match(prediction: &str, ground_truth: &str) -> bool {
    normalize_answer(prediction) == normalize_answer(ground_truth)
}

/// The characters of every whitespace token of the normalized answer, in
/// order (the script's `prediction_Char` / `ground_truth_Char`).
fn answer_chars(s: &str) -> Vec<char> {
    let normalized = normalize_answer(s);
    py_split(&normalized).flat_map(str::chars).collect()
}

/// The script's `f1_score`: F1 over the multisets of characters of the
/// normalized answers' tokens. 0 when no character is shared.
pub fn f1(prediction: &str, ground_truth: &str) -> f64 {
    let pred = answer_chars(prediction);
    let gold = answer_chars(ground_truth);
    let mut gold_counts: HashMap<char, usize> = HashMap::new();
    for c in &gold {
        *gold_counts.entry(*c).or_insert(0) += 1;
    }
    let mut num_same = 0usize;
    for c in &pred {
        if let Some(n) = gold_counts.get_mut(c) {
            if *n > 0 {
                *n -= 1;
                num_same += 1;
            }
        }
    }
    if num_same == 0 {
        return 0.0;
    }
    let precision = num_same as f64 / pred.len() as f64;
    let recall = num_same as f64 / gold.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// The script's `metric_max_over_ground_truths` for [`exact_match`]
/// (as 0.0 or 1.0). With no ground truths (where Python's `max([])` would
/// raise) the score is 0.
pub fn exact_match_max<S: AsRef<str>>(prediction: &str, ground_truths: &[S]) -> f64 {
    let hit = ground_truths
        .iter()
        .any(|g| exact_match(prediction, g.as_ref()));
    if hit {
        1.0
    } else {
        0.0
    }
}

/// The script's `metric_max_over_ground_truths` for [`f1`]. 0 with no
/// ground truths.
pub fn f1_max<S: AsRef<str>>(prediction: &str, ground_truths: &[S]) -> f64 {
    ground_truths
        .iter()
        .map(|g| f1(prediction, g.as_ref()))
        .fold(0.0, f64::max)
}

/// `metric_max_over_ground_truths(metric_fn, prediction, ground_truths)`
/// for any metric; `None` with no ground truths.
pub fn max_over_ground_truths<S, F>(metric: F, prediction: &str, ground_truths: &[S]) -> Option<f64>
where
    S: AsRef<str>,
    F: Fn(&str, &str) -> f64,
{
    ground_truths
        .iter()
        .map(|g| metric(prediction, g.as_ref()))
        .fold(None, |acc, x| Some(acc.map_or(x, |a: f64| a.max(x))))
}

/// Corpus scores as the script prints them: percentages.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Exact match × 100, averaged over all questions.
    pub em: f64,
    /// Character F1 × 100, averaged over all questions.
    pub f1: f64,
    /// Number of questions in the dataset (answered or not).
    pub count: usize,
}

/// The script's `evaluate`: for each `(id, gold answers)` in `dataset`, the
/// max EM and F1 of `predictions[id]` over the golds; a question with no
/// prediction scores 0 (the script prints "Unanswered question ... will
/// receive score 0"). Averages are ×100; an empty dataset gives 0/0 with
/// `count` 0 instead of the script's division by zero.
pub fn evaluate<S: AsRef<str>>(
    predictions: &HashMap<String, String>,
    dataset: &[(S, Vec<S>)],
) -> Scores {
    let mut em = 0.0;
    let mut f1_sum = 0.0;
    for (id, golds) in dataset {
        let Some(prediction) = predictions.get(id.as_ref()) else {
            continue;
        };
        em += exact_match_max(prediction, golds);
        f1_sum += f1_max(prediction, golds);
    }
    let count = dataset.len();
    if count == 0 {
        return Scores {
            em: 0.0,
            f1: 0.0,
            count,
        };
    }
    Scores {
        em: 100.0 * em / count as f64,
        f1: 100.0 * f1_sum / count as f64,
        count,
    }
}

/// Ids of the questions in `dataset` that have no entry in `predictions`
/// (the ones the script reports as unanswered), in dataset order.
pub fn unanswered<'a, S: AsRef<str>>(
    predictions: &HashMap<String, String>,
    dataset: &'a [(S, Vec<S>)],
) -> Vec<&'a str> {
    dataset
        .iter()
        .map(|(id, _)| id.as_ref())
        .filter(|id| !predictions.contains_key(*id))
        .collect()
}

#[derive(serde::Deserialize)]
struct SquadFile {
    data: Vec<SquadArticle>,
}

#[derive(serde::Deserialize)]
struct SquadArticle {
    paragraphs: Vec<SquadParagraph>,
}

#[derive(serde::Deserialize)]
struct SquadParagraph {
    qas: Vec<SquadQa>,
}

#[derive(serde::Deserialize)]
struct SquadQa {
    id: String,
    answers: Vec<SquadAnswer>,
}

#[derive(serde::Deserialize)]
struct SquadAnswer {
    text: String,
}

/// Reads a KorQuAD 1.0 / SQuAD 1.1 JSON dataset (`data[].paragraphs[].qas[]`)
/// into the `(id, gold answer texts)` list [`evaluate`] takes, in file order.
pub fn parse_dataset(json: &str) -> Result<Vec<(String, Vec<String>)>> {
    let file: SquadFile =
        serde_json::from_str(json).map_err(|e| ReaderError::Dataset(e.to_string()))?;
    Ok(file
        .data
        .into_iter()
        .flat_map(|a| a.paragraphs)
        .flat_map(|p| p.qas)
        .map(|qa| (qa.id, qa.answers.into_iter().map(|a| a.text).collect()))
        .collect())
}

/// [`parse_dataset`] on a file.
pub fn read_dataset(path: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let text = std::fs::read_to_string(path).map_err(|e| ReaderError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse_dataset(&text).map_err(|e| match e {
        ReaderError::Dataset(d) => ReaderError::Dataset(format!("{}: {d}", path.display())),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn each_replaced_character_becomes_a_space() {
        for c in REPLACED_WITH_SPACE {
            let s = format!("가{c}나");
            assert_eq!(normalize_answer(&s), "가 나", "char {c:?}");
            // Replacement (not deletion): the two sides stay separate tokens.
            assert!(!exact_match(&s, "가나"), "char {c:?}");
        }
        // Ones that are not ASCII punctuation are only handled by remove_.
        assert_eq!(normalize_answer("《서울》"), "서울");
        assert_eq!(normalize_answer("〈논문〉 제목"), "논문 제목");
        assert_eq!(normalize_answer("‘인용’"), "인용");
        // Other quotes/brackets are kept.
        assert_eq!(normalize_answer("“따옴표”「괄호」"), "“따옴표”「괄호」");
    }

    #[test]
    fn lowercases() {
        assert_eq!(normalize_answer("Seoul KOREA"), "seoul korea");
        assert_eq!(normalize_answer("ÀÉ"), "àé");
        // Python's final-sigma rule.
        assert_eq!(normalize_answer("ΟΔΟΣ"), "οδος");
        assert!(exact_match("BTS", "bts"));
    }

    #[test]
    fn removes_every_ascii_punctuation_char() {
        assert_eq!(PY_PUNCTUATION.chars().count(), 32);
        for c in PY_PUNCTUATION.chars() {
            let s = format!("a{c}b");
            let expect = if REPLACED_WITH_SPACE.contains(&c) {
                "a b"
            } else {
                "ab"
            };
            assert_eq!(normalize_answer(&s), expect, "char {c:?}");
        }
        assert_eq!(normalize_answer("1,000원."), "1000원");
        assert_eq!(normalize_answer("U.S.A!"), "usa");
        assert_eq!(normalize_answer("a-b_c/d\\e"), "abcde");
        assert_eq!(normalize_answer("[x]{y}@#$%^&*~`|"), "xy");
        // Non-ASCII punctuation is not in string.punctuation.
        assert_eq!(normalize_answer("가·나。"), "가·나。");
    }

    #[test]
    fn collapses_whitespace_like_python_split() {
        assert_eq!(
            normalize_answer("  서울\t특별시\n\n중구  "),
            "서울 특별시 중구"
        );
        assert_eq!(normalize_answer("a\r\nb\u{b}c\u{c}d"), "a b c d");
        assert_eq!(normalize_answer("a\u{3000}b\u{a0}c\u{2009}d"), "a b c d");
        assert_eq!(normalize_answer("a\u{1c}b\u{1f}c\u{85}d"), "a b c d");
        // Not whitespace for Python: zero-width space stays.
        assert_eq!(normalize_answer("a\u{200b}b"), "a\u{200b}b");
        // A quote between spaces leaves no double space.
        assert_eq!(normalize_answer("가 ' 나"), "가 나");
    }

    #[test]
    fn empty_strings() {
        assert_eq!(normalize_answer(""), "");
        assert_eq!(normalize_answer(" ( ) . "), "");
        assert!(exact_match("", ""));
        assert!(exact_match("", "()"));
        assert!(!exact_match("", "서울"));
        assert_eq!(f1("", ""), 0.0);
        assert_eq!(f1("서울", ""), 0.0);
        assert_eq!(f1("", "서울"), 0.0);
    }

    #[test]
    fn char_level_f1_on_korean() {
        // P = 2/5, R = 1 -> 2 * 0.4 / 1.4
        let v = f1("서울특별시", "서울");
        assert!(close(v, 0.8 / 1.4), "{v}");
        assert!((v - 0.571_428_571_428_571_4).abs() < 1e-12);
        // Symmetric roles.
        assert!(close(f1("서울", "서울특별시"), 0.8 / 1.4));
        // Spaces do not count as characters: "서울 시" vs "서울시" -> 1.0.
        assert!(close(f1("서울 시", "서울시"), 1.0));
        assert!(!exact_match("서울 시", "서울시"));
        // Multiset: repeated chars count at most min(count) times.
        // pred 가가가 (3), gold 가나 (2): common 1; P=1/3, R=1/2 -> 0.4
        assert!(close(f1("가가가", "가나"), 0.4));
        // Disjoint -> 0.
        assert_eq!(f1("부산", "서울"), 0.0);
        // Normalization applies before counting: punctuation and case.
        assert!(close(f1("(Seoul)", "seoul."), 1.0));
        // Order does not matter at character level.
        assert!(close(f1("울서", "서울"), 1.0));
    }

    #[test]
    fn max_over_golds() {
        let golds = ["부산", "서울특별시", "서울"];
        assert_eq!(exact_match_max("서울", &golds), 1.0);
        assert!(close(f1_max("서울", &golds), 1.0));
        // 서울시 vs 서울특별시: common 3, P = 1, R = 3/5 -> 0.75; vs 부산: 0.
        assert!(close(f1("서울시", "서울특별시"), 0.75));
        assert!(close(f1_max("서울시", &golds[..2]), 0.75));
        assert_eq!(exact_match_max("서울", &[] as &[&str]), 0.0);
        assert_eq!(f1_max("서울", &[] as &[&str]), 0.0);
        assert_eq!(max_over_ground_truths(f1, "서울", &[] as &[&str]), None);
        assert_eq!(
            max_over_ground_truths(
                |p, g| f64::from(u8::from(exact_match(p, g))),
                "서울",
                &golds
            ),
            Some(1.0)
        );
    }

    #[test]
    fn evaluate_averages_and_unanswered_scores_zero() {
        let dataset: Vec<(String, Vec<String>)> = vec![
            ("q1".into(), vec!["서울".into(), "서울특별시".into()]),
            ("q2".into(), vec!["1,000원".into()]),
            ("q3".into(), vec!["부산".into()]),
            ("q4".into(), vec!["대구".into()]),
        ];
        let mut preds = HashMap::new();
        preds.insert("q1".to_string(), "서울특별시".to_string()); // EM 1, F1 1
        preds.insert("q2".to_string(), "1000원이다".to_string()); // EM 0, F1 P=5/6? see below
        preds.insert("q3".to_string(), "광주".to_string()); // 0, 0
        preds.insert("other".to_string(), "x".to_string()); // ignored
                                                            // q4 unanswered.
        let s = evaluate(&preds, &dataset);
        assert_eq!(s.count, 4);
        // q2: pred chars 1000원이다 (7), gold 1000원 (5): common 5;
        // P = 5/7, R = 1 -> 10/12.
        let q2 = 2.0 * (5.0 / 7.0) / (5.0 / 7.0 + 1.0);
        assert!(close(f1("1000원이다", "1,000원"), q2));
        assert!(close(s.em, 100.0 * 1.0 / 4.0), "{s:?}");
        assert!(close(s.f1, 100.0 * (1.0 + q2) / 4.0), "{s:?}");
        assert_eq!(unanswered(&preds, &dataset), vec!["q4"]);
        let empty: Vec<(String, Vec<String>)> = Vec::new();
        let z = evaluate(&preds, &empty);
        assert_eq!((z.em, z.f1, z.count), (0.0, 0.0, 0));
    }

    #[test]
    fn parses_korquad_json() {
        let json = r#"{"version":"KorQuAD_v1.0","data":[{"title":"t","paragraphs":[
            {"context":"c","qas":[{"id":"a","question":"?","answers":[{"text":"서울","answer_start":0},{"text":"서울시","answer_start":0}]}]},
            {"context":"d","qas":[{"id":"b","question":"?","answers":[]}]}]}]}"#;
        let d = parse_dataset(json).unwrap();
        assert_eq!(
            d,
            vec![
                (
                    "a".to_string(),
                    vec!["서울".to_string(), "서울시".to_string()]
                ),
                ("b".to_string(), vec![])
            ]
        );
        assert!(matches!(parse_dataset("{"), Err(ReaderError::Dataset(_))));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dev.json");
        std::fs::write(&p, json).unwrap();
        assert_eq!(read_dataset(&p).unwrap(), d);
        assert!(matches!(
            read_dataset(&dir.path().join("missing.json")),
            Err(ReaderError::Io { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn metric_invariants(
            a in "[가-힣a-zA-Z0-9 \t\n'\"《》<>〈〉()‘’!#$%&*+,./:;=?@^_`{|}~-]{0,12}",
            b in "[가-힣a-zA-Z0-9 \t\n'\"《》<>〈〉()‘’!#$%&*+,./:;=?@^_`{|}~-]{0,12}",
        ) {
            let na = normalize_answer(&a);
            proptest::prop_assert_eq!(normalize_answer(&na), na.clone());
            proptest::prop_assert!(!na.starts_with(' ') && !na.ends_with(' ') && !na.contains("  "));
            let v = f1(&a, &b);
            proptest::prop_assert!((0.0..=1.0).contains(&v));
            proptest::prop_assert!((v - f1(&b, &a)).abs() < 1e-12);
            if exact_match(&a, &b) && !na.is_empty() {
                proptest::prop_assert!((v - 1.0).abs() < 1e-12);
            }
            proptest::prop_assert!(exact_match(&a, &a));
        }
    }
}
