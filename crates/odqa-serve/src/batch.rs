//! Cross-request batching of reader work.
//!
//! Requests hand their windows to one queue; a worker thread (off the async
//! executor) takes windows from the queue in arrival order, up to
//! [`BatchConfig::max_windows`] per forward pass, waiting at most
//! [`BatchConfig::max_wait`] for more when a pass is not full. Windows of
//! several requests share a pass, and a request with more windows than a
//! pass holds spreads over several. Each request gets its spans back, in
//! its windows' order, through a oneshot channel. Requests whose caller has
//! gone (timed out, disconnected) are dropped before their windows run.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;

use odqa_pipeline::Pipeline;
use odqa_reader::{Window, WindowSpans};
use tokio::sync::oneshot;

use crate::config::BatchConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// One request's windows, scored.
#[derive(Debug, Default)]
pub(crate) struct Scored {
    /// One per window, in the order given.
    pub spans: Vec<WindowSpans>,
    /// From queueing until the first window entered a forward pass.
    pub queue_s: f64,
    /// Forward passes (shared ones counted whole) holding its windows.
    pub inference_s: f64,
    pub batches: usize,
}

struct Job {
    windows: VecDeque<Window>,
    total: usize,
    spans: Vec<WindowSpans>,
    enqueued: Instant,
    first_batch: Option<Instant>,
    inference_s: f64,
    batches: usize,
    failed: bool,
    reply: oneshot::Sender<Result<Scored, String>>,
}

/// The queue's sending end; the worker stops when it is dropped.
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
}

impl Batcher {
    pub fn start(
        pipeline: Arc<Pipeline>,
        config: BatchConfig,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("odqa-reader-batch".into())
            .spawn(move || Worker::new(pipeline, config, metrics).run(rx))?;
        Ok(Batcher { tx })
    }

    /// Scores `windows` together with whatever else is waiting.
    pub async fn score(&self, windows: Vec<Window>) -> Result<Scored, ApiError> {
        if windows.is_empty() {
            return Ok(Scored::default());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            total: windows.len(),
            spans: Vec::with_capacity(windows.len()),
            windows: windows.into(),
            enqueued: Instant::now(),
            first_batch: None,
            inference_s: 0.0,
            batches: 0,
            failed: false,
            reply,
        };
        self.tx
            .send(job)
            .map_err(|_| ApiError::internal("the reader worker has stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the reader worker dropped the request"))?
            .map_err(|e| ApiError::internal(format!("reading failed: {e}")))
    }
}

struct Worker {
    pipeline: Arc<Pipeline>,
    config: BatchConfig,
    metrics: Metrics,
    pending: VecDeque<Job>,
}

impl Worker {
    fn new(pipeline: Arc<Pipeline>, config: BatchConfig, metrics: Metrics) -> Self {
        Worker {
            pipeline,
            config,
            metrics,
            pending: VecDeque::new(),
        }
    }

    fn queued(&self) -> usize {
        self.pending.iter().map(|j| j.windows.len()).sum()
    }

    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut open = true;
        loop {
            if self.pending.is_empty() {
                if !open {
                    return;
                }
                match rx.recv() {
                    Ok(job) => self.pending.push_back(job),
                    Err(_) => return,
                }
            }
            let deadline = Instant::now() + self.config.max_wait;
            while open && self.queued() < self.config.max_windows {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // Take what has arrived already, without waiting.
                    match rx.try_recv() {
                        Ok(job) => {
                            self.pending.push_back(job);
                            continue;
                        }
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                }
                match rx.recv_timeout(left) {
                    Ok(job) => self.pending.push_back(job),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            }
            // Callers that timed out or went away: nobody reads their answer.
            self.pending.retain(|job| !job.reply.is_closed());
            if !self.pending.is_empty() {
                self.run_batch();
            }
        }
    }

    /// One forward pass over the oldest waiting windows, then answers
    /// every request that is complete.
    fn run_batch(&mut self) {
        let now = Instant::now();
        let max = self.config.max_windows;
        let mut batch: Vec<Window> = Vec::with_capacity(max);
        let mut owners: Vec<usize> = Vec::with_capacity(max);
        for (i, job) in self.pending.iter_mut().enumerate() {
            if batch.len() >= max {
                break;
            }
            if job.first_batch.is_none() {
                job.first_batch = Some(now);
                self.metrics
                    .stage("queue", now.duration_since(job.enqueued).as_secs_f64());
            }
            while batch.len() < max {
                match job.windows.pop_front() {
                    Some(w) => {
                        batch.push(w);
                        owners.push(i);
                    }
                    None => break,
                }
            }
        }
        let mut involved = owners.clone();
        involved.dedup();
        let started = Instant::now();
        let reader = self.pipeline.reader();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| reader.score(&batch)))
            .unwrap_or_else(|_| {
                Err(odqa_pipeline::PipelineError::InvalidOption(
                    "the reader panicked on this batch".into(),
                ))
            });
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.stage("inference", seconds);
        self.metrics.batch_windows.observe(batch.len() as f64);
        self.metrics.batch_requests.observe(involved.len() as f64);
        tracing::debug!(
            windows = batch.len(),
            requests = involved.len(),
            ms = seconds * 1e3,
            "reader batch"
        );
        for &i in &involved {
            if let Some(job) = self.pending.get_mut(i) {
                job.inference_s += seconds;
                job.batches += 1;
            }
        }
        match result {
            Ok(spans) if spans.len() == owners.len() => {
                for (span, &i) in spans.into_iter().zip(&owners) {
                    if let Some(job) = self.pending.get_mut(i) {
                        job.spans.push(span);
                    }
                }
            }
            Ok(spans) => self.fail(
                &involved,
                &format!("{} spans for {} windows", spans.len(), owners.len()),
            ),
            Err(err) => self.fail(&involved, &err.to_string()),
        }
        self.answer_finished();
    }

    fn fail(&mut self, jobs: &[usize], message: &str) {
        tracing::error!(
            requests = jobs.len(),
            error = message,
            "reader batch failed"
        );
        for &i in jobs {
            if let Some(job) = self.pending.get_mut(i) {
                job.failed = true;
            }
        }
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for job in self.pending.drain(..) {
            if job.failed {
                let _ = job.reply.send(Err(message.to_string()));
            } else {
                kept.push_back(job);
            }
        }
        self.pending = kept;
    }

    fn answer_finished(&mut self) {
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for job in self.pending.drain(..) {
            if job.windows.is_empty() && job.spans.len() == job.total {
                let queue_s = job
                    .first_batch
                    .map_or(0.0, |t| t.duration_since(job.enqueued).as_secs_f64());
                // The caller may have gone meanwhile; nothing to do then.
                let _ = job.reply.send(Ok(Scored {
                    spans: job.spans,
                    queue_s,
                    inference_s: job.inference_s,
                    batches: job.batches,
                }));
            } else {
                kept.push_back(job);
            }
        }
        self.pending = kept;
    }
}
