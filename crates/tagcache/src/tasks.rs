//! The cache's background tasks: the sweeper, the journal replayer, and
//! the handle that stops a task when the last clone of the cache goes.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::core::Core;
use crate::failsafe::journal::{Journal, Pending};

/// Aborts a background task when the last cache clone goes.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    pub(crate) fn new(task: tokio::task::JoinHandle<()>) -> Self {
        Self(task)
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs bounded sweep steps about every `every` (with jitter, so many
/// processes do not sweep in step).
pub(crate) fn start_sweeper(core: &Arc<Core>, every: Duration) -> AbortOnDrop {
    let weak = Arc::downgrade(core);
    AbortOnDrop::new(tokio::spawn(async move {
        loop {
            // Up to 20 % jitter.
            let jitter = every.mul_f64(fastrand::f64() / 5.0);
            tokio::time::sleep(every + jitter).await;
            let Some(core) = weak.upgrade() else { break };
            let budget = u64::try_from(core.limits.chunk_size).unwrap_or(1000) * 10;
            match core.prune_step(budget).await {
                Ok(r) => tracing::debug!(
                    namespace = core.space.namespace(),
                    members_removed = r.members_removed,
                    indexes_removed = r.indexes_removed,
                    "sweep step"
                ),
                Err(e) => {
                    tracing::debug!(namespace = core.space.namespace(), error = %e, "sweep step failed")
                }
            }
        }
    }))
}

/// Replays the journal, oldest first, whenever Redis answers.
pub(crate) fn start_replayer(core: &Arc<Core>, journal: &Arc<Journal>) -> AbortOnDrop {
    let (core, journal) = (Arc::downgrade(core), journal.clone());
    AbortOnDrop::new(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let Some(core) = core.upgrade() else { break };
            while let Some(pending) = journal.front() {
                let done = match &pending {
                    Pending::Tags(tags) => core.invalidate(tags).await.map(drop),
                    Pending::Clear => core.clear(&mut |_| {}).await.map(drop),
                    Pending::Keys(keys) => core.delete_keys(keys).await.map(drop),
                };
                match done {
                    Ok(()) => {
                        journal.pop_front();
                        if journal.len() == 0 {
                            tracing::warn!(
                                namespace = core.space.namespace(),
                                "journaled invalidations replayed"
                            );
                        }
                    }
                    Err(_) => break,
                }
            }
        }
    }))
}
