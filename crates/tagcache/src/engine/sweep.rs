//! The sweep: trims expired members, drops empty indexes, finishes
//! abandoned invalidations and removes members whose entry is gone
//! (`gone.rs`), in bounded steps, without SCAN or KEYS.
//!
//! Each bucket's registry `{ns.b}:reg` lists its tag indexes scored by a
//! lower bound of their next member expiry, so the sweep reads exactly the
//! indexes that have something to trim (`ZRANGE reg -inf (now BYSCORE`).
//! Every step is a script call bounded by time (`pace.rs`: each reports the
//! Redis time it spent and the next carries what fits the budget); several
//! processes may sweep at once (each call is atomic and idempotent).

use std::time::Duration;

use crate::engine::core::Core;
use crate::engine::pace::Pace;
use crate::error::Result;
use crate::observe::metrics as names;
use crate::scripts::{ScriptCall, SCRIPTS};

/// An invalidation whose process has been silent this long is finished by
/// the sweep.
pub(crate) const INVALIDATION_LEASE: Duration = Duration::from_secs(30);
/// Due indexes read from the registry per round trip.
const DUE_PAGE: usize = 100;

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Tag indexes visited because they were due.
    pub indexes_visited: u64,
    /// Expired members removed from tag indexes.
    pub members_removed: u64,
    /// Empty tag indexes removed from the registry.
    pub indexes_removed: u64,
    /// Abandoned invalidations finished.
    pub invalidations_resumed: u64,
    /// Entries deleted while finishing abandoned invalidations.
    pub entries_removed: u64,
    /// Fence records older than the fence window removed.
    pub fences_removed: u64,
    /// Index members checked for an entry that is gone.
    pub members_checked: u64,
    /// Members removed before their expiry because their entry was gone
    /// (evicted under a `volatile-*` policy, or deleted behind tagcache's
    /// back).
    pub gone_members_removed: u64,
    /// Whether the sweep is complete: nothing due was left when the step
    /// ended, and a whole pass of the check for members whose entry is gone
    /// has ended since the last complete step.
    pub complete: bool,
}

impl PruneReport {
    /// Records one sweep step: `what` = `expired_members`, `gone_members`,
    /// `indexes`, `fences`, `entries` (deleted while finishing abandoned
    /// invalidations).
    pub(crate) fn record(&self, namespace: &str) {
        let ns = || namespace.to_owned();
        let complete = if self.complete { "true" } else { "false" };
        metrics::counter!(names::SWEEP_STEPS_TOTAL, "namespace" => ns(), "complete" => complete)
            .increment(1);
        for (what, n) in [
            ("expired_members", self.members_removed),
            ("gone_members", self.gone_members_removed),
            ("indexes", self.indexes_removed),
            ("fences", self.fences_removed),
            ("entries", self.entries_removed),
        ] {
            metrics::counter!(names::SWEEP_REMOVED_TOTAL, "namespace" => ns(), "what" => what)
                .increment(n);
        }
        metrics::counter!(names::SWEEP_MEMBERS_CHECKED_TOTAL, "namespace" => ns())
            .increment(self.members_checked);
    }

    fn add(&mut self, other: &PruneReport) {
        self.indexes_visited += other.indexes_visited;
        self.members_removed += other.members_removed;
        self.indexes_removed += other.indexes_removed;
        self.invalidations_resumed += other.invalidations_resumed;
        self.entries_removed += other.entries_removed;
        self.fences_removed += other.fences_removed;
        self.members_checked += other.members_checked;
        self.gone_members_removed += other.gone_members_removed;
        self.complete = other.complete;
    }
}

impl Core {
    /// Redis' clock, in milliseconds.
    pub(crate) async fn server_time_ms(&self) -> Result<u64> {
        self.conn.server_time_ms().await
    }

    /// One bounded step: at most about `budget` members or indexes. The
    /// due work (fences, abandoned invalidations, expired members) goes
    /// first; the check for members whose entry is gone (`gone.rs`) gets
    /// what is left of the budget, and at least a quarter of it, so an
    /// eviction storm is cleaned up even while expiries keep the sweep busy.
    pub(crate) async fn prune_step(&self, budget: u64) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let (work, due_done) = self.sweep_due(budget, &mut report).await?;
        let gone = self
            .sweep_gone(budget.saturating_sub(work).max(budget / 4).max(1))
            .await?;
        report.members_checked = gone.checked;
        report.gone_members_removed = gone.removed;
        report.indexes_removed += gone.indexes_removed;
        report.complete = due_done && gone.pass_done;
        if report.complete {
            self.gone_pass_reported();
        }
        report.record(self.space.namespace());
        Ok(report)
    }

    /// The due work of one step; returns the work done and whether nothing
    /// due was left.
    async fn sweep_due(&self, budget: u64, report: &mut PruneReport) -> Result<(u64, bool)> {
        let now = self.server_time_ms().await?;
        let lease = u64::try_from(INVALIDATION_LEASE.as_millis()).unwrap_or(u64::MAX);
        let mut work = 0u64;
        let window = self.limits.fence_window_us();
        // Members removed per trim call, paced by the time the calls take.
        let mut pace = Pace::new(self.limits.chunk_size);
        for bucket in 0..self.space.buckets() {
            loop {
                let limit = pace.get();
                let mut call = ScriptCall::new(&SCRIPTS.trim, &[self.space.fence(bucket)]);
                call.arg(window.as_str()).arg(limit);
                let (removed, spent): (u64, u64) = self.conn.run(&call).await?;
                report.fences_removed += removed;
                work += removed;
                if removed < limit as u64 {
                    break;
                }
                pace.observe(limit, limit, spent);
            }
            for tag in self.stale_invalidations(bucket, now, lease, 16).await? {
                if tag.as_slice() == crate::layout::keys::CLEAR_MARKER {
                    tracing::info!(
                        namespace = self.space.namespace(),
                        "finishing an abandoned namespace clear"
                    );
                    let mut state = crate::engine::clear::ClearProgress::default();
                    self.walk_clear(bucket, &mut state, &mut |_| {}).await?;
                    report.entries_removed += state.deleted;
                } else {
                    tracing::info!(
                        namespace = self.space.namespace(),
                        "finishing an abandoned invalidation"
                    );
                    report.entries_removed += self.drain(bucket, &tag).await?;
                }
                report.invalidations_resumed += 1;
            }
            loop {
                if work >= budget {
                    return Ok((work, false));
                }
                let due: Vec<Vec<u8>> = self
                    .conn
                    .query(
                        redis::cmd("ZRANGE")
                            .arg(self.space.registry(bucket))
                            .arg("-inf")
                            .arg(format!("({now}"))
                            .arg("BYSCORE")
                            .arg("LIMIT")
                            .arg(0)
                            .arg(DUE_PAGE),
                    )
                    .await?;
                if due.is_empty() {
                    break;
                }
                for tag in due {
                    let keys = [self.space.tag(bucket, &tag), self.space.registry(bucket)];
                    let limit = pace.get();
                    let mut call = ScriptCall::new(&SCRIPTS.sweep_tag, &keys);
                    call.arg(tag.as_slice()).arg(limit);
                    let (removed, gone, spent): (u64, u64, u64) = self.conn.run(&call).await?;
                    if removed >= limit as u64 {
                        // A full trim (the index stays due): it measures
                        // the rate.
                        pace.observe(limit, limit, spent);
                    }
                    report.indexes_visited += 1;
                    report.members_removed += removed;
                    report.indexes_removed += gone;
                    work += 1 + removed;
                }
            }
        }
        Ok((work, true))
    }

    /// Steps until nothing due is left and every index has been checked
    /// for members whose entry is gone.
    pub(crate) async fn prune_all(&self) -> Result<PruneReport> {
        self.restart_gone_pass();
        let mut total = PruneReport::default();
        loop {
            let step = self
                .prune_step(u64::try_from(self.limits.chunk_size).unwrap_or(1000) * 10)
                .await?;
            total.add(&step);
            if step.complete {
                return Ok(total);
            }
        }
    }
}
