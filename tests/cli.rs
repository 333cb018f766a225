//! End-to-end tests of the `odqa` binary: real corpora on disk, real
//! tantivy indexes, real ko-dic analysis.

mod common;

use std::path::{Path, PathBuf};

use common::{odqa, odqa_home, repo_root, stderr, stdout};

fn demo_corpus() -> PathBuf {
    repo_root().join("corpora/demo/odqa-demo.jsonl")
}

fn build_demo_index(dir: &Path) -> PathBuf {
    let index = dir.join("demo-index");
    let out = odqa(&[
        "index",
        "build",
        "--corpus",
        demo_corpus().to_str().unwrap(),
        "--out",
        index.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    index
}

#[test]
fn build_search_json_and_info() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build_demo_index(tmp.path());
    assert!(index.join("odqa-manifest.json").is_file());
    // No staging directory is left beside the index.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let out = odqa(&[
        "search",
        "--index",
        index.to_str().unwrap(),
        "--json",
        "-k",
        "3",
        "집현전을 두어 학자들을 모은 왕은?",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["title"], "세종대왕");
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    let out = odqa(&[
        "search",
        "--index",
        index.to_str().unwrap(),
        "대한민국의 수도이자 가장 큰 도시는?",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines().next().unwrap().contains("서울특별시"),
        "{text}"
    );
    assert!(text.contains('«'), "query terms are highlighted: {text}");

    let out = odqa(&["index", "info", "--index", index.to_str().unwrap()]);
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["counts"]["articles"], 40);
    assert_eq!(manifest["analyzer"]["kind"], "morphological");
}

#[test]
fn malformed_corpus_line_is_reported_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("bad.jsonl");
    std::fs::write(
        &corpus,
        concat!(
            "{\"id\": \"1\", \"title\": \"서울\", \"text\": \"서울은 대한민국의 수도이다.\"}\n",
            "{\"id\": \"2\", \"title\": \"부산\"}\n",
            "{\"id\": \"3\", \"title\": \"제주\", \"text\": \"제주도는 섬이다.\"}\n",
        ),
    )
    .unwrap();
    let index = tmp.path().join("idx");
    let out = odqa(&[
        "index",
        "build",
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        index.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad.jsonl:2"), "{err}");
    assert!(err.contains("text"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!index.exists(), "a failed build leaves nothing at --out");

    let out = odqa(&[
        "index",
        "build",
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        index.to_str().unwrap(),
        "--skip-bad-lines",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 malformed records skipped"),
        "{}",
        stderr(&out)
    );
    let out = odqa(&["index", "info", "--index", index.to_str().unwrap()]);
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["counts"]["articles"], 2);
    assert_eq!(manifest["counts"]["skipped_records"], 1);
}

#[test]
fn a_failed_rebuild_keeps_the_previous_index() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build_demo_index(tmp.path());
    let before = std::fs::read(index.join("odqa-manifest.json")).unwrap();
    let corpus = tmp.path().join("broken.jsonl");
    std::fs::write(
        &corpus,
        "{\"id\": \"1\", \"title\": \"a\", \"text\": \"가나다\"}\nnot json\n",
    )
    .unwrap();
    let out = odqa(&[
        "index",
        "build",
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        index.to_str().unwrap(),
        "--force",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("broken.jsonl:2"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(index.join("odqa-manifest.json")).unwrap(),
        before
    );
    let out = odqa(&["search", "--index", index.to_str().unwrap(), "세종대왕"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Without --force an existing index is not touched.
    let out = odqa(&[
        "index",
        "build",
        "--corpus",
        demo_corpus().to_str().unwrap(),
        "--out",
        index.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
}

#[test]
fn bad_search_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let out = odqa(&["search", "--index", missing.to_str().unwrap(), "서울"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not an odqa index"),
        "{}",
        stderr(&out)
    );

    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(corrupt.join("odqa-manifest.json"), "{ truncated").unwrap();
    let out = odqa(&["search", "--index", corrupt.to_str().unwrap(), "서울"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("corrupt index manifest"),
        "{}",
        stderr(&out)
    );

    let index = build_demo_index(tmp.path());
    let idx = index.to_str().unwrap();
    for (args, expected) in [
        (vec!["search", "--index", idx, "   "], "query is empty"),
        (
            vec!["search", "--index", idx, "?! …, ()"],
            "no searchable terms",
        ),
        (
            vec!["search", "--index", idx, "-k", "0", "서울"],
            "-k must be between",
        ),
        (
            vec!["search", "--index", idx, "--b", "1.5", "서울"],
            "b = 1.5",
        ),
    ] {
        let out = odqa(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    // Tantivy files removed under a valid manifest: still a clean error.
    for entry in std::fs::read_dir(&index).unwrap().flatten() {
        if entry.file_name() == "meta.json" {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let out = odqa(&["search", "--index", idx, "서울"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(idx), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));

    let out = odqa(&["search", "--no-such-flag", "서울"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--no-such-flag"), "{}", stderr(&out));
}

#[test]
fn missing_corpus_is_an_error() {
    let out = odqa(&[
        "index",
        "build",
        "--corpus",
        "/nonexistent/corpus.jsonl",
        "--out",
        "/tmp/odqa-never",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/corpus.jsonl"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn retrieval_benchmark_writes_reports_and_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build_demo_index(tmp.path());
    let results = tmp.path().join("results");
    let hits = tmp.path().join("hits.jsonl");
    let questions = repo_root().join("corpora/demo/QUESTIONS.json");
    let out = odqa(&[
        "bench",
        "retrieval",
        "--index",
        index.to_str().unwrap(),
        "--questions",
        questions.to_str().unwrap(),
        "--out-dir",
        results.to_str().unwrap(),
        "--export-hits",
        hits.to_str().unwrap(),
        "--label",
        "demo",
        "--warmup",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results.join("retrieval-QUESTIONS-demo.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["questions"], 20);
    let recall_at = |k: u64| {
        report["recall"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["k"] == k)
            .unwrap()["recall"]
            .as_f64()
            .unwrap()
    };
    // The demo questions are answerable from the demo corpus: BM25 over
    // morphemes should find nearly all of them in the top 5.
    assert!(recall_at(5) >= 0.85, "recall@5 = {}", recall_at(5));
    assert!(recall_at(1) <= recall_at(5) && recall_at(5) <= recall_at(100));
    assert!(results.join("retrieval-QUESTIONS-demo.md").is_file());
    assert!(results.join("retrieval-QUESTIONS-demo.svg").is_file());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&hits)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    assert!(lines[0]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["passage_id"].is_string()));
}

#[test]
fn passages_export_matches_the_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("passages.jsonl");
    let out = odqa(&[
        "passages",
        "export",
        "--corpus",
        demo_corpus().to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let corpus: Vec<serde_json::Value> = std::fs::read_to_string(demo_corpus())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let passages: Vec<serde_json::Value> = std::fs::read_to_string(&out_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(passages.len() >= corpus.len());
    for passage in &passages {
        let id = passage["id"].as_str().unwrap();
        let article_id = id.rsplit_once('-').unwrap().0;
        let article = corpus.iter().find(|a| a["id"] == article_id).unwrap();
        assert!(article["text"]
            .as_str()
            .unwrap()
            .contains(passage["text"].as_str().unwrap()));
        assert_eq!(article["title"], passage["title"]);
    }
}

#[test]
fn repeated_article_ids_are_indexed_once_and_conflicts_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let line = "{\"id\": \"7\", \"title\": \"한강\", \"text\": \"한강은 서울을 가로지른다.\"}\n";
    let corpus = tmp.path().join("dup.jsonl");
    std::fs::write(&corpus, format!("{line}{line}")).unwrap();
    let index = tmp.path().join("idx");
    let out = odqa(&[
        "index",
        "build",
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        index.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 exact repeats"), "{}", stderr(&out));
    let out = odqa(&[
        "search",
        "--index",
        index.to_str().unwrap(),
        "--json",
        "한강",
    ]);
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 1);

    let conflict = tmp.path().join("conflict.jsonl");
    std::fs::write(
        &conflict,
        format!("{line}{{\"id\": \"7\", \"title\": \"부산\", \"text\": \"다른 글\"}}\n"),
    )
    .unwrap();
    let out = odqa(&[
        "index",
        "build",
        "--corpus",
        conflict.to_str().unwrap(),
        "--out",
        tmp.path().join("idx2").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("conflict.jsonl:2"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("already used"), "{}", stderr(&out));
}

/// A random 1-layer QA model over the demo corpus's characters: checks the
/// reader commands' plumbing, not answer quality.
fn tiny_reader(dir: &Path) -> PathBuf {
    use odqa_encoder::testing::{write_tiny_bert_qa, TinyBertQa};
    let model = dir.join("tiny-reader");
    let alphabet = std::fs::read_to_string(demo_corpus()).unwrap() + "?";
    write_tiny_bert_qa(&model, &TinyBertQa::bert(&alphabet)).unwrap();
    model
}

#[test]
fn read_ask_and_reading_benchmarks_run_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build_demo_index(tmp.path());
    let reader = tiny_reader(tmp.path());
    let reader = reader.to_str().unwrap();

    let context = "이순신은 1545년 한성에서 태어났다.";
    let out = odqa(&[
        "read",
        "이순신이 태어난 해는?",
        "--context",
        context,
        "--reader",
        reader,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for answer in read["answers"].as_array().unwrap() {
        assert!(
            context.contains(answer["text"].as_str().unwrap()),
            "{answer}"
        );
    }

    let out = odqa(&[
        "ask",
        "이순신이 태어난 해는?",
        "--index",
        index.to_str().unwrap(),
        "--reader",
        reader,
        "--top-k",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let asked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!asked["answers"].as_array().unwrap().is_empty());
    assert!(asked["hits"].as_array().unwrap().len() <= 3);
    assert!(asked["answers"][0]["evidence"]["passage_id"].is_string());

    let results = tmp.path().join("results");
    let questions = repo_root().join("corpora/demo/QUESTIONS.json");
    for kind in ["mrc", "odqa"] {
        let mut args = vec![
            "bench",
            kind,
            "--reader",
            reader,
            "--label",
            "tiny",
            "--limit",
            "4",
            "--out-dir",
            results.to_str().unwrap(),
        ];
        if kind == "mrc" {
            args.extend(["--data", questions.to_str().unwrap()]);
        } else {
            args.extend([
                "--questions",
                questions.to_str().unwrap(),
                "--index",
                index.to_str().unwrap(),
                "--top-k",
                "3",
            ]);
        }
        let out = odqa(&args);
        assert!(out.status.success(), "{kind}: {}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(results.join(format!("{kind}-QUESTIONS-tiny.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report["questions"], 4);
        assert!(report["windows"].as_u64().unwrap() >= 4);
        let em = report["exact_match"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&em));
        let predictions: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(
            &std::fs::read(results.join(format!("{kind}-QUESTIONS-tiny.predictions.json")))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(predictions.len(), 4);
        assert!(predictions.contains_key("demo-q1"));
    }

    let out = odqa(&[
        "read",
        "질문?",
        "--context",
        context,
        "--reader",
        tmp.path().join("nope").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("config.json"), "{}", stderr(&out));
    let out = odqa(&["read", "질문?", "--reader", reader]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--context"), "{}", stderr(&out));
}

#[test]
fn dense_and_hybrid_retrieval_over_the_demo_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("dense-demo");
    let idx = index.to_str().unwrap();
    let out = odqa(&[
        "index",
        "build",
        "--corpus",
        demo_corpus().to_str().unwrap(),
        "--out",
        idx,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = odqa(&["search", "--index", idx, "--mode", "dense", "서울"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no dense index"), "{}", stderr(&out));

    let out = odqa(&["index", "dense", "--index", idx, "--batch-size", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(index.join("dense/dense-manifest.json").is_file());
    // BM25 ranks 부산광역시 first here (임시 수도, 대한민국 twice); the
    // dense and hybrid rankings put the capital first.
    for mode in ["dense", "hybrid"] {
        let out = odqa(&[
            "search",
            "--index",
            idx,
            "--mode",
            mode,
            "--json",
            "-k",
            "3",
            "대한민국의 수도는 어디인가?",
        ]);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        let hits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(hits[0]["title"], "서울특별시", "{mode}: {hits}");
    }
    let out = odqa(&[
        "search",
        "--index",
        idx,
        "--mode",
        "dense",
        "--exact",
        "--json",
        "-k",
        "1",
        "한국 최초의 고속철도 개통",
    ]);
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits[0]["title"], "철도", "{hits}");
    let out = odqa(&[
        "search",
        "--index",
        idx,
        "--mode",
        "hybrid",
        "--dense-weight",
        "1.5",
        "서울",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--dense-weight"), "{}", stderr(&out));
}

#[test]
fn pruned_model_embeds_the_corpus_like_the_full_model() {
    let tmp = tempfile::tempdir().unwrap();
    let pruned = tmp.path().join("pruned");
    let out = odqa(&[
        "models",
        "prune",
        "--corpus",
        demo_corpus().to_str().unwrap(),
        "--out",
        pruned.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let size = std::fs::metadata(pruned.join("e5-small-q4.bin"))
        .unwrap()
        .len();
    assert!(size < 30_000_000, "pruned weights are {size} bytes");
    let text = "세종대왕은 1443년에 훈민정음을 창제하였다.";
    let embed = |model: Option<&Path>| {
        let mut args = vec!["embed", "--passage"];
        if let Some(m) = model {
            args.extend(["--model", m.to_str().unwrap()]);
        }
        args.push(text);
        let out = odqa(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<Vec<f32>>(&out.stdout).unwrap()
    };
    let full = embed(None);
    let small = embed(Some(&pruned));
    let cosine: f32 = full.iter().zip(&small).map(|(a, b)| a * b).sum();
    assert!(cosine > 0.9999, "cosine {cosine}");
}

#[test]
fn device_flag_is_checked() {
    let out = odqa(&["--device", "tpu", "embed", "서울"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("expected cpu, cuda or cuda:N"),
        "{}",
        stderr(&out)
    );
    if !cfg!(feature = "cuda") {
        let out = odqa(&["--device", "cuda:0", "embed", "서울"]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("without the `cuda` feature"),
            "{}",
            stderr(&out)
        );
    }
}

/// `odqa demo` on the committed demo corpus answers its sample questions
/// with the trained reader (needs only the fetched multilingual-e5-small).
#[test]
fn demo_answers_the_sample_questions_on_the_demo_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    // The samples are the manifest's (corpora/odqa-demo.toml), named from
    // another directory through ODQA_CORPORA.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_odqa"))
        .current_dir(tmp.path())
        .env("ODQA_HOME", odqa_home())
        .env("ODQA_PRECISION", "f32")
        .env("ODQA_CORPORA", repo_root().join("corpora"))
        .args([
            "-q",
            "demo",
            "--corpus",
            "odqa-demo",
            "--reader",
            repo_root().join("models/odqa-reader-ko").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(tmp.path().join("index/odqa-demo").is_dir(), "index built");
    for (question, answer) in [
        ("이순신이 태어난 해는?", "1. 1545년"),
        ("훈민정음을 창제한 왕은 누구인가?", "세종"),
        ("대한민국의 수도는 어디인가?", "서울특별시"),
    ] {
        let block = stdout
            .split("\n\n")
            .find(|b| b.trim_start().starts_with(question))
            .unwrap_or_else(|| panic!("no block for {question}: {stdout}"));
        assert!(block.contains(answer), "{block}");
        assert!(
            block.contains("【") && block.contains("retrieve") && block.contains("read"),
            "{block}"
        );
    }
    // --question replaces the samples.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_odqa"))
        .current_dir(tmp.path())
        .env("ODQA_HOME", odqa_home())
        .args([
            "-q",
            "demo",
            "--corpus",
            demo_corpus().to_str().unwrap(),
            "--reader",
            repo_root().join("models/odqa-reader-ko").to_str().unwrap(),
            "--question",
            "한라산의 높이는?",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("한라산의 높이는?") && !stdout.contains("이순신이 태어난 해는?"),
        "{stdout}"
    );
    // A corpus given by path has no manifest, so no samples: the demo says
    // to ask with --question instead of asking questions of another corpus.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_odqa"))
        .current_dir(tmp.path())
        .env("ODQA_HOME", odqa_home())
        .args(["-q", "demo", "--corpus", demo_corpus().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no sample questions") && stderr(&out).contains("--question"),
        "{}",
        stderr(&out)
    );
}
