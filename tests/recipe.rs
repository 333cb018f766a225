//! The reader's training recipe in CI-sized form, so that it cannot break
//! silently: `odqa train export` on a slice of the shared KorQuAD and
//! KLUE-RE data, `train/train_reader.py` for a few steps from the real base
//! model, an interrupted run resumed to the same weights, a run started from
//! the artifact (`--init`), a run sized by `--budget-min`, clear errors for
//! bad arguments, and odqa's candle reader against the trainer's logits on
//! the artifact (`odqa train parity`).
//!
//! Needs Python with PyTorch and transformers (train/requirements.txt):
//! `ODQA_TRAIN_PYTHON`, else `train/work/venv/bin/python`, which the test
//! makes from PyPI once when it is missing (train/recipe.sh uses the same
//! venv). `ODQA_SKIP_TRAIN_SMOKE=1` skips the test, saying so.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{odqa, repo_root, text};

fn shared() -> PathBuf {
    repo_root().join("../shared")
}

fn imports_torch(python: &Path) -> Result<(), String> {
    match Command::new(python)
        .args(["-c", "import torch, transformers, safetensors, numpy"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// `ODQA_TRAIN_PYTHON`, else the recipe's own venv, made from PyPI once
/// (as train/recipe.sh makes it) when it is missing.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("ODQA_TRAIN_PYTHON").filter(|v| !v.is_empty()) {
        let python = PathBuf::from(python);
        if let Err(e) = imports_torch(&python) {
            panic!(
                "ODQA_TRAIN_PYTHON={} cannot import torch/transformers: {e}",
                python.display()
            );
        }
        return python;
    }
    let venv = repo_root().join("train/work/venv");
    let python = venv.join("bin/python");
    if imports_torch(&python).is_ok() {
        return python;
    }
    eprintln!(
        "making {} with train/requirements.txt (PyTorch from PyPI, once)",
        venv.display()
    );
    let made = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "-r"])
            .arg(repo_root().join("train/requirements.txt"))
            .status()
            .is_ok_and(|s| s.success());
    if !made || imports_torch(&python).is_err() {
        panic!(
            "could not make {} with PyTorch: set ODQA_TRAIN_PYTHON to a Python that has \
             train/requirements.txt, or ODQA_SKIP_TRAIN_SMOKE=1 to skip",
            venv.display()
        );
    }
    python
}

fn train(python: &Path, args: &[&str]) -> Output {
    Command::new(python)
        .arg(repo_root().join("train/train_reader.py"))
        .args(args)
        .args([
            "--threads",
            "2",
            "--log-every",
            "1",
            "--checkpoint-min",
            "0",
        ])
        .current_dir(repo_root())
        .output()
        .expect("python runs")
}

/// Two articles of KorQuAD (their first two paragraphs) and the first KLUE-RE lines.
fn tiny_sources(dir: &Path) -> (PathBuf, PathBuf) {
    let korquad: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared().join("data/korquad-early-dev-repaired.json"))
            .expect("../shared/data/korquad-early-dev-repaired.json"),
    )
    .unwrap();
    let articles: Vec<serde_json::Value> = korquad["data"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|a| {
            let mut a = a.clone();
            let paragraphs: Vec<_> = a["paragraphs"]
                .as_array()
                .unwrap()
                .iter()
                .take(2)
                .cloned()
                .collect();
            a["paragraphs"] = serde_json::Value::Array(paragraphs);
            a
        })
        .collect();
    let squad = dir.join("korquad-tiny.json");
    std::fs::write(
        &squad,
        serde_json::json!({"version": "tiny", "data": articles}).to_string(),
    )
    .unwrap();
    let klue: String = std::fs::read_to_string(shared().join("data/klue-re-train.jsonl"))
        .expect("../shared/data/klue-re-train.jsonl")
        .lines()
        .take(40)
        .map(|l| format!("{l}\n"))
        .collect();
    let re = dir.join("klue-re-tiny.jsonl");
    std::fs::write(&re, klue).unwrap();
    (squad, re)
}

fn curve(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("learning-curve.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The values of a little-endian f32 `.npy` file (format 1.0 or 2.0).
fn npy_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        (n as usize, 12)
    };
    let header = String::from_utf8_lossy(&bytes[start..start + header_len]);
    assert!(header.contains("'<f4'"), "{header}");
    bytes[start + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn recipe_trains_resumes_chains_and_matches_candle() {
    if std::env::var_os("ODQA_SKIP_TRAIN_SMOKE").is_some_and(|v| v == "1") {
        eprintln!("ODQA_SKIP_TRAIN_SMOKE=1: the training recipe is not checked");
        return;
    }
    let python = python();
    let tmp = tempfile::tempdir().unwrap();
    let (squad, re) = tiny_sources(tmp.path());
    let export = tmp.path().join("export");
    let out = odqa(&[
        "train",
        "export",
        "--korquad",
        squad.to_str().unwrap(),
        "--klue-re",
        re.to_str().unwrap(),
        "--relation-templates",
        "every",
        "--relation-wrong-per-example",
        "2",
        "--max-len",
        "128",
        "--doc-stride",
        "64",
        "--dev-fraction",
        "0.4",
        "--out",
        export.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "export: {}", text(&out));

    // The base model as the trainer reads it.
    let fetched = odqa(&["models", "fetch"]);
    assert!(fetched.status.success(), "{}", text(&fetched));
    let base_model = String::from_utf8_lossy(&fetched.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let base_model = Path::new(&base_model);
    let base = tmp.path().join("me5s");
    let converted = Command::new(&python)
        .arg(shared().join("tools/torch-anchor/convert_e5s1.py"))
        .arg("--bin")
        .arg(base_model.join("e5-small-q4.bin"))
        .arg("--tokenizer")
        .arg(base_model.join("tokenizer.json"))
        .arg("--out")
        .arg(&base)
        .output()
        .unwrap();
    assert!(converted.status.success(), "convert: {}", text(&converted));

    let export_s = export.to_str().unwrap();
    let base_s = base.to_str().unwrap();
    let run = |out: &Path, extra: &[&str]| -> Output {
        let mut args = vec![
            "--export",
            export_s,
            "--base",
            base_s,
            "--out",
            out.to_str().unwrap(),
            "--batch-size",
            "4",
            "--dev-limit",
            "8",
            "--parity",
            "8",
        ];
        args.extend_from_slice(extra);
        train(&python, &args)
    };

    // 1. Four steps straight through.
    let straight = tmp.path().join("straight");
    let out = run(&straight, &["--steps", "4"]);
    assert!(out.status.success(), "train: {}", text(&out));
    assert!(straight.join("reader-delta.safetensors").is_file());
    assert!(
        !straight.join("checkpoint.pt").exists(),
        "a finished run keeps no checkpoint"
    );
    let lines = curve(&straight);
    let hparams = &lines[0]["hparams"];
    let precision = hparams["precision"].as_str().unwrap();
    assert!(precision == "fp32" || precision == "bf16", "{hparams}");
    assert_eq!(hparams["attention"], "sdpa");
    assert!(hparams["cpu"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(lines.iter().filter(|l| l.get("step").is_some()).count(), 4);

    // 2. Interrupted after two steps, resumed: the same weights, the same curve.
    let resumed = tmp.path().join("resumed");
    let out = run(&resumed, &["--steps", "4", "--stop-after", "2"]);
    assert!(out.status.success(), "train: {}", text(&out));
    assert!(resumed.join("checkpoint.pt").is_file());
    assert!(!resumed.join("reader-delta.safetensors").exists());
    // A resume with other settings is refused, naming the reason.
    let out = run(&resumed, &["--steps", "4", "--resume", "--lr", "3e-4"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("other data or settings"),
        "{}",
        text(&out)
    );
    let out = run(&resumed, &["--steps", "4", "--resume"]);
    assert!(out.status.success(), "resume: {}", text(&out));
    assert!(
        text(&out).contains("resumed at step 2 of 4"),
        "{}",
        text(&out)
    );
    for file in ["parity-start.npy", "parity-end.npy"] {
        assert_eq!(
            std::fs::read(straight.join(file)).unwrap(),
            std::fs::read(resumed.join(file)).unwrap(),
            "{file}: the resumed run differs from the straight one"
        );
    }
    let losses = |lines: &[serde_json::Value]| -> Vec<f64> {
        lines.iter().filter_map(|l| l["loss"].as_f64()).collect()
    };
    assert_eq!(losses(&lines), losses(&curve(&resumed)));

    // 3. odqa's candle reader on the artifact against the trainer's logits.
    std::fs::copy(
        repo_root().join("models/odqa-reader-ko/odqa-reader.json"),
        straight.join("odqa-reader.json"),
    )
    .unwrap();
    let report = tmp.path().join("parity.json");
    let out = odqa(&[
        "train",
        "parity",
        "--export",
        export_s,
        "--reference",
        straight.to_str().unwrap(),
        "--reader",
        straight.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
        "--precision",
        "f32",
    ]);
    assert!(out.status.success(), "parity: {}", text(&out));
    let parity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let max_diff = parity["max_abs_logit_diff"].as_f64().unwrap();
    assert!(max_diff < 1e-3, "{parity}");

    // 4. A second stage from the artifact: at learning rate 0 it is the
    // artifact (up to re-quantizing its deltas) ...
    let still = tmp.path().join("still");
    let out = run(
        &still,
        &[
            "--init",
            straight.to_str().unwrap(),
            "--steps",
            "1",
            "--lr",
            "0",
        ],
    );
    assert!(out.status.success(), "init: {}", text(&out));
    assert_eq!(curve(&still)[0]["hparams"]["init_artifact"]["steps"], "4");
    let (a, b) = (
        npy_f32(&straight.join("parity-start.npy")),
        npy_f32(&still.join("parity-start.npy")),
    );
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(
        worst < 1e-3,
        "--init did not start from the artifact: {worst}"
    );
    // ... and a budget of minutes sizes it from measured step times.
    let stage = tmp.path().join("stage2");
    let out = run(
        &stage,
        &["--init", straight.to_str().unwrap(), "--budget-min", "0.05"],
    );
    assert!(out.status.success(), "budget: {}", text(&out));
    let hparams = &curve(&stage)[0]["hparams"];
    let calibration = &hparams["calibration"];
    let steps = hparams["steps"].as_u64().unwrap();
    assert!(steps >= 1 && calibration["steps"] == steps, "{hparams}");
    assert!(calibration["seconds_per_step_measured"].as_f64().unwrap() > 0.0);
    assert_eq!(calibration["budget_s"].as_f64().unwrap(), 3.0);

    // 5. Bad arguments: clear errors.
    for (extra, expected) in [
        (vec!["--init", export_s], "no reader-delta.safetensors"),
        (vec!["--steps", "4", "--budget-min", "1"], "give one"),
        (vec!["--mix", "nonsense=3"], "unknown kind nonsense"),
        (vec!["--mix", "relation_answer"], "is not KIND=COUNT"),
    ] {
        let out = run(&tmp.path().join("bad"), &extra);
        assert!(!out.status.success(), "{extra:?} succeeded");
        assert!(text(&out).contains(expected), "{extra:?}: {}", text(&out));
    }
}
