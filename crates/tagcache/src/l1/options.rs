//! [`L1Options`]: the settings of the L1 tier.

use std::time::Duration;

/// Settings of the L1 tier ([`crate::CacheBuilder::l1`]).
///
/// ```
/// use std::time::Duration;
/// let l1 = tagcache::L1Options::new()
///     .capacity_bytes(256 << 20)
///     .ttl(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct L1Options {
    pub(crate) capacity_bytes: u64,
    pub(crate) ttl: Duration,
    pub(crate) check_period: Duration,
    pub(crate) serve_while_down: bool,
}

impl Default for L1Options {
    fn default() -> Self {
        Self::new()
    }
}

impl L1Options {
    /// The defaults: 64 MiB, `ttl` 10 s, check period 500 ms, nothing
    /// served while Redis is down.
    pub fn new() -> Self {
        Self {
            capacity_bytes: 64 << 20,
            ttl: Duration::from_secs(10),
            check_period: Duration::from_millis(500),
            serve_while_down: false,
        }
    }

    /// How many bytes (keys, stored entries and bookkeeping) the L1 holds
    /// before it evicts. Default: 64 MiB.
    pub fn capacity_bytes(mut self, bytes: u64) -> Self {
        self.capacity_bytes = bytes;
        self
    }

    /// The hard cap of an L1 entry's life, counted from the read that
    /// filled it: whatever happens to announcements, no L1 entry is served
    /// longer than this after it was read from Redis (nor past its Redis
    /// expiry). Default: 10 s; at least 1 ms.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// How often the listener compares each bucket's announcement counter
    /// with what it received, to catch announcements lost without a trace.
    /// The L1 serves only within two periods of the last such proof, so
    /// twice this (plus a round trip) bounds staleness whatever happens to
    /// delivery (a lost message, a paused process). Default: 500 ms.
    pub fn check_period(mut self, period: Duration) -> Self {
        self.check_period = period.max(Duration::from_millis(10));
        self
    }

    /// Whether L1 entries are served while the circuit breaker is open
    /// (Redis down) — each still at most `ttl` after it was read. Default:
    /// false (the L1 is dropped when the circuit opens). When the circuit
    /// closes, the L1 is kept only if the announcement counters prove no
    /// announcement was missed meanwhile.
    pub fn serve_while_down(mut self, yes: bool) -> Self {
        self.serve_while_down = yes;
        self
    }
}
