//! `hf:ORG/NAME[@REVISION]` checkpoints: the Hugging Face cache layout read
//! offline (refs/ and snapshots/, branches, tags and commits, missing
//! revisions and files named), and the download path against a local
//! stand-in for the hub (HF_ENDPOINT), which writes the same layout.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use odqa_encoder::testing::write_hub_cache;
use odqa_encoder::{Device, EncoderError, HubModelId, HubOrigin, HubSettings, Precision, QaModel};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hf")
        .join(name)
}

fn settings(cache: &Path, offline: bool, endpoint: Option<String>) -> HubSettings {
    HubSettings {
        cache_dir: cache.to_path_buf(),
        offline,
        endpoint,
        token: None,
        progress: false,
    }
}

fn id(spec: &str) -> HubModelId {
    HubModelId::parse(spec).unwrap()
}

/// The first window of `dir`'s checkpoint: its start logits.
fn start_logits(dir: &Path) -> Vec<f32> {
    let model = QaModel::load_at(dir, &Device::Cpu, Precision::F32).unwrap();
    let enc = model
        .tokenizer()
        .encode(("서울은 어디?", "대한민국의 수도는 서울이다."), true)
        .unwrap();
    let n = enc.get_ids().len();
    model
        .logits(enc.get_ids(), &vec![1; n], enc.get_type_ids(), 1, n)
        .unwrap()
        .start
}

#[test]
fn offline_cache_resolves_branches_tags_and_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    for name in ["bert", "roberta", "xlm-roberta", "electra", "deberta-v2"] {
        let repo = format!("odqa-test/tiny-{name}");
        let snapshot =
            write_hub_cache(&cache, &repo, COMMIT, &["main", "v1.0"], &fixture(name)).unwrap();
        let s = settings(&cache, true, None);
        let want = start_logits(&fixture(name));
        for spec in [
            format!("hf:{repo}"),
            format!("hf:{repo}@main"),
            format!("hf:{repo}@v1.0"),
            format!("hf:{repo}@{COMMIT}"),
        ] {
            let found = id(&spec)
                .resolve(&s)
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(found.dir, snapshot, "{spec}");
            assert_eq!(found.commit, COMMIT);
            assert_eq!(found.origin, HubOrigin::Cache);
            assert!(found.files.contains(&"config.json".to_string()));
            assert_eq!(start_logits(&found.dir), want, "{spec}");
        }
    }
    // The sharded checkpoint needs every shard; ELECTRA's tokenizer is vocab.txt.
    let s = settings(&cache, true, None);
    let x = id("hf:odqa-test/tiny-xlm-roberta").resolve(&s).unwrap();
    assert_eq!(
        x.files
            .iter()
            .filter(|f| f.starts_with("model-0000"))
            .count(),
        3
    );
    let e = id("hf:odqa-test/tiny-electra").resolve(&s).unwrap();
    assert!(e.files.contains(&"vocab.txt".to_string()), "{:?}", e.files);
}

#[test]
fn offline_cache_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let repo = "odqa-test/tiny-bert";
    let snapshot = write_hub_cache(&cache, repo, COMMIT, &["main"], &fixture("bert")).unwrap();
    let s = settings(&cache, true, None);
    let err = |spec: &str| -> String {
        let e = id(spec).resolve(&s).unwrap_err();
        assert!(matches!(e, EncoderError::HubNotCached { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("HF_HUB_OFFLINE"), "{text}");
        text
    };
    let e = err("hf:odqa-test/tiny-bert@v2");
    assert!(
        e.contains("odqa-test/tiny-bert@v2") && e.contains("refs/v2"),
        "{e}"
    );
    let other = "fedcba9876543210fedcba9876543210fedcba98";
    let e = err(&format!("hf:odqa-test/tiny-bert@{other}"));
    assert!(e.contains(other), "{e}");
    let e = err("hf:odqa-test/not-here");
    assert!(
        e.contains("odqa-test/not-here") && e.contains("repository"),
        "{e}"
    );

    // A file gone from the snapshot, and a link whose blob is gone.
    std::fs::remove_file(snapshot.join("tokenizer.json")).unwrap();
    let e = err("hf:odqa-test/tiny-bert");
    assert!(e.contains("tokenizer") && e.contains("@main"), "{e}");
    write_hub_cache(&cache, repo, COMMIT, &["main"], &fixture("bert")).unwrap();
    let blob = std::fs::read_link(snapshot.join("model.safetensors")).unwrap();
    std::fs::remove_file(snapshot.join(blob)).unwrap();
    let e = err("hf:odqa-test/tiny-bert");
    assert!(e.contains("model.safetensors"), "{e}");

    // A shard the index lists.
    let xlmr = write_hub_cache(
        &cache,
        "odqa-test/tiny-xlmr",
        COMMIT,
        &["main"],
        &fixture("xlm-roberta"),
    )
    .unwrap();
    std::fs::remove_file(xlmr.join("model-00002-of-00003.safetensors")).unwrap();
    let e = err("hf:odqa-test/tiny-xlmr");
    assert!(e.contains("model-00002-of-00003.safetensors"), "{e}");

    // A ref that holds no commit hash.
    std::fs::write(cache.join("models--odqa-test--tiny-bert/refs/main"), "oops").unwrap();
    let e = id("hf:odqa-test/tiny-bert").resolve(&s).unwrap_err();
    assert!(e.to_string().contains("not a commit hash"), "{e}");
}

/// A stand-in for the hub's three kinds of request that hf-hub makes: the
/// revision's info, and ranged GETs of each file (metadata, then content).
struct FakeHub {
    endpoint: String,
    requests: Arc<AtomicUsize>,
}

fn fake_hub(repo: &'static str, files: BTreeMap<String, Vec<u8>>) -> FakeHub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let files = files.clone();
            std::thread::spawn(move || answer(stream, repo, &files));
        }
    });
    FakeHub { endpoint, requests }
}

fn answer(mut stream: TcpStream, repo: &str, files: &BTreeMap<String, Vec<u8>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range:") {
            range = Some(v.trim().trim_start_matches("bytes=").to_string());
        }
    }
    let info = format!("/api/models/{repo}/revision/main");
    let resolve = format!("/{repo}/resolve/{COMMIT}/");
    let (status, headers, body): (&str, Vec<String>, Vec<u8>) = if path == info {
        let siblings: Vec<_> = files
            .keys()
            .map(|k| serde_json::json!({ "rfilename": k }))
            .collect();
        let json = serde_json::json!({ "sha": COMMIT, "siblings": siblings });
        ("200 OK", vec![], json.to_string().into_bytes())
    } else if let Some(content) = path.strip_prefix(&resolve).and_then(|name| files.get(name)) {
        let (from, to) = match range.as_deref().and_then(|r| r.split_once('-')) {
            Some((a, b)) => (
                a.parse::<usize>().unwrap_or(0),
                b.parse::<usize>().unwrap_or(content.len() - 1),
            ),
            None => (0, content.len() - 1),
        };
        let etag = format!("\"{:016x}\"", fnv1a(content));
        (
            "206 Partial Content",
            vec![
                format!("ETag: {etag}"),
                format!("X-Repo-Commit: {COMMIT}"),
                format!("Content-Range: bytes {from}-{to}/{}", content.len()),
            ],
            content[from..=to].to_vec(),
        )
    } else {
        ("404 Not Found", vec![], b"{}".to_vec())
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(&h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    let mut rest = Vec::new();
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(50)));
    let _ = reader.read_to_end(&mut rest);
}

/// A content hash for the fake ETag (blobs are named after it).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn download_fills_the_cache_that_offline_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let repo = "odqa-test/tiny-xlmr";
    let mut files = files_of(&fixture("xlm-roberta"));
    // Files odqa does not need are listed but never fetched.
    files.insert("README.md".into(), b"# tiny".to_vec());
    let hub = fake_hub(repo, files);

    // Offline: the hub is never asked, and the empty cache is an error.
    let offline = settings(&cache, true, Some(hub.endpoint.clone()));
    let e = id("hf:odqa-test/tiny-xlmr").resolve(&offline).unwrap_err();
    assert!(e.to_string().contains("HF_HUB_OFFLINE"), "{e}");
    assert_eq!(hub.requests.load(Ordering::SeqCst), 0);

    let online = settings(&cache, false, Some(hub.endpoint.clone()));
    let found = id("hf:odqa-test/tiny-xlmr").resolve(&online).unwrap();
    assert_eq!(found.origin, HubOrigin::Downloaded);
    assert_eq!(found.commit, COMMIT);
    let repo_dir = cache.join("models--odqa-test--tiny-xlmr");
    assert_eq!(found.dir, repo_dir.join("snapshots").join(COMMIT));
    assert!(!found.dir.join("README.md").exists());
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        COMMIT
    );
    assert!(!repo_dir.join("refs").join(COMMIT).exists());
    assert_eq!(
        start_logits(&found.dir),
        start_logits(&fixture("xlm-roberta"))
    );

    // What was downloaded is what the offline path reads.
    let again = id("hf:odqa-test/tiny-xlmr").resolve(&offline).unwrap();
    assert_eq!(again.dir, found.dir);
    // Online again: only the revision is asked for, nothing downloaded.
    let before = hub.requests.load(Ordering::SeqCst);
    let cached = id("hf:odqa-test/tiny-xlmr").resolve(&online).unwrap();
    assert_eq!(cached.origin, HubOrigin::Cache);
    assert_eq!(hub.requests.load(Ordering::SeqCst), before + 1);
    // A full commit already cached needs no request at all.
    id(&format!("hf:odqa-test/tiny-xlmr@{COMMIT}"))
        .resolve(&online)
        .unwrap();
    assert_eq!(hub.requests.load(Ordering::SeqCst), before + 1);

    // An unknown revision is the hub's answer, not a cache fallback.
    let e = id("hf:odqa-test/tiny-xlmr@nope")
        .resolve(&online)
        .unwrap_err();
    assert!(matches!(e, EncoderError::Hub { .. }), "{e}");
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn repository_without_a_needed_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let mut files = files_of(&fixture("bert"));
    files.remove("tokenizer.json");
    let hub = fake_hub("odqa-test/no-tok", files);
    let online = settings(&cache, false, Some(hub.endpoint.clone()));
    let e = id("hf:odqa-test/no-tok").resolve(&online).unwrap_err();
    assert!(matches!(e, EncoderError::HubMissingFile { .. }), "{e}");
    assert!(e.to_string().contains("tokenizer"), "{e}");

    let mut files = files_of(&fixture("bert"));
    let weights = files.remove("model.safetensors").unwrap();
    files.insert("pytorch_model.bin".into(), weights);
    let hub = fake_hub("odqa-test/pt-only", files);
    let online = settings(&cache, false, Some(hub.endpoint.clone()));
    let e = id("hf:odqa-test/pt-only").resolve(&online).unwrap_err();
    assert!(e.to_string().contains("pytorch_model.bin"), "{e}");
}

#[test]
fn unreachable_hub_falls_back_to_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let online = settings(&cache, false, Some(endpoint));
    let e = id("hf:odqa-test/tiny-bert").resolve(&online).unwrap_err();
    assert!(matches!(e, EncoderError::HubNotCached { .. }), "{e}");
    assert!(e.to_string().contains("unreachable"), "{e}");
    write_hub_cache(
        &cache,
        "odqa-test/tiny-bert",
        COMMIT,
        &["main"],
        &fixture("bert"),
    )
    .unwrap();
    let found = id("hf:odqa-test/tiny-bert").resolve(&online).unwrap();
    assert!(
        matches!(found.origin, HubOrigin::CacheAfterError(_)),
        "{:?}",
        found.origin
    );
    assert!(found.describe().contains("unreachable"));
}

#[test]
fn windows_longer_than_the_checkpoint_allows_are_an_error() {
    let model = QaModel::load(&fixture("roberta"), &Device::Cpu).unwrap();
    model.check_window(512).unwrap();
    let e = model.check_window(513).unwrap_err();
    assert!(
        matches!(e, EncoderError::WindowTooLong { allowed: 512, .. }),
        "{e}"
    );
    let text = e.to_string();
    assert!(text.contains("514") && text.contains("offset 2"), "{text}");
}
