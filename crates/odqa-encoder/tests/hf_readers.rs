//! Parity of odqa's Hugging Face QA loaders with transformers, on the tiny
//! random checkpoints of tests/fixtures/hf (made by make_fixtures.py, which
//! also wrote transformers' logits into parity.json).

use std::path::{Path, PathBuf};

use odqa_encoder::{Architecture, Device, EncoderError, Precision, QaModel};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf")
}

fn parity() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("parity.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn best_span(start: &[f32], end: &[f32], ctx: &[u32]) -> (usize, usize) {
    let mut best = (f32::NEG_INFINITY, 0, 0);
    for i in 0..start.len() {
        if ctx[i] == 0 {
            continue;
        }
        for j in i..(i + 15).min(end.len()) {
            if ctx[j] == 1 && start[i] + end[j] > best.0 {
                best = (start[i] + end[j], i, j);
            }
        }
    }
    (best.1, best.2)
}

/// Every checkpoint, every window: the odqa tokenizer gives transformers'
/// ids, and the logits agree within 1e-4 with the same best span. Prints
/// the table for the closing note.
#[test]
fn logits_match_transformers() {
    let all = parity();
    let mut rows = Vec::new();
    for (name, arch) in [
        ("bert", Architecture::Bert),
        ("roberta", Architecture::Roberta),
        ("xlm-roberta", Architecture::XlmRoberta),
        ("electra", Architecture::Electra),
        ("deberta-v2", Architecture::DebertaV2),
    ] {
        let dir = fixtures().join(name);
        let model = QaModel::load_at(&dir, &Device::Cpu, Precision::F32)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.settings().unwrap().architecture, arch);
        let mut worst = 0f32;
        let windows = all[name]["windows"].as_array().unwrap();
        for (k, w) in windows.iter().enumerate() {
            let ids = u32s(&w["ids"]);
            let types = u32s(&w["type_ids"]);
            if k == 0 {
                // The tokenizer as shipped gives transformers' first window.
                let enc = model
                    .tokenizer()
                    .encode(
                        (
                            w["question"].as_str().unwrap(),
                            w["context"].as_str().unwrap(),
                        ),
                        true,
                    )
                    .unwrap();
                assert_eq!(
                    &enc.get_ids()[..ids.len() - 1],
                    &ids[..ids.len() - 1],
                    "{name}"
                );
            }
            let n = ids.len();
            let logits = model.logits(&ids, &vec![1; n], &types, 1, n).unwrap();
            let (ws, we) = (f32s(&w["start"]), f32s(&w["end"]));
            for (a, b) in logits
                .start
                .iter()
                .zip(&ws)
                .chain(logits.end.iter().zip(&we))
            {
                worst = worst.max((a - b).abs());
            }
            let ctx = u32s(&w["context_mask"]);
            let want = u32s(&w["best_span"]);
            assert_eq!(
                best_span(&logits.start, &logits.end, &ctx),
                (want[0] as usize, want[1] as usize),
                "{name} window {k}"
            );
        }
        assert!(worst <= 1e-4, "{name}: max |logit diff| {worst}");
        rows.push(format!(
            "| {arch} | {} windows | {worst:.2e} | same |",
            windows.len()
        ));
    }
    println!("{}", rows.join("\n"));
}

#[test]
fn padded_batches_match_single_windows() {
    // Two windows of different lengths in one padded batch: the same
    // logits as one by one (positions, masks and RoBERTa's offset).
    let all = parity();
    for name in ["roberta", "electra", "deberta-v2"] {
        let model = QaModel::load(&fixtures().join(name), &Device::Cpu).unwrap();
        let w = all[name]["windows"].as_array().unwrap();
        let (a, b) = (u32s(&w[0]["ids"]), u32s(&w[w.len() - 1]["ids"]));
        let len = a.len().max(b.len());
        let mut ids = vec![0u32; 2 * len];
        let mut mask = vec![0u32; 2 * len];
        let mut types = vec![0u32; 2 * len];
        let tb = u32s(&w[w.len() - 1]["type_ids"]);
        for (r, seq) in [&a, &b].into_iter().enumerate() {
            ids[r * len..r * len + seq.len()].copy_from_slice(seq);
            mask[r * len..r * len + seq.len()].fill(1);
        }
        types[len..len + tb.len()].copy_from_slice(&tb);
        let out = model.logits(&ids, &mask, &types, 2, len).unwrap();
        let want = f32s(&w[w.len() - 1]["start"]);
        for (i, x) in want.iter().enumerate() {
            assert!((out.start[len + i] - x).abs() <= 1e-4, "{name} {i}");
        }
    }
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    tmp
}

#[test]
fn bad_checkpoints_are_named_errors() {
    // Unknown architecture.
    let d = copy_fixture("bert");
    let cfg = d.path().join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v["architectures"] = serde_json::json!(["GPT2ForQuestionAnswering"]);
    std::fs::write(&cfg, v.to_string()).unwrap();
    let e = QaModel::load(d.path(), &Device::Cpu).unwrap_err();
    assert!(
        matches!(e, EncoderError::UnsupportedModel { .. }) && e.to_string().contains("GPT2"),
        "{e}"
    );

    // Missing weights.
    let d = copy_fixture("bert");
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    let e = QaModel::load(d.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(e, EncoderError::NoWeights { .. }), "{e}");

    // A missing shard.
    let d = copy_fixture("xlm-roberta");
    std::fs::remove_file(d.path().join("model-00002-of-00003.safetensors")).unwrap();
    let e = QaModel::load(d.path(), &Device::Cpu).unwrap_err();
    assert!(
        e.to_string().contains("model-00002-of-00003.safetensors"),
        "{e}"
    );

    // Missing tokenizer.
    let d = copy_fixture("electra");
    std::fs::remove_file(d.path().join("vocab.txt")).unwrap();
    let e = QaModel::load(d.path(), &Device::Cpu).unwrap_err();
    assert!(
        matches!(e, EncoderError::MissingFile { .. }) && e.to_string().contains("tokenizer"),
        "{e}"
    );

    // Shape mismatch: config says hidden 64, the weights are 32 wide.
    for name in ["roberta", "deberta-v2"] {
        let d = copy_fixture(name);
        let cfg = d.path().join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        v["hidden_size"] = serde_json::json!(64);
        std::fs::write(&cfg, v.to_string()).unwrap();
        let e = QaModel::load(d.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shape"), "{name}: {e}");
    }

    // DeBERTa-v2 at a reduced precision says it runs f32 only.
    if odqa_encoder::cpu_features().supports(Precision::Bf16) {
        let e = QaModel::load_at(
            &fixtures().join("deberta-v2"),
            &Device::Cpu,
            Precision::Bf16,
        )
        .unwrap_err();
        assert!(e.to_string().contains("f32 only"), "{e}");
    }
    let m = QaModel::load_at(
        &fixtures().join("deberta-v2"),
        &Device::Cpu,
        Precision::Auto,
    )
    .unwrap();
    assert_eq!(m.precision().chosen, Precision::F32);
    assert!(m.precision().reason.contains("DeBERTa-v2"));
}

#[test]
fn settings_are_read_from_the_checkpoint() {
    let s = QaModel::load(&fixtures().join("roberta"), &Device::Cpu).unwrap();
    let s = s.settings().unwrap();
    assert_eq!(s.position_offset, 2);
    assert_eq!(s.max_len, 512);
    assert!(!s.uses_token_types);
    assert!(!s.trained_no_answer);
    let e = QaModel::load(&fixtures().join("electra"), &Device::Cpu).unwrap();
    assert!(e
        .settings()
        .unwrap()
        .notes
        .iter()
        .any(|n| n.contains("embeddings_project")));
}
