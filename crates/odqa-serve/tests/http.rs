//! The service over a real socket: every route's happy path and error
//! paths, readiness around loading, limits, batching, metrics, OpenAPI and
//! graceful shutdown.

mod common;

use std::time::Duration;

use common::{assert_error, config, load_pipeline, start, start_with};
use odqa_serve::{AskResponse, ReadResponse, SearchResponse};
use serde_json::{json, Value};

const QUESTION: &str = "이순신이 태어난 해는?";

fn chars(text: &str, start: usize, end: usize) -> String {
    text.chars().skip(start).take(end - start).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_loading() {
    common::fixture();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let server = start_with(config(), move || {
        gate.recv().map_err(|e| e.to_string())?;
        load_pipeline()
    })
    .await;

    let health = server.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "loading");
    let early = server.post("/v1/search", json!({"query": QUESTION})).await;
    assert_eq!(
        early
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_error(early, 503, "not_ready").await;
    assert_error(
        server.post("/v1/ask", json!({"question": QUESTION})).await,
        503,
        "not_ready",
    )
    .await;
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("odqa_ready 0"), "{metrics}");

    release.send(()).unwrap();
    server.wait_ready().await;
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    let search = server.post("/v1/search", json!({"query": QUESTION})).await;
    assert_eq!(search.status(), 200);
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("odqa_ready 1"), "{metrics}");
    assert!(
        metrics.contains(r#"odqa_rejected_total{reason="not_ready"} 2"#),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_loading_is_reported_and_stops_the_server() {
    let mut server = start_with(config(), || Err("no index at /nowhere".into())).await;
    let result = server.join().await;
    match result {
        Err(odqa_serve::ServeError::Load(why)) => assert!(why.contains("/nowhere"), "{why}"),
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ask_and_read_answer() {
    let server = start(config()).await;

    let response = server
        .post("/v1/search", json!({"query": QUESTION, "top_k": 3}))
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let search: SearchResponse = response.json().await.unwrap();
    assert_eq!(search.query, QUESTION);
    assert!((1..=3).contains(&search.hits.len()), "{search:?}");
    assert_eq!(search.hits[0].title, "이순신");
    let ranks: Vec<usize> = search.hits.iter().map(|h| h.rank).collect();
    assert_eq!(ranks, (1..=search.hits.len()).collect::<Vec<_>>());
    assert!(search.timings.retrieve_ms.is_some());
    // Mode given explicitly, and the server's default top_k (10).
    let response = server
        .post(
            "/v1/search",
            json!({"query": "대한민국의 수도", "mode": "bm25"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let search: SearchResponse = response.json().await.unwrap();
    assert!(!search.hits.is_empty() && search.hits.len() <= 10);

    let response = server
        .post(
            "/v1/ask",
            json!({"question": format!("  {QUESTION} "), "top_k": 4, "answers": 3, "early_stop": false}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let ask: AskResponse = response.json().await.unwrap();
    assert!(!ask.no_answer, "threshold 0 never abstains");
    let texts: std::collections::HashSet<&str> =
        ask.answers.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(texts.len(), ask.answers.len(), "answers are distinct");
    // A threshold above any reachable score: "no answer", with the best
    // candidate still listed.
    let strict: AskResponse = server
        .post(
            "/v1/ask",
            json!({"question": QUESTION, "top_k": 4, "retrieval_weight": 0.0, "no_answer_threshold": 1.0}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(strict.no_answer && !strict.answers.is_empty());
    assert_eq!(ask.question, QUESTION, "trimmed");
    assert!((1..=4).contains(&ask.hits.len()));
    assert!(!ask.answers.is_empty() && ask.answers.len() <= 3);
    for answer in &ask.answers {
        let ev = &answer.evidence;
        assert_eq!(
            chars(&ev.context, ev.passage_char_start, ev.passage_char_end),
            answer.text
        );
        let hit = &ask.hits[ev.retrieval_rank - 1];
        assert_eq!(hit.passage_id, ev.passage_id);
        assert_eq!(hit.text, ev.context);
        assert_eq!(hit.title, ev.title);
        assert_eq!(
            ev.article_char_start - hit.char_start,
            ev.passage_char_start
        );
    }
    let t = &ask.timings;
    assert!(t.windows.unwrap_or(0) > ask.hits.len(), "{t:?}");
    assert!(t.batches.unwrap_or(0) >= 1 && t.inference_ms.is_some() && t.queue_ms.is_some());

    let context = "서울특별시는 대한민국의 수도이다. 한강이 도시를 가로지른다.";
    let response = server
        .post(
            "/v1/read",
            json!({"question": "대한민국의 수도는?", "context": context}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let read: ReadResponse = response.json().await.unwrap();
    assert!(!read.answers.is_empty());
    for a in &read.answers {
        assert_eq!(chars(context, a.char_start, a.char_end), a.text);
        assert!(a.score > 0.0 && a.score <= 1.0);
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_classify_and_extract() {
    let server = start(config()).await;
    let sentence = "이순신은 1545년 한성에서 태어났다.";
    // Classification: every relation a person can have, most probable first.
    let response = server
        .post(
            "/v1/relations",
            json!({"sentence": sentence, "subject": "이순신", "object": "한성", "subject_type": "PER"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let r: odqa_serve::RelationsResponse = response.json().await.unwrap();
    assert_eq!(r.mode, "classify");
    let object = r.object.as_ref().unwrap();
    assert_eq!(chars(sentence, object.char_start, object.char_end), "한성");
    assert_eq!(r.scores.len(), 18, "the per: relations");
    assert!(r.scores.iter().all(|s| s.relation.starts_with("per:")));
    assert!(r
        .scores
        .windows(2)
        .all(|w| w[0].probability >= w[1].probability));
    let label = r.label.as_deref().unwrap();
    let best = &r.scores[0];
    if best.probability >= r.threshold {
        assert_eq!(label, best.relation);
    } else {
        assert_eq!(label, "no_relation");
    }
    // Open extraction: spans of the sentence (none may pass a high threshold
    // with a random model; the spans that do are exact substrings).
    let response = server
        .post(
            "/v1/relations",
            json!({"sentence": sentence, "subject": "이순신", "threshold": 0.0}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let r: odqa_serve::RelationsResponse = response.json().await.unwrap();
    assert_eq!(r.mode, "open");
    assert!(!r.found.is_empty());
    for f in &r.found {
        assert_eq!(chars(sentence, f.char_start, f.char_end), f.text);
        assert!(!f.text.contains("이순신"), "not the subject itself");
    }

    for (body, status, code) in [
        (
            json!({"sentence": "", "subject": "이순신"}),
            422,
            "empty_context",
        ),
        (
            json!({"sentence": sentence, "subject": 3}),
            422,
            "invalid_body",
        ),
        (json!({"sentence": sentence}), 422, "invalid_body"),
        (
            json!({"sentence": sentence, "subject": " "}),
            422,
            "empty_question",
        ),
        (
            json!({"sentence": sentence, "subject": "이순신", "object": "부산"}),
            422,
            "object_not_in_sentence",
        ),
        (
            json!({"sentence": sentence, "subject": "세종대왕"}),
            422,
            "subject_not_in_sentence",
        ),
        (
            json!({"sentence": sentence, "subject": "세종대왕", "object": "한성"}),
            422,
            "subject_not_in_sentence",
        ),
        (
            json!({"sentence": sentence, "subject": "이순신", "threshold": 1.5}),
            422,
            "invalid_argument",
        ),
    ] {
        assert_error(server.post("/v1/relations", body).await, status, code).await;
    }
    // The error names the subject that is missing.
    let response = server
        .post(
            "/v1/relations",
            json!({"sentence": sentence, "subject": "세종대왕"}),
        )
        .await;
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("세종대왕"), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors() {
    let mut cfg = config();
    cfg.limits.max_body_bytes = 4096;
    let server = start(cfg).await;
    let raw = |path: &str, content_type: &str, body: String| {
        server
            .client
            .post(server.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let long = "가".repeat(501);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/ask", r#"{"question": "#.into(), 400, "malformed_json"),
        ("/v1/ask", "not json".into(), 400, "malformed_json"),
        ("/v1/ask", r#"{"question": 5}"#.into(), 422, "invalid_body"),
        (
            "/v1/ask",
            r#"{"question": ["a"]}"#.into(),
            422,
            "invalid_body",
        ),
        ("/v1/ask", "{}".into(), 422, "invalid_body"),
        (
            "/v1/ask",
            r#"{"question": "x", "topk": 3}"#.into(),
            422,
            "invalid_body",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "top_k": "3"}"#.into(),
            422,
            "invalid_body",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "top_k": -1}"#.into(),
            422,
            "invalid_body",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "top_k": 1e40}"#.into(),
            422,
            "invalid_body",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "mode": "magic"}"#.into(),
            422,
            "invalid_body",
        ),
        (
            "/v1/ask",
            r#"{"question": ""}"#.into(),
            422,
            "empty_question",
        ),
        (
            "/v1/ask",
            r#"{"question": "  \n\t "}"#.into(),
            422,
            "empty_question",
        ),
        (
            "/v1/ask",
            json!({"question": long}).to_string(),
            422,
            "question_too_long",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "top_k": 0}"#.into(),
            422,
            "top_k_out_of_range",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "top_k": 101}"#.into(),
            422,
            "top_k_out_of_range",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "top_k": 18446744073709551615}"#.into(),
            422,
            "top_k_out_of_range",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "answers": 0}"#.into(),
            422,
            "invalid_argument",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "retrieval_weight": 2}"#.into(),
            422,
            "invalid_argument",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "retrieval_weight": -0.1}"#.into(),
            422,
            "invalid_argument",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "retrieval_weight": "high"}"#.into(),
            422,
            "invalid_body",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "no_answer_threshold": 1.5}"#.into(),
            422,
            "invalid_argument",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "no_answer_threshold": -1}"#.into(),
            422,
            "invalid_argument",
        ),
        (
            "/v1/ask",
            r#"{"question": "x", "mode": "dense"}"#.into(),
            422,
            "mode_unavailable",
        ),
        ("/v1/search", r#"{"query": 1}"#.into(), 422, "invalid_body"),
        (
            "/v1/search",
            r#"{"query": " "}"#.into(),
            422,
            "empty_question",
        ),
        (
            "/v1/search",
            json!({"query": long}).to_string(),
            422,
            "question_too_long",
        ),
        (
            "/v1/search",
            r#"{"query": "x", "top_k": 0}"#.into(),
            422,
            "top_k_out_of_range",
        ),
        (
            "/v1/search",
            r#"{"query": "x", "top_k": 1000000}"#.into(),
            422,
            "top_k_out_of_range",
        ),
        (
            "/v1/search",
            r#"{"query": "x", "mode": "hybrid"}"#.into(),
            422,
            "mode_unavailable",
        ),
        (
            "/v1/search",
            r#"{"query": "?!?"}"#.into(),
            422,
            "empty_query",
        ),
        (
            "/v1/read",
            r#"{"question": "수도는?"}"#.into(),
            422,
            "invalid_body",
        ),
        (
            "/v1/read",
            r#"{"question": "수도는?", "context": ""}"#.into(),
            422,
            "empty_context",
        ),
        (
            "/v1/read",
            r#"{"question": "", "context": "서울"}"#.into(),
            422,
            "empty_question",
        ),
        (
            "/v1/ask",
            format!(r#"{{"question": "{}"}}"#, "가".repeat(3000)),
            413,
            "payload_too_large",
        ),
    ];
    for (path, body, status, code) in cases {
        let response = raw(path, "application/json", body.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path} {body:.80}");
        assert_error(response, status, code).await;
    }

    assert_error(
        raw("/v1/ask", "text/plain", r#"{"question": "x"}"#.into())
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_error(server.get("/nope").await, 404, "not_found").await;
    assert_error(server.post("/v1/nope", json!({})).await, 404, "not_found").await;
    assert_error(server.get("/v1/ask").await, 405, "method_not_allowed").await;

    // The context limit of /v1/read is separate from the question's.
    let mut big = config();
    big.limits.max_context_chars = 100;
    let small = start(big).await;
    assert_error(
        small
            .post(
                "/v1/read",
                json!({"question": "수도는?", "context": "서울".repeat(60)}),
            )
            .await,
        422,
        "context_too_long",
    )
    .await;
    small.stop().await.unwrap();

    // Errors are counted under their route (404s as "unmatched").
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"odqa_http_requests_total{method="POST",route="/v1/ask",status="422"}"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"odqa_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_kept_or_made() {
    let server = start(config()).await;
    let response = server
        .client
        .get(server.url("/healthz"))
        .header("x-request-id", "test-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "test-123");
    let made = server.get("/healthz").await;
    let id = made.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    server.stop().await.unwrap();
}

/// Holds the batch worker back so a request stays in flight for a while.
fn slow_config(wait_ms: u64) -> odqa_serve::ServeConfig {
    let mut cfg = config();
    cfg.batching.max_windows = 1000;
    cfg.batching.max_wait = Duration::from_millis(wait_ms);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturation_answers_503_with_retry_after() {
    let mut cfg = slow_config(1500);
    cfg.limits.max_concurrency = 1;
    cfg.limits.retry_after_s = 2;
    let server = start(cfg).await;
    let first = {
        let client = server.client.clone();
        let url = server.url("/v1/read");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"question": "수도는?", "context": "서울은 수도이다."}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = server.post("/v1/search", json!({"query": QUESTION})).await;
    assert_eq!(
        second
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2"),
        "{second:?}"
    );
    assert_error(second, 503, "overloaded").await;
    // Health, readiness and metrics are outside the limit.
    assert_eq!(server.get("/readyz").await.status(), 200);
    assert_eq!(first.await.unwrap(), 200);
    // The slot is free again.
    let third = server.post("/v1/search", json!({"query": QUESTION})).await;
    assert_eq!(third.status(), 200);
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"odqa_rejected_total{reason="overloaded"} 1"#),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_wait_turns_short_overloads_into_waits() {
    let mut cfg = slow_config(800);
    cfg.limits.max_concurrency = 1;
    cfg.limits.admission_wait = Duration::from_secs(5);
    let server = start(cfg).await;
    let read = |server: &common::Running| {
        let client = server.client.clone();
        let url = server.url("/v1/read");
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let status = client
                .post(url)
                .json(&json!({"question": "수도는?", "context": "서울은 수도이다."}))
                .send()
                .await
                .unwrap()
                .status();
            (status, started.elapsed())
        })
    };
    let first = read(&server);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Over the limit, but a slot frees within the wait: served, not refused.
    let (status, waited) = read(&server).await.unwrap();
    assert_eq!(status, 200);
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert_eq!(first.await.unwrap().0, 200);
    server.stop().await.unwrap();

    // A wait shorter than the work: 503 once it has passed.
    let mut cfg = slow_config(1500);
    cfg.limits.max_concurrency = 1;
    cfg.limits.admission_wait = Duration::from_millis(200);
    let server = start(cfg).await;
    let first = read(&server);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let refused = server.post("/v1/search", json!({"query": QUESTION})).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_error(refused, 503, "overloaded").await;
    assert_eq!(first.await.unwrap().0, 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_the_queue_cannot_score_in_time_get_503_not_504() {
    // The worker waits 3 s for company; the request has 300 ms.
    let mut cfg = slow_config(3000);
    cfg.limits.request_timeout = Duration::from_millis(300);
    let server = start(cfg).await;
    let started = std::time::Instant::now();
    let response = server
        .post(
            "/v1/read",
            json!({"question": "수도는?", "context": "서울은 수도이다."}),
        )
        .await;
    // Answered at its deadline (95 % of the timeout), before the timeout.
    assert!(response.headers().get("retry-after").is_some());
    assert_error(response, 503, "overloaded").await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"odqa_rejected_total{reason="overloaded"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(r#"reason="timeout""#), "{metrics}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_forward_passes() {
    let server = start(slow_config(300)).await;
    let contexts = [
        "서울특별시는 대한민국의 수도이다. 한강이 도시를 가로지른다.",
        "부산은 항구 도시이다.",
        "이순신은 조선의 무신이다.",
        "세종대왕은 훈민정음을 만들었다.",
    ];
    // Alone first (one request per pass), then all at once.
    let mut alone = Vec::new();
    for context in contexts {
        let r: ReadResponse = server
            .post(
                "/v1/read",
                json!({"question": "무엇인가?", "context": context}),
            )
            .await
            .json()
            .await
            .unwrap();
        alone.push(r);
    }
    let before = server.get("/metrics").await.text().await.unwrap();
    let tasks: Vec<_> = contexts
        .iter()
        .map(|context| {
            let client = server.client.clone();
            let url = server.url("/v1/read");
            let body = json!({"question": "무엇인가?", "context": context});
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json::<ReadResponse>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut together = Vec::new();
    for task in tasks {
        together.push(task.await.unwrap());
    }
    for (a, b) in alone.iter().zip(&together) {
        let spans = |r: &ReadResponse| {
            r.answers
                .iter()
                .map(|x| (x.char_start, x.char_end))
                .collect::<Vec<_>>()
        };
        assert_eq!(spans(a), spans(b), "batching changes nothing");
        for (x, y) in a.answers.iter().zip(&b.answers) {
            assert!((x.score - y.score).abs() < 1e-4);
        }
    }
    let after = server.get("/metrics").await.text().await.unwrap();
    let value = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    };
    let passes = value(&after, "odqa_reader_batch_requests_count")
        - value(&before, "odqa_reader_batch_requests_count");
    let requests = value(&after, "odqa_reader_batch_requests_sum")
        - value(&before, "odqa_reader_batch_requests_sum");
    assert!(
        requests >= 4.0 && passes < requests,
        "4 concurrent requests in {passes} passes ({requests} request-passes)"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let server = start(slow_config(1000)).await;
    let in_flight = {
        let client = server.client.clone();
        let url = server.url("/v1/read");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"question": "수도는?", "context": "서울은 수도이다."}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = server.base.clone();
    server.stop().await.unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    // Nothing listens any more.
    let after = common::client().get(format!("{base}/healthz")).send().await;
    assert!(after.is_err(), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_openapi_and_page() {
    let server = start(config()).await;
    assert_eq!(
        server
            .post("/v1/ask", json!({"question": QUESTION, "top_k": 2}))
            .await
            .status(),
        200
    );
    let response = server.get("/metrics").await;
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let metrics = response.text().await.unwrap();
    for needle in [
        r#"odqa_http_requests_total{method="POST",route="/v1/ask",status="200"} 1"#,
        r#"odqa_http_request_duration_seconds_bucket{route="/v1/ask""#,
        r#"odqa_stage_duration_seconds_count{stage="retrieve"}"#,
        r#"odqa_stage_duration_seconds_count{stage="tokenize"}"#,
        r#"odqa_stage_duration_seconds_count{stage="queue"}"#,
        r#"odqa_stage_duration_seconds_count{stage="inference"}"#,
        r#"odqa_stage_duration_seconds_count{stage="merge"}"#,
        "odqa_reader_batch_windows_bucket",
        "odqa_reader_batch_requests_bucket",
        "odqa_http_in_flight 1",
    ] {
        assert!(metrics.contains(needle), "{needle} in\n{metrics}");
    }

    let response = server.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/ask",
        "/v1/search",
        "/v1/read",
        "/v1/relations",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} in the OpenAPI paths"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for schema in ["AskRequest", "AskResponse", "ErrorBody", "EvidenceOut"] {
        assert!(schemas[schema].is_object(), "schema {schema}");
    }
    assert!(schemas["AskRequest"]["required"]
        .as_array()
        .unwrap()
        .contains(&json!("question")));

    let page = server.get("/").await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page
        .headers()
        .get("content-security-policy")
        .is_some_and(|v| v.to_str().unwrap().contains("default-src 'none'")));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"id="ask-form""#) && html.contains("/static/app.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resources"
    );
    for (path, kind) in [
        ("/static/app.js", "text/javascript"),
        ("/static/style.css", "text/css"),
    ] {
        let r = server.get(path).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path}"
        );
    }
    server.stop().await.unwrap();
}
