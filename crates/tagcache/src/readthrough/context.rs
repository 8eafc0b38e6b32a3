//! Adaptive caching: what a read-through's loader may decide about the
//! entry it is computing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::options::SetOptions;

/// Handed to the loader of [`Cache::get_or_compute_with`](crate::Cache::get_or_compute_with)
/// and the other context-taking read-throughs: from what it loaded, the
/// loader may set the entry's TTL, grace and tags, or say not to cache it
/// at all. What it sets replaces the call's [`SetOptions`] for this store
/// only; the store stays fenced either way.
///
/// Cheap to clone (the clones share one state); the loader may move it
/// into its future.
///
/// ```
/// # async fn demo(cache: tagcache::Cache) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tagcache::SetOptions;
/// let price = cache
///     .get_or_compute_with("price:42", &SetOptions::new(), |ctx| async move {
///         let (cents, on_sale) = (1999_u32, true); // read the database
///         if on_sale {
///             ctx.set_ttl(Duration::from_secs(30)); // sale prices move fast
///             ctx.add_tag("sale");
///         }
///         Ok::<_, std::io::Error>(cents)
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LoadContext {
    state: Arc<Mutex<State>>,
    key: Arc<[u8]>,
    refresh: bool,
    has_stale: bool,
}

#[derive(Debug)]
struct State {
    opts: SetOptions,
    cache: bool,
}

impl LoadContext {
    pub(crate) fn new(key: &[u8], opts: &SetOptions, refresh: bool, has_stale: bool) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                opts: opts.clone(),
                cache: true,
            })),
            key: key.into(),
            refresh,
            has_stale,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The key being loaded.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Whether this load is an eager refresh of an entry that is still
    /// cached (its caller got the cached value already).
    pub fn is_eager_refresh(&self) -> bool {
        self.refresh
    }

    /// Whether a stale value (past its TTL, within its grace) is there to
    /// fall back on if this load fails.
    pub fn has_stale(&self) -> bool {
        self.has_stale
    }

    /// Sets the entry's TTL (same bounds as [`SetOptions::ttl`]; checked
    /// when the value is stored).
    pub fn set_ttl(&self, ttl: Duration) {
        self.with(|s| s.opts.ttl = Some(ttl));
    }

    /// Sets the entry's grace period ([`SetOptions::grace`]).
    pub fn set_grace(&self, grace: Duration) {
        self.with(|s| s.opts.grace = Some(grace));
    }

    /// Adds a tag to the entry.
    pub fn add_tag(&self, tag: impl AsRef<[u8]>) {
        self.with(|s| s.opts.tags.push(tag.as_ref().to_vec()));
    }

    /// Replaces the entry's tags.
    pub fn set_tags<I, T>(&self, tags: I)
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let tags: Vec<Vec<u8>> = tags.into_iter().map(|t| t.as_ref().to_vec()).collect();
        self.with(|s| s.opts.tags = tags);
    }

    /// Do not cache this value: it is returned to the caller
    /// ([`Source::Uncached`](crate::Source::Uncached)) and nothing is
    /// stored (an entry already there is left as it is).
    pub fn dont_cache(&self) {
        self.with(|s| s.cache = false);
    }

    /// The options the value will be stored with, as set so far.
    pub fn options(&self) -> SetOptions {
        self.with(|s| s.opts.clone())
    }

    /// The final options, or `None` when the loader said not to cache.
    pub(crate) fn outcome(&self) -> Option<SetOptions> {
        self.with(|s| s.cache.then(|| s.opts.clone()))
    }
}
