//! The web page in a real browser: headless Chromium loads `/?q=…` from a
//! running server, the page asks `/v1/ask`, and the answer must appear
//! highlighted (`<mark class="answer">`) inside its passage. A screenshot is
//! kept at bench/results/serve-page.png.
//!
//! Needs Chromium (`apt-get install -y chromium` on Debian; `.ci/run`
//! installs it), or `ODQA_CHROMIUM=/path/to/chrome`. `ODQA_SKIP_BROWSER_TEST=1`
//! skips the test where no browser can be installed.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{config, start};
use odqa_serve::AskResponse;
use serde_json::json;

const QUESTION: &str = "이순신이 태어난 해는?";

fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ODQA_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

async fn chromium(browser: &Path, profile: &Path, args: &[String]) -> std::process::Output {
    let mut command = tokio::process::Command::new(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--hide-scrollbars",
            "--lang=ko-KR",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("chromium did not finish within 120 s")
        .expect("running chromium")
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_highlights_the_answer_in_chromium() {
    let Some(browser) = find_chromium() else {
        if std::env::var_os("ODQA_SKIP_BROWSER_TEST").is_some() {
            eprintln!("no Chromium; skipped (ODQA_SKIP_BROWSER_TEST is set)");
            return;
        }
        panic!(
            "the browser test needs Chromium: install it with `apt-get install -y chromium` \
             (Debian; .ci/run does this), or point ODQA_CHROMIUM at a Chrome/Chromium binary. \
             ODQA_SKIP_BROWSER_TEST=1 skips this test."
        );
    };
    let server = start(config()).await;
    // What the page will show (the tiny model is deterministic).
    let expected: AskResponse = server
        .post("/v1/ask", json!({"question": QUESTION, "top_k": 5}))
        .await
        .json()
        .await
        .unwrap();
    let best = expected.answers.first().expect("an answer");

    let page = reqwest::Url::parse_with_params(&server.url("/"), &[("q", QUESTION), ("k", "5")])
        .unwrap()
        .to_string();
    let profile = tempfile::tempdir().unwrap();
    let output = chromium(
        &browser,
        profile.path(),
        &[
            "--virtual-time-budget=20000".into(),
            "--dump-dom".into(),
            page.clone(),
        ],
    )
    .await;
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && dom.contains("</html>"),
        "chromium failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        dom.contains(r#"data-state="done""#),
        "the page finished asking:\n{dom}"
    );
    let open = r#"<mark class="answer">"#;
    let start = dom
        .find(open)
        .unwrap_or_else(|| panic!("no highlighted answer in the DOM:\n{dom}"))
        + open.len();
    let end = start + dom[start..].find("</mark>").expect("closing </mark>");
    assert_eq!(
        &dom[start..end],
        escape_html(&best.text),
        "the highlight is the answer"
    );
    // The highlight sits inside its passage: the text around it is the context.
    let context_start = dom.find(r#"id="answer-context""#).expect("answer context");
    assert!(context_start < start);
    assert!(dom.contains(&escape_html(&best.evidence.title)));
    assert!(dom.contains("지연 시간"), "the latency is shown");
    let hits = dom.matches(r#"<li class="hit"#).count();
    assert_eq!(
        hits,
        expected.hits.len(),
        "every retrieved passage is listed"
    );

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results/serve-page.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&shot);
    let output = chromium(
        &browser,
        profile.path(),
        &[
            "--virtual-time-budget=20000".into(),
            "--window-size=1100,1500".into(),
            format!("--screenshot={}", shot.display()),
            page,
        ],
    )
    .await;
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}): {}",
            shot.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    server.stop().await.unwrap();
}
