mod common;

use common::check_passages;
use odqa_corpus::{split_passages, Article, PassageConfig};
use proptest::prelude::*;

fn article(text: &str) -> Article {
    Article {
        id: "42".to_string(),
        title: "제목".to_string(),
        text: text.to_string(),
    }
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[가-힣]{1,6}",
        3 => "[a-zA-Z]{1,8}",
        1 => "[0-9]{1,4}",
        4 => Just(" ".to_string()),
        1 => Just("  ".to_string()),
        2 => Just("\n".to_string()),
        1 => Just("\n\n \t\n".to_string()),
        3 => Just("다. ".to_string()),
        1 => prop::sample::select(vec![
            ".", "?", "!", "。", "\"", "”", "’", "'", ")", "]", "」", "』", ",", "3.14",
            "?!", "...", "다.\"", "\u{3000}", "\r", "\t", "\u{2028}",
        ])
        .prop_map(str::to_string),
        1 => "[가-힣a-z]{20,120}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..200).prop_map(|v| v.concat())
}

fn config() -> impl Strategy<Value = PassageConfig> {
    (1usize..80, 0usize..80).prop_map(|(target, extra)| PassageConfig {
        target_chars: target,
        max_chars: target + extra,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold(text in text(), config in config()) {
        let a = article(&text);
        let passages = split_passages(&a, &config);
        if let Err(msg) = check_passages(&a, &config, &passages) {
            return Err(TestCaseError::fail(msg));
        }
        prop_assert_eq!(&passages, &split_passages(&a, &config));
    }

    #[test]
    fn invariants_hold_default_config(text in prop::collection::vec(text(), 1..8).prop_map(|v| v.concat())) {
        let config = PassageConfig::default();
        let a = article(&text);
        let passages = split_passages(&a, &config);
        if let Err(msg) = check_passages(&a, &config, &passages) {
            return Err(TestCaseError::fail(msg));
        }
    }
}

#[test]
fn short_paragraphs_are_packed() {
    let config = PassageConfig {
        target_chars: 10,
        max_chars: 20,
    };
    //          0123 4 5678 9 0 1 2345
    let text = " 가나다.\n라마바.\n\n사아자.\n";
    let a = article(text);
    let ps = split_passages(&a, &config);
    let got: Vec<(usize, usize, &str)> = ps
        .iter()
        .map(|p| (p.char_start, p.char_end, p.text.as_str()))
        .collect();
    // "가나다.\n라마바." spans 9 chars; adding "\n\n사아자." would make 15 > 10.
    assert_eq!(got, vec![(1, 10, "가나다.\n라마바."), (12, 16, "사아자.")]);
    check_passages(&a, &config, &ps).unwrap();
}

#[test]
fn packing_stops_exactly_at_target() {
    let config = PassageConfig {
        target_chars: 9,
        max_chars: 9,
    };
    let a = article("abcd\nefgh\nij");
    let ps = split_passages(&a, &config);
    let got: Vec<&str> = ps.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(got, vec!["abcd\nefgh", "ij"]);
}

#[test]
fn long_paragraph_splits_after_sentence_ends() {
    let mut para = String::new();
    let mut i = 0;
    while para.chars().count() < 1500 {
        para.push_str(&format!(
            "이것은 긴 문단의 {i}번째 문장으로 검색 단위를 시험한다. "
        ));
        i += 1;
    }
    let para = para.trim_end().to_string();
    let text = format!("짧은 문단.\n{para}\n끝 문단.");
    let a = article(&text);
    let config = PassageConfig::default();
    let ps = split_passages(&a, &config);
    check_passages(&a, &config, &ps).unwrap();

    let chars: Vec<char> = text.chars().collect();
    // The short paragraph is alone: the long one is never merged with others.
    assert_eq!(ps[0].text, "짧은 문단.");
    assert_eq!(ps.last().map(|p| p.text.as_str()), Some("끝 문단."));
    let middle = &ps[1..ps.len() - 1];
    assert!(middle.len() >= 3, "{} pieces", middle.len());
    let para_start = "짧은 문단.\n".chars().count();
    assert_eq!(middle[0].char_start, para_start);
    for (k, p) in middle.iter().enumerate() {
        assert!(p.text.ends_with("다."), "{:?}", p.text);
        assert!(p.char_end - p.char_start <= config.target_chars);
        // Right after "다." comes a space (next sentence) or the paragraph end.
        assert!(chars[p.char_end] == ' ' || chars[p.char_end] == '\n');
        if k + 1 < middle.len() {
            // Greedy: the next sentence would not have fitted.
            let next = &middle[k + 1];
            assert_eq!(next.char_start, p.char_end + 1);
            let next_sentence_end = next
                .text
                .find("다.")
                .map(|b| next.text[..b].chars().count() + 2);
            let next_end = next.char_start + next_sentence_end.unwrap();
            assert!(next_end - p.char_start > config.target_chars);
        }
    }
    assert_eq!(chars[middle.last().unwrap().char_end], '\n');
}

#[test]
fn overlong_sentence_is_split_at_whitespace() {
    let config = PassageConfig {
        target_chars: 5,
        max_chars: 8,
    };
    let a = article("가나 다라 마바 사아자차카타파하 거 너.");
    let ps = split_passages(&a, &config);
    let got: Vec<&str> = ps.iter().map(|p| p.text.as_str()).collect();
    // Pieces of an overlong sentence are packed greedily up to max_chars.
    assert_eq!(got, vec!["가나 다라 마바", "사아자차카타파하", "거 너."]);
    check_passages(&a, &config, &ps).unwrap();

    let a = article("아주아주아주긴단어입니다");
    let ps = split_passages(&a, &config);
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].text, a.text);
}

#[test]
fn ids_are_deterministic() {
    let a = article("첫 문단.\n\n둘째 문단.");
    let config = PassageConfig {
        target_chars: 6,
        max_chars: 10,
    };
    let ps = split_passages(&a, &config);
    let ids: Vec<&str> = ps.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, vec!["42-0", "42-1"]);
    assert_eq!(ps, split_passages(&a, &config));
    assert!(ps.iter().all(|p| p.article_id == "42" && p.title == "제목"));
}

#[test]
fn offsets_are_in_chars_not_bytes() {
    let a = article("\u{2028}한국어 😀 text\n");
    let ps = split_passages(&a, &PassageConfig::default());
    assert_eq!(ps.len(), 1);
    assert_eq!((ps[0].char_start, ps[0].char_end), (1, 11));
    assert_eq!(ps[0].text, "한국어 😀 text");
}
