//! What tracing may say about keys. Values are never logged anywhere;
//! keys only as this policy allows (cached keys can carry user ids).

/// How keys appear in tracing spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyLogging {
    /// Keys never appear (the default).
    #[default]
    Off,
    /// The first 8 bytes of the key's SHA-1, in hex: correlates log lines
    /// about one key without revealing it.
    Hashed,
    /// The first N bytes, lossily decoded as UTF-8.
    Truncated(usize),
}

impl KeyLogging {
    /// The key as this policy shows it; `None` when keys are not shown.
    pub(crate) fn show(self, key: &[u8]) -> Option<String> {
        match self {
            Self::Off => None,
            Self::Hashed => {
                let digest = sha1_smol::Sha1::from(key).digest().bytes();
                Some(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
            }
            Self::Truncated(n) => {
                let cut = &key[..key.len().min(n)];
                let mut s = String::from_utf8_lossy(cut).into_owned();
                if key.len() > n {
                    s.push('…');
                }
                Some(s)
            }
        }
    }
}

/// A span for one operation: namespace, operation and (by policy) key; the
/// outcome is recorded when known. It carries OpenTelemetry's database
/// attributes too: `db.system.name` = `redis`, `db.operation.name` = the
/// operation, `db.namespace` = the tagcache namespace.
pub(crate) fn op_span(
    namespace: &str,
    op: &'static str,
    key: Option<&[u8]>,
    policy: KeyLogging,
) -> tracing::Span {
    let span = tracing::debug_span!(
        "tagcache",
        namespace,
        op,
        "db.system.name" = "redis",
        "db.operation.name" = op,
        "db.namespace" = namespace,
        key = tracing::field::Empty,
        outcome = tracing::field::Empty
    );
    // Hashing or cutting the key is work for a subscriber only.
    if !span.is_disabled() {
        if let Some(shown) = key.and_then(|k| policy.show(k)) {
            span.record("key", shown.as_str());
        }
    }
    span
}

/// Read-through metric names (catalogue: docs/metrics.md).
pub(crate) mod names {
    /// Stale values served (`reason`: `loader_error`, `soft_timeout`).
    pub(crate) const STALE_SERVED: &str = "tagcache_stale_served_total";
    /// Loader run time (`outcome`: `ok`, `error`).
    pub(crate) const LOADER_SECONDS: &str = "tagcache_loader_seconds";
    /// Loader runs that failed.
    pub(crate) const LOADER_FAILURES: &str = "tagcache_loader_failures_total";
    /// Read-through stores refused by a fence (`api`: `compute`, `group`).
    pub(crate) const STORES_REFUSED: &str = "tagcache_stores_refused_total";
    /// Callers that waited on another's load (`scope`: `process`,
    /// `redis`; `outcome`: see [`count_wait`]).
    pub(crate) const LOAD_WAITS: &str = "tagcache_load_waits_total";
    /// Eager refreshes (`outcome`: `stored`, `refused`, `uncached`,
    /// `failed`, `elsewhere`).
    pub(crate) const EAGER_REFRESHES: &str = "tagcache_eager_refreshes_total";
    /// Read-through calls by where the value came from (`source`).
    pub(crate) const READ_THROUGHS: &str = "tagcache_read_through_total";
    /// Sweep steps (`complete`: `true`, `false`).
    pub(crate) const SWEEP_STEPS: &str = "tagcache_sweep_steps_total";
    /// What sweep steps removed (`what`: see [`record_sweep`]).
    pub(crate) const SWEEP_REMOVED: &str = "tagcache_sweep_removed_total";
    /// Index members the sweep checked for a gone entry.
    pub(crate) const SWEEP_CHECKED: &str = "tagcache_sweep_members_checked_total";
}

/// Counts a read-through call by the source of its value (`hit`,
/// `loaded`, `loaded_not_stored`, `shared`, `stale`, `uncached`, `waited`,
/// or `loader_error` / `error`).
pub(crate) fn count_read_through(namespace: &str, source: &'static str) {
    metrics::counter!(names::READ_THROUGHS, "namespace" => namespace.to_owned(), "source" => source)
        .increment(1);
}

/// Records one sweep step: `what` = `expired_members`, `gone_members`,
/// `indexes`, `fences`, `entries` (deleted while finishing abandoned
/// invalidations).
pub(crate) fn record_sweep(namespace: &str, r: &crate::sweep::PruneReport) {
    let ns = || namespace.to_owned();
    let complete = if r.complete { "true" } else { "false" };
    metrics::counter!(names::SWEEP_STEPS, "namespace" => ns(), "complete" => complete).increment(1);
    for (what, n) in [
        ("expired_members", r.members_removed),
        ("gone_members", r.gone_members_removed),
        ("indexes", r.indexes_removed),
        ("fences", r.fences_removed),
        ("entries", r.entries_removed),
    ] {
        metrics::counter!(names::SWEEP_REMOVED, "namespace" => ns(), "what" => what).increment(n);
    }
    metrics::counter!(names::SWEEP_CHECKED, "namespace" => ns()).increment(r.members_checked);
}

/// Counts a stale value served.
pub(crate) fn count_stale(namespace: &str, reason: &'static str) {
    metrics::counter!(names::STALE_SERVED, "namespace" => namespace.to_owned(), "reason" => reason)
        .increment(1);
}

/// Records one loader run.
pub(crate) fn record_loader(namespace: &str, ok: bool, seconds: f64) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::histogram!(names::LOADER_SECONDS, "namespace" => namespace.to_owned(), "outcome" => outcome)
        .record(seconds);
    if !ok {
        metrics::counter!(names::LOADER_FAILURES, "namespace" => namespace.to_owned())
            .increment(1);
    }
}

/// Counts a read-through store a fence refused.
pub(crate) fn count_refused(namespace: &str, api: &'static str) {
    metrics::counter!(names::STORES_REFUSED, "namespace" => namespace.to_owned(), "api" => api)
        .increment(1);
}

/// Counts a caller that waited on another's load: `scope` `process` (a
/// concurrent caller in this process; `outcome` `shared` or `loaded_self`)
/// or `redis` (another process's lease; `outcome` `value`, `took_over`,
/// `timed_out`).
pub(crate) fn count_wait(namespace: &str, scope: &'static str, outcome: &'static str) {
    metrics::counter!(names::LOAD_WAITS, "namespace" => namespace.to_owned(), "scope" => scope, "outcome" => outcome)
        .increment(1);
}

/// Counts an eager refresh by outcome.
pub(crate) fn count_refresh(namespace: &str, outcome: &'static str) {
    metrics::counter!(names::EAGER_REFRESHES, "namespace" => namespace.to_owned(), "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hidden_hashed_or_truncated() {
        assert_eq!(KeyLogging::Off.show(b"user:42"), None);
        let h = KeyLogging::Hashed.show(b"user:42").unwrap();
        assert_eq!(h.len(), 16);
        assert!(!h.contains("42"));
        assert_eq!(KeyLogging::Truncated(4).show(b"user:42").unwrap(), "user…");
        assert_eq!(
            KeyLogging::Truncated(40).show(b"user:42").unwrap(),
            "user:42"
        );
    }
}
