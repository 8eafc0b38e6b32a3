//! Clearing a whole namespace without `SCAN`.
//!
//! Every entry and group carries the reserved all-entries tag
//! ([`crate::path::ALL_TAG`]), so a namespace clear is an invalidation of
//! that tag: the same O(1) cut per bucket, the same bounded chunks, the
//! same resumability (a crashed clear leaves its snapshots filed in
//! `{ns.b}:inv`, finished by the next clear or by the sweep). Entries whose
//! write completed before the clear began are gone when it returns;
//! entries written meanwhile may survive. Indexes emptied by the drain are
//! gone with it; a final sweep removes what only expired or evicted
//! members kept alive.

use crate::cache::Cache;
use crate::error::Result;
use crate::path::ALL_TAG;

/// Where a [`Cache::clear_with_progress`] stands, reported after every
/// chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClearProgress {
    /// Entries deleted so far.
    pub deleted: u64,
    /// Entries (and groups) the namespace held when the clear began, read
    /// per bucket before its cut: the total for a progress bar.
    pub total: u64,
    /// Buckets finished, of [`ClearProgress::buckets`].
    pub buckets_done: u16,
    /// The namespace's bucket count.
    pub buckets: u16,
}

impl Cache {
    /// Deletes every entry and group of the namespace, tagged or not, with
    /// all their index edges, in bounded chunks (the stall bound of
    /// [`Cache::invalidate_tag`]); returns how many were deleted. Never
    /// uses `SCAN` or `KEYS`.
    ///
    /// Exact like an invalidation: every entry written before the call
    /// began is gone when it returns. Legacy keys (see
    /// [`crate::LegacyRules`]) are not tagcache's and are left alone.
    ///
    /// ```no_run
    /// # async fn demo(cache: tagcache::Cache) -> tagcache::Result<()> {
    /// let deleted = cache.clear().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Redis errors; an interrupted clear is finished by the next clear or
    /// by the sweep.
    pub async fn clear(&self) -> Result<u64> {
        self.clear_with_progress(|_| {}).await
    }

    /// [`Cache::clear`], calling `progress` after every chunk.
    ///
    /// # Errors
    /// As [`Cache::clear`].
    pub async fn clear_with_progress(
        &self,
        mut progress: impl FnMut(ClearProgress) + Send,
    ) -> Result<u64> {
        let core = self.core_arc();
        let buckets = core.space.buckets();
        let total = self.tag_len_any(ALL_TAG).await?;
        let mut state = ClearProgress {
            deleted: 0,
            total,
            buckets_done: 0,
            buckets,
        };
        let span = tracing::info_span!("clear", namespace = self.namespace());
        let _guard = span.enter();
        for bucket in 0..buckets {
            let deleted = core
                .invalidate_bucket_with(bucket, ALL_TAG, &mut |n| {
                    progress(ClearProgress {
                        deleted: state.deleted + n,
                        ..state
                    });
                })
                .await?;
            state.deleted += deleted;
            state.buckets_done = bucket + 1;
            progress(state);
        }
        // Indexes that only expired or evicted members keep alive.
        core.prune_all().await?;
        Ok(state.deleted)
    }
}
