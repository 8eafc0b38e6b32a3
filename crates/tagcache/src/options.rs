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
