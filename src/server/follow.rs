//! Following the index's commits: a running server notices a new commit (`add`,
//! `remove`, `compact`, a rebuild), opens it beside the one it serves, and swaps it in.
//!
//! Polling, not file-system notifications: one read of a small manifest per interval
//! costs nothing, works on every file system (network ones included) and needs no
//! dependency, and a commit is only visible once its manifest is renamed into place
//! anyway. Opening reuses the segments both commits share ([`Engine::reopen`]), so
//! following a small commit reads only its own files. The swap is one atomic pointer
//! store: requests in flight finish on the engine they took, later ones get the new one;
//! there is no moment without an index. A commit that does not open (damaged, or of
//! another model) is reported and the served one kept.

use super::AppState;
use crate::search::Engine;
use std::time::Duration;

/// Checks the index for a new commit every `every`, and serves it once opened. Runs
/// until dropped (spawn it beside [`super::run`]).
pub async fn follow_commits(state: AppState, every: Duration) {
    let mut reported: Option<String> = None;
    loop {
        tokio::time::sleep(every).await;
        let current = state.engine();
        let reopened = tokio::task::spawn_blocking(move || current.reopen()).await;
        let problem = match reopened {
            Ok(Ok(None)) => None,
            Ok(Ok(Some(engine))) => swap(&state, engine).err(),
            Ok(Err(e)) => Some(format!("cannot open the index's new commit: {e}")),
            Err(e) => Some(format!("opening the index's new commit failed: {e}")),
        };
        // Once per distinct problem, not once per interval.
        if problem.is_some() && problem != reported {
            tracing::warn!(
                "{}; still serving the previous commit",
                problem.as_deref().unwrap_or("")
            );
        }
        reported = problem;
    }
}

fn swap(state: &AppState, engine: Engine) -> Result<(), String> {
    engine
        .check_model(&state.model_info)
        .map_err(|e| format!("the index's new commit: {e}"))?;
    let (papers, generation) = (engine.index().len(), engine.index().generation());
    state.engine.store(std::sync::Arc::new(engine));
    state.metrics.served(papers, generation);
    state.warm_topics();
    tracing::info!("now serving generation {generation} of the index ({papers} papers)");
    Ok(())
}
