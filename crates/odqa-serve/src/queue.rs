//! The reader's batching queue, as a [`SpanModel`] in front of the loaded
//! model.
//!
//! The pipeline, the reader and the relation classifier run on blocking
//! threads, one per request, exactly as they do in the command line tools;
//! their model is a [`QueuedModel`]. Its `span_logits` hands the windows to
//! one queue and blocks until they are scored. A worker thread owns the
//! real model and takes windows from the queue in arrival order into
//! forward passes of at most [`BatchConfig::max_windows`] windows and
//! [`BatchConfig::max_tokens`] padded tokens, waiting at most
//! [`BatchConfig::max_wait`] for company when a pass is not full. Windows
//! of several requests share a pass; a request with more than a pass holds
//! spreads over several.
//!
//! **Admission knows the queue.** The worker measures its token rate; a
//! request whose windows, behind the tokens already queued, could not be
//! scored before its deadline ([`RequestScope`]) is refused at once
//! ([`QueueError::Overloaded`], 503 with `Retry-After`) instead of waiting
//! into a timeout; a caller stops waiting at its deadline even while a pass
//! holding its windows runs long, and windows whose deadline would pass
//! before a pass could end are dropped unscored ([`QueueError::Expired`],
//! also a 503).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use odqa_reader::{ReaderError, SpanLogits, SpanModel, Window};
use tokenizers::Tokenizer;

use crate::config::BatchConfig;
use crate::metrics::Metrics;

/// Why the queue did not score a request's windows.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The estimated wait (queued tokens ÷ measured token rate) goes past
    /// the request's deadline.
    #[error(
        "the reader is overloaded: about {wait_s:.1} s of queued work, more than this request's \
         {budget_s:.1} s left"
    )]
    Overloaded { wait_s: f64, budget_s: f64 },
    /// The request's deadline came before its windows were scored.
    #[error("the reader queue could not score this request before its deadline")]
    Expired,
    /// The worker has stopped.
    #[error("the reader worker has stopped")]
    Stopped,
    /// The forward pass failed (or panicked).
    #[error("reading failed: {0}")]
    Failed(String),
}

impl QueueError {
    /// The queue error inside a reader error, if that is what it is.
    pub fn inside(err: &ReaderError) -> Option<&QueueError> {
        match err {
            ReaderError::Model(inner) => inner.downcast_ref::<QueueError>(),
            _ => None,
        }
    }

    /// Seconds a client should wait before retrying (at least 1).
    pub fn retry_after_s(&self) -> u64 {
        match self {
            QueueError::Overloaded { wait_s, .. } => (wait_s.ceil() as u64).max(1),
            _ => 1,
        }
    }
}

/// What one request's windows cost in the queue, summed over its calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct QueueStats {
    /// From queueing until the first window entered a forward pass.
    pub queue_s: f64,
    /// Forward passes (shared ones counted whole) holding its windows.
    pub inference_s: f64,
    pub batches: usize,
}

thread_local! {
    /// The request this blocking thread is working for: its deadline and
    /// what its queue calls cost. Requests run one per blocking thread, so
    /// the model seam needs no extra parameter for it.
    static SCOPE: RefCell<Option<(Instant, QueueStats)>> = const { RefCell::new(None) };
}

/// Runs `work` (on a blocking thread) on behalf of a request that must be
/// answered by `deadline`; returns what its queue calls cost.
pub(crate) struct RequestScope;

impl RequestScope {
    pub fn run<T>(deadline: Instant, work: impl FnOnce() -> T) -> (T, QueueStats) {
        SCOPE.with(|s| *s.borrow_mut() = Some((deadline, QueueStats::default())));
        let out = work();
        let stats = SCOPE.with(|s| s.borrow_mut().take().map(|(_, st)| st));
        (out, stats.unwrap_or_default())
    }

    fn deadline() -> Option<Instant> {
        SCOPE.with(|s| s.borrow().as_ref().map(|(d, _)| *d))
    }

    fn add(stats: QueueStats) {
        SCOPE.with(|s| {
            if let Some((_, st)) = s.borrow_mut().as_mut() {
                st.queue_s += stats.queue_s;
                st.inference_s += stats.inference_s;
                st.batches += stats.batches;
            }
        });
    }
}

/// Work waiting in the queue and the worker's measured speed.
#[derive(Debug, Default)]
pub(crate) struct Load {
    /// Tokens of windows queued or in the pass that runs now.
    queued_tokens: AtomicUsize,
    /// Tokens per second of the last passes (an `f64`'s bits; 0 until the
    /// first pass).
    tokens_per_s: AtomicU64,
    /// Seconds of the last passes (an `f64`'s bits, smoothed like the rate).
    pass_s: AtomicU64,
    /// Tokens per window of the last passes (an `f64`'s bits, smoothed).
    window_tokens: AtomicU64,
}

impl Load {
    /// How long `extra` more tokens would wait behind the queued ones
    /// (including their own scoring); `None` before any pass was measured.
    pub fn estimated_wait(&self, extra: usize) -> Option<Duration> {
        let rate = f64::from_bits(self.tokens_per_s.load(Ordering::Relaxed));
        if rate <= 0.0 {
            return None;
        }
        let tokens = self.queued_tokens.load(Ordering::Relaxed) + extra;
        Some(Duration::from_secs_f64(tokens as f64 / rate))
    }

    /// [`QueueError::Overloaded`] when `extra` tokens could not be scored
    /// before `deadline`.
    pub fn admit(&self, extra: usize, deadline: Instant) -> Result<(), QueueError> {
        let Some(wait) = self.estimated_wait(extra) else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if wait > left {
            return Err(QueueError::Overloaded {
                wait_s: wait.as_secs_f64(),
                budget_s: left.as_secs_f64(),
            });
        }
        Ok(())
    }

    /// [`Load::admit`] for a request that will queue about `windows`
    /// windows of the usual length (known once a pass has run).
    pub fn admit_windows(&self, windows: usize, deadline: Instant) -> Result<(), QueueError> {
        let per_window = f64::from_bits(self.window_tokens.load(Ordering::Relaxed));
        self.admit((windows as f64 * per_window) as usize, deadline)
    }

    /// How long a pass takes (`None` before the first).
    fn pass_time(&self) -> Option<Duration> {
        let s = f64::from_bits(self.pass_s.load(Ordering::Relaxed));
        (s > 0.0).then(|| Duration::from_secs_f64(s))
    }

    fn observe_pass(&self, windows: usize, tokens: usize, seconds: f64) {
        if windows == 0 || tokens == 0 || seconds <= 0.0 {
            return;
        }
        // Smoothed: one odd pass (a cold cache, a long window) moves them a
        // little, a change of load moves them within a few passes.
        let smooth = |cell: &AtomicU64, measured: f64| {
            let old = f64::from_bits(cell.load(Ordering::Relaxed));
            let new = if old > 0.0 {
                0.7 * old + 0.3 * measured
            } else {
                measured
            };
            cell.store(new.to_bits(), Ordering::Relaxed);
        };
        smooth(&self.tokens_per_s, tokens as f64 / seconds);
        smooth(&self.pass_s, seconds);
        smooth(&self.window_tokens, tokens as f64 / windows as f64);
    }
}

/// The queue's sending end with the model's tokenizer; cheap to clone. The
/// worker stops when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct QueuedModel {
    shared: Arc<Shared>,
}

struct Shared {
    tx: mpsc::Sender<Job>,
    /// The worker's model, for its tokenizer only (one copy of it: the
    /// tokenizer of multilingual-e5-small holds 250k pieces).
    model: Arc<dyn SpanModel>,
    load: Arc<Load>,
}

type Reply = mpsc::SyncSender<Result<(SpanLogits, QueueStats), QueueError>>;

struct Job {
    windows: VecDeque<Window>,
    /// Per window given, in order: its start and end logits once scored.
    rows: Vec<(Vec<f32>, Vec<f32>)>,
    total: usize,
    seq_len: usize,
    deadline: Option<Instant>,
    enqueued: Instant,
    first_batch: Option<Instant>,
    inference_s: f64,
    batches: usize,
    reply: Reply,
    /// Set by the caller when it stops waiting (its deadline passed).
    abandoned: Arc<AtomicBool>,
}

impl QueuedModel {
    /// Starts the worker thread that owns `model`.
    pub fn start<M: SpanModel + 'static>(
        model: M,
        config: BatchConfig,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let load = Arc::new(Load::default());
        let model = Arc::new(model);
        let worker = Worker {
            model: Arc::clone(&model),
            config,
            metrics,
            load: Arc::clone(&load),
            pending: VecDeque::new(),
        };
        std::thread::Builder::new()
            .name("odqa-reader-queue".into())
            .spawn(move || worker.run(rx))?;
        Ok(QueuedModel {
            shared: Arc::new(Shared { tx, model, load }),
        })
    }

    pub fn load(&self) -> &Load {
        &self.shared.load
    }

    fn score(&self, windows: &[Window]) -> Result<SpanLogits, QueueError> {
        let seq_len = windows.iter().map(Window::len).max().unwrap_or(0);
        if windows.is_empty() {
            return Ok(SpanLogits {
                start: Vec::new(),
                end: Vec::new(),
                batch: 0,
                seq_len: 0,
            });
        }
        let tokens: usize = windows.iter().map(Window::len).sum();
        let deadline = RequestScope::deadline();
        if let Some(deadline) = deadline {
            self.shared.load.admit(tokens, deadline)?;
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let abandoned = Arc::new(AtomicBool::new(false));
        let job = Job {
            windows: windows.iter().cloned().collect(),
            rows: Vec::with_capacity(windows.len()),
            total: windows.len(),
            seq_len,
            deadline,
            enqueued: Instant::now(),
            first_batch: None,
            inference_s: 0.0,
            batches: 0,
            reply,
            abandoned: Arc::clone(&abandoned),
        };
        self.shared
            .load
            .queued_tokens
            .fetch_add(tokens, Ordering::Relaxed);
        if self.shared.tx.send(job).is_err() {
            self.shared
                .load
                .queued_tokens
                .fetch_sub(tokens, Ordering::Relaxed);
            return Err(QueueError::Stopped);
        }
        // Waits at most until the deadline, even when a pass holding these
        // windows runs long: the request then answers 503 in its time
        // instead of running into the timeout.
        let outcome = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                answer.recv_timeout(left).map_err(|e| match e {
                    RecvTimeoutError::Timeout => QueueError::Expired,
                    RecvTimeoutError::Disconnected => QueueError::Stopped,
                })
            }
            None => answer.recv().map_err(|_| QueueError::Stopped),
        };
        let (logits, stats) = match outcome {
            Ok(result) => result?,
            Err(e) => {
                abandoned.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        RequestScope::add(stats);
        Ok(logits)
    }
}

impl SpanModel for QueuedModel {
    fn tokenizer(&self) -> &Tokenizer {
        self.shared.model.tokenizer()
    }

    fn span_logits(&self, windows: &[Window]) -> odqa_reader::Result<SpanLogits> {
        self.score(windows)
            .map_err(|e| ReaderError::Model(Box::new(e)))
    }
}

struct Worker<M> {
    model: Arc<M>,
    config: BatchConfig,
    metrics: Metrics,
    load: Arc<Load>,
    pending: VecDeque<Job>,
}

impl<M: SpanModel> Worker<M> {
    fn queued_windows(&self) -> usize {
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
            while open && self.queued_windows() < self.config.max_windows {
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
            self.drop_expired();
            if !self.pending.is_empty() {
                self.run_pass();
            }
        }
    }

    /// Jobs whose caller stopped waiting, or whose deadline comes before a
    /// pass started now would end: nobody reads their answer in time, so their
    /// windows do not run (and the request gets a 503, not a timeout).
    fn drop_expired(&mut self) {
        let now = Instant::now() + self.load.pass_time().unwrap_or_default();
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for job in self.pending.drain(..) {
            let late = job.deadline.is_some_and(|d| d <= now);
            if late || job.abandoned.load(Ordering::Relaxed) {
                let tokens: usize = job.windows.iter().map(Window::len).sum();
                self.load.queued_tokens.fetch_sub(tokens, Ordering::Relaxed);
                let _ = job.reply.send(Err(QueueError::Expired));
            } else {
                kept.push_back(job);
            }
        }
        self.pending = kept;
    }

    /// The oldest waiting windows that fit one pass: at most `max_windows`,
    /// and at most `max_tokens` once padded to the longest (the first
    /// window always goes in).
    fn take_pass(&mut self, now: Instant) -> (Vec<Window>, Vec<usize>) {
        let (max_windows, max_tokens) = (self.config.max_windows, self.config.max_tokens);
        let mut pass: Vec<Window> = Vec::with_capacity(max_windows);
        let mut owners: Vec<usize> = Vec::with_capacity(max_windows);
        let mut longest = 0;
        'jobs: for (i, job) in self.pending.iter_mut().enumerate() {
            while let Some(next) = job.windows.front() {
                let len = longest.max(next.len());
                let full = pass.len() >= max_windows || (pass.len() + 1) * len > max_tokens;
                if full && !pass.is_empty() {
                    break 'jobs;
                }
                if job.first_batch.is_none() {
                    job.first_batch = Some(now);
                    self.metrics
                        .stage("queue", now.duration_since(job.enqueued).as_secs_f64());
                }
                longest = len;
                if let Some(w) = job.windows.pop_front() {
                    pass.push(w);
                    owners.push(i);
                }
            }
        }
        (pass, owners)
    }

    /// One forward pass over the oldest waiting windows, then answers every
    /// request that is complete.
    fn run_pass(&mut self) {
        let (pass, owners) = self.take_pass(Instant::now());
        let mut involved = owners.clone();
        involved.dedup();
        let tokens: usize = pass.iter().map(Window::len).sum();
        let started = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.model.span_logits(&pass)))
            .unwrap_or_else(|_| {
                Err(ReaderError::Model(
                    "the reader panicked on this batch".into(),
                ))
            })
            .and_then(|logits| logits.check(pass.len()).map(|()| logits));
        let seconds = started.elapsed().as_secs_f64();
        self.load.queued_tokens.fetch_sub(tokens, Ordering::Relaxed);
        self.metrics.stage("inference", seconds);
        self.metrics.batch_windows.observe(pass.len() as f64);
        self.metrics.batch_requests.observe(involved.len() as f64);
        tracing::debug!(
            windows = pass.len(),
            tokens,
            requests = involved.len(),
            ms = seconds * 1e3,
            "reader pass"
        );
        for &i in &involved {
            if let Some(job) = self.pending.get_mut(i) {
                job.inference_s += seconds;
                job.batches += 1;
            }
        }
        match result {
            Ok(logits) => {
                self.load.observe_pass(pass.len(), tokens, seconds);
                for (j, (w, &i)) in pass.iter().zip(&owners).enumerate() {
                    let (start, end) = logits.row(j);
                    if let Some(job) = self.pending.get_mut(i) {
                        // The window's own positions; the job's padding is
                        // added when it is answered.
                        job.rows
                            .push((start[..w.len()].to_vec(), end[..w.len()].to_vec()));
                    }
                }
                self.answer_finished();
            }
            Err(err) => self.fail(&involved, &err.to_string()),
        }
    }

    fn fail(&mut self, jobs: &[usize], message: &str) {
        tracing::error!(requests = jobs.len(), error = message, "reader pass failed");
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for (i, job) in self.pending.drain(..).enumerate() {
            if jobs.contains(&i) {
                let tokens: usize = job.windows.iter().map(Window::len).sum();
                self.load.queued_tokens.fetch_sub(tokens, Ordering::Relaxed);
                let _ = job.reply.send(Err(QueueError::Failed(message.to_string())));
            } else {
                kept.push_back(job);
            }
        }
        self.pending = kept;
    }

    fn answer_finished(&mut self) {
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for job in self.pending.drain(..) {
            if !(job.windows.is_empty() && job.rows.len() == job.total) {
                kept.push_back(job);
                continue;
            }
            let seq_len = job.seq_len;
            let mut start = Vec::with_capacity(job.total * seq_len);
            let mut end = Vec::with_capacity(job.total * seq_len);
            for (s, e) in &job.rows {
                start.extend_from_slice(s);
                start.extend(std::iter::repeat_n(0.0, seq_len - s.len()));
                end.extend_from_slice(e);
                end.extend(std::iter::repeat_n(0.0, seq_len - e.len()));
            }
            let stats = QueueStats {
                queue_s: job
                    .first_batch
                    .map_or(0.0, |t| t.duration_since(job.enqueued).as_secs_f64()),
                inference_s: job.inference_s,
                batches: job.batches,
            };
            let logits = SpanLogits {
                start,
                end,
                batch: job.total,
                seq_len,
            };
            // The caller may have gone meanwhile; nothing to do then.
            let _ = job.reply.send(Ok((logits, stats)));
        }
        self.pending = kept;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use odqa_reader::testing::{char_wordpiece_tokenizer, TestStyle};
    use odqa_reader::{WindowConfig, Windower};

    use super::*;

    /// (windows, padded length) of each pass a model was given.
    type Passes = Arc<Mutex<Vec<(usize, usize)>>>;

    /// Every logit of a window is its first passage token id; records the
    /// passes it was given (windows, padded length) and sleeps `delay` in
    /// each.
    struct Echo {
        tokenizer: Tokenizer,
        passes: Passes,
        delay: Duration,
    }

    impl SpanModel for Echo {
        fn tokenizer(&self) -> &Tokenizer {
            &self.tokenizer
        }

        fn span_logits(&self, windows: &[Window]) -> odqa_reader::Result<SpanLogits> {
            std::thread::sleep(self.delay);
            let seq_len = windows.iter().map(Window::len).max().unwrap_or(0);
            self.passes.lock().unwrap().push((windows.len(), seq_len));
            let mut start = Vec::new();
            for w in windows {
                let id = w.input_ids[w.context_range.start] as f32;
                start.extend(std::iter::repeat_n(id, seq_len));
            }
            Ok(SpanLogits {
                end: start.clone(),
                start,
                batch: windows.len(),
                seq_len,
            })
        }
    }

    fn setup(config: BatchConfig, delay: Duration) -> (QueuedModel, Passes) {
        let tokenizer = char_wordpiece_tokenizer("가나다라마바사아자차", TestStyle::Bert).unwrap();
        let passes = Arc::new(Mutex::new(Vec::new()));
        let model = Echo {
            tokenizer,
            passes: Arc::clone(&passes),
            delay,
        };
        let queue = QueuedModel::start(model, config, Metrics::new().unwrap()).unwrap();
        (queue, passes)
    }

    fn windows(queue: &QueuedModel, passages: &[&str]) -> Vec<Window> {
        let cfg = WindowConfig {
            max_len: 16,
            doc_stride: 4,
            max_query_len: 4,
        };
        Windower::new(queue.tokenizer(), cfg)
            .unwrap()
            .windows("가나", passages)
            .unwrap()
    }

    fn first_logits(logits: &SpanLogits) -> Vec<f32> {
        (0..logits.batch).map(|i| logits.row(i).0[0]).collect()
    }

    #[test]
    fn concurrent_callers_share_passes_and_get_their_own_rows() {
        let config = BatchConfig {
            max_windows: 8,
            max_tokens: 1000,
            max_wait: Duration::from_millis(200),
        };
        let (queue, passes) = setup(config, Duration::ZERO);
        let a = windows(&queue, &["다라", "마바사"]);
        let b = windows(&queue, &["아자차"]);
        let want_a: Vec<f32> = a
            .iter()
            .map(|w| w.input_ids[w.context_range.start] as f32)
            .collect();
        let want_b: Vec<f32> = b
            .iter()
            .map(|w| w.input_ids[w.context_range.start] as f32)
            .collect();
        let (qa, qb) = (queue.clone(), queue.clone());
        let ta = std::thread::spawn(move || qa.span_logits(&a).unwrap());
        let tb = std::thread::spawn(move || qb.span_logits(&b).unwrap());
        let (la, lb) = (ta.join().unwrap(), tb.join().unwrap());
        assert_eq!(first_logits(&la), want_a);
        assert_eq!(first_logits(&lb), want_b);
        la.check(2).unwrap();
        lb.check(1).unwrap();
        // Both arrived within the wait: one pass of three windows.
        assert_eq!(passes.lock().unwrap().len(), 1);
        assert_eq!(passes.lock().unwrap()[0].0, 3);
    }

    #[test]
    fn passes_are_packed_to_the_token_budget() {
        let (queue, _) = setup(BatchConfig::default(), Duration::ZERO);
        let ws = windows(&queue, &["다라", "마바사", "아자차", "가나다"]);
        let longest = ws.iter().map(Window::len).max().unwrap();
        let config = BatchConfig {
            max_windows: 32,
            // Room for two windows of the longest length, not three.
            max_tokens: 2 * longest + 1,
            max_wait: Duration::from_millis(1),
        };
        let (queue, passes) = setup(config, Duration::ZERO);
        let logits = queue.span_logits(&ws).unwrap();
        logits.check(ws.len()).unwrap();
        let passes = passes.lock().unwrap();
        assert!(passes.iter().all(|&(n, len)| n * len <= 2 * longest + 1));
        assert_eq!(passes.iter().map(|p| p.0).sum::<usize>(), ws.len());
        assert_eq!(passes.len(), 2);
    }

    #[test]
    fn work_beyond_the_deadline_is_refused_at_once() {
        let (queue, passes) = setup(BatchConfig::default(), Duration::ZERO);
        let ws = windows(&queue, &["다라"]);
        // Unmeasured: everything is admitted.
        assert!(queue.load().admit(1_000_000, Instant::now()).is_ok());
        // 100 tokens/s with 1,000 tokens queued: 10 s of work.
        queue.load().observe_pass(1, 100, 1.0);
        queue.load().queued_tokens.store(1000, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(2);
        let (result, stats) = RequestScope::run(deadline, || queue.span_logits(&ws));
        let err = result.unwrap_err();
        match QueueError::inside(&err) {
            Some(e @ QueueError::Overloaded { wait_s, .. }) => {
                assert!(*wait_s >= 10.0);
                assert!(e.retry_after_s() >= 10);
            }
            other => panic!("expected Overloaded, got {other:?}"),
        }
        assert_eq!(stats, QueueStats::default());
        assert!(passes.lock().unwrap().is_empty(), "refused work never runs");
        // With time enough it runs, and the scope sees what it cost.
        queue.load().queued_tokens.store(0, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(60);
        let (result, stats) = RequestScope::run(deadline, || queue.span_logits(&ws));
        result.unwrap().check(ws.len()).unwrap();
        assert_eq!(stats.batches, 1);
    }

    /// A caller whose deadline passes while its windows wait (here: behind
    /// a 300 ms pass) gets `Expired` at its deadline, and they never run.
    #[test]
    fn jobs_still_queued_at_their_deadline_expire_unscored() {
        let config = BatchConfig {
            max_windows: 1,
            max_tokens: 1000,
            max_wait: Duration::ZERO,
        };
        let (queue, passes) = setup(config, Duration::from_millis(300));
        let first = windows(&queue, &["다라"]);
        let second = windows(&queue, &["마바"]);
        let q = queue.clone();
        // Occupies the worker for 300 ms.
        let busy = std::thread::spawn(move || q.span_logits(&first).map(|_| ()));
        std::thread::sleep(Duration::from_millis(50));
        let deadline = Instant::now() + Duration::from_millis(100);
        let (result, _) = RequestScope::run(deadline, || queue.span_logits(&second));
        let err = result.unwrap_err();
        assert!(matches!(
            QueueError::inside(&err),
            Some(QueueError::Expired)
        ));
        busy.join().unwrap().unwrap();
        // The worker drops the abandoned job before its next pass.
        let until = Instant::now() + Duration::from_secs(5);
        while queue.load().queued_tokens.load(Ordering::Relaxed) != 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(queue.load().queued_tokens.load(Ordering::Relaxed), 0);
        assert_eq!(passes.lock().unwrap().len(), 1, "the expired job never ran");
    }

    /// A pass that runs past the caller's deadline does not hold the
    /// caller: it gets `Expired` (a 503) instead of waiting into the
    /// request timeout, and the pass's result is dropped.
    #[test]
    fn a_long_pass_does_not_hold_the_caller_past_its_deadline() {
        let (queue, passes) = setup(BatchConfig::default(), Duration::from_millis(400));
        let ws = windows(&queue, &["다라"]);
        let deadline = Instant::now() + Duration::from_millis(50);
        let (result, _) = RequestScope::run(deadline, || queue.span_logits(&ws));
        let err = result.unwrap_err();
        assert!(matches!(
            QueueError::inside(&err),
            Some(QueueError::Expired)
        ));
        // The pass itself was started (the deadline was ahead then).
        let until = Instant::now() + Duration::from_secs(5);
        while passes.lock().unwrap().is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(passes.lock().unwrap().len(), 1);
    }
}
