//! Every metric tagcache records, named in one place (through the
//! `metrics` facade; every metric carries a `namespace` label).

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

/// Every name above (for the documentation check).
#[cfg(test)]
pub(crate) const ALL: [&str; 19] = [
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
    fn the_guide_names_every_metric() {
        let guide = include_str!("../../../../GUIDE.md");
        for name in super::ALL {
            assert!(guide.contains(name), "GUIDE.md does not name {name}");
        }
    }
}
