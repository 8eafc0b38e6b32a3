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
