//! odqa's reader format: int8 per-row deltas, replaced vectors and a QA
//! head on top of a base model give the same model as the full checkpoint.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use odqa_encoder::testing::write_random_bert_qa;
use odqa_encoder::{QaModel, READER_DELTA_FILE, READER_MANIFEST_FILE};

const VOCAB: usize = 12;

fn write_tokenizer(dir: &Path) {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    let vocab: HashMap<String, u32> = [
        "<s>", "<pad>", "</s>", "<unk>", "가", "나", "다", "라", "마", "바", "사", "아",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| (t.to_string(), i as u32))
    .collect();
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("<unk>".into())
        .build()
        .unwrap();
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
    tokenizer.save(dir.join("tokenizer.json"), false).unwrap();
}

/// A full checkpoint, and a base + reader pair that should equal it.
fn setup(root: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let full = root.join("full");
    write_random_bert_qa(&full, VOCAB, "BertForQuestionAnswering").unwrap();
    write_tokenizer(&full);
    let tensors =
        candle_core::safetensors::load(full.join("model.safetensors"), &Device::Cpu).unwrap();

    let base = root.join("base");
    std::fs::create_dir_all(&base).unwrap();
    let config = std::fs::read_to_string(full.join("config.json")).unwrap();
    std::fs::write(
        base.join("config.json"),
        config.replace("BertForQuestionAnswering", "BertModel"),
    )
    .unwrap();
    write_tokenizer(&base);

    let reader = root.join("reader");
    std::fs::create_dir_all(&reader).unwrap();
    std::fs::write(
        reader.join(READER_MANIFEST_FILE),
        r#"{"format": "odqa-reader-delta/1", "base_model": "tiny"}"#,
    )
    .unwrap();
    let mut base_tensors = HashMap::new();
    let mut delta = HashMap::new();
    for (name, value) in &tensors {
        if name.starts_with("qa_outputs.") {
            delta.insert(name.clone(), value.clone());
            continue;
        }
        let hf = name.trim_start_matches("bert.").to_string();
        if value.rank() == 2 && hf != "embeddings.word_embeddings.weight" {
            // A delta exactly representable in the format: integers × row scales.
            let (rows, cols) = value.dims2().unwrap();
            let q: Vec<u8> = (0..rows * cols).map(|i| ((i * 37) % 255) as u8).collect();
            let q = Tensor::from_vec(q, (rows, cols), &Device::Cpu).unwrap();
            let scale: Vec<f32> = (0..rows).map(|r| 0.001 * (r as f32 + 1.0)).collect();
            let scale = Tensor::from_vec(scale, rows, &Device::Cpu).unwrap();
            let d = q
                .to_dtype(DType::F32)
                .unwrap()
                .affine(1.0, -128.0)
                .unwrap()
                .broadcast_mul(&scale.unsqueeze(1).unwrap())
                .unwrap();
            base_tensors.insert(name.clone(), (value - &d).unwrap());
            delta.insert(format!("{hf}.delta_q"), q);
            delta.insert(format!("{hf}.delta_scale"), scale);
        } else if value.rank() == 1 {
            // Vectors are stored whole; the base holds something else.
            base_tensors.insert(name.clone(), value.affine(0.5, 1.0).unwrap());
            delta.insert(hf, value.clone());
        } else {
            base_tensors.insert(name.clone(), value.clone());
        }
    }
    candle_core::safetensors::save(&base_tensors, base.join("model.safetensors")).unwrap();
    candle_core::safetensors::save(&delta, reader.join(READER_DELTA_FILE)).unwrap();
    (full, base, reader)
}

fn logits(model: &QaModel) -> Vec<f32> {
    let ids = [0u32, 4, 5, 2, 2, 6, 7, 8, 2];
    let mask = [1u32; 9];
    let types = [0u32; 9];
    let out = model.logits(&ids, &mask, &types, 1, 9).unwrap();
    out.start.into_iter().chain(out.end).collect()
}

#[test]
fn base_plus_delta_equals_the_full_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (full, base, reader) = setup(dir.path());
    let expected = logits(&QaModel::load(&full, &Device::Cpu).unwrap());
    let got = logits(&QaModel::load_delta(&reader, &base, &Device::Cpu).unwrap());
    let worst = expected
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "max |diff| {worst}");
}

#[test]
fn bad_reader_files_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (_, base, reader) = setup(dir.path());
    let delta_path = reader.join(READER_DELTA_FILE);
    let good = candle_core::safetensors::load(&delta_path, &Device::Cpu).unwrap();
    let try_with = |edit: &dyn Fn(&mut HashMap<String, Tensor>)| -> String {
        let mut t = good.clone();
        edit(&mut t);
        candle_core::safetensors::save(&t, &delta_path).unwrap();
        QaModel::load_delta(&reader, &base, &Device::Cpu)
            .unwrap_err()
            .to_string()
    };
    let name = "encoder.layer.0.intermediate.dense.weight";
    let err = try_with(&|t| {
        t.remove(&format!("{name}.delta_scale"));
    });
    assert!(
        err.contains("missing tensor") && err.contains(name),
        "{err}"
    );
    let err = try_with(&|t| {
        let q = Tensor::zeros((3, 3), DType::U8, &Device::Cpu).unwrap();
        let s = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        t.insert(format!("{name}.delta_q"), q);
        t.insert(format!("{name}.delta_scale"), s);
    });
    assert!(
        err.contains("shape mismatch") && err.contains(name),
        "{err}"
    );
    let err = try_with(&|t| {
        t.insert(
            "encoder.layer.7.output.dense.bias".into(),
            Tensor::zeros(16, DType::F32, &Device::Cpu).unwrap(),
        );
    });
    assert!(
        err.contains("unknown tensor") && err.contains("layer.7"),
        "{err}"
    );
    let err = try_with(&|t| {
        t.remove(&format!("{name}.delta_q"));
    });
    assert!(
        err.contains(&format!("{name}.delta_q")),
        "an orphan scale is not skipped: {err}"
    );
    let err = try_with(&|t| {
        t.remove("qa_outputs.weight");
    });
    assert!(err.contains("qa_outputs.weight"), "{err}");

    candle_core::safetensors::save(&good, &delta_path).unwrap();
    std::fs::write(
        reader.join(READER_MANIFEST_FILE),
        r#"{"format": "odqa-reader-delta/9", "base_model": "tiny"}"#,
    )
    .unwrap();
    let err = QaModel::load_delta(&reader, &base, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("format") && err.contains("odqa-reader-delta/1"),
        "{err}"
    );
    std::fs::remove_file(&delta_path).unwrap();
    std::fs::write(
        reader.join(READER_MANIFEST_FILE),
        r#"{"format": "odqa-reader-delta/1", "base_model": "tiny"}"#,
    )
    .unwrap();
    let err = QaModel::load_delta(&reader, &base, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains(READER_DELTA_FILE), "{err}");
}
