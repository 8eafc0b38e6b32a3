//! Invalidating tags: exact, chunked and resumable.
//!
//! Per bucket and tag, `snapshot.lua` renames the live index to a snapshot
//! key in O(1) and files it as in flight. Every entry whose write completed
//! before that moment is in the snapshot; writes after it build a fresh
//! index and survive. The snapshot is then drained in chunks (`ZRANGE`,
//! then `drop.lua`). The bound is a time, not an entry count, so it holds
//! on a slow or busy server as on a fast one: `drop.lua` stops reading
//! entries once its own time budget is spent (Redis' clock) and reports the
//! members it did not reach, which stay in the snapshot for the next call;
//! and the client sizes each chunk so a call takes about [`crate::engine::pace::CALL_BUDGET_US`]
//! of server time (as the script reports it), so the script's cut is a
//! backstop rather than the rule. A process that dies midway leaves the snapshot
//! filed in `{ns.b}:inv`: the next invalidation of the tag joins it, and the
//! sweep finishes it once its heartbeat is stale.

use crate::engine::core::Core;
use crate::engine::pace::Pace;
use crate::error::{Error, ErrorKind, Result};
use crate::observe::metrics as names;
use crate::scripts::{ScriptCall, SCRIPTS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    New,
    Join,
    Empty,
}

impl Core {
    async fn snapshot(&self, bucket: u16, tag: &[u8]) -> Result<Snapshot> {
        let keys = [
            self.space.tag(bucket, tag),
            self.space.snapshot(bucket, tag),
            self.space.inflight(bucket),
            self.space.fence(bucket),
        ];
        let mut call = ScriptCall::new(&SCRIPTS.snapshot, &keys);
        call.arg(tag).arg(self.limits.fence_window_us());
        let state: String = self.conn.run(&call).await?;
        match state.as_str() {
            "new" => Ok(Snapshot::New),
            "join" => Ok(Snapshot::Join),
            "empty" => Ok(Snapshot::Empty),
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("snapshot.lua answered {other}"),
            )),
        }
    }

    /// Drains one snapshot; returns the entries deleted.
    pub(crate) async fn drain(&self, bucket: u16, tag: &[u8]) -> Result<u64> {
        self.drain_with(bucket, tag, &mut |_| {}).await
    }

    /// [`Core::drain`], reporting the running count after every chunk.
    async fn drain_with(
        &self,
        bucket: u16,
        tag: &[u8],
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64> {
        let snapshot = self.space.snapshot(bucket, tag);
        let mut chunk = Pace::new(self.limits.chunk_size);
        let mut removed = 0;
        // Tags seen in earlier chunks: declared up front, so most chunks
        // are one call.
        let mut known = Vec::new();
        loop {
            let members: Vec<Vec<u8>> = self
                .conn
                .query(
                    redis::cmd("ZRANGE")
                        .arg(&snapshot)
                        .arg(0)
                        .arg(chunk.get().saturating_sub(1)),
                )
                .await?;
            if members.is_empty() {
                return Ok(removed);
            }
            let removal = self
                .drop_members(bucket, &members, Some(tag), &mut known)
                .await?;
            chunk.observe(members.len(), removal.first_reached, removal.server_us);
            let dropped = removal.entries;
            removed += dropped;
            progress(removed);
            metrics::counter!(names::ENTRIES_INVALIDATED_TOTAL, "namespace" => self.space.namespace().to_owned())
                .increment(dropped);
        }
    }

    /// Invalidates one tag in one bucket, reporting the running count of
    /// deleted entries after every chunk (a namespace clear).
    pub(crate) async fn invalidate_bucket_with(
        &self,
        bucket: u16,
        tag: &[u8],
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64> {
        let state = self.snapshot(bucket, tag).await?;
        if state == Snapshot::Empty {
            return Ok(0);
        }
        let mut removed = self.drain_with(bucket, tag, progress).await?;
        if state == Snapshot::Join && self.snapshot(bucket, tag).await? != Snapshot::Empty {
            let before = removed;
            removed += self
                .drain_with(bucket, tag, &mut |n| progress(before + n))
                .await?;
        }
        Ok(removed)
    }

    /// Invalidates tags: returns how many entries were deleted, each once.
    pub(crate) async fn invalidate(&self, tags: &[Vec<u8>]) -> Result<u64> {
        let mut removed = 0;
        for bucket in 0..self.space.buckets() {
            // Snapshot every tag first, so all of them cut at about the same
            // moment, then drain.
            let mut states = Vec::with_capacity(tags.len());
            for tag in tags {
                states.push(self.snapshot(bucket, tag).await?);
            }
            for (tag, state) in tags.iter().zip(states) {
                if state == Snapshot::Empty {
                    continue;
                }
                removed += self.drain(bucket, tag).await?;
                if state == Snapshot::Join {
                    // The snapshot we joined was cut before this call began:
                    // cut once more to cover what was indexed since.
                    if self.snapshot(bucket, tag).await? != Snapshot::Empty {
                        removed += self.drain(bucket, tag).await?;
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Tags whose invalidation has had no heartbeat for `lease_ms`.
    pub(crate) async fn stale_invalidations(
        &self,
        bucket: u16,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let cutoff = now_ms.saturating_sub(lease_ms);
        self.conn
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.space.inflight(bucket))
                    .arg("-inf")
                    .arg(format!("({cutoff}"))
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit),
            )
            .await
    }
}
