//! Clearing a whole namespace without `SCAN`.
//!
//! Every entry is in at least one index (its tags, its path prefixes, or
//! the all-entries tag an edgeless entry carries), and every non-empty
//! index is filed in its bucket's registry. So a clear, per bucket:
//!
//! 1. joins the invalidations in flight (their entries are in snapshots,
//!    no longer in an index);
//! 2. renames the registry to the clear's registry `{ns.b}:creg` in O(1)
//!    (`clear_cut.lua`): every index that held an entry before that moment
//!    is listed there, and writes from then on file their indexes in a
//!    fresh registry;
//! 3. invalidates each listed index (the usual O(1) cut and time-bounded
//!    drain), marking them done a page at a time (`clear_step.lua`).
//!
//! An entry written before the clear began is gone when it returns;
//! entries written meanwhile may survive. A clear that finds a clear
//! registry already there (a crashed clear, or one running elsewhere)
//! works through it, then cuts again. A crashed clear is filed in
//! `{ns.b}:inv` with a heartbeat: the next clear or the sweep finishes it.
//! Writes pay nothing for this, except an untagged flat key, which carries
//! the all-entries tag as its one edge.

use crate::engine::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::keys::CLEAR_MARKER;
use crate::scripts::{ScriptCall, SCRIPTS};

/// Indexes read from a clear's registry per round trip.
const CLEAR_PAGE: isize = 100;

/// Where a [`Cache::clear_with_progress`](crate::Cache::clear_with_progress) stands, reported after every
/// chunk of deleted entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClearProgress {
    /// Entries (and groups) deleted so far.
    pub deleted: u64,
    /// Indexes invalidated so far.
    pub indexes_done: u64,
    /// Indexes the clear has cut off so far (it grows as each bucket is
    /// cut): the length of a progress bar.
    pub indexes_total: u64,
    /// Buckets finished, of [`ClearProgress::buckets`].
    pub buckets_done: u16,
    /// The namespace's bucket count.
    pub buckets: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    New,
    Join,
    Empty,
}

impl Core {
    /// Clears every bucket (see the module docs).
    pub(crate) async fn clear(
        &self,
        progress: &mut (dyn FnMut(ClearProgress) + Send),
    ) -> Result<u64> {
        let mut state = ClearProgress {
            deleted: 0,
            indexes_done: 0,
            indexes_total: 0,
            buckets_done: 0,
            buckets: self.space.buckets(),
        };
        for bucket in 0..self.space.buckets() {
            self.join_inflight(bucket, &mut state, progress).await?;
            let cut = self.clear_cut(bucket, &mut state).await?;
            if cut != Cut::Empty {
                self.walk_clear(bucket, &mut state, progress).await?;
            }
            if cut == Cut::Join && self.clear_cut(bucket, &mut state).await? != Cut::Empty {
                // The clear we joined was cut before this call began.
                self.walk_clear(bucket, &mut state, progress).await?;
            }
            state.buckets_done = bucket + 1;
            progress(state);
        }
        Ok(state.deleted)
    }

    /// Finishes the invalidations in flight in a bucket: their entries are
    /// in snapshots, where the registry cannot lead.
    async fn join_inflight(
        &self,
        bucket: u16,
        state: &mut ClearProgress,
        progress: &mut (dyn FnMut(ClearProgress) + Send),
    ) -> Result<()> {
        let tags: Vec<Vec<u8>> = self
            .conn
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.space.inflight(bucket))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        for tag in tags.iter().filter(|t| t.as_slice() != CLEAR_MARKER) {
            self.invalidate_counting(bucket, tag, state, progress)
                .await?;
        }
        Ok(())
    }

    /// Invalidates one index of a bucket, adding what it deletes to
    /// `state` and reporting the running count after every chunk.
    async fn invalidate_counting(
        &self,
        bucket: u16,
        tag: &[u8],
        state: &mut ClearProgress,
        progress: &mut (dyn FnMut(ClearProgress) + Send),
    ) -> Result<()> {
        let before = *state;
        state.deleted += self
            .invalidate_bucket_with(bucket, tag, &mut |n| {
                progress(ClearProgress {
                    deleted: before.deleted + n,
                    ..before
                });
            })
            .await?;
        Ok(())
    }

    async fn clear_cut(&self, bucket: u16, state: &mut ClearProgress) -> Result<Cut> {
        let keys = [
            self.space.registry(bucket),
            self.space.clear_registry(bucket),
            self.space.inflight(bucket),
            self.space.l1(bucket),
        ];
        let mut call = ScriptCall::new(&SCRIPTS.clear_cut, &keys);
        call.arg(CLEAR_MARKER);
        let (answer, listed): (String, u64) = self.conn.run(&call).await?;
        let cut = match answer.as_str() {
            "new" => Cut::New,
            "join" => Cut::Join,
            "empty" => Cut::Empty,
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("clear_cut.lua answered {other}"),
                ))
            }
        };
        state.indexes_total += listed;
        Ok(cut)
    }

    /// Invalidates every index of a bucket's clear registry, a page at a
    /// time, until it is empty, counting into `state`.
    pub(crate) async fn walk_clear(
        &self,
        bucket: u16,
        state: &mut ClearProgress,
        progress: &mut (dyn FnMut(ClearProgress) + Send),
    ) -> Result<()> {
        let creg = self.space.clear_registry(bucket);
        loop {
            let tags: Vec<Vec<u8>> = self
                .conn
                .query(redis::cmd("ZRANGE").arg(&creg).arg(0).arg(CLEAR_PAGE - 1))
                .await?;
            if tags.is_empty() {
                // Gone already (another clear finished it): unfile it.
                let _: u64 = self
                    .conn
                    .query(
                        redis::cmd("ZREM")
                            .arg(self.space.inflight(bucket))
                            .arg(CLEAR_MARKER),
                    )
                    .await?;
                return Ok(());
            }
            for tag in &tags {
                self.invalidate_counting(bucket, tag, state, progress)
                    .await?;
                state.indexes_done += 1;
                progress(*state);
            }
            let mut call = ScriptCall::new(
                &SCRIPTS.clear_step,
                &[creg.clone(), self.space.inflight(bucket)],
            );
            call.arg(CLEAR_MARKER);
            for tag in &tags {
                call.arg(tag.as_slice());
            }
            if self.conn.run::<u8>(&call).await? == 0 {
                return Ok(());
            }
        }
    }
}
