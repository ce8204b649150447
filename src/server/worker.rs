//! Query embedding off the async executor: one dedicated thread owns the forward passes
//! and is fed through a bounded queue.
//!
//! Why a thread and a bound: a forward pass takes milliseconds of CPU and would stall the
//! executor's few threads; an unbounded queue under overload grows memory without limit.
//! When the queue is full, [`EmbedQueue::embed`] fails at once with [`ApiError::Busy`]
//! (503 + `Retry-After`). Jobs waiting together are embedded as one batch, which raises
//! throughput under load at no cost to a lone request.

use super::error::ApiError;
use super::metrics::Metrics;
use crate::embed::Encoder;
use crate::embed::Vector;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most jobs folded into one forward batch.
const MAX_JOBS_PER_BATCH: usize = 32;

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vector>, String>>,
}

/// Handle to the embedding thread. Cloning shares the queue.
#[derive(Clone)]
pub struct EmbedQueue {
    tx: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
}

impl EmbedQueue {
    /// Starts the thread. The engine's model must already be loaded (the server does so
    /// at startup, so a missing model fails before it listens).
    pub fn start(encoder: Arc<dyn Encoder>, capacity: usize, metrics: Arc<Metrics>) -> EmbedQueue {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let m = metrics.clone();
        std::thread::Builder::new()
            .name("paperscope-embed".into())
            .spawn(move || run(encoder, rx, m))
            .expect("spawning the embedding thread. This is a bug.");
        EmbedQueue { tx, metrics }
    }

    /// Embeds `texts`, waiting behind earlier jobs.
    ///
    /// # Errors
    /// [`ApiError::Busy`] when the queue is full; [`ApiError::Internal`] if the model fails.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vector>, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Job { texts, reply })
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

fn run(embedder: Arc<dyn Encoder>, mut rx: mpsc::Receiver<Job>, metrics: Arc<Metrics>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
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
