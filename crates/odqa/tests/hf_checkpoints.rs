//! Hugging Face QA checkpoints through the `odqa` binary: each tiny fixture
//! architecture (crates/odqa-encoder/tests/fixtures/hf) reads, asks over the
//! demo index, runs `bench mrc` and serves HTTP; `hf:ORG/NAME[@REVISION]`
//! from an offline Hugging Face cache; and broken checkpoints fail with a
//! message naming what is wrong, never a panic. The models are random: the
//! checks are on the plumbing, not on answer quality.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";
const CONTEXT: &str = "대한민국의 수도는 서울이다. 서울은 한강을 끼고 있다.";
const QUESTION: &str = "대한민국의 수도는?";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    repo_root()
        .join("crates/odqa-encoder/tests/fixtures/hf")
        .join(name)
}

/// The demo corpus's index, built once per build of this test binary under
/// the target dir (older builds' copies removed) and shared by its tests.
fn demo_index() -> &'static Path {
    static INDEX: OnceLock<PathBuf> = OnceLock::new();
    INDEX.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let built_at = std::fs::metadata(&exe)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let prefix = "odqa-hf-index-";
        let index = parent.join(format!("{prefix}{built_at}"));
        if !index.join("ready").is_file() {
            std::fs::create_dir_all(parent).unwrap();
            for old in std::fs::read_dir(parent).unwrap().flatten() {
                if old.file_name().to_string_lossy().starts_with(prefix) {
                    let _ = std::fs::remove_dir_all(old.path());
                }
            }
            let corpus = repo_root().join("corpora/demo/odqa-demo.jsonl");
            let out = odqa(
                &[
                    "index",
                    "build",
                    "--corpus",
                    corpus.to_str().unwrap(),
                    "--out",
                    index.join("demo").to_str().unwrap(),
                ],
                &[],
            );
            assert!(out.status.success(), "index build: {}", stderr(&out));
            std::fs::write(index.join("ready"), b"").unwrap();
        }
        index.join("demo")
    })
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_odqa"));
    cmd.args(args)
        .arg("--quiet")
        .current_dir(repo_root())
        .env_remove("ODQA_READER")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_HUB_CACHE")
        .envs(env.iter().copied());
    cmd
}

fn odqa(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("odqa runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A failed run: exit ≠ 0, no panic, and stderr names every one of `words`.
fn fails_naming(out: &Output, words: &[&str]) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "expected a failure: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in words {
        assert!(err.contains(w), "stderr does not name {w:?}: {err}");
    }
    err
}

/// The first answer's text, checked to be a span of `context`.
fn first_span(answers: &serde_json::Value, context: &str) -> String {
    let answers = answers.as_array().expect("answers");
    assert!(!answers.is_empty(), "no answers");
    let text = answers[0]["text"].as_str().unwrap().to_string();
    assert!(!text.is_empty() && context.contains(&text), "{text:?}");
    text
}

/// An offline Hugging Face home with `name`'s fixture as
/// `odqa-test/tiny-NAME` at COMMIT, refs/main pointing to it.
fn hub_home(dir: &Path, name: &str) -> PathBuf {
    let home = dir.join("hf-home");
    odqa_encoder::testing::write_hub_cache(
        &home.join("hub"),
        &format!("odqa-test/tiny-{name}"),
        COMMIT,
        &["main"],
        &fixture(name),
    )
    .unwrap();
    home
}

/// Raw HTTP/1.1 over a socket: status and body.
fn http(addr: &str, method: &str, path: &str, body: Option<&serde_json::Value>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `odqa serve` on a free port; kills it when dropped.
struct Served {
    child: Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(reader: &str, env: &[(&str, &str)]) -> Served {
    let index = demo_index().to_str().unwrap().to_string();
    let mut child = command(
        &[
            "serve",
            "--index",
            &index,
            "--reader",
            reader,
            "--addr",
            "127.0.0.1:0",
        ],
        env,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!("odqa serve ended before listening: {seen}");
        };
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.split("serving on http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let served = Served { child, addr };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http(&served.addr, "GET", "/readyz", None);
        if status == 200 {
            break;
        }
        assert!(!body.contains("failed"), "loading failed: {body}");
        assert!(Instant::now() < deadline, "not ready: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    served
}

/// `read`, `ask`, `bench mrc` and `serve` with one fixture architecture;
/// `read` and `serve` also through `hf:odqa-test/tiny-NAME` from an
/// offline cache, which must read exactly as the directory does.
fn end_to_end(name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture(name);
    let dir = dir.to_str().unwrap();

    let read_args = |reader: &str| {
        vec![
            "read".to_string(),
            QUESTION.into(),
            "--context".into(),
            CONTEXT.into(),
            "--reader".into(),
            reader.to_string(),
            "--json".into(),
        ]
    };
    let args = read_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let read = json(&odqa(&args, &[]));
    let span = first_span(&read["answers"], CONTEXT);

    let home = hub_home(tmp.path(), name);
    let offline = [("HF_HOME", home.to_str().unwrap()), ("HF_HUB_OFFLINE", "1")];
    let hub = format!("hf:odqa-test/tiny-{name}");
    let args = read_args(&hub);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let via_hub = json(&odqa(&args, &offline));
    assert_eq!(
        via_hub["answers"], read["answers"],
        "{name}: hub ≠ directory"
    );

    let index = demo_index().to_str().unwrap();
    let asked = json(&odqa(
        &[
            "ask", QUESTION, "--index", index, "--reader", dir, "--top-k", "2", "--json",
        ],
        &[],
    ));
    let answers = asked["answers"].as_array().expect("answers");
    assert!(!answers.is_empty(), "{name}: ask gave no answer");
    assert!(answers[0]["text"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(answers[0]["evidence"]["passage_id"].is_string(), "{asked}");

    // A two-question KLUE-MRC style file with the gold paragraphs.
    let data = tmp.path().join("tiny-mrc.json");
    let rows = serde_json::json!([
        {"id": "q1", "title": "서울", "question": QUESTION, "context": CONTEXT,
         "answers": {"text": ["서울"], "answer_start": [10]}},
        {"id": "q2", "title": "한강", "question": "서울은 무엇을 끼고 있나?", "context": CONTEXT,
         "answers": {"text": ["한강"], "answer_start": [20]}}
    ]);
    std::fs::write(&data, rows.to_string()).unwrap();
    let results = tmp.path().join("results");
    let out = odqa(
        &[
            "bench",
            "mrc",
            "--data",
            data.to_str().unwrap(),
            "--reader",
            dir,
            "--label",
            name,
            "--out-dir",
            results.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{name}: bench mrc: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results.join(format!("mrc-tiny-mrc-{name}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(report["questions"], 2, "{report}");
    let predictions: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(
        &std::fs::read(results.join(format!("mrc-tiny-mrc-{name}.predictions.json"))).unwrap(),
    )
    .unwrap();
    for id in ["q1", "q2"] {
        let p = predictions[id].as_str().unwrap();
        assert!(CONTEXT.contains(p), "{name} {id}: {p:?}");
    }

    // The server, reading the checkpoint through the offline hub cache.
    let served = serve(&hub, &offline);
    let (status, body) = http(
        &served.addr,
        "POST",
        "/v1/read",
        Some(&serde_json::json!({"question": QUESTION, "context": CONTEXT})),
    );
    assert_eq!(status, 200, "{name}: /v1/read: {body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        first_span(&body["answers"], CONTEXT),
        span,
        "{name}: /v1/read"
    );
    let (status, body) = http(
        &served.addr,
        "POST",
        "/v1/ask",
        Some(&serde_json::json!({"question": QUESTION, "top_k": 2})),
    );
    assert_eq!(status, 200, "{name}: /v1/ask: {body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["answers"].as_array().is_some_and(|a| !a.is_empty()),
        "{name}: /v1/ask: {body}"
    );
}

#[test]
fn bert_reads_asks_benches_and_serves() {
    end_to_end("bert");
}

#[test]
fn roberta_reads_asks_benches_and_serves() {
    end_to_end("roberta");
}

#[test]
fn xlm_roberta_reads_asks_benches_and_serves() {
    end_to_end("xlm-roberta");
}

#[test]
fn electra_reads_asks_benches_and_serves() {
    end_to_end("electra");
}

#[test]
fn deberta_v2_reads_asks_benches_and_serves() {
    end_to_end("deberta-v2");
}

#[test]
fn hub_cache_offline_by_branch_commit_and_env() {
    let tmp = tempfile::tempdir().unwrap();
    let home = hub_home(tmp.path(), "bert");
    let offline = [("HF_HOME", home.to_str().unwrap()), ("HF_HUB_OFFLINE", "1")];
    let read = |reader: &str, env: &[(&str, &str)]| {
        odqa(
            &[
                "read",
                QUESTION,
                "--context",
                CONTEXT,
                "--reader",
                reader,
                "--json",
            ],
            env,
        )
    };
    let want = json(&read(fixture("bert").to_str().unwrap(), &[]))["answers"].clone();
    for spec in [
        "hf:odqa-test/tiny-bert".to_string(),
        "hf:odqa-test/tiny-bert@main".to_string(),
        format!("hf:odqa-test/tiny-bert@{COMMIT}"),
    ] {
        let out = read(&spec, &offline);
        assert_eq!(json(&out)["answers"], want, "{spec}");
        let err = stderr(&out);
        assert!(
            err.contains(COMMIT) && err.contains("from the Hugging Face cache"),
            "{spec}: {err}"
        );
    }
    // ODQA_READER names a hub checkpoint too.
    let mut env = offline.to_vec();
    env.push(("ODQA_READER", "hf:odqa-test/tiny-bert@main"));
    let out = odqa(&["read", QUESTION, "--context", CONTEXT, "--json"], &env);
    assert_eq!(json(&out)["answers"], want);

    // What is missing, named: revision, repository, file (HF_HUB_OFFLINE said).
    let out = read("hf:odqa-test/tiny-bert@v2", &offline);
    fails_naming(
        &out,
        &["odqa-test/tiny-bert@v2", "refs/v2", "HF_HUB_OFFLINE"],
    );
    let out = read("hf:odqa-test/elsewhere", &offline);
    fails_naming(&out, &["odqa-test/elsewhere", "HF_HUB_OFFLINE"]);
    let snapshot = home
        .join("hub/models--odqa-test--tiny-bert/snapshots")
        .join(COMMIT);
    std::fs::remove_file(snapshot.join("tokenizer.json")).unwrap();
    let out = read("hf:odqa-test/tiny-bert", &offline);
    fails_naming(
        &out,
        &[
            "odqa-test/tiny-bert@main",
            "tokenizer.json",
            "HF_HUB_OFFLINE",
        ],
    );
    std::fs::remove_file(snapshot.join("model.safetensors")).unwrap();
    let out = read(&format!("hf:odqa-test/tiny-bert@{COMMIT}"), &offline);
    fails_naming(&out, &[COMMIT, "model.safetensors", "HF_HUB_OFFLINE"]);
    let out = read("hf:odqa-test//tiny-bert", &offline);
    fails_naming(&out, &["hf:ORG/NAME"]);
    // `serve` checks the reader before it listens.
    let out = odqa(
        &[
            "serve",
            "--index",
            demo_index().to_str().unwrap(),
            "--reader",
            "hf:odqa-test/tiny-bert@v2",
            "--addr",
            "127.0.0.1:0",
        ],
        &offline,
    );
    fails_naming(&out, &["odqa-test/tiny-bert@v2", "HF_HUB_OFFLINE"]);
}

/// Copies fixture `name` into `dir/name` for breaking.
fn copy_fixture(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    to
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, v.to_string()).unwrap();
}

#[test]
fn broken_checkpoints_fail_with_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let read = |reader: &Path, extra: &[&str]| {
        let mut args = vec![
            "read",
            QUESTION,
            "--context",
            CONTEXT,
            "--reader",
            reader.to_str().unwrap(),
        ];
        args.extend(extra);
        odqa(&args, &[])
    };

    let d = copy_fixture(&tmp.path().join("arch"), "bert");
    edit_config(&d, |v| {
        v["architectures"] = serde_json::json!(["GPT2ForQuestionAnswering"]);
        v["model_type"] = serde_json::json!("gpt2");
    });
    fails_naming(&read(&d, &[]), &["GPT2ForQuestionAnswering", "supported"]);

    let d = copy_fixture(&tmp.path().join("weights"), "roberta");
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    fails_naming(&read(&d, &[]), &["no weights", "model.safetensors"]);

    let d = copy_fixture(&tmp.path().join("shard"), "xlm-roberta");
    std::fs::remove_file(d.join("model-00003-of-00003.safetensors")).unwrap();
    fails_naming(&read(&d, &[]), &["model-00003-of-00003.safetensors"]);

    let d = copy_fixture(&tmp.path().join("tokenizer"), "electra");
    std::fs::remove_file(d.join("vocab.txt")).unwrap();
    fails_naming(&read(&d, &[]), &["tokenizer", "vocab.txt"]);

    for name in ["bert", "deberta-v2"] {
        let d = copy_fixture(&tmp.path().join("shape"), name);
        edit_config(&d, |v| v["hidden_size"] = serde_json::json!(64));
        fails_naming(&read(&d, &[]), &["shape"]);
    }

    // The window bound the checkpoint states: RoBERTa's 514 positions less
    // its offset of 2.
    let d = fixture("roberta");
    fails_naming(
        &read(&d, &["--max-len", "600"]),
        &["600", "512", "max_position_embeddings 514"],
    );
    let out = read(&d, &["--max-len", "512"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("max window 512 tokens"),
        "{}",
        stderr(&out)
    );
}
