//! The model service: one thread runs every forward pass of a serving process, fed by a
//! bounded queue (after text-embeddings-inference's `BackendThread`).
//!
//! Why one thread and a bound: a forward pass is milliseconds to seconds of CPU; run from
//! request handlers directly, concurrent requests multiply it without limit and starve
//! each other. Here every embedding — query vectors, explanation sentences, the query of
//! a topics request, `/v1/embed` — is a [`Job`] on one queue, so the model's CPU use is
//! bounded by construction.
//!
//! * **Bounded by cost, not jobs.** A job costs its texts' estimated tokens (bytes / 4 + 2,
//!   at most the model's maximum), so 64 long texts weigh what they cost. Past
//!   [`ServiceConfig::capacity_tokens`] a job is refused at once ([`Error::Busy`]).
//! * **Queries first.** [`Priority::Bulk`] jobs (embedding endpoints, explanation
//!   sentences) may hold at most half the capacity (one bulk job is always taken when no
//!   other bulk job waits, however large: the caller bounds a request's size), and
//!   [`Priority::Interactive`] jobs (a query's vector) may use all that bulk work does not,
//!   at least half, and run before any waiting bulk job — unless that job has waited a
//!   second, then it goes first: a burst of bulk work slows searches down but cannot shut
//!   them out, and a steady stream of queries cannot starve bulk work.
//! * **Abandoned jobs are skipped.** A job whose caller stopped waiting (its reply channel is
//!   closed, or its [`Cancel`] raised) is dropped before its forward pass.
//! * **Counts are exact.** A job's share of the queue is released when the job is dropped,
//!   wherever that happens (run, skipped, refused, shut down), so the gauges return to 0.
//! * **Joined on shutdown.** [`ModelService::shutdown`] (or drop) answers waiting jobs,
//!   stops the thread and joins it: no forward pass outlives the service.

use super::{Encoder, Error, ModelInfo, Precision, Vector};
use crate::cancel::Cancel;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a bulk job may wait behind queries before it goes first.
const BULK_AGE: Duration = Duration::from_secs(1);

/// Settings of a [`ModelService`].
#[derive(Debug, Clone, Copy)]
pub struct ServiceConfig {
    /// Estimated tokens that may be queued or running at once. Default 16,384 (about 64
    /// full-length texts: 1-2 s of work on two cores).
    pub capacity_tokens: usize,
    /// Most texts run in one forward batch. Default 64.
    pub max_batch_texts: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            capacity_tokens: 16_384,
            max_batch_texts: 64,
        }
    }
}

/// Which queue a job waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A query's vector: someone is waiting for a page of results.
    Interactive,
    /// Many texts at once (embedding endpoints, explanation sentences).
    Bulk,
}

/// Counters of a running service, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Jobs queued or running.
    pub jobs: usize,
    /// Their texts.
    pub texts: usize,
    /// Their estimated tokens.
    pub tokens: usize,
    /// Jobs refused because the queue was full, since start.
    pub refused: u64,
    /// Jobs dropped unrun because their caller had gone, since start.
    pub skipped: u64,
    /// Forward batches run, since start.
    pub batches: u64,
    /// Texts embedded, since start.
    pub embedded: u64,
}

/// One forward batch, reported to the service's observer (e.g. a latency histogram).
#[derive(Debug, Clone, Copy)]
pub struct BatchReport {
    pub texts: usize,
    pub elapsed: Duration,
}

type Reply = oneshot::Sender<Result<Vec<Vector>, Error>>;

struct Job {
    // First, so that a job dropped unanswered releases its share before its reply
    // channel closes (fields drop in declaration order).
    share: Share,
    queued_at: Instant,
    texts: Vec<String>,
    reply: Reply,
    cancel: Cancel,
}

impl Job {
    fn abandoned(&self) -> bool {
        self.reply.is_closed() || self.cancel.is_cancelled()
    }

    /// Gives the job's share of the queue back, then answers: a caller that has its
    /// answer never sees its own job still counted.
    fn answer(self, result: Result<Vec<Vector>, Error>) {
        let Job { reply, share, .. } = self;
        drop(share);
        let _ = reply.send(result);
    }
}

/// A job's share of the queue's capacity, given back on drop.
struct Share {
    counts: Arc<Counts>,
    texts: usize,
    tokens: usize,
    priority: Priority,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.counts.jobs.fetch_sub(1, Ordering::Relaxed);
        self.counts.texts.fetch_sub(self.texts, Ordering::Relaxed);
        self.counts
            .tokens(self.priority)
            .fetch_sub(self.tokens, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Counts {
    jobs: AtomicUsize,
    texts: AtomicUsize,
    interactive_tokens: AtomicUsize,
    bulk_tokens: AtomicUsize,
    refused: AtomicU64,
    skipped: AtomicU64,
    batches: AtomicU64,
    embedded: AtomicU64,
}

impl Counts {
    fn tokens(&self, p: Priority) -> &AtomicUsize {
        match p {
            Priority::Interactive => &self.interactive_tokens,
            Priority::Bulk => &self.bulk_tokens,
        }
    }
}

#[derive(Default)]
struct Queues {
    interactive: VecDeque<Job>,
    bulk: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    encoder: Arc<dyn Encoder>,
    config: ServiceConfig,
    queues: Mutex<Queues>,
    ready: Condvar,
    counts: Arc<Counts>,
}

/// The thread that owns the model, and its queue. See the module docs.
pub struct ModelService {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ModelService {
    /// Starts the service's thread over `encoder`; `observe` is called after each batch.
    pub fn start(
        encoder: Arc<dyn Encoder>,
        config: ServiceConfig,
        observe: impl Fn(BatchReport) + Send + 'static,
    ) -> ModelService {
        let shared = Arc::new(Shared {
            encoder,
            config,
            queues: Mutex::default(),
            ready: Condvar::new(),
            counts: Arc::default(),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("paperscope-model".into())
            .spawn(move || run(&worker, observe))
            .expect("spawning the model thread. This is a bug.");
        ModelService {
            shared,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// A handle for submitting jobs; cheap to clone.
    pub fn client(&self) -> ModelClient {
        ModelClient {
            shared: self.shared.clone(),
        }
    }

    pub fn stats(&self) -> ServiceStats {
        self.client().stats()
    }

    /// Refuses new jobs, answers queued ones with [`Error::Stopped`], lets the running
    /// batch finish and joins the thread. Idempotent.
    pub fn shutdown(&self) {
        {
            let mut guard = lock(&self.shared.queues);
            let q = &mut *guard;
            q.closed = true;
            let waiting: Vec<Job> = q.interactive.drain(..).chain(q.bulk.drain(..)).collect();
            for job in waiting {
                job.answer(Err(Error::Stopped));
            }
        }
        self.shared.ready.notify_all();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for ModelService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock(m: &Mutex<Queues>) -> std::sync::MutexGuard<'_, Queues> {
    // A panic while holding the lock cannot leave the queues inconsistent (push/pop only).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Submits jobs to a [`ModelService`].
#[derive(Clone)]
pub struct ModelClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelClient")
            .field("model", &self.info().name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl ModelClient {
    /// Embeds `texts` on the service's thread, waiting asynchronously. Dropping the
    /// returned future abandons the job (it is skipped if not yet run).
    ///
    /// # Errors
    /// [`Error::Busy`] when the queue is full, [`Error::Cancelled`] when `cancel` is
    /// raised before the job runs, [`Error::Stopped`] after shutdown, or the model's error.
    pub async fn embed(
        &self,
        texts: Vec<String>,
        priority: Priority,
        cancel: &Cancel,
    ) -> Result<Vec<Vector>, Error> {
        let rx = self.submit(texts, priority, cancel)?;
        rx.await.map_err(|_| gone(cancel))?
    }

    /// As [`ModelClient::embed`], blocking the calling thread (not an async executor's
    /// thread: use it from `spawn_blocking` or plain threads).
    ///
    /// # Errors
    /// As [`ModelClient::embed`].
    pub fn embed_blocking(
        &self,
        texts: Vec<String>,
        priority: Priority,
        cancel: &Cancel,
    ) -> Result<Vec<Vector>, Error> {
        let rx = self.submit(texts, priority, cancel)?;
        rx.blocking_recv().map_err(|_| gone(cancel))?
    }

    /// An [`Encoder`] whose every call is a job on this service, cancelled by `cancel`:
    /// hand it to library code (explanations, topics) that embeds as part of a request.
    pub fn encoder(&self, priority: Priority, cancel: Cancel) -> ServiceEncoder {
        ServiceEncoder {
            client: self.clone(),
            priority,
            cancel,
        }
    }

    pub fn info(&self) -> &ModelInfo {
        self.shared.encoder.info()
    }

    pub fn stats(&self) -> ServiceStats {
        let c = &self.shared.counts;
        ServiceStats {
            jobs: c.jobs.load(Ordering::Relaxed),
            texts: c.texts.load(Ordering::Relaxed),
            tokens: c.interactive_tokens.load(Ordering::Relaxed)
                + c.bulk_tokens.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            embedded: c.embedded.load(Ordering::Relaxed),
        }
    }

    fn submit(
        &self,
        texts: Vec<String>,
        priority: Priority,
        cancel: &Cancel,
    ) -> Result<oneshot::Receiver<Result<Vec<Vector>, Error>>, Error> {
        let s = &self.shared;
        let max = s.encoder.info().max_tokens.max(1);
        let tokens: usize = texts.iter().map(|t| (t.len() / 4 + 2).min(max)).sum();
        let (mut q, cap) = (lock(&s.queues), s.config.capacity_tokens);
        if q.closed {
            return Err(Error::Stopped);
        }
        let bulk = s.counts.bulk_tokens.load(Ordering::Relaxed);
        let interactive = s.counts.interactive_tokens.load(Ordering::Relaxed);
        let admitted = match priority {
            // At most half, but one bulk job always (the caller bounds its size).
            Priority::Bulk => bulk == 0 || bulk + tokens <= cap / 2,
            // All that bulk work does not hold, and never less than half.
            Priority::Interactive => {
                interactive == 0 || interactive + tokens <= cap - bulk.min(cap / 2)
            }
        };
        if !admitted {
            s.counts.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Busy);
        }
        let (reply, rx) = oneshot::channel();
        s.counts.jobs.fetch_add(1, Ordering::Relaxed);
        s.counts.texts.fetch_add(texts.len(), Ordering::Relaxed);
        s.counts
            .tokens(priority)
            .fetch_add(tokens, Ordering::Relaxed);
        let job = Job {
            queued_at: Instant::now(),
            share: Share {
                counts: s.counts.clone(),
                texts: texts.len(),
                tokens,
                priority,
            },
            texts,
            reply,
            cancel: cancel.clone(),
        };
        match priority {
            Priority::Interactive => q.interactive.push_back(job),
            Priority::Bulk => q.bulk.push_back(job),
        }
        drop(q);
        s.ready.notify_one();
        Ok(rx)
    }
}

/// The reply channel closed without an answer: the job was skipped or the service stopped.
fn gone(cancel: &Cancel) -> Error {
    if cancel.is_cancelled() {
        Error::Cancelled(crate::cancel::Cancelled)
    } else {
        Error::Stopped
    }
}

/// An [`Encoder`] that runs on a [`ModelService`] (see [`ModelClient::encoder`]). Its
/// calls block: use it off the async executor.
#[derive(Clone)]
pub struct ServiceEncoder {
    client: ModelClient,
    priority: Priority,
    cancel: Cancel,
}

impl Encoder for ServiceEncoder {
    fn info(&self) -> &ModelInfo {
        self.client.info()
    }

    fn describe(&self) -> String {
        format!("{} (model service)", self.client.shared.encoder.describe())
    }

    fn precision(&self) -> Precision {
        self.client.shared.encoder.precision()
    }

    fn embed_with_progress(
        &self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Vector>, Error> {
        let owned = texts.iter().map(|t| t.to_string()).collect();
        let vectors = self
            .client
            .embed_blocking(owned, self.priority, &self.cancel)?;
        progress(texts.len(), 0);
        Ok(vectors)
    }

    /// Tokenizing runs on the caller's thread: it is not a forward pass.
    fn token_count(&self, text: &str) -> Result<usize, Error> {
        self.client.shared.encoder.token_count(text)
    }
}

/// The service's thread: takes up to `max_batch_texts` texts of waiting jobs, interactive
/// ones first, drops abandoned jobs, embeds the rest in one batch and answers each.
fn run(s: &Shared, observe: impl Fn(BatchReport)) {
    loop {
        let jobs = {
            let mut q = lock(&s.queues);
            while !q.closed && q.interactive.is_empty() && q.bulk.is_empty() {
                q = s
                    .ready
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if q.closed {
                return;
            }
            let mut jobs: Vec<Job> = Vec::new();
            let mut texts = 0;
            // Queries first, except that a bulk job waiting for BULK_AGE goes first: under
            // a steady stream of queries bulk work would otherwise never run.
            let aged = q
                .bulk
                .front()
                .is_some_and(|j| j.queued_at.elapsed() >= BULK_AGE);
            loop {
                let bulk_first = aged && jobs.is_empty();
                let front = match bulk_first {
                    true => q.bulk.front(),
                    false => q.interactive.front().or(q.bulk.front()),
                };
                let Some(front) = front else { break };
                let n = front.texts.len();
                if !jobs.is_empty() && texts + n > s.config.max_batch_texts {
                    break;
                }
                let job = match (bulk_first, q.interactive.pop_front()) {
                    (false, Some(j)) => j,
                    (true, Some(j)) => {
                        q.interactive.push_front(j);
                        q.bulk
                            .pop_front()
                            .expect("front() was Some. This is a bug.")
                    }
                    (_, None) => q
                        .bulk
                        .pop_front()
                        .expect("front() was Some. This is a bug."),
                };
                if job.abandoned() {
                    s.counts.skipped.fetch_add(1, Ordering::Relaxed);
                    job.answer(Err(Error::Cancelled(crate::cancel::Cancelled)));
                    continue;
                }
                texts += n;
                jobs.push(job);
            }
            jobs
        };
        if jobs.is_empty() {
            continue;
        }
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        let start = Instant::now();
        let result = s.encoder.embed(&texts);
        observe(BatchReport {
            texts: texts.len(),
            elapsed: start.elapsed(),
        });
        s.counts.batches.fetch_add(1, Ordering::Relaxed);
        s.counts
            .embedded
            .fetch_add(texts.len() as u64, Ordering::Relaxed);
        match result {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                for job in jobs {
                    let mine: Vec<Vector> = vectors.by_ref().take(job.texts.len()).collect();
                    job.answer(Ok(mine));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for job in jobs {
                    job.answer(Err(Error::Forward(msg.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::fake::FakeEncoder;
    use std::sync::mpsc;

    /// The fake model, but each batch waits until the test lets it go and records its
    /// texts: the queue's behaviour under load, made deterministic.
    struct Gated {
        inner: FakeEncoder,
        go: Mutex<mpsc::Receiver<()>>,
        seen: Mutex<Vec<Vec<String>>>,
    }

    impl Encoder for Gated {
        fn info(&self) -> &ModelInfo {
            self.inner.info()
        }
        fn describe(&self) -> String {
            "gated fake".into()
        }
        fn precision(&self) -> Precision {
            Precision::F32
        }
        fn token_count(&self, text: &str) -> Result<usize, Error> {
            self.inner.token_count(text)
        }
        fn embed_with_progress(
            &self,
            texts: &[&str],
            progress: &mut dyn FnMut(usize, usize),
        ) -> Result<Vec<Vector>, Error> {
            self.go.lock().unwrap().recv().map_err(|_| Error::Stopped)?;
            self.seen
                .lock()
                .unwrap()
                .push(texts.iter().map(|t| t.to_string()).collect());
            self.inner.embed_with_progress(texts, progress)
        }
    }

    fn gated(capacity_tokens: usize) -> (ModelService, Arc<Gated>, mpsc::Sender<()>) {
        let (tx, rx) = mpsc::channel();
        let enc = Arc::new(Gated {
            inner: FakeEncoder::new(16),
            go: Mutex::new(rx),
            seen: Mutex::default(),
        });
        let config = ServiceConfig {
            capacity_tokens,
            max_batch_texts: 8,
        };
        (ModelService::start(enc.clone(), config, |_| {}), enc, tx)
    }

    /// Waits until one job was submitted and the service thread has taken it (it then
    /// blocks in the gate), so the next submissions queue behind a running batch.
    fn wait_until_taken(service: &ModelService) {
        for _ in 0..2000 {
            let q = lock(&service.shared.queues);
            if service.stats().jobs == 1 && q.interactive.is_empty() && q.bulk.is_empty() {
                return;
            }
            drop(q);
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("the model thread never took the job");
    }

    #[test]
    fn answers_in_order_and_counts_return_to_zero() {
        let service = ModelService::start(
            Arc::new(FakeEncoder::new(16)),
            ServiceConfig::default(),
            |_| {},
        );
        let client = service.client();
        let texts = vec![
            "graph neural networks".to_string(),
            "kagome magnets".to_string(),
        ];
        let got = client
            .embed_blocking(texts.clone(), Priority::Bulk, &Cancel::never())
            .unwrap();
        let want = FakeEncoder::new(16)
            .embed(&texts.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(got, want);
        let stats = service.stats();
        assert_eq!((stats.jobs, stats.texts, stats.tokens), (0, 0, 0));
        assert_eq!((stats.batches, stats.embedded), (1, 2));
    }

    type Answer = std::thread::JoinHandle<Result<Vec<Vector>, Error>>;

    /// Submits one text from a thread of its own (the call blocks until answered).
    fn submit(client: &ModelClient, text: &str, priority: Priority, cancel: &Cancel) -> Answer {
        let (c, t, cancel) = (client.clone(), text.to_string(), cancel.clone());
        std::thread::spawn(move || c.embed_blocking(vec![t], priority, &cancel))
    }

    /// Waits until `n` jobs are queued or running.
    fn wait_for_jobs(service: &ModelService, n: usize) {
        while service.stats().jobs < n {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_full_queue_refuses_bulk_first_and_queries_run_first() {
        // Capacity 40 tokens: a 2-token-ish query costs 3, a 60-byte text 17.
        let (service, enc, go) = gated(40);
        let client = service.client();
        let never = Cancel::never();
        let running = submit(&client, "first", Priority::Interactive, &never);
        wait_until_taken(&service);
        let long = "x".repeat(60);
        // Bulk may fill half the capacity (20 tokens): one 17-token job fits, a second not.
        let bulk = submit(&client, &long, Priority::Bulk, &never);
        wait_for_jobs(&service, 2);
        let refused = client.embed_blocking(vec![long.clone()], Priority::Bulk, &never);
        assert!(matches!(refused, Err(Error::Busy)), "{refused:?}");
        // A query still gets in, and runs before the waiting bulk job.
        let query = submit(&client, "query", Priority::Interactive, &never);
        wait_for_jobs(&service, 3);
        for _ in 0..3 {
            go.send(()).unwrap();
        }
        running.join().unwrap().unwrap();
        query.join().unwrap().unwrap();
        bulk.join().unwrap().unwrap();
        let seen = enc.seen.lock().unwrap().clone();
        assert_eq!(seen[0], ["first"]);
        assert_eq!(seen[1][0], "query", "batches: {seen:?}");
        let stats = service.stats();
        assert_eq!((stats.jobs, stats.tokens, stats.refused), (0, 0, 1));
    }

    #[test]
    fn a_bulk_job_larger_than_the_capacity_leaves_queries_half() {
        let (service, _enc, go) = gated(40);
        let client = service.client();
        let never = Cancel::never();
        // 400 bytes: ~102 estimated tokens, more than the whole capacity; taken alone.
        let big = submit(&client, &"x".repeat(400), Priority::Bulk, &never);
        wait_until_taken(&service);
        let more = client.embed_blocking(vec!["y".repeat(40)], Priority::Bulk, &never);
        assert!(matches!(more, Err(Error::Busy)), "{more:?}");
        // Queries still have half the capacity (20 tokens): four of 5 tokens, not five.
        let query = |i: usize| format!("query {i:06}"); // 12 bytes: 5 tokens
        let queries: Vec<Answer> = (0..4)
            .map(|i| submit(&client, &query(i), Priority::Interactive, &never))
            .collect();
        wait_for_jobs(&service, 5);
        let refused = client.embed_blocking(vec![query(5)], Priority::Interactive, &never);
        assert!(matches!(refused, Err(Error::Busy)), "{refused:?}");
        for _ in 0..5 {
            go.send(()).unwrap();
        }
        big.join().unwrap().unwrap();
        for q in queries {
            q.join().unwrap().unwrap();
        }
    }

    #[test]
    fn abandoned_jobs_are_skipped_and_shutdown_joins() {
        let (service, enc, go) = gated(1000);
        let client = service.client();
        let running = submit(&client, "first", Priority::Interactive, &Cancel::never());
        wait_until_taken(&service);
        let cancel = Cancel::new();
        let abandoned = submit(&client, "nobody waits", Priority::Bulk, &cancel);
        wait_for_jobs(&service, 2);
        drop(cancel.on_drop());
        go.send(()).unwrap();
        running.join().unwrap().unwrap();
        // The second job is dropped unrun: its caller hears it was cancelled.
        assert!(matches!(
            abandoned.join().unwrap(),
            Err(Error::Cancelled(_))
        ));
        assert_eq!(enc.seen.lock().unwrap().len(), 1);
        let stats = service.stats();
        assert_eq!((stats.skipped, stats.jobs), (1, 0));
        service.shutdown();
        let after = client.embed_blocking(vec!["late".into()], Priority::Bulk, &Cancel::never());
        assert!(matches!(after, Err(Error::Stopped)));
    }
}
