//! Prometheus metrics, exposed as text at `GET /metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Latency buckets in seconds: 0.5 ms to 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0,
    1.5, 2.5, 4.0, 6.0, 10.0, 15.0, 20.0, 30.0, 60.0,
];

/// Every metric the server keeps, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route (the matched pattern, `unmatched` for 404s),
    /// method and status.
    pub requests: IntCounterVec,
    /// Request latency by route and status.
    pub latency: HistogramVec,
    /// Time per stage of the API: `retrieve`, `tokenize`, `queue` (waiting
    /// in the reader's queue for a first forward pass), `inference` (one
    /// forward pass of the queue), `merge` (building the answer),
    /// `relations` (a whole `/v1/relations` request).
    pub stages: HistogramVec,
    /// Windows per forward pass.
    pub batch_windows: Histogram,
    /// Requests sharing a forward pass.
    pub batch_requests: Histogram,
    /// API requests refused or cut short, by reason (`overloaded`: the
    /// concurrency limit, the queue's estimated wait, or still queued at the
    /// deadline; `timeout`, `not_ready`).
    pub rejected: IntCounterVec,
    /// Requests being served now.
    pub in_flight: IntGauge,
    /// 1 once indexes and models are loaded.
    pub ready: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("odqa".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and status",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "status"],
        )?;
        let stages = HistogramVec::new(
            HistogramOpts::new(
                "stage_duration_seconds",
                "Time per stage: retrieve, tokenize, queue, inference (per batch), merge, relations",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["stage"],
        )?;
        let batch_windows = Histogram::with_opts(
            HistogramOpts::new("reader_batch_windows", "Windows per reader forward pass")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        )?;
        let batch_requests = Histogram::with_opts(
            HistogramOpts::new(
                "reader_batch_requests",
                "Requests whose windows share a reader forward pass",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0]),
        )?;
        let rejected = IntCounterVec::new(
            Opts::new(
                "rejected_total",
                "API requests refused or cut short, by reason",
            ),
            &["reason"],
        )?;
        let in_flight = IntGauge::new("http_in_flight", "HTTP requests being served")?;
        let ready = IntGauge::new("ready", "1 once indexes and models are loaded")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(stages.clone()))?;
        registry.register(Box::new(batch_windows.clone()))?;
        registry.register(Box::new(batch_requests.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(ready.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            stages,
            batch_windows,
            batch_requests,
            rejected,
            in_flight,
            ready,
        })
    }

    /// Records one stage duration in seconds.
    pub fn stage(&self, stage: &str, seconds: f64) {
        self.stages.with_label_values(&[stage]).observe(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
