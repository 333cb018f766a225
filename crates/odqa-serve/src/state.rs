//! What every handler shares: settings, the loaded pipeline (once it is),
//! the reader's batch queue, the concurrency limit and the metrics.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::http::StatusCode;
use odqa_pipeline::{Pipeline, RetrievalMode};
use tokio::sync::Semaphore;

use crate::api::Mode;
use crate::config::ServeConfig;
use crate::error::{ApiError, ServeError};
use crate::metrics::Metrics;
use crate::queue::QueuedModel;
use crate::relations::{classifier, Classifier};

/// Indexes and models, loaded.
pub(crate) struct Engine {
    /// The loaded pipeline with its reader's model behind the queue.
    pub pipeline: Arc<Pipeline<QueuedModel>>,
    /// The queue (for admission; the same one the pipeline reads through).
    pub queue: QueuedModel,
    /// Relation classification over the same reader, or why not.
    pub relations: Result<Classifier, String>,
}

impl Engine {
    /// The requested retrieval mode, or the server's; dense and hybrid only
    /// with a dense index.
    pub fn mode(&self, requested: Option<Mode>) -> Result<RetrievalMode, ApiError> {
        let retriever = self.pipeline.retriever();
        let mode = requested.map_or(retriever.options().mode, RetrievalMode::from);
        if mode != RetrievalMode::Bm25 && !retriever.has_dense() {
            return Err(ApiError::invalid(
                "mode_unavailable",
                format!(
                    "this server has no dense index, so mode \"{}\" is unavailable; use \"bm25\" \
                     (or start the server with --mode dense|hybrid over an index with a dense part)",
                    Mode::from(mode).as_str()
                ),
            ));
        }
        Ok(mode)
    }
}

/// The state behind every route; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    config: ServeConfig,
    engine: OnceLock<Arc<Engine>>,
    failure: OnceLock<String>,
    metrics: Metrics,
    limiter: Arc<Semaphore>,
    started: Instant,
}

impl AppState {
    pub fn new(config: ServeConfig) -> Result<Self, ServeError> {
        config.validate()?;
        let metrics = Metrics::new().map_err(|e| ServeError::Config(format!("metrics: {e}")))?;
        Ok(AppState {
            inner: Arc::new(Shared {
                limiter: Arc::new(Semaphore::new(config.limits.max_concurrency)),
                config,
                engine: OnceLock::new(),
                failure: OnceLock::new(),
                metrics,
                started: Instant::now(),
            }),
        })
    }

    pub fn config(&self) -> &ServeConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Whether indexes and models are loaded.
    pub fn is_ready(&self) -> bool {
        self.inner.engine.get().is_some()
    }

    /// Why loading failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.inner.failure.get().map(String::as_str)
    }

    pub fn uptime_s(&self) -> f64 {
        self.inner.started.elapsed().as_secs_f64()
    }

    pub(crate) fn limiter(&self) -> &Arc<Semaphore> {
        &self.inner.limiter
    }

    /// The loaded engine, or 503 `not_ready`.
    pub(crate) fn engine(&self) -> Result<Arc<Engine>, ApiError> {
        match self.inner.engine.get() {
            Some(engine) => Ok(Arc::clone(engine)),
            None => {
                self.metrics()
                    .rejected
                    .with_label_values(&["not_ready"])
                    .inc();
                let message = match self.failure() {
                    Some(why) => format!("loading failed: {why}"),
                    None => "indexes and models are still loading; see /readyz".to_string(),
                };
                Err(
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
                        .retry_after(self.config().limits.retry_after_s),
                )
            }
        }
    }

    /// Puts the queue in front of `pipeline`'s model (its worker thread
    /// owns the model from now on) and turns ready.
    pub(crate) fn install(&self, pipeline: Pipeline) -> Result<(), ServeError> {
        let (batching, metrics) = (self.config().batching, self.metrics().clone());
        let pipeline = pipeline
            .try_map_model(|model| QueuedModel::start(model, batching, metrics))
            .map_err(ServeError::Worker)?;
        let queue = pipeline.reader().model().clone();
        let pipeline = Arc::new(pipeline);
        let relations = classifier(&pipeline).map_err(|e| {
            tracing::warn!(error = %e, "relation classification is unavailable");
            e.to_string()
        });
        if self
            .inner
            .engine
            .set(Arc::new(Engine {
                pipeline,
                queue,
                relations,
            }))
            .is_err()
        {
            return Err(ServeError::Config("the pipeline was loaded twice".into()));
        }
        self.metrics().ready.set(1);
        Ok(())
    }

    pub(crate) fn fail(&self, why: String) {
        let _ = self.inner.failure.set(why);
    }
}
