//! The engine's work off the async executor, bounded: graph walks, exact scans and
//! explanations ("queries") and clustering ("heavy") run on blocking threads, each under a
//! semaphore, so that neither can starve the executor nor pile up threads.
//!
//! * **Queries** wait for one of `2 × cores` slots (milliseconds each; the request's time
//!   limit bounds the wait). The one exception is an unfiltered, unexplained `similar`:
//!   a graph walk of well under a millisecond, which the handler runs itself.
//! * **Heavy work** (topics: seconds of clustering) has one slot; a second request while
//!   it is taken is refused at once (503 + `Retry-After`) instead of queueing behind it,
//!   so a burst of topics requests cannot hold every core while searches wait.
//!
//! A slot is held until the work ends, also when its request was abandoned: the count
//! is the CPU really in use. Abandoned work ends early through its [`Cancel`] (the model
//! service skips its jobs, clustering stops between steps).
//!
//! [`Cancel`]: crate::cancel::Cancel

use super::error::ApiError;
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub(super) struct Work {
    queries: Arc<Semaphore>,
    heavy: Arc<Semaphore>,
}

impl Work {
    pub(super) fn new() -> Work {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Work {
            queries: Arc::new(Semaphore::new(2 * cores)),
            heavy: Arc::new(Semaphore::new(1)),
        }
    }

    /// Runs `f` on a blocking thread once a query slot is free.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if `f` panicked.
    pub(super) async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let slot = self.queries.clone().acquire_owned().await;
        run(slot.ok(), f).await
    }

    /// Runs `f` on a blocking thread if the heavy-work slot is free.
    ///
    /// # Errors
    /// [`ApiError::Busy`] when it is taken; [`ApiError::Internal`] if `f` panicked.
    pub(super) async fn heavy<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let slot = self
            .heavy
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy("another topics computation is running"))?;
        run(Some(slot), f).await
    }
}

async fn run<T: Send + 'static>(
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        f()
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}
