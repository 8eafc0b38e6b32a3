//! Every metric tagcache records, named in one place (through the
//! `metrics` facade; every metric carries a `namespace` label), and the
//! helpers that record the read-through and sweep ones. The catalogue is
//! docs/metrics.md (checked below and by the integration tests).

/// Counter: reads that found a value (fail-safe and strict reads).
pub(crate) const HITS_TOTAL: &str = "tagcache_hits_total";
/// Counter: reads that found nothing.
pub(crate) const MISSES_TOTAL: &str = "tagcache_misses_total";
/// Counter: fail-safe calls that bypassed Redis; labels `op`, `reason`.
pub(crate) const BYPASSES_TOTAL: &str = "tagcache_bypasses_total";
/// Counter: failed Redis calls; label `kind` (an `ErrorKind`).
pub(crate) const ERRORS_TOTAL: &str = "tagcache_errors_total";
/// Histogram: fail-safe call duration in seconds; label `op`.
pub(crate) const OP_SECONDS: &str = "tagcache_op_seconds";
/// Counter: entries deleted by tag invalidations.
pub(crate) const ENTRIES_INVALIDATED_TOTAL: &str = "tagcache_entries_invalidated_total";
/// Gauge: invalidations journaled while Redis was unreachable.
pub(crate) const JOURNAL_LEN: &str = "tagcache_journal_len";
/// Gauge: the circuit breaker's state (0 closed, 1 open, 2 half-open).
pub(crate) const CIRCUIT_STATE: &str = "tagcache_circuit_state";
/// Counter: legacy keys moved into tagcache's layout.
pub(crate) const LEGACY_MIGRATED_TOTAL: &str = "tagcache_legacy_migrated_total";
/// Counter: group reads that found the field; label `group`.
pub(crate) const GROUP_HITS_TOTAL: &str = "tagcache_group_hits_total";
/// Counter: group reads that found nothing; label `group`.
pub(crate) const GROUP_MISSES_TOTAL: &str = "tagcache_group_misses_total";
/// Counter: dry-run group reads whose cached field differed from the
/// computed value; label `group`.
pub(crate) const GROUP_MISMATCHES_TOTAL: &str = "tagcache_group_mismatches_total";
/// Counter: reads served from the L1 tier.
pub(crate) const L1_HITS_TOTAL: &str = "tagcache_l1_hits_total";
/// Counter: reads the L1 tier could not serve (they went to Redis).
pub(crate) const L1_MISSES_TOTAL: &str = "tagcache_l1_misses_total";
/// Counter: L1 fills refused (an announcement covering the read arrived
/// while it was in flight, or it took longer than the L1 ttl).
pub(crate) const L1_FILLS_REFUSED_TOTAL: &str = "tagcache_l1_fills_refused_total";
/// Counter: L1 drops; label `cause` (`announcement`, `gap`, `disconnect`,
/// `circuit`, `overflow`, `capacity`).
pub(crate) const L1_DROPS_TOTAL: &str = "tagcache_l1_drops_total";
/// Histogram: announcement delivery lag in seconds (Redis' clock at the
/// change to this host's at receipt).
pub(crate) const L1_ANNOUNCEMENT_LAG_SECONDS: &str = "tagcache_l1_announcement_lag_seconds";

/// Counter: read-through calls by where the value came from; label
/// `source` (`hit`, `loaded`, `loaded_not_stored`, `shared`, `stale`,
/// `uncached`, `waited`, `loader_error`, `error`).
pub(crate) const READ_THROUGH_TOTAL: &str = "tagcache_read_through_total";
/// Counter: stale values served; label `reason` (`loader_error`,
/// `soft_timeout`).
pub(crate) const STALE_SERVED_TOTAL: &str = "tagcache_stale_served_total";
/// Histogram: loader run time in seconds; label `outcome` (`ok`, `error`).
pub(crate) const LOADER_SECONDS: &str = "tagcache_loader_seconds";
/// Counter: loader runs that failed.
pub(crate) const LOADER_FAILURES_TOTAL: &str = "tagcache_loader_failures_total";
/// Counter: read-through stores refused by a fence; label `api`
/// (`compute`, `group`).
pub(crate) const STORES_REFUSED_TOTAL: &str = "tagcache_stores_refused_total";
/// Counter: callers that waited on another's load; labels `scope`
/// (`process`, `redis`) and `outcome` (see [`count_wait`]).
pub(crate) const LOAD_WAITS_TOTAL: &str = "tagcache_load_waits_total";
/// Counter: eager refreshes; label `outcome` (`stored`, `refused`,
/// `uncached`, `failed`, `elsewhere`).
pub(crate) const EAGER_REFRESHES_TOTAL: &str = "tagcache_eager_refreshes_total";
/// Counter: sweep steps; label `complete` (`true`, `false`).
pub(crate) const SWEEP_STEPS_TOTAL: &str = "tagcache_sweep_steps_total";
/// Counter: what sweep steps removed; label `what` (see `PruneReport::record` in `engine/sweep.rs`).
pub(crate) const SWEEP_REMOVED_TOTAL: &str = "tagcache_sweep_removed_total";
/// Counter: index members the sweep checked for a gone entry.
pub(crate) const SWEEP_MEMBERS_CHECKED_TOTAL: &str = "tagcache_sweep_members_checked_total";

/// The hot-path metric handles of one cache, registered once when the
/// cache is built (so a recorder must be installed before that), so a
/// read does not format labels.
#[derive(Debug)]
pub(crate) struct HotMetrics {
    pub(crate) hits: metrics::Counter,
    pub(crate) misses: metrics::Counter,
    get_seconds: metrics::Histogram,
    set_seconds: metrics::Histogram,
    namespace: String,
}

impl HotMetrics {
    pub(crate) fn new(namespace: &str) -> Self {
        let ns = namespace.to_owned();
        Self {
            hits: metrics::counter!(HITS_TOTAL, "namespace" => ns.clone()),
            misses: metrics::counter!(MISSES_TOTAL, "namespace" => ns.clone()),
            get_seconds: metrics::histogram!(OP_SECONDS, "namespace" => ns.clone(), "op" => "get"),
            set_seconds: metrics::histogram!(OP_SECONDS, "namespace" => ns.clone(), "op" => "set"),
            namespace: ns,
        }
    }

    pub(crate) fn record_op(&self, op: &'static str, seconds: f64) {
        match op {
            "get" => self.get_seconds.record(seconds),
            "set" => self.set_seconds.record(seconds),
            other => metrics::histogram!(OP_SECONDS, "namespace" => self.namespace.clone(), "op" => other)
                .record(seconds),
        }
    }
}

/// Counter: transaction writes that dropped a tag and ran the second step.
pub(crate) const WRITE_UNLINKS_TOTAL: &str = "tagcache_write_unlinks_total";
/// Counter: transaction writes sent through `set.lua` instead; label
/// `reason` (`refused`, `entry`, `index`).
pub(crate) const WRITE_FALLBACKS_TOTAL: &str = "tagcache_write_fallbacks_total";

/// Counts a read-through call by the source of its value (`hit`,
/// `loaded`, `loaded_not_stored`, `shared`, `stale`, `uncached`, `waited`,
/// or `loader_error` / `error`).
pub(crate) fn count_read_through(namespace: &str, source: &'static str) {
    metrics::counter!(READ_THROUGH_TOTAL, "namespace" => namespace.to_owned(), "source" => source)
        .increment(1);
}

/// Counts a stale value served.
pub(crate) fn count_stale(namespace: &str, reason: &'static str) {
    metrics::counter!(STALE_SERVED_TOTAL, "namespace" => namespace.to_owned(), "reason" => reason)
        .increment(1);
}

/// Records one loader run.
pub(crate) fn record_loader(namespace: &str, ok: bool, seconds: f64) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::histogram!(LOADER_SECONDS, "namespace" => namespace.to_owned(), "outcome" => outcome)
        .record(seconds);
    if !ok {
        metrics::counter!(LOADER_FAILURES_TOTAL, "namespace" => namespace.to_owned()).increment(1);
    }
}

/// Counts a read-through store a fence refused.
pub(crate) fn count_refused(namespace: &str, api: &'static str) {
    metrics::counter!(STORES_REFUSED_TOTAL, "namespace" => namespace.to_owned(), "api" => api)
        .increment(1);
}

/// Counts a caller that waited on another's load: `scope` `process` (a
/// concurrent caller in this process; `outcome` `shared` or `loaded_self`)
/// or `redis` (another process's lease; `outcome` `value`, `took_over`,
/// `timed_out`).
pub(crate) fn count_wait(namespace: &str, scope: &'static str, outcome: &'static str) {
    metrics::counter!(LOAD_WAITS_TOTAL, "namespace" => namespace.to_owned(), "scope" => scope, "outcome" => outcome)
        .increment(1);
}

/// Counts an eager refresh by outcome.
pub(crate) fn count_refresh(namespace: &str, outcome: &'static str) {
    metrics::counter!(EAGER_REFRESHES_TOTAL, "namespace" => namespace.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Every name above (for the documentation check).
#[cfg(test)]
pub(crate) const ALL: [&str; 29] = [
    HITS_TOTAL,
    MISSES_TOTAL,
    BYPASSES_TOTAL,
    ERRORS_TOTAL,
    OP_SECONDS,
    ENTRIES_INVALIDATED_TOTAL,
    JOURNAL_LEN,
    CIRCUIT_STATE,
    LEGACY_MIGRATED_TOTAL,
    GROUP_HITS_TOTAL,
    GROUP_MISSES_TOTAL,
    GROUP_MISMATCHES_TOTAL,
    READ_THROUGH_TOTAL,
    STALE_SERVED_TOTAL,
    LOADER_SECONDS,
    LOADER_FAILURES_TOTAL,
    STORES_REFUSED_TOTAL,
    LOAD_WAITS_TOTAL,
    EAGER_REFRESHES_TOTAL,
    SWEEP_STEPS_TOTAL,
    SWEEP_REMOVED_TOTAL,
    SWEEP_MEMBERS_CHECKED_TOTAL,
    WRITE_UNLINKS_TOTAL,
    WRITE_FALLBACKS_TOTAL,
    L1_HITS_TOTAL,
    L1_MISSES_TOTAL,
    L1_FILLS_REFUSED_TOTAL,
    L1_DROPS_TOTAL,
    L1_ANNOUNCEMENT_LAG_SECONDS,
];

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalogue_names_every_metric() {
        let catalogue = include_str!("../../../../docs/metrics.md");
        for name in super::ALL {
            assert!(
                catalogue.contains(&format!("| `{name}` |")),
                "docs/metrics.md has no row for {name}"
            );
        }
        let guide = include_str!("../../../../GUIDE.md");
        assert!(
            guide.contains("docs/metrics.md"),
            "GUIDE.md links the catalogue"
        );
    }
}
