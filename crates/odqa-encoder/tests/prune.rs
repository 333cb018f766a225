//! Vocabulary pruning on the real multilingual-e5-small (fetched into
//! `$ODQA_HOME`, else `<workspace>/target/odqa-home`: tests/common),
//! with lines of the committed demo corpus.

mod common;

use std::path::PathBuf;

use odqa_encoder::{
    fetch_model, kept_ids, prune_model, Device, E5s1File, Encoder, TextKind, WEIGHTS_FILE,
};

use common::home;

/// 30 non-empty lines of passage text from corpora/demo/odqa-demo.jsonl.
fn demo_lines() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../corpora/demo/odqa-demo.jsonl");
    let text = std::fs::read_to_string(&path).expect("demo corpus");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let doc: serde_json::Value = serde_json::from_str(line).expect("jsonl");
        for para in doc["text"].as_str().unwrap_or("").split('\n') {
            let para = para.trim();
            if !para.is_empty() && out.len() < 30 {
                out.push(para.to_string());
            }
        }
    }
    assert_eq!(out.len(), 30);
    out
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn prune_keeps_tokens_and_embeddings() {
    let model = fetch_model(&home()).expect("fetch multilingual-e5-small");
    let texts = demo_lines();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pruned");

    let report = prune_model(&model, texts.iter().cloned(), &out).unwrap();
    let weights_before = std::fs::metadata(model.join(WEIGHTS_FILE)).unwrap().len();
    let weights_after = std::fs::metadata(out.join(WEIGHTS_FILE)).unwrap().len();
    println!(
        "pruned {} -> {} pieces; model dir {} -> {} bytes; e5-small-q4.bin {} -> {} bytes",
        report.original,
        report.kept,
        report.bytes_before,
        report.bytes_after,
        weights_before,
        weights_after
    );
    assert_eq!(report.original, 250002);
    assert!(report.kept < report.original);
    assert!(report.bytes_after < report.bytes_before);
    assert!(weights_after < weights_before);

    let kept = kept_ids(&model, texts.iter().cloned()).unwrap();
    assert_eq!(kept.len(), report.kept);
    assert_eq!(&kept[..4], &[0, 1, 2, 3], "specials keep their ids");
    assert!(kept.windows(2).all(|w| w[0] < w[1]));

    // The pruned E5S1 file re-opens and agrees with config/tokenizer.
    let bin = E5s1File::open(&out.join(WEIGHTS_FILE)).unwrap();
    let h = bin.header();
    assert_eq!((h.vocab, h.n_pieces), (report.kept, report.kept));
    assert_eq!((h.bos, h.eos, h.pad, h.unk), (0, 2, 1, 3));
    let orig_bin = E5s1File::open(&model.join(WEIGHTS_FILE)).unwrap();
    let (pv, ov) = (bin.vocab().unwrap(), orig_bin.vocab().unwrap());
    for (new, &old) in kept.iter().enumerate() {
        assert_eq!(pv.pieces[new], ov.pieces[old as usize]);
        assert_eq!(pv.scores[new], ov.scores[old as usize]);
    }
    // Kept rows of emb.word are the original rows, byte for byte.
    let (pw, ow) = (
        bin.tensor("emb.word").unwrap(),
        orig_bin.tensor("emb.word").unwrap(),
    );
    let row = ow.byte_len / orig_bin.header().vocab;
    assert_eq!(pw.byte_len, row * report.kept);
    for (new, &old) in kept.iter().enumerate().step_by(997) {
        let o = old as usize;
        assert_eq!(
            &bin.raw(pw)[new * row..(new + 1) * row],
            &orig_bin.raw(ow)[o * row..(o + 1) * row]
        );
    }
    for (a, b) in orig_bin.tensors().iter().zip(bin.tensors()) {
        assert_eq!(a.name, b.name);
        if a.name != "emb.word" {
            assert_eq!(orig_bin.raw(a), bin.raw(b), "{}", a.name);
        }
    }

    let cpu = Device::Cpu;
    let orig = Encoder::load(&model, &cpu).unwrap();
    let pruned = Encoder::load(&out, &cpu).unwrap();
    assert_eq!(pruned.config().vocab_size, report.kept);

    // Same segmentation, id for id, through the kept-id table; the pieces
    // of the pruned tokenizer are the original pieces.
    let (ot, pt) = (orig.tokenizer(), pruned.tokenizer());
    for (new, &old) in kept.iter().enumerate().step_by(101) {
        assert_eq!(pt.id_to_token(new as u32), ot.id_to_token(old));
    }
    for t in &texts {
        for prefix in ["query: ", "passage: "] {
            let s = format!("{prefix}{t}");
            let o = orig.tokenize(&s).unwrap();
            let p: Vec<u32> = pruned
                .tokenize(&s)
                .unwrap()
                .into_iter()
                .map(|i| kept[i as usize])
                .collect();
            assert_eq!(p, o, "{s}");
        }
    }

    // Same embeddings.
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for kind in [TextKind::Query, TextKind::Passage] {
        let a = orig.embed(&refs, kind).unwrap();
        let b = pruned.embed(&refs, kind).unwrap();
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let c = dot(x, y);
            assert!(c >= 0.9999, "{kind:?} text {i}: cosine {c}");
        }
    }

    // Characters the corpus never used still encode.
    let odd = "Ærøskøbing ĳ façade — naïve 東京タワー 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🦀 ʕ•ᴥ•ʔ 힣 zebra quizzically";
    let ids = pruned.tokenize(&format!("query: {odd}")).unwrap();
    assert!(ids.len() > 4 && ids.iter().all(|&i| (i as usize) < report.kept));
    let v = pruned.embed(&[odd], TextKind::Query).unwrap();
    assert_eq!(v[0].len(), 384);
    assert!(v[0].iter().all(|x| x.is_finite()));

    // Pruning again replaces an earlier output; the model dir is refused.
    let again = prune_model(&model, texts.iter().cloned(), &out).unwrap();
    assert_eq!(again, report);
    assert!(prune_model(&model, texts.iter().cloned(), &model).is_err());
    std::fs::write(tmp.path().join("other.txt"), "x").unwrap();
    assert!(prune_model(&model, texts.iter().cloned(), tmp.path()).is_err());
    assert!(tmp.path().join("other.txt").exists());
}
