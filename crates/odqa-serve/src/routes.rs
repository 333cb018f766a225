//! The router: API handlers, health, metrics, OpenAPI, the page, and the
//! middleware around them (request ids, access logs and metrics, panics,
//! body limit, concurrency limit and timeout).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use odqa_pipeline::AskOptions;
use serde::de::DeserializeOwned;
use tokio::sync::OwnedSemaphorePermit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::api::{
    check_answers, check_context, check_question, check_threshold, check_top_k, check_weight,
    AnswerOut, AskRequest, AskResponse, EvidenceOut, HitOut, Mode, ReadAnswer, ReadRequest,
    ReadResponse, RelationsRequest, SearchRequest, SearchResponse, Status, Timings,
};
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::page;
use crate::queue::RequestScope;
use crate::relations::{FoundOut, RelationScore, RelationsResponse, SpanOut};
use crate::state::{AppState, Engine};

/// The whole service.
pub fn router(state: AppState) -> Router {
    let max_body = state.config().limits.max_body_bytes;
    let api = Router::new()
        .route("/v1/ask", post(ask))
        .route("/v1/search", post(search))
        .route("/v1/read", post(read))
        .route("/v1/relations", post(relations))
        .route_layer(middleware::from_fn_with_state(state.clone(), limit));
    Router::new()
        .route("/", get(page::index))
        .route("/static/app.js", get(page::script))
        .route("/static/style.css", get(page::style))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(())
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The OpenAPI document of the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "odqa",
        description = "Korean open-domain question answering: retrieval over Korean Wikipedia and a span reader. Errors are `{\"error\": {\"code\", \"message\"}}`; every response carries `x-request-id`."
    ),
    paths(ask, search, read, relations, healthz, readyz, metrics, openapi),
    components(schemas(
        AskRequest,
        AskResponse,
        SearchRequest,
        SearchResponse,
        ReadRequest,
        ReadResponse,
        RelationsRequest,
        RelationsResponse,
        RelationScore,
        FoundOut,
        SpanOut,
        AnswerOut,
        EvidenceOut,
        HitOut,
        ReadAnswer,
        Timings,
        Mode,
        Status,
        ErrorBody,
        ErrorDetail
    )),
    tags(
        (name = "qa", description = "Question answering"),
        (name = "ops", description = "Health, readiness, metrics")
    )
)]
pub struct ApiDoc;

/// `axum::Json` whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(rejection.into()),
        }
    }
}

/// A held slot of the concurrency limit, shared with blocking work so the
/// slot stays taken until that work ends (even after a timeout).
#[derive(Clone)]
struct Permit(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

fn request_span(req: &Request<Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
}

/// Counts and times every request and writes one access log line.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().to_string();
    let metrics = state.metrics();
    metrics.in_flight.inc();
    // Dropped on every path out, including a cancelled (disconnected) request.
    struct InFlight<'a>(&'a prometheus::IntGauge);
    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    let _in_flight = InFlight(&metrics.in_flight);
    let started = Instant::now();
    let response = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let code = status.to_string();
    metrics
        .requests
        .with_label_values(&[route.as_str(), method.as_str(), code.as_str()])
        .inc();
    metrics
        .latency
        .with_label_values(&[route.as_str(), code.as_str()])
        .observe(seconds);
    tracing::info!(
        target: "odqa_serve::access",
        route = %route,
        status,
        latency_ms = seconds * 1e3,
        "served"
    );
    response
}

/// The API's concurrency limit (503 + `Retry-After` when no slot frees up
/// within the admission wait) and per-request timeout (504).
async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let limits = &state.config().limits;
    let limiter = Arc::clone(state.limiter());
    let admitted = match limiter.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) if !limits.admission_wait.is_zero() => {
            tokio::time::timeout(limits.admission_wait, limiter.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        }
        Err(_) => None,
    };
    let permit = match admitted {
        Some(permit) => permit,
        None => {
            state
                .metrics()
                .rejected
                .with_label_values(&["overloaded"])
                .inc();
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                format!(
                    "{} requests are in flight, the limit; retry later",
                    limits.max_concurrency
                ),
            )
            .retry_after(limits.retry_after_s)
            .into_response();
        }
    };
    // Held here until the response (or the timeout), and by blocking work
    // the handler started until that work ends.
    let permit = Permit(Arc::new(permit));
    req.extensions_mut().insert(permit.clone());
    let outcome = tokio::time::timeout(limits.request_timeout, next.run(req)).await;
    drop(permit);
    match outcome {
        Ok(response) => response,
        Err(_) => {
            state
                .metrics()
                .rejected
                .with_label_values(&["timeout"])
                .inc();
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "the request took longer than {} ms",
                    limits.request_timeout.as_millis()
                ),
            )
            .into_response()
        }
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("the server panicked on this request").into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /openapi.json",
    )
}

/// Runs `work` on the blocking pool, holding `permit` until it ends.
async fn blocking<T: Send + 'static>(
    permit: Option<Extension<Permit>>,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?
}

fn ms(seconds: f64) -> f64 {
    (seconds * 1e3 * 1000.0).round() / 1000.0
}

#[utoipa::path(
    post,
    path = "/v1/ask",
    tag = "qa",
    request_body = AskRequest,
    responses(
        (status = 200, description = "Answers with their evidence and the passages read", body = AskResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Wrong types or values out of range", body = ErrorBody),
        (status = 503, description = "Loading, or too many requests in flight (see Retry-After)", body = ErrorBody),
        (status = 504, description = "Took longer than the request timeout", body = ErrorBody)
    )
)]
async fn ask(
    State(state): State<AppState>,
    permit: Option<Extension<Permit>>,
    ApiJson(req): ApiJson<AskRequest>,
) -> Result<Json<AskResponse>, ApiError> {
    let started = Instant::now();
    let config = state.config();
    let question = check_question(&req.question, "question", &config.limits)?;
    let options = AskOptions {
        top_k: check_top_k(req.top_k, config.defaults.top_k, &config.limits)?,
        answers: check_answers(req.answers, config.defaults.answers, &config.limits)?,
        retrieval_weight: check_weight(req.retrieval_weight, config.defaults.retrieval_weight)?,
        no_answer_threshold: check_threshold(
            req.no_answer_threshold,
            config.defaults.no_answer_threshold,
        )?,
        early_stop: req.early_stop.unwrap_or(config.defaults.early_stop),
        batch_windows: odqa_pipeline::DEFAULT_BATCH_WINDOWS,
    };
    let engine = state.engine()?;
    let mode = engine.mode(req.mode)?;
    // Reading starts with the first batch of passages (about a window each).
    let first_batch = options.top_k.min(options.batch_windows);
    let deadline = admit(&state, &engine, started, first_batch).await?;
    let pipeline = Arc::clone(&engine.pipeline);
    let q = question.clone();
    // One library call: retrieve, window, read through the queue in
    // retrieval order with early stopping, fuse, merge.
    let (result, queued) = blocking(permit, move || {
        let (result, queued) = RequestScope::run(deadline, || pipeline.ask_in(&q, &options, mode));
        Ok((result?, queued))
    })
    .await
    .inspect_err(|e| count_refusal(&state, e))?;
    let metrics = state.metrics();
    let t = &result.timings;
    metrics.stage("retrieve", t.retrieve_ms / 1e3);
    metrics.stage("tokenize", t.tokenize_ms / 1e3);
    let merge_started = Instant::now();
    let answers = result
        .answers
        .iter()
        .map(|a| AnswerOut::new(a, &result.hits))
        .collect();
    metrics.stage("merge", merge_started.elapsed().as_secs_f64());
    Ok(Json(AskResponse {
        question,
        mode: mode.into(),
        answers,
        no_answer: result.no_answer,
        no_answer_score: result.no_answer_score,
        hits: HitOut::list(&result.hits),
        timings: Timings {
            total_ms: ms(started.elapsed().as_secs_f64()),
            retrieve_ms: Some(ms(t.retrieve_ms / 1e3)),
            tokenize_ms: Some(ms(t.tokenize_ms / 1e3)),
            queue_ms: Some(ms(queued.queue_s)),
            inference_ms: Some(ms(queued.inference_s)),
            windows: Some(t.windows),
            batches: Some(queued.batches),
        },
    }))
}

/// The deadline of a request that started at `started`, or 503 when the
/// reader's queue already holds more work than that leaves time for (after
/// one more look once the admission wait has passed, as for the concurrency
/// limit: clients that retry without heeding `Retry-After` then do not
/// spin). The deadline falls a little before the request timeout, so that
/// work the queue cannot reach in time is refused (503) rather than cut off
/// by the timeout (504).
///
/// `windows`: about how many windows the request will queue first (its own
/// wait counts too); the exact count is checked again when they are queued.
async fn admit(
    state: &AppState,
    engine: &Engine,
    started: Instant,
    windows: usize,
) -> Result<Instant, ApiError> {
    let limits = &state.config().limits;
    let deadline = started + limits.request_timeout.mul_f64(0.95);
    let load = engine.queue.load();
    let mut verdict = load.admit_windows(windows, deadline);
    if verdict.is_err() && !limits.admission_wait.is_zero() {
        tokio::time::sleep(limits.admission_wait).await;
        verdict = load.admit_windows(windows, deadline);
    }
    verdict.map_err(|e| {
        let err = ApiError::from_queue(&e);
        count_refusal(state, &err);
        err
    })?;
    Ok(deadline)
}

/// Counts a 503 the queue gave as `overloaded` in the rejection metric.
fn count_refusal(state: &AppState, err: &ApiError) {
    if err.status == StatusCode::SERVICE_UNAVAILABLE && err.code == "overloaded" {
        state
            .metrics()
            .rejected
            .with_label_values(&["overloaded"])
            .inc();
    }
}

#[utoipa::path(
    post,
    path = "/v1/search",
    tag = "qa",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Passages, best first", body = SearchResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Wrong types or values out of range", body = ErrorBody),
        (status = 503, description = "Loading, or too many requests in flight", body = ErrorBody),
        (status = 504, description = "Took longer than the request timeout", body = ErrorBody)
    )
)]
async fn search(
    State(state): State<AppState>,
    permit: Option<Extension<Permit>>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let started = Instant::now();
    let config = state.config();
    let query = check_question(&req.query, "query", &config.limits)?;
    let top_k = check_top_k(req.top_k, config.defaults.top_k, &config.limits)?;
    let engine = state.engine()?;
    let mode = engine.mode(req.mode)?;
    let pipeline = Arc::clone(&engine.pipeline);
    let q = query.clone();
    let (hits, retrieve_s) = blocking(permit, move || {
        let t = Instant::now();
        let hits = pipeline.retriever().retrieve_with(&q, top_k, mode)?;
        Ok((hits, t.elapsed().as_secs_f64()))
    })
    .await?;
    state.metrics().stage("retrieve", retrieve_s);
    Ok(Json(SearchResponse {
        query,
        mode: mode.into(),
        hits: HitOut::list(&hits),
        timings: Timings {
            total_ms: ms(started.elapsed().as_secs_f64()),
            retrieve_ms: Some(ms(retrieve_s)),
            ..Timings::default()
        },
    }))
}

#[utoipa::path(
    post,
    path = "/v1/read",
    tag = "qa",
    request_body = ReadRequest,
    responses(
        (status = 200, description = "Answer spans of the context", body = ReadResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Wrong types, empty or oversized fields", body = ErrorBody),
        (status = 503, description = "Loading, or too many requests in flight", body = ErrorBody),
        (status = 504, description = "Took longer than the request timeout", body = ErrorBody)
    )
)]
async fn read(
    State(state): State<AppState>,
    permit: Option<Extension<Permit>>,
    ApiJson(req): ApiJson<ReadRequest>,
) -> Result<Json<ReadResponse>, ApiError> {
    let started = Instant::now();
    let limits = &state.config().limits;
    let question = check_question(&req.question, "question", limits)?;
    check_context(&req.context, "context", limits)?;
    let engine = state.engine()?;
    let deadline = admit(&state, &engine, started, 1).await?;
    let pipeline = Arc::clone(&engine.pipeline);
    let q = question.clone();
    let context = req.context;
    let (read, tokenize_s, queued) = blocking(permit, move || {
        let (read, queued) = RequestScope::run(deadline, || {
            let t = Instant::now();
            let reader = pipeline.reader();
            let windows = reader.windows(&q, &[context.as_str()])?;
            let tokenize_s = t.elapsed().as_secs_f64();
            let spans = reader.score(&windows)?;
            let read = reader.merge(&[context.as_str()], &spans, 0.0)?;
            Ok::<_, ApiError>((read, tokenize_s))
        });
        let (read, tokenize_s) = read?;
        Ok((read, tokenize_s, queued))
    })
    .await
    .inspect_err(|e| count_refusal(&state, e))?;
    state.metrics().stage("tokenize", tokenize_s);
    Ok(Json(ReadResponse {
        question,
        answers: read
            .answers
            .iter()
            .map(|a| ReadAnswer {
                text: a.text.clone(),
                score: a.score,
                char_start: a.char_start,
                char_end: a.char_end,
            })
            .collect(),
        no_answer_score: read.no_answer_score,
        timings: Timings {
            total_ms: ms(started.elapsed().as_secs_f64()),
            tokenize_ms: Some(ms(tokenize_s)),
            queue_ms: Some(ms(queued.queue_s)),
            inference_ms: Some(ms(queued.inference_s)),
            windows: Some(read.windows),
            batches: Some(queued.batches),
            ..Timings::default()
        },
    }))
}

#[utoipa::path(
    post,
    path = "/v1/relations",
    tag = "qa",
    request_body = RelationsRequest,
    responses(
        (status = 200, description = "The relation of subject and object, or the subject's relations found in the sentence", body = RelationsResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Wrong types, empty or oversized fields, a subject or object not in the sentence", body = ErrorBody),
        (status = 501, description = "The loaded reader cannot classify relations", body = ErrorBody),
        (status = 503, description = "Loading, or too many requests in flight", body = ErrorBody),
        (status = 504, description = "Took longer than the request timeout", body = ErrorBody)
    )
)]
async fn relations(
    State(state): State<AppState>,
    permit: Option<Extension<Permit>>,
    ApiJson(req): ApiJson<RelationsRequest>,
) -> Result<Json<RelationsResponse>, ApiError> {
    let started = Instant::now();
    let limits = &state.config().limits;
    check_context(&req.sentence, "sentence", limits)?;
    let subject = check_question(&req.subject, "subject", limits)?;
    let object = match &req.object {
        Some(object) => Some(check_question(object, "object", limits)?),
        None => None,
    };
    let engine = state.engine()?;
    if let Err(why) = &engine.relations {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            format!("relation classification is unavailable with this reader: {why}"),
        ));
    }
    // 11–29 short question windows, about one passage window's tokens.
    let deadline = admit(&state, &engine, started, 1).await?;
    let RelationsRequest {
        sentence,
        subject_type,
        threshold,
        ..
    } = req;
    let response = blocking(permit, move || {
        let classifier = engine
            .relations
            .as_ref()
            .map_err(|why| ApiError::internal(why.clone()))?;
        RequestScope::run(deadline, || {
            crate::relations::run(
                classifier,
                sentence,
                subject,
                object,
                subject_type,
                threshold,
            )
        })
        .0
    })
    .await
    .inspect_err(|e| count_refusal(&state, e))?;
    state.metrics().stage("relations", response.total_ms / 1e3);
    Ok(Json(response))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses((status = 200, description = "The process is up", body = Status))
)]
async fn healthz(State(state): State<AppState>) -> Json<Status> {
    Json(Status {
        status: "ok".into(),
        detail: None,
        uptime_s: state.uptime_s(),
    })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Indexes and models are loaded", body = Status),
        (status = 503, description = "Still loading, or loading failed", body = Status)
    )
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Status>) {
    let (code, status, detail) = if state.is_ready() {
        (StatusCode::OK, "ready", None)
    } else if let Some(why) = state.failure() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "failed",
            Some(why.to_string()),
        )
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading", None)
    };
    (
        code,
        Json(Status {
            status: status.into(),
            detail,
            uptime_s: state.uptime_s(),
        }),
    )
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"))
)]
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state
        .metrics()
        .render()
        .map_err(|e| ApiError::internal(format!("rendering metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
async fn openapi() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.clone()).into_response()
}
