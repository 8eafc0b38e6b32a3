//! Eager refresh: a read-through hit past a configured fraction of its
//! entry's TTL returns the cached value and reloads it in the background,
//! one refresh per key and process, its store fenced by the time of the
//! read that found it due (so an invalidation during the refresh wins).

use std::future::Future;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use super::compute::{ComputeError, Computed, Source};
use super::context::LoadContext;
use crate::cache::{Cache, SetOptions};
use crate::layout::codec;
use crate::observe;

/// Whether an entry hit at `now_ms` is due for an eager refresh: at least
/// `permille` thousandths of its TTL have passed. The TTL is the entry's
/// own (written with eager refresh) or else the call's; the time left is
/// its fresh-until (grace entries) or its `PTTL`.
pub(crate) fn refresh_due(
    d: &codec::Decoded<'_>,
    now_ms: u64,
    pttl_ms: i64,
    call_ttl_ms: u64,
    permille: u16,
) -> bool {
    if permille == 0 {
        return false;
    }
    let ttl = d.ttl_ms.unwrap_or(call_ttl_ms);
    let left = match d.fresh_until {
        Some(until) => until.saturating_sub(now_ms),
        None => match u64::try_from(pttl_ms) {
            Ok(left) => left,
            // -1 (no expiry) or -2 (gone): nothing to refresh ahead of.
            Err(_) => return false,
        },
    };
    let passed = ttl.saturating_sub(left);
    u128::from(passed) * 1000 >= u128::from(ttl) * u128::from(permille)
}

impl Cache {
    /// Read-through with eager refresh: like
    /// [`Cache::get_or_compute`], and when a hit finds that the
    /// configured fraction of the entry's TTL has passed
    /// ([`SetOptions::eager_refresh`], default
    /// [`CacheBuilder::eager_refresh`](crate::CacheBuilder::eager_refresh)),
    /// it returns the cached value at once and runs `loader` in the
    /// background to store a new one.
    ///
    /// - One refresh per key and process at a time (and, with a load
    ///   lease, per key across processes: a refresh whose lease is taken
    ///   is skipped).
    /// - The refresh's store is fenced by the time of the read that
    ///   started it: if the key is deleted or one of its tags invalidated
    ///   meanwhile, nothing is stored, so the invalidation wins.
    /// - The entry's TTL is read from its header (entries written with
    ///   eager refresh on carry it), else taken from `opts`; the time left
    ///   comes from the same round trip as the read (`PTTL`).
    ///
    /// ```no_run
    /// # async fn demo(cache: tagcache::Cache) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use tagcache::SetOptions;
    /// let opts = SetOptions::new().ttl(Duration::from_secs(60)).eager_refresh(0.8);
    /// let rates = cache
    ///     .get_or_refresh("fx:rates", &opts, || async {
    ///         Ok::<_, std::io::Error>(vec![1.08_f64, 0.86]) // call the rates API
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Cache::get_or_compute`]; a background refresh's errors are
    /// only counted (`tagcache_eager_refreshes_total{outcome="failed"}`).
    pub async fn get_or_refresh<T, E, F, Fut>(
        &self,
        key: impl AsRef<[u8]>,
        opts: &SetOptions,
        loader: F,
    ) -> Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.get_or_refresh_with(key, opts, |_| loader()).await
    }

    // Repeats `get_or_refresh`'s signature on purpose: the `_with` form is public API of its own.
    /// [`Cache::get_or_refresh`] whose loader gets a [`LoadContext`]: as
    /// [`Cache::get_or_compute_with`]'s, and
    /// [`LoadContext::is_eager_refresh`] says whether it runs as a
    /// background refresh of a live entry.
    ///
    /// # Errors
    /// As [`Cache::get_or_compute_with`]; a background refresh's errors are
    /// only counted.
    pub async fn get_or_refresh_with<T, E, F, Fut>(
        &self,
        key: impl AsRef<[u8]>,
        opts: &SetOptions,
        loader: F,
    ) -> Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
        F: FnOnce(LoadContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let key = key.as_ref();
        let permille = self.eager_permille(opts);
        let on_hit = |d: &codec::Decoded<'_>, since: u64, pttl: i64, loader: F| {
            if refresh_due(d, since / 1000, pttl, self.call_ttl_ms(opts), permille) {
                self.refresh_in_background(key, opts, since, loader, None);
            }
        };
        self.read_through("get_or_refresh", key, opts, permille > 0, loader, on_hit)
            .await
    }

    /// The eager refresh threshold of a call (thousandths of the TTL).
    pub(crate) fn eager_permille(&self, opts: &SetOptions) -> u16 {
        opts.eager_permille
            .unwrap_or(self.core_arc().limits.eager_permille)
    }

    /// The TTL a call's options give an entry, in ms.
    pub(crate) fn call_ttl_ms(&self, opts: &SetOptions) -> u64 {
        let ttl = opts.ttl.unwrap_or(self.core_arc().limits.default_ttl);
        u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// One round trip: the entry, its `PTTL` (when `with_pttl`; else -1)
    /// and Redis' clock (µs). Through the L1 when there is one (a hit: no
    /// round trip; the clock and `PTTL` estimated from the read that
    /// filled it, see [`crate::l1::read::Entry`]).
    pub(crate) async fn read_for_refresh(
        &self,
        key: &[u8],
        with_pttl: bool,
    ) -> crate::Result<(Option<bytes::Bytes>, u64, i64)> {
        if let Some(l1) = self.l1() {
            let e = self.l1_entry(l1, key).await?;
            let (now_us, pttl) = (e.now_us(), if with_pttl { e.pttl_ms() } else { -1 });
            return Ok((e.into_bytes(), now_us, pttl));
        }
        if !with_pttl {
            let (raw, since) = self.get_with_time(key).await?;
            return Ok((raw, since, -1));
        }
        let get = self.get_cmd(key)?;
        let space = &self.core_arc().space;
        let mut pipe = redis::pipe();
        pipe.add_command(get)
            .cmd("PTTL")
            .arg(space.entry_name(space.bucket_of(key), key))
            .cmd("TIME");
        let (raw, pttl, (secs, micros)): (Option<Vec<u8>>, i64, (u64, u64)) =
            self.core_arc().conn.pipe(&pipe).await?;
        Ok((raw.map(Into::into), secs * 1_000_000 + micros, pttl))
    }

    /// Starts an eager refresh of `key` unless one is in flight in this
    /// process; its store is fenced by `since` (the read that found the
    /// entry due).
    pub(crate) fn refresh_in_background<T, E, F, Fut>(
        &self,
        key: &[u8],
        opts: &SetOptions,
        since: u64,
        loader: F,
        fail_safe: Option<Duration>,
    ) where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
        F: FnOnce(LoadContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        if self.flights().is_flying(key) {
            return;
        }
        let (cache, key, opts) = (self.clone(), key.to_vec(), opts.clone());
        tokio::spawn(async move {
            let Some(mut landing) = cache.flights().try_lead(&key) else {
                return;
            };
            let ns = cache.namespace();
            let held = match cache.lease_for(&opts) {
                None => None,
                Some(cfg) => match cache.try_lease(&key, cfg).await {
                    Ok(Some(held)) => Some(held),
                    Ok(None) => {
                        observe::count_refresh(ns, "elsewhere");
                        return;
                    }
                    Err(_) => {
                        observe::count_refresh(ns, "failed");
                        return;
                    }
                },
            };
            let loaded = cache
                .load(&key, &opts, since, loader, fail_safe, true, false)
                .await;
            if let Some(held) = held {
                held.release().await;
            }
            let outcome = match loaded {
                Ok((_, Source::Loaded, payload)) => {
                    landing.outcome = Some(payload);
                    "stored"
                }
                Ok((_, Source::LoadedNotStored, _)) => "refused",
                Ok(_) => "uncached",
                Err(_) => "failed",
            };
            drop(landing);
            observe::count_refresh(ns, outcome);
        });
    }
}
