//! The cache's background tasks: the sweeper, and the handle that stops a
//! task when the last clone of the cache goes.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::core::Core;

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
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let jitter = every.mul_f64(f64::from(nanos % 1000) / 5000.0);
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
