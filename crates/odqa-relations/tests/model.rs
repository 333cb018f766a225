//! Relation classification through a real (tiny, randomly initialised)
//! QA model: the plumbing from KLUE-RE lines to metrics, not quality.

use std::path::Path;

use odqa_encoder::testing::{write_tiny_bert_qa, TinyBertQa};
use odqa_encoder::Device;
use odqa_relations::metrics::{class_of, class_probabilities, NUM_CLASSES};
use odqa_relations::{
    calibrate_threshold, evaluate, questions, read_klue_re, ClassifierOptions, Relation,
    RelationClassifier, SubjectType,
};

const LINES: &str = r#"{"sentence": "서브 스폰서는 대웅제약 우루사가 전속모델인", "subject_entity": {"word": "대웅제약", "start_idx": 8, "end_idx": 11, "type": "ORG"}, "object_entity": {"word": "우루사", "start_idx": 13, "end_idx": 15, "type": "ORG"}, "label": "org:product", "source": "wikipedia"}
{"sentence": "이순신은 1545년 한성에서 태어났다.", "subject_entity": {"word": "이순신", "start_idx": 0, "end_idx": 2, "type": "PER"}, "object_entity": {"word": "1545년", "start_idx": 5, "end_idx": 9, "type": "DAT"}, "label": "per:date_of_birth", "source": "wikipedia"}
{"sentence": "이순신은 1545년 한성에서 태어났다.", "subject_entity": {"word": "이순신", "start_idx": 0, "end_idx": 2, "type": "PER"}, "object_entity": {"word": "한성", "start_idx": 11, "end_idx": 12, "type": "LOC"}, "label": "no_relation", "source": "wikipedia"}
{"sentence": "이순신은 1545년 한성에서 태어났다.", "subject_entity": {"word": "한성", "start_idx": 11, "end_idx": 12, "type": "LOC"}, "object_entity": {"word": "이순신", "start_idx": 0, "end_idx": 2, "type": "PER"}}
"#;

fn tiny_reader(dir: &Path) -> std::path::PathBuf {
    let mut alphabet: String = LINES.to_string();
    for r in Relation::all() {
        for (s, ty) in [
            ("대웅제약", SubjectType::Organization),
            ("이순신", SubjectType::Person),
            ("한성", SubjectType::Other),
        ] {
            alphabet.extend(questions(r, s, ty));
        }
    }
    let model = dir.join("tiny-reader");
    write_tiny_bert_qa(&model, &TinyBertQa::roberta(&alphabet)).unwrap();
    model
}

#[test]
fn classification_and_open_extraction_run_through_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_reader(tmp.path());
    let data = tmp.path().join("re.jsonl");
    std::fs::write(&data, LINES).unwrap();
    let examples = read_klue_re(&data).unwrap();
    assert_eq!(examples.len(), 4);

    let classifier = RelationClassifier::load(
        &model,
        ClassifierOptions::default(),
        &Device::Cpu,
        odqa_encoder::Precision::F32,
    )
    .unwrap();
    let mut gold = Vec::new();
    let mut predicted = Vec::new();
    let mut probabilities = Vec::new();
    let mut best = Vec::new();
    for (ex, asked) in examples.iter().zip([11, 18, 18, 29]) {
        let prediction = classifier.predict(ex, 0.0).unwrap();
        // Every relation of the subject's type was asked, in order.
        assert_eq!(prediction.scores.len(), asked);
        let ty = SubjectType::from_klue(&ex.subject_entity.entity_type);
        let expect: Vec<Relation> = Relation::for_subject(ty).collect();
        let got: Vec<Relation> = prediction.scores.iter().map(|&(r, _)| r).collect();
        assert_eq!(got, expect);
        for &(_, p) in &prediction.scores {
            assert!(p.is_finite() && (0.0..=1.0).contains(&p), "{p}");
        }
        // Threshold 0: the best relation is always predicted.
        assert!(prediction.relation.is_some());
        assert_eq!(prediction.relation, prediction.best);
        // The same model scores the same example the same way.
        assert_eq!(classifier.score(ex).unwrap(), prediction.scores);
        gold.push(class_of(ex.relation()));
        predicted.push(class_of(prediction.relation));
        probabilities.push(class_probabilities(&prediction.scores));
        best.push((class_of(prediction.best), prediction.probability));
    }
    assert_eq!(classifier.windows_run(), 2 * (11 + 18 + 18 + 29));

    let calibration = calibrate_threshold(&best, &gold).unwrap();
    assert!(calibration.threshold.is_finite());
    let e = evaluate(&gold, &predicted, &probabilities).unwrap();
    assert_eq!(e.examples, 4);
    assert_eq!(e.classes.len(), NUM_CLASSES);
    for v in [e.micro_f1, e.auprc, e.accuracy] {
        assert!((0.0..=100.0).contains(&v), "{v}");
    }
    // Gold classes: org:product, per:date_of_birth, no_relation (twice).
    assert_eq!(e.auprc_classes, 3);

    // Open mode: spans at exact character offsets, never the subject.
    let sentence = &examples[1].sentence;
    let chars: Vec<char> = sentence.chars().collect();
    let found = classifier
        .open(sentence, "이순신", SubjectType::Person, 0.0)
        .unwrap();
    assert!(!found.is_empty());
    for f in &found {
        assert_eq!(
            chars[f.char_start..f.char_end].iter().collect::<String>(),
            f.text
        );
        assert!(f.char_start >= 3, "{f:?} overlaps the subject");
        assert!((0.0..=1.0).contains(&f.probability));
        assert_eq!(f.relation.subject_type(), SubjectType::Person);
    }
    for pair in found.windows(2) {
        assert!(pair[0].probability >= pair[1].probability);
    }
    assert!(classifier
        .open(sentence, "이순신", SubjectType::Person, 1.1)
        .unwrap()
        .is_empty());
}

#[test]
fn a_file_classifies_into_one_json_line_per_example() {
    use odqa_relations::jsonl::{classify_jsonl, ClassifyProgress};
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_reader(tmp.path());
    let data = tmp.path().join("re.jsonl");
    // 26 examples: one progress report, after the 25th.
    std::fs::write(
        &data,
        LINES
            .repeat(7)
            .lines()
            .take(26)
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let examples = read_klue_re(&data).unwrap();
    let classifier = RelationClassifier::load(
        &model,
        ClassifierOptions::default(),
        &Device::Cpu,
        odqa_encoder::Precision::F32,
    )
    .unwrap();
    let mut out = Vec::new();
    let mut progress = Vec::new();
    let summary = classify_jsonl(&classifier, &examples, 0.0, &data, &mut out, &mut |p| {
        progress.push(p)
    })
    .unwrap();
    assert_eq!(
        progress,
        [ClassifyProgress {
            done: 25,
            total: 26
        }]
    );
    assert_eq!(summary.examples, 26);
    // Every fourth example is unlabelled.
    assert_eq!(summary.labelled, 20);
    assert_eq!(summary.windows, classifier.windows_run());
    assert!(summary.summary().starts_with("26 examples in "));
    assert!(summary.summary().contains("on the 20 labelled"));
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 26);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["record"], i + 1);
        assert_eq!(line["sentence"], examples[i].sentence.as_str());
        assert!(line["prediction"].is_string() && line["scores"].is_object());
    }
    assert!(lines[3]["label"].is_null());
}

#[test]
fn benchmark_splits_are_checked_against_the_examples() {
    use odqa_relations::bench::split_examples;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("re.jsonl");
    let labelled: String = LINES.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&data, &labelled).unwrap();
    let examples = read_klue_re(&data).unwrap();
    let split = split_examples(&examples, &data, Some(1), Some(1)).unwrap();
    assert_eq!((split.calibration.len(), split.report.len()), (1, 1));
    assert_eq!(split.report[0], examples[1]);
    let split = split_examples(&examples, &data, None, None).unwrap();
    assert_eq!((split.calibration.len(), split.report.len()), (0, 3));
    for calibrate in [0, 3] {
        let err = split_examples(&examples, &data, Some(calibrate), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "--calibrate {calibrate}: need between 1 and 2 of the 3 examples in "
            )),
            "{err}"
        );
    }
    let err = split_examples(&examples, &data, None, Some(0)).unwrap_err();
    assert_eq!(err.to_string(), "no examples to report on (--limit 0?)");
    std::fs::write(&data, LINES).unwrap();
    let examples = read_klue_re(&data).unwrap();
    let err = split_examples(&examples, &data, None, None).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(": record 4 has no label: bench re needs labelled examples"),
        "{err}"
    );
}
