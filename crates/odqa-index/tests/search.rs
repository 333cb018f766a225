//! Building a real index on disk from the committed demo corpus and
//! searching it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use odqa_analysis::AnalyzerConfig;
use odqa_index::{build_index, Bm25Params, BuildOptions, IndexError, PassageIndex};

fn demo_corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpora/demo/odqa-demo.jsonl")
}

fn build(dir: &Path, analyzer: AnalyzerConfig) -> PassageIndex {
    let out = dir.join("index");
    let mut options = BuildOptions::new(demo_corpus(), out.clone());
    options.analyzer = analyzer;
    options.threads = 2;
    let manifest = build_index(&options, &AtomicBool::new(false)).expect("index builds");
    assert_eq!(manifest.counts.articles, 40);
    assert!(manifest.counts.passages >= 40);
    PassageIndex::open(&out, &options.dictionary).expect("index opens")
}

#[test]
fn questions_find_their_article_first() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build(tmp.path(), AnalyzerConfig::default());
    for (question, title) in [
        ("대한민국의 수도이자 가장 큰 도시는?", "서울특별시"),
        ("이순신이 태어난 해는?", "이순신"),
        ("한라산 정상에 있는 화구호의 이름은?", "한라산"),
        ("삼성전자가 처음 설립된 곳은 어디인가?", "삼성전자"),
        ("식물이 빛 에너지를 화학 에너지로 바꾸는 과정은?", "광합성"),
        ("KTX가 개통된 날짜는?", "철도"),
        ("5만 원권에 초상이 실린 인물은?", "화폐"),
    ] {
        let hits = index.search(question, 5).unwrap();
        assert_eq!(
            hits[0].title,
            title,
            "{question}: {:?}",
            hits.iter().map(|h| &h.title).collect::<Vec<_>>()
        );
    }
}

#[test]
fn hits_carry_exact_passages() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build(tmp.path(), AnalyzerConfig::default());
    let corpus = std::fs::read_to_string(demo_corpus()).unwrap();
    let articles: Vec<odqa_corpus::Article> = corpus
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hits = index.search("세종대왕 훈민정음 창제", 10).unwrap();
    assert!(!hits.is_empty());
    for hit in hits {
        let article = articles.iter().find(|a| a.id == hit.article_id).unwrap();
        let slice: String = article
            .text
            .chars()
            .skip(hit.char_start)
            .take(hit.char_end - hit.char_start)
            .collect();
        assert_eq!(slice, hit.text);
        assert_eq!(
            hit.passage_id,
            format!("{}-{}", hit.article_id, hit.ordinal)
        );
        assert!(hit.score > 0.0);
    }
}

#[test]
fn bm25_parameters_change_scores_at_query_time() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build(tmp.path(), AnalyzerConfig::default());
    let q = "한강이 흐르는 도시";
    let default = index.search(q, 5).unwrap();
    let flat = index
        .search_with(
            q,
            5,
            &Bm25Params {
                k1: 0.0,
                b: 0.0,
                title_weight: 1.0,
                ..Bm25Params::default()
            },
        )
        .unwrap();
    // k1 = 0 makes each term worth its idf alone, whatever its frequency.
    assert!(default
        .iter()
        .zip(&flat)
        .any(|(a, b)| (a.score - b.score).abs() > 1e-4));
    let err = index
        .search_with(
            q,
            5,
            &Bm25Params {
                k1: -1.0,
                b: 0.5,
                title_weight: 1.0,
                ..Bm25Params::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("k1 = -1"), "{err}");
}

#[test]
fn query_of_only_particles_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build(tmp.path(), AnalyzerConfig::default());
    assert!(matches!(
        index.search("?! … ()", 5),
        Err(IndexError::EmptyQuery { .. })
    ));
}

#[test]
fn morphology_beats_whitespace_on_inflected_korean() {
    let tmp_morph = tempfile::tempdir().unwrap();
    let tmp_ws = tempfile::tempdir().unwrap();
    let morph = build(tmp_morph.path(), AnalyzerConfig::default());
    let ws = build(tmp_ws.path(), AnalyzerConfig::whitespace());
    // The corpus writes 이순신은 / 이순신, never 이순신이: only morphology
    // separates the name from its particle.
    let question = "이순신이";
    assert_eq!(morph.search(question, 1).unwrap()[0].title, "이순신");
    assert!(ws.search(question, 5).unwrap().is_empty());
}

#[test]
fn interrupted_build_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("index");
    let options = BuildOptions::new(demo_corpus(), out.clone());
    let err = build_index(&options, &AtomicBool::new(true)).unwrap_err();
    assert!(matches!(err, IndexError::Interrupted));
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "staging directory removed"
    );
}

#[test]
fn passages_are_listed_and_found_by_id() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build(tmp.path(), AnalyzerConfig::default());
    let passages = index.passages().unwrap();
    assert_eq!(passages.len() as u64, index.num_passages());
    assert_eq!(index.passages().unwrap(), passages, "stable order");
    let (id, text) = &passages[passages.len() / 2];
    let hit = index.passage(id).unwrap().expect("found");
    assert_eq!(&hit.text, text);
    assert_eq!(&hit.passage_id, id);
    assert!(index.passage("no-such-passage").unwrap().is_none());
}

#[test]
fn maxscore_ranks_exactly_as_the_exhaustive_scorer() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build(tmp.path(), AnalyzerConfig::default());
    for q in [
        "대한민국의 수도이자 가장 큰 도시는?",
        "이순신이 태어난 해는 언제인가?",
        "한강이 흐르는 도시",
        "세종대왕 훈민정음 창제",
    ] {
        for (k, title_weight) in [(1, 0.0), (3, 0.0), (10, 0.5), (100, 0.0)] {
            let params = Bm25Params {
                title_weight,
                ..Bm25Params::default()
            };
            let exhaustive = Bm25Params {
                exhaustive: true,
                ..params
            };
            let fast = index.search_with(q, k, &params).unwrap();
            let slow = index.search_with(q, k, &exhaustive).unwrap();
            let ids = |h: &[odqa_index::Hit]| {
                h.iter()
                    .map(|h| (h.passage_id.clone(), h.score))
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(&fast), ids(&slow), "{q} k={k}");
        }
    }
}

#[test]
fn title_dictionary_is_stored_and_used_at_query_time() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("index");
    let mut options = BuildOptions::new(demo_corpus(), out.clone());
    options.threads = 2;
    options.title_dictionary = true;
    build_index(&options, &AtomicBool::new(false)).expect("index builds");
    let index = PassageIndex::open(&out, &options.dictionary).expect("index opens");
    let info = index
        .manifest()
        .analyzer
        .user_dictionary
        .clone()
        .expect("titles became entries");
    assert!(tmp.path().join("index").join(&info.file).is_file());
    assert_eq!(info.entries, info.from_titles);
}

#[test]
fn question_words_are_weighted_down() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build(tmp.path(), AnalyzerConfig::default());
    // 누구 occurs in other demo passages: at full weight it lifts them.
    let q = "훈민정음을 창제한 왕은 누구인가?";
    let full = Bm25Params {
        question_weight: 1.0,
        ..Bm25Params::default()
    };
    let dropped = Bm25Params {
        question_weight: 0.0,
        ..Bm25Params::default()
    };
    let a = index.search_with(q, 5, &full).unwrap();
    let b = index.search_with(q, 5, &dropped).unwrap();
    // The topic words decide the top hit either way ...
    assert_eq!(a[0].passage_id, b[0].passage_id);
    // ... while what matched only the question word loses its share.
    let total = |hits: &[odqa_index::Hit]| -> f32 { hits.iter().map(|h| h.score).sum() };
    assert!(total(&a) > total(&b), "{a:?} vs {b:?}");
    // A query of question words only still searches.
    assert!(index.search_with("어디 누구", 3, &dropped).is_ok());
}

/// Builds an index of `articles` (id, title, text) written as a JSONL corpus.
fn build_articles(
    dir: &Path,
    analyzer: AnalyzerConfig,
    articles: &[(&str, &str, &str)],
) -> PassageIndex {
    let corpus = dir.join("corpus.jsonl");
    let lines: Vec<String> = articles
        .iter()
        .map(|(id, title, text)| {
            serde_json::json!({"id": id, "title": title, "text": text}).to_string()
        })
        .collect();
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    let out = dir.join("index");
    let mut options = BuildOptions::new(corpus, out.clone());
    options.analyzer = analyzer;
    options.threads = 1;
    build_index(&options, &AtomicBool::new(false)).expect("index builds");
    PassageIndex::open(&out, &options.dictionary).expect("index opens")
}

// The same five words in both passages, only their order differs.
const SAME_WORDS: &[(&str, &str, &str)] = &[
    ("1", "가", "부산은 항구이다. 대한민국의 수도는 서울이다."),
    ("2", "나", "대한민국은 항구이다. 부산의 수도는 서울이다."),
];

#[test]
fn term_pairs_rank_words_used_together_above_the_same_words_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build_articles(tmp.path(), AnalyzerConfig::default(), SAME_WORDS);
    assert!(
        index.manifest().analyzer.term_pairs,
        "pairs are on by default"
    );
    let q = "대한민국의 수도는?";
    let hits = index.search(q, 2).unwrap();
    assert_eq!(hits[0].article_id, "1", "{hits:?}");
    assert!(hits[0].score > hits[1].score, "{hits:?}");
    // Without the pair score the two passages are the same bag of words.
    let singles = Bm25Params {
        pair_weight: 0.0,
        ..Bm25Params::default()
    };
    let flat = index.search_with(q, 2, &singles).unwrap();
    assert!((flat[0].score - flat[1].score).abs() < 1e-5, "{flat:?}");
    // The top-k path and the exhaustive scorer agree with pairs too.
    let exhaustive = Bm25Params {
        exhaustive: true,
        ..Bm25Params::default()
    };
    let slow = index.search_with(q, 2, &exhaustive).unwrap();
    assert_eq!(hits, slow);
    let err = index
        .search_with(
            q,
            2,
            &Bm25Params {
                pair_weight: f32::NAN,
                ..Bm25Params::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("pair weight = NaN"), "{err}");
}

#[test]
fn an_index_without_term_pairs_ignores_the_pair_weight() {
    let tmp = tempfile::tempdir().unwrap();
    let analyzer = AnalyzerConfig {
        term_pairs: false,
        ..AnalyzerConfig::default()
    };
    let index = build_articles(tmp.path(), analyzer, SAME_WORDS);
    assert!(!index.manifest().analyzer.term_pairs);
    let hits = index.search("대한민국의 수도는?", 2).unwrap();
    assert!((hits[0].score - hits[1].score).abs() < 1e-5, "{hits:?}");
}
