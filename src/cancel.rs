//! Cancellation of abandoned work: a flag the requester's side raises when it stops
//! waiting (a request past its time limit, a client that disconnected), checked by the
//! model service before each forward pass and by long computations (clustering) between
//! steps, so that work nobody waits for stops instead of holding the CPU.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared "stop" flag. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

/// The work was abandoned by whoever asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled: the request was abandoned")]
pub struct Cancelled;

impl Cancel {
    /// A flag not yet raised; raise it with [`Cancel::cancel`] or a [`Cancel::on_drop`]
    /// guard.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// A flag nobody will raise: for work nobody abandons (the command line).
    pub fn never() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the flag is raised: `cancel.check()?` between steps.
    ///
    /// # Errors
    /// [`Cancelled`].
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// A guard that raises the flag when dropped — held by the future of a request, so
    /// that dropping the future (time limit, disconnect) cancels the work it started.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// Raises its [`Cancel`] when dropped (see [`Cancel::on_drop`]).
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_guard_cancels_every_clone() {
        let c = Cancel::never();
        let seen_by_worker = c.clone();
        assert_eq!(seen_by_worker.check(), Ok(()));
        drop(c.on_drop());
        assert!(seen_by_worker.is_cancelled());
        assert_eq!(seen_by_worker.check(), Err(Cancelled));
    }
}
