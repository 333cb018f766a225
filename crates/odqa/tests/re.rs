//! `odqa re` and `odqa bench re` end to end with a tiny random QA model:
//! the plumbing (files, JSON, offsets, metrics), not relation quality.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use odqa_relations::{questions, Relation, SubjectType};
use serde_json::Value;

const LINES: &str = r#"{"sentence": "서브 스폰서는 대웅제약 우루사가 전속모델인", "subject_entity": {"word": "대웅제약", "start_idx": 8, "end_idx": 11, "type": "ORG"}, "object_entity": {"word": "우루사", "start_idx": 13, "end_idx": 15, "type": "ORG"}, "label": "org:product", "source": "wikipedia"}
{"sentence": "이순신은 1545년 한성에서 태어났다.", "subject_entity": {"word": "이순신", "start_idx": 0, "end_idx": 2, "type": "PER"}, "object_entity": {"word": "1545년", "start_idx": 5, "end_idx": 9, "type": "DAT"}, "label": "per:date_of_birth", "source": "wikipedia"}
{"sentence": "이순신은 1545년 한성에서 태어났다.", "subject_entity": {"word": "이순신", "start_idx": 0, "end_idx": 2, "type": "PER"}, "object_entity": {"word": "한성", "start_idx": 11, "end_idx": 12, "type": "LOC"}, "label": "no_relation", "source": "wikipedia"}
{"sentence": "대웅제약은 1945년에 설립되었다.", "subject_entity": {"word": "대웅제약", "start_idx": 0, "end_idx": 3, "type": "ORG"}, "object_entity": {"word": "1945년", "start_idx": 6, "end_idx": 10, "type": "DAT"}, "label": "org:founded", "source": "wikipedia"}
"#;

fn odqa(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_odqa"))
        .args(args)
        .arg("--quiet")
        .current_dir(cwd)
        .output()
        .expect("odqa runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tiny_reader(dir: &Path) -> PathBuf {
    use odqa_encoder::testing::{write_tiny_bert_qa, TinyBertQa};
    let mut alphabet = LINES.to_string();
    for r in Relation::all() {
        for (s, ty) in [
            ("대웅제약", SubjectType::Organization),
            ("이순신", SubjectType::Person),
        ] {
            alphabet.extend(questions(r, s, ty));
        }
    }
    let model = dir.join("tiny-reader");
    write_tiny_bert_qa(&model, &TinyBertQa::roberta(&alphabet)).unwrap();
    model
}

#[test]
fn re_classifies_extracts_and_benchmarks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let reader = tiny_reader(dir);
    let reader = reader.to_str().unwrap();
    let data = dir.join("re.jsonl");
    std::fs::write(&data, LINES).unwrap();
    let data = data.to_str().unwrap();

    // Classification: one JSON line per example, every asked relation scored.
    let out = odqa(
        &[
            "re",
            "--input",
            data,
            "--out",
            "preds.jsonl",
            "--reader",
            reader,
            "--threshold",
            "0.2",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let preds = std::fs::read_to_string(dir.join("preds.jsonl")).unwrap();
    let lines: Vec<Value> = preds
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for (line, asked) in lines.iter().zip([11, 18, 18, 11]) {
        let scores = line["scores"].as_object().unwrap();
        assert_eq!(scores.len(), asked, "{line}");
        for p in scores.values() {
            let p = p.as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p), "{p}");
        }
        let best = line["best"].as_str().unwrap();
        let probability = line["probability"].as_f64().unwrap();
        assert_eq!(scores[best].as_f64().unwrap(), probability);
        let prediction = line["prediction"].as_str().unwrap();
        if probability >= 0.2 {
            assert_eq!(prediction, best);
        } else {
            assert_eq!(prediction, "no_relation");
        }
        assert!(line["object_entity"]["end_idx"].is_u64());
    }

    // Open mode: spans at exact character offsets of the sentence.
    let sentence = "이순신은 1545년 한성에서 태어났다.";
    let out = odqa(
        &[
            "re",
            "--sentence",
            sentence,
            "--subject",
            "이순신",
            "--subject-type",
            "PER",
            "--threshold",
            "0",
            "--json",
            "--reader",
            reader,
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let open: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = open["found"].as_array().unwrap();
    assert!(!found.is_empty());
    let chars: Vec<char> = sentence.chars().collect();
    for f in found {
        let (s, e) = (
            f["char_start"].as_u64().unwrap() as usize,
            f["char_end"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            chars[s..e].iter().collect::<String>(),
            f["text"].as_str().unwrap()
        );
        assert!(f["relation"].as_str().unwrap().starts_with("per:"));
    }

    // The benchmark: calibrate on 2, report on the other 2.
    let out = odqa(
        &[
            "bench",
            "re",
            "--data",
            data,
            "--calibrate",
            "2",
            "--reader",
            reader,
            "--label",
            "tiny",
            "--out-dir",
            "results",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("micro-F1"),
        "{}",
        text(&out.stdout)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results/re-tiny.json")).unwrap())
            .unwrap();
    assert_eq!(report["report"]["examples"], 2);
    assert_eq!(report["report"]["records"], serde_json::json!([3, 4]));
    assert_eq!(report["calibration"]["examples"], 2);
    assert_eq!(report["threshold_source"], "calibrated");
    let metrics = &report["metrics"];
    for key in ["micro_f1", "auprc", "accuracy"] {
        let v = metrics[key].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&v), "{key} {v}");
    }
    assert_eq!(metrics["classes"].as_array().unwrap().len(), 30);
    assert!(report["report"]["examples_per_second"].as_f64().unwrap() > 0.0);
    let md = std::fs::read_to_string(dir.join("results/re-tiny.md")).unwrap();
    assert!(md.contains("| class | gold |"), "{md}");
    let preds = std::fs::read_to_string(dir.join("results/re-tiny.predictions.jsonl")).unwrap();
    assert_eq!(preds.lines().count(), 4);

    // Bad input names the file, line and field.
    let bad = LINES.replace("\"start_idx\": 13", "\"start_idx\": 12");
    std::fs::write(dir.join("bad.jsonl"), bad).unwrap();
    let out = odqa(&["re", "--input", "bad.jsonl", "--reader", reader], dir);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("bad.jsonl:1: object_entity"), "{err}");
    let out = odqa(
        &[
            "bench",
            "re",
            "--data",
            data,
            "--calibrate",
            "4",
            "--reader",
            reader,
        ],
        dir,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--calibrate 4"),
        "{}",
        text(&out.stderr)
    );
}
