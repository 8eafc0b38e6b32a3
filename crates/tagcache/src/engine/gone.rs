//! The sweep's check for index members whose entry is gone.
//!
//! The expiry trim removes members whose score has passed. An entry removed
//! behind tagcache's back — evicted under a `volatile-*` policy, deleted
//! with raw commands, or a malformed entry deleted without knowing its
//! tags — leaves members whose score is still in the future, for up to the
//! maximum TTL. An eviction storm can leave most of every index dead, using
//! the memory Redis is short of. So every sweep step also walks the
//! indexes round-robin (each bucket's registry by rank, each index by rank,
//! a page per call, paced by time: `pace.rs`) and removes the members whose
//! entry does not exist (`sweep_gone.lua`), within the step's budget. The
//! position is kept per cache handle, so successive steps cover every
//! index; a step reports `complete` only once a whole pass has ended.

use crate::engine::core::{Core, GoneCursor};
use crate::engine::pace::{Pace, SCRIPT_BUDGET_US};
use crate::error::Result;
use crate::scripts::{ScriptCall, SCRIPTS};

/// Registry members read per round trip.
const REGISTRY_PAGE: usize = 100;

/// What one step of the check did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct GoneStep {
    /// Members checked.
    pub(crate) checked: u64,
    /// Members removed because their entry was gone.
    pub(crate) removed: u64,
    /// Registry filings removed because their index was gone.
    pub(crate) indexes_removed: u64,
    /// Whether a whole pass has ended (since the last `complete` step).
    pub(crate) pass_done: bool,
}

impl Core {
    fn gone_cursor(&self) -> GoneCursor {
        self.gone
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn store_gone_cursor(&self, cursor: GoneCursor) {
        *self
            .gone
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = cursor;
    }

    /// Starts the next pass from the first index (a full prune does, so
    /// it covers every index whatever earlier steps did).
    pub(crate) fn restart_gone_pass(&self) {
        self.store_gone_cursor(GoneCursor::default());
    }

    /// Marks the pass reported: the next step starts a new one.
    pub(crate) fn gone_pass_reported(&self) {
        let mut c = self
            .gone
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.pass_done {
            *c = GoneCursor::default();
        }
    }

    /// Checks about `budget` members, resuming where the last step ended.
    pub(crate) async fn sweep_gone(&self, budget: u64) -> Result<GoneStep> {
        let mut cur = self.gone_cursor();
        let mut step = GoneStep::default();
        let result = self.sweep_gone_from(&mut cur, budget, &mut step).await;
        // What was done stays done, even when a call failed.
        step.pass_done = cur.pass_done;
        self.store_gone_cursor(cur);
        result.map(|()| step)
    }

    async fn sweep_gone_from(
        &self,
        cur: &mut GoneCursor,
        budget: u64,
        step: &mut GoneStep,
    ) -> Result<()> {
        let mut pace = Pace::new(self.limits.chunk_size);
        while !cur.pass_done && step.checked < budget {
            if cur.bucket >= self.space.buckets() {
                *cur = GoneCursor {
                    pass_done: true,
                    ..GoneCursor::default()
                };
                break;
            }
            let tags: Vec<Vec<u8>> = self
                .conn
                .query(
                    redis::cmd("ZRANGE")
                        .arg(self.space.registry(cur.bucket))
                        .arg(cur.index)
                        .arg(cur.index + REGISTRY_PAGE - 1),
                )
                .await?;
            if tags.is_empty() {
                cur.bucket += 1;
                cur.index = 0;
                cur.member = 0;
                continue;
            }
            for tag in tags {
                loop {
                    if step.checked >= budget {
                        return Ok(());
                    }
                    let chunk = pace.get();
                    let index = self.space.tag(cur.bucket, &tag);
                    let members: Vec<Vec<u8>> = self
                        .conn
                        .query(
                            redis::cmd("ZRANGE")
                                .arg(&index)
                                .arg(cur.member)
                                .arg(cur.member + chunk - 1),
                        )
                        .await?;
                    let out = self.remove_gone(cur.bucket, index, &tag, &members).await?;
                    pace.observe(members.len(), out.reached, out.server_us);
                    // At least one per call, so empty indexes cost too.
                    step.checked += out.reached.max(1) as u64;
                    step.removed += out.removed;
                    if out.index_gone {
                        // It left the registry: the next one took its rank.
                        step.indexes_removed += 1;
                        cur.member = 0;
                        break;
                    }
                    if out.reached == members.len() && members.len() < chunk {
                        cur.index += 1;
                        cur.member = 0;
                        break;
                    }
                    // The members reached and kept are behind the cursor;
                    // those not reached (the call's time ran out) come
                    // again.
                    let kept = out
                        .reached
                        .saturating_sub(usize::try_from(out.removed).unwrap_or(0));
                    cur.member += kept;
                }
            }
        }
        Ok(())
    }

    /// One `sweep_gone.lua` call on `index`, the key of `tag`'s index.
    async fn remove_gone(
        &self,
        bucket: u16,
        index: Vec<u8>,
        tag: &[u8],
        members: &[Vec<u8>],
    ) -> Result<GoneCall> {
        let mut keys = Vec::with_capacity(2 + members.len());
        keys.push(index);
        keys.push(self.space.registry(bucket));
        keys.extend(members.iter().map(|m| self.space.entry(bucket, m)));
        let mut call = ScriptCall::new(&SCRIPTS.sweep_gone, &keys);
        call.arg(tag).arg(SCRIPT_BUDGET_US);
        for m in members {
            call.arg(m.as_slice());
        }
        let (removed, gone, reached, server_us): (u64, u64, usize, u64) =
            self.conn.run(&call).await?;
        Ok(GoneCall {
            removed,
            index_gone: gone == 1,
            reached: reached.min(members.len()),
            server_us,
        })
    }
}

/// What one `sweep_gone.lua` call did.
struct GoneCall {
    /// Members removed.
    removed: u64,
    /// The index no longer exists (and left the registry).
    index_gone: bool,
    /// Members checked before the call's time ran out (the first ones).
    reached: usize,
    /// Redis time the call spent, µs.
    server_us: u64,
}
