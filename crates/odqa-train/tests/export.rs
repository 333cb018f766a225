//! Export over small KorQuAD and KLUE-RE files with a character tokenizer in
//! multilingual-e5-small's pair layout.

use std::path::Path;

use odqa_reader::testing::{char_token_surface, char_wordpiece_tokenizer, TestStyle};
use odqa_reader::WindowConfig;
use odqa_train::export::{read_ids, read_rows};
use odqa_train::{export, ExportConfig, Kind, RelationTemplates, Sources};

const PARAGRAPHS: [&str; 4] = [
    "이순신은 1545년 한성에서 태어났다. 그는 조선 중기의 무신이다.",
    "임진왜란 때 이순신은 한산도 대첩에서 크게 이겼다.",
    "세종대왕은 훈민정음을 1443년에 창제하였다.",
    "훈민정음은 오늘날 한글이라고 부른다.",
];

fn squad() -> String {
    let qa = |id: &str, q: &str, p: &str, a: &str| {
        let start = p.find(a).unwrap();
        let start = p[..start].chars().count();
        serde_json::json!({"id": id, "question": q, "answers": [{"text": a, "answer_start": start}]})
    };
    let para = |p: &str, qas: Vec<serde_json::Value>| serde_json::json!({"context": p, "qas": qas});
    serde_json::json!({"data": [
        {"title": "이순신", "paragraphs": [
            para(PARAGRAPHS[0], vec![qa("q1", "이순신은 언제 태어났나?", PARAGRAPHS[0], "1545년"),
                                     qa("q2", "이순신은 어디에서 태어났나?", PARAGRAPHS[0], "한성")]),
            para(PARAGRAPHS[1], vec![qa("q3", "한산도 대첩은 언제?", PARAGRAPHS[1], "임진왜란")])]},
        {"title": "세종대왕", "paragraphs": [
            para(PARAGRAPHS[2], vec![qa("q4", "훈민정음을 만든 사람은?", PARAGRAPHS[2], "세종대왕")]),
            para(PARAGRAPHS[3], vec![qa("q5", "훈민정음의 다른 이름은?", PARAGRAPHS[3], "한글")])]}
    ]})
    .to_string()
}

const KLUE: &str = r#"{"sentence": "서브 스폰서는 대웅제약 우루사가 전속모델인", "subject_entity": {"word": "대웅제약", "start_idx": 8, "end_idx": 11, "type": "ORG"}, "object_entity": {"word": "우루사", "start_idx": 13, "end_idx": 15, "type": "ORG"}, "label": "org:product", "source": "wikipedia"}
{"sentence": "김구는 황해도 해주에서 태어났다.", "subject_entity": {"word": "김구", "start_idx": 0, "end_idx": 1, "type": "PER"}, "object_entity": {"word": "황해도 해주", "start_idx": 4, "end_idx": 9, "type": "LOC"}, "label": "per:place_of_birth", "source": "wikipedia"}
{"sentence": "김구와 이봉창은 같은 시대 사람이다.", "subject_entity": {"word": "김구", "start_idx": 0, "end_idx": 1, "type": "PER"}, "object_entity": {"word": "이봉창", "start_idx": 4, "end_idx": 6, "type": "PER"}, "label": "no_relation", "source": "wikipedia"}
"#;

fn setup(
    dir: &Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    tokenizers::Tokenizer,
) {
    let squad_path = dir.join("korquad.json");
    let klue_path = dir.join("re.jsonl");
    std::fs::write(&squad_path, squad()).unwrap();
    std::fs::write(&klue_path, KLUE).unwrap();
    let mut alphabet: String = squad().chars().chain(KLUE.chars()).collect();
    // Question templates use words outside the data.
    for relation in odqa_relations::Relation::all() {
        for subject in ["대웅제약", "김구"] {
            for ty in [
                odqa_relations::SubjectType::Person,
                odqa_relations::SubjectType::Organization,
            ] {
                alphabet.push_str(&odqa_relations::questions(relation, subject, ty).concat());
            }
        }
    }
    let tokenizer = char_wordpiece_tokenizer(&alphabet, TestStyle::Roberta).unwrap();
    (squad_path, klue_path, tokenizer)
}

fn config() -> ExportConfig {
    ExportConfig {
        windows: WindowConfig {
            max_len: 40,
            doc_stride: 8,
            max_query_len: 16,
        },
        dev_fraction: 0.5,
        relation_wrong_rate: 1.0,
        ..ExportConfig::default()
    }
}

#[test]
fn every_label_points_at_its_answer_and_negatives_at_position_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (squad_path, klue_path, tokenizer) = setup(dir.path());
    let out = dir.path().join("export");
    let sources = Sources {
        korquad: Some(&squad_path),
        klue_re: Some(&klue_path),
        negatives_index: None,
    };
    let report = export(&tokenizer, &sources, &config(), &out, false).unwrap();
    let rows = read_rows(&out).unwrap();
    let ids = read_ids(&out).unwrap();
    assert_eq!(rows.len(), report.windows);
    assert_eq!(ids.len() as u64, report.tokens);
    let examples: Vec<serde_json::Value> = std::fs::read_to_string(out.join("examples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(examples.len(), report.examples);
    let mut labelled = 0;
    for row in &rows {
        let [off, len, start, end, kind, _split, example, cs, ce] = row.map(|v| v as usize);
        let window = &ids[off..off + len];
        assert!(
            cs > 0 && cs < ce && ce < len,
            "context range inside the window"
        );
        let answer = examples[example]["answer"].as_str();
        if (start, end) == (0, 0) {
            assert_ne!(
                kind,
                Kind::RelationAnswer as usize,
                "relation answers sit in one short sentence"
            );
            continue;
        }
        labelled += 1;
        assert!(cs <= start && start <= end && end < ce);
        let text: String = window[start..=end]
            .iter()
            .map(|&id| char_token_surface(&tokenizer, id).unwrap())
            .collect();
        // The character tokenizer drops spaces: compare without them.
        assert_eq!(text, answer.unwrap().replace(' ', ""));
    }
    // Every KorQuAD question's answer fits one window of 40 tokens.
    assert!(labelled >= 5 + 2, "{labelled}");
    let counts = &report.windows_by_kind;
    assert!(counts["article_negative"][0] > 0, "{counts:?}");
    assert!(counts["relation_wrong"][0] + counts["relation_wrong"][1] > 0);
    assert!(counts["no_relation"][0] + counts["no_relation"][1] > 0);
    assert_eq!(report.dev_articles.len(), 1);
    let dev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("korquad-dev.json")).unwrap())
            .unwrap();
    assert_eq!(dev["data"][0]["title"], report.dev_articles[0]);
    let re_dev = std::fs::read_to_string(out.join("klue-re-dev.jsonl")).unwrap();
    assert_eq!(re_dev.lines().count(), report.klue_re_dev_examples);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["pad_id"], 1);
    assert_eq!(manifest["row_fields"].as_array().unwrap().len(), 9);
}

#[test]
fn export_is_deterministic_and_replaces_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (squad_path, klue_path, tokenizer) = setup(dir.path());
    let sources = Sources {
        korquad: Some(&squad_path),
        klue_re: Some(&klue_path),
        negatives_index: None,
    };
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    export(&tokenizer, &sources, &config(), &a, false).unwrap();
    export(&tokenizer, &sources, &config(), &b, false).unwrap();
    for f in [
        "ids.u32",
        "windows.u32",
        "examples.jsonl",
        "korquad-dev.json",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
    let other_seed = ExportConfig {
        seed: 1,
        ..config()
    };
    export(&tokenizer, &sources, &other_seed, &b, false).unwrap();
    assert_ne!(
        std::fs::read(a.join("examples.jsonl")).unwrap(),
        std::fs::read(b.join("examples.jsonl")).unwrap()
    );

    // A broken source fails the export and leaves the previous one whole.
    let before = std::fs::read(a.join("windows.u32")).unwrap();
    std::fs::write(
        &klue_path,
        KLUE.replace("\"end_idx\": 15", "\"end_idx\": 16"),
    )
    .unwrap();
    let err = export(&tokenizer, &sources, &config(), &a, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("re.jsonl:1: object_entity"), "{err}");
    assert_eq!(std::fs::read(a.join("windows.u32")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging directories left behind");
}

#[test]
fn nothing_to_export_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, tokenizer) = setup(dir.path());
    let err = export(
        &tokenizer,
        &Sources::default(),
        &config(),
        &dir.path().join("x"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("nothing to export"), "{err}");
}

fn relation_questions(out: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(out.join("examples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["id"].as_str().unwrap().starts_with("klue-re-"))
        .map(|v| {
            (
                v["kind"].as_str().unwrap().to_string(),
                v["question"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn relations_asked_with_every_template_and_several_wrong_relations() {
    let dir = tempfile::tempdir().unwrap();
    let (_, klue_path, tokenizer) = setup(dir.path());
    let sources = Sources {
        klue_re: Some(&klue_path),
        ..Sources::default()
    };
    let one = dir.path().join("one");
    let every = dir.path().join("every");
    let default_report = export(&tokenizer, &sources, &config(), &one, false).unwrap();
    let every_config = ExportConfig {
        relation_templates: RelationTemplates::Every,
        relation_wrong_per_example: 3,
        ..config()
    };
    let report = export(&tokenizer, &sources, &every_config, &every, false).unwrap();

    // One template: one answer question per labelled example (two here).
    let asked_once = relation_questions(&one);
    let answers_once: Vec<_> = asked_once
        .iter()
        .filter(|(k, _)| k == "relation_answer")
        .collect();
    assert_eq!(answers_once.len(), 2, "{asked_once:?}");
    // Every template: each labelled relation asked with all its phrasings.
    let asked = relation_questions(&every);
    let answers: Vec<&String> = asked
        .iter()
        .filter(|(k, _)| k == "relation_answer")
        .map(|(_, q)| q)
        .collect();
    let product = odqa_relations::questions(
        odqa_relations::Relation::parse("org:product").unwrap(),
        "대웅제약",
        odqa_relations::SubjectType::Organization,
    );
    let birth = odqa_relations::questions(
        odqa_relations::Relation::parse("per:place_of_birth").unwrap(),
        "김구",
        odqa_relations::SubjectType::Person,
    );
    assert!(product.len() >= 2 && birth.len() >= 2);
    let expected: Vec<&String> = product.iter().chain(&birth).collect();
    assert_eq!(answers, expected);
    // Three distinct wrong relations per labelled example (rate 1), each
    // asked with every template; none is the example's own relation.
    let wrong: Vec<&String> = asked
        .iter()
        .filter(|(k, _)| k == "relation_wrong")
        .map(|(_, q)| q)
        .collect();
    assert!(wrong.len() >= 2 * 3 * 2, "{wrong:?}");
    assert!(wrong.iter().all(|q| !expected.contains(q)));
    let unique: std::collections::BTreeSet<_> = wrong.iter().collect();
    assert_eq!(unique.len(), wrong.len(), "wrong relations repeat");
    let wrong_windows = |r: &odqa_train::ExportReport| {
        r.windows_by_kind["relation_wrong"][0] + r.windows_by_kind["relation_wrong"][1]
    };
    assert!(wrong_windows(&report) >= 6 * wrong_windows(&default_report));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(every.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["config"]["relation_templates"], "every");
    assert_eq!(manifest["config"]["relation_wrong_per_example"], 3);
}

#[test]
fn relation_wrong_rate_outside_zero_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, klue_path, tokenizer) = setup(dir.path());
    let sources = Sources {
        klue_re: Some(&klue_path),
        ..Sources::default()
    };
    let bad = ExportConfig {
        relation_wrong_rate: 1.5,
        ..config()
    };
    let err = export(&tokenizer, &sources, &bad, &dir.path().join("x"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("relation wrong rate 1.5"), "{err}");
    assert!(!dir.path().join("x").exists());
}
