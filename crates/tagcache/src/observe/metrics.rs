//! Metric names and the helpers that record them (catalogue:
//! docs/metrics.md, checked by the integration tests).

/// Metric names of the read-through, eager refresh, lease and sweep.
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
pub(crate) fn record_sweep(namespace: &str, r: &crate::engine::sweep::PruneReport) {
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
        metrics::counter!(names::LOADER_FAILURES, "namespace" => namespace.to_owned()).increment(1);
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
