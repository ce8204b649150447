//! Query embedding off the async executor: one dedicated thread owns the forward passes
//! and is fed through a bounded queue.
//!
//! Why a thread and a bound: a forward pass takes milliseconds of CPU and would stall the
//! executor's few threads; an unbounded queue under overload grows memory without limit.
//! When the queue is full, [`EmbedQueue::embed`] fails at once with [`ApiError::Busy`]
//! (503 + `Retry-After`). Jobs waiting together are embedded as one batch, which raises
//! throughput under load at no cost to a lone request. [`EmbedQueue::shutdown`] stops the
//! thread after the jobs already queued and joins it.

use super::error::ApiError;
use super::metrics::Metrics;
use crate::embed::Vector;
use crate::search::Engine;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most jobs folded into one forward batch.
const MAX_JOBS_PER_BATCH: usize = 32;

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vector>, String>>,
}

/// What the thread receives: a job, or the order to stop once the queue is drained.
enum Msg {
    Job(Job),
    Stop,
}

/// Handle to the embedding thread. Cloning shares the queue.
#[derive(Clone)]
pub struct EmbedQueue {
    tx: mpsc::Sender<Msg>,
    metrics: Arc<Metrics>,
    /// The thread, taken and joined by the first [`EmbedQueue::shutdown`]. Shared by the
    /// clones, since any of them (the server's state) may be the one that shuts down.
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl EmbedQueue {
    /// Starts the thread. The engine's model must already be loaded (the server does so
    /// at startup, so a missing model fails before it listens).
    pub fn start(engine: Arc<Engine>, capacity: usize, metrics: Arc<Metrics>) -> EmbedQueue {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let m = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("paperscope-embed".into())
            .spawn(move || run(engine, rx, m))
            .expect("spawning the embedding thread. This is a bug.");
        EmbedQueue {
            tx,
            metrics,
            thread: Arc::new(Mutex::new(Some(thread))),
        }
    }

    /// Stops the thread once the jobs already queued are answered, and waits for it to
    /// end: a process that exits while a forward pass is running crashes in oneDNN's
    /// exit-time destructors. Jobs submitted afterwards fail with [`ApiError::Internal`].
    /// Calls after the first return at once.
    pub async fn shutdown(&self) {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(thread) = thread else { return };
        // Waits for room behind the queued jobs; fails only if the thread already ended.
        let _ = self.tx.send(Msg::Stop).await;
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(())) => {}
            _ => tracing::error!("the embedding thread panicked"),
        }
    }

    /// Embeds `texts`, waiting behind earlier jobs.
    ///
    /// # Errors
    /// [`ApiError::Busy`] when the queue is full; [`ApiError::Internal`] if the model fails.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vector>, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Msg::Job(Job { texts, reply }))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ApiError::Busy,
                mpsc::error::TrySendError::Closed(_) => {
                    ApiError::Internal("embedding thread stopped".into())
                }
            })?;
        self.metrics.embed_queue.inc();
        let result = rx.await;
        self.metrics.embed_queue.dec();
        result
            .map_err(|_| ApiError::Internal("embedding thread dropped a job".into()))?
            .map_err(ApiError::Internal)
    }
}

fn run(engine: Arc<Engine>, mut rx: mpsc::Receiver<Msg>, metrics: Arc<Metrics>) {
    let embedder = match engine.embedder() {
        Ok(e) => e,
        Err(e) => {
            // Unreachable in practice (loaded at startup); answer every job with the error.
            let msg = e.to_string();
            while let Some(m) = rx.blocking_recv() {
                match m {
                    Msg::Job(job) => {
                        let _ = job.reply.send(Err(msg.clone()));
                    }
                    Msg::Stop => rx.close(),
                }
            }
            return;
        }
    };
    // Ends when the channel is closed (by a stop) and drained, or every sender is gone.
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next {
            match m {
                Msg::Job(j) => jobs.push(j),
                // Closing refuses new jobs; those already queued are still received.
                Msg::Stop => rx.close(),
            }
            next = match jobs.len() < MAX_JOBS_PER_BATCH {
                true => rx.try_recv().ok(),
                false => None,
            };
        }
        if jobs.is_empty() {
            continue;
        }
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        let start = Instant::now();
        let result = embedder.embed(&texts);
        metrics.embed_seconds.observe(start.elapsed().as_secs_f64());
        match result {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                for job in jobs {
                    let mine: Vec<Vector> = vectors.by_ref().take(job.texts.len()).collect();
                    let _ = job.reply.send(Ok(mine));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(msg.clone()));
                }
            }
        }
    }
}
