//! Options of one write.

use std::time::Duration;

/// Options of one write.
///
/// ```
/// use std::time::Duration;
/// let opts = tagcache::SetOptions::new()
///     .ttl(Duration::from_secs(60))
///     .tags(["product:42", "category:7"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct SetOptions {
    pub(crate) ttl: Option<Duration>,
    pub(crate) grace: Option<Duration>,
    pub(crate) tags: Vec<Vec<u8>>,
    /// Eager refresh threshold in thousandths of the TTL (0: off); `None`:
    /// the cache's default.
    pub(crate) eager_permille: Option<u16>,
    /// Cross-process single flight for this read-through; `None`: the
    /// cache's default.
    pub(crate) lease: Option<bool>,
}

impl SetOptions {
    /// No tags, the cache's default TTL.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry's TTL: at least 1 ms, at most the cache's maximum TTL.
    /// Default: the cache's default TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Keeps the entry, stale, for `grace` after its TTL: plain reads miss
    /// it, but a read-through whose loader fails (or exceeds its soft
    /// timeout) serves it instead of failing ([`crate::Source::Stale`]).
    /// TTL + grace must stay within the maximum TTL. Default: none.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Read-through only: once `fraction` of the entry's TTL has passed, a
    /// read that hits it also refreshes it in the background
    /// ([`Cache::get_or_refresh`](crate::Cache::get_or_refresh),
    /// [`FailSafeCache::get_or_refresh`](crate::FailSafeCache::get_or_refresh)),
    /// so a hot key is reloaded before it expires instead of missing under
    /// load. `fraction` is clamped to 0..=1; 0 (or less) turns it off for
    /// this call. Entries written with eager refresh on carry their TTL in
    /// their header. Default: the cache's
    /// [`eager_refresh`](crate::CacheBuilder::eager_refresh) (off).
    pub fn eager_refresh(mut self, fraction: f64) -> Self {
        self.eager_permille = Some(permille(fraction));
        self
    }

    /// Read-through only: whether a miss takes the key's load lease in
    /// Redis, so that across processes one loader runs per key while the
    /// others wait for its value (see
    /// [`CacheBuilder::load_lease`](crate::CacheBuilder::load_lease) for
    /// the lease and wait bounds). Default: on when the cache was built
    /// with a load lease, else off.
    pub fn lease(mut self, on: bool) -> Self {
        self.lease = Some(on);
        self
    }

    /// Adds one tag (any non-empty bytes up to 1024; repeats count once).
    pub fn tag(mut self, tag: impl AsRef<[u8]>) -> Self {
        self.tags.push(tag.as_ref().to_vec());
        self
    }

    /// Adds tags.
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.tags
            .extend(tags.into_iter().map(|t| t.as_ref().to_vec()));
        self
    }
}

/// A fraction of a TTL in thousandths, clamped to 0..=1000 (NaN: 0).
pub(crate) fn permille(fraction: f64) -> u16 {
    if fraction.is_nan() || fraction <= 0.0 {
        0
    } else if fraction >= 1.0 {
        1000
    } else {
        // In 0..1000 after the checks above.
        (fraction * 1000.0).round() as u16
    }
}

/// How single and batched writes reach Redis
/// ([`CacheBuilder::write_path`](crate::CacheBuilder::write_path)).
///
/// Both keep the value and its index edges atomic and invalidation exact;
/// they differ in Redis time and in one listing corner (see
/// `docs/redis-layout.md`, *Write*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WritePath {
    /// `MULTI`/`EXEC` of `SET … PXAT … GET`, one `ZADD` per index and one
    /// registry `ZADD LT`, with the expiry computed from a clock synced to
    /// Redis' `TIME`; about a third of the Redis time of a script call. An
    /// overwrite that drops tags is followed by a small script
    /// (`unlink.lua`) that removes the entry from the indexes of the tags
    /// it lost. Guarded read-through stores (which check fences), a cache
    /// with a [`trim_limit`](crate::CacheBuilder::trim_limit) and values
    /// over 64 KiB still use the script. The default.
    #[default]
    Transaction,
    /// Every write runs `set.lua` (one script call per batch), as before
    /// this option existed.
    Script,
}

/// Lease and wait when a call asks for a lease the cache has no setting for.
const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// How long a load lease lives and how long a miss waits for its holder
/// (`readthrough/lease.rs`); configuration, kept here so the engine's
/// limits can hold the default without depending on the read-through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseConfig {
    pub(crate) lease: Duration,
    pub(crate) max_wait: Duration,
}

impl LeaseConfig {
    pub(crate) fn new(lease: Duration, max_wait: Duration) -> Self {
        Self {
            lease: lease.max(Duration::from_millis(1)),
            max_wait,
        }
    }

    pub(crate) fn fallback() -> Self {
        Self::new(DEFAULT_LEASE, DEFAULT_LEASE)
    }

    pub(crate) fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }
}
