//! A real index of the demo corpus and a tiny random BERT QA model (built
//! once per test run under the target dir), and servers on 127.0.0.1:0.
//! The model's answers are meaningless; the plumbing around them is real.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use odqa_analysis::DictionarySource;
use odqa_encoder::testing::{write_tiny_bert_qa, TinyBertQa};
use odqa_encoder::Device;
use odqa_index::{build_index, BuildOptions, PassageIndex};
use odqa_pipeline::{Pipeline, Reader, ReaderOptions, RetrievalOptions, Retriever};
use odqa_serve::{LoadError, ServeConfig, ServeError, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn demo_corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpora/demo/odqa-demo.jsonl")
}

pub struct Fixture {
    pub index: PathBuf,
    pub model: PathBuf,
}

/// The demo index and the tiny model, built once per build of this test
/// binary (under the target dir, named after the binary and its build time,
/// so a rebuilt index crate never meets a stale index) and shared by its
/// tests; older copies of the same binary's fixture are removed.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let stem = exe.file_stem().unwrap().to_string_lossy().into_owned();
        let built_at = std::fs::metadata(&exe)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let prefix = format!("odqa-serve-fixture-{stem}-");
        let root = parent.join(format!("{prefix}{built_at}"));
        if !root.join("ready").is_file() {
            std::fs::create_dir_all(parent).unwrap();
            for old in std::fs::read_dir(parent).unwrap().flatten() {
                if old.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_dir_all(old.path());
                }
            }
            std::fs::create_dir_all(&root).unwrap();
            build_fixture(&root);
            std::fs::write(root.join("ready"), b"").unwrap();
        }
        Fixture {
            index: root.join("index"),
            model: root.join("tiny-qa"),
        }
    })
}

fn build_fixture(dir: &Path) {
    let options = BuildOptions::new(demo_corpus(), dir.join("index"));
    build_index(&options, &AtomicBool::new(false)).unwrap();
    let model = dir.join("tiny-qa");
    let alphabet: String = std::fs::read_to_string(demo_corpus()).unwrap() + "?";
    write_tiny_bert_qa(&model, &TinyBertQa::bert(&alphabet)).unwrap();
}

/// Short windows, so passages span several of them.
pub fn reader_options() -> ReaderOptions {
    let mut options = ReaderOptions::default();
    options.windows.max_len = 96;
    options.windows.doc_stride = 48;
    options.windows.max_query_len = 32;
    options
}

/// What `odqa serve` loads, from the fixture: BM25 retrieval and the reader.
pub fn load_pipeline() -> Result<Pipeline, LoadError> {
    let fx = fixture();
    let index = PassageIndex::open(&fx.index, &DictionarySource::resolve(None))?;
    let retriever = Retriever::new(index, None, RetrievalOptions::default())?;
    let reader = Reader::load(&fx.model, reader_options(), &Device::Cpu)?;
    Ok(Pipeline::new(retriever, reader))
}

pub fn config() -> ServeConfig {
    ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    }
}

/// A server running on this test's runtime.
pub struct Running {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the server did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Asks for a graceful shutdown; what `serve` returned.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join().await
    }

    /// Waits for `serve` to return on its own.
    pub async fn join(&mut self) -> Result<(), ServeError> {
        let handle = self.handle.take().expect("joined twice");
        tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .expect("the server did not stop")
            .unwrap()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Starts a server with `loader`; does not wait for readiness.
pub async fn start_with<F>(config: ServeConfig, loader: F) -> Running
where
    F: FnOnce() -> Result<Pipeline, LoadError> + Send + 'static,
{
    let server = Server::bind(config, loader).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Running {
        base,
        client: client(),
        stop: Some(stop),
        handle: Some(handle),
    }
}

/// Starts a server over the fixture and waits until it is ready.
pub async fn start(config: ServeConfig) -> Running {
    fixture();
    let running = start_with(config, load_pipeline).await;
    running.wait_ready().await;
    running
}

/// Asserts an error response: status, JSON body `{error: {code, message}}`.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "status for {code}: {text}");
    assert!(
        content_type.starts_with("application/json"),
        "{code}: content type {content_type:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], code, "{text}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{text}"
    );
}
