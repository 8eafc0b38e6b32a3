//! Read-through: `get_or_compute`, with one loader run per key and process
//! at a time, and writes guarded by fences so a value computed before an
//! invalidation is never stored after it.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::cache::{Cache, SetOptions};
use crate::error::Error;
use crate::failsafe::{note_bypass, BypassReason};
use crate::layout::codec::{self, is_stale};
use crate::observe;
use crate::options::LeaseConfig;
use crate::readthrough::context::LoadContext;
use crate::readthrough::flight::{Flights, Landing, Role};
use crate::readthrough::lease::Leased;

/// Where a value returned by [`Cache::get_or_compute`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Read from the cache.
    Hit,
    /// Computed by this call's loader and stored.
    Loaded,
    /// Computed by this call's loader but not stored: the key was deleted,
    /// or one of its tags invalidated, while the loader ran (storing it
    /// could bring back data older than that invalidation).
    LoadedNotStored,
    /// Computed by a concurrent caller's loader in this process.
    Shared,
    /// A stale value (past its TTL, within its grace period) served
    /// because the loader failed or exceeded its soft timeout.
    Stale,
    /// Computed by this call's loader, which said not to cache it
    /// ([`LoadContext::dont_cache`]); nothing was stored.
    Uncached,
    /// Loaded by another process, which held the key's load lease
    /// ([`CacheBuilder::load_lease`](crate::CacheBuilder::load_lease)):
    /// this call waited for its value and read it from the cache.
    Waited,
}

impl Source {
    /// The source's name, as the `source` label of
    /// `tagcache_read_through_total` and the Python bindings say it
    /// (`"hit"`, `"loaded"`, `"loaded_not_stored"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Loaded => "loaded",
            Self::LoadedNotStored => "loaded_not_stored",
            Self::Shared => "shared",
            Self::Stale => "stale",
            Self::Uncached => "uncached",
            Self::Waited => "waited",
        }
    }
}

/// A value with the place it came from: a [`Source`] for
/// [`Cache::get_or_compute`], a [`crate::Fetched`] for a group's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Computed<T, S = Source> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: S,
}

impl<T, S> Computed<T, S> {
    /// The value and where it came from, as a pair.
    pub fn into_parts(self) -> (T, S) {
        (self.value, self.source)
    }
}

/// Why [`Cache::get_or_compute`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComputeError<E> {
    /// The loader failed; nothing was cached.
    #[error("loader failed: {0}")]
    Loader(E),
    /// Redis failed.
    #[error(transparent)]
    Cache(#[from] Error),
}

/// A failed load falls back to the stale value of an entry in its grace
/// period, when there is one.
pub(crate) fn serve_stale_on_failure<T: DeserializeOwned, E>(
    cache: &Cache,
    fresh: Result<Computed<T>, ComputeError<E>>,
    stale: Option<bytes::Bytes>,
) -> Result<Computed<T>, ComputeError<E>> {
    match (fresh, stale) {
        (Err(ComputeError::Loader(e)), Some(bytes)) => match cache.decode(&bytes) {
            Ok(value) => {
                observe::count_stale(cache.namespace(), "loader_error");
                tracing::warn!(
                    namespace = cache.namespace(),
                    "loader failed: serving a stale value"
                );
                Ok(Computed {
                    value,
                    source: Source::Stale,
                })
            }
            Err(_) => Err(ComputeError::Loader(e)),
        },
        (fresh, _) => fresh,
    }
}

/// What one caller of [`single_flight`] got.
pub(crate) enum Flown<T, S> {
    /// This caller ran its own load, which said `S` (stored or not, ...).
    Own(T, S),
    /// A concurrent caller's load, shared.
    Shared(T),
}

/// Runs `run` (load, then store) once per `key` among concurrent callers
/// in this process: the first caller leads; the others wait and decode the
/// payload it shares, or run their own `run` when it shared none (it
/// failed, was cancelled, or its store was refused). `run` returns the
/// value, what happened to it, and the payload to share, if any.
pub(crate) async fn single_flight<T, S, E, R, Fut>(
    namespace: &str,
    flights: &Flights,
    key: &[u8],
    run: R,
) -> Result<Flown<T, S>, ComputeError<E>>
where
    T: DeserializeOwned,
    R: FnOnce() -> Fut,
    Fut: Future<Output = Result<(T, S, Option<Vec<u8>>), ComputeError<E>>>,
{
    let tx = match flights.join(key) {
        Role::Follower(mut rx) => {
            let shared = rx
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|o| o.clone().flatten());
            if let Some(payload) = shared {
                observe::count_wait(namespace, "process", "shared");
                return Ok(Flown::Shared(codec::from_msgpack(&payload)?));
            }
            // The leader failed or gave up: load on our own.
            observe::count_wait(namespace, "process", "loaded_self");
            let (value, outcome, _) = run().await?;
            return Ok(Flown::Own(value, outcome));
        }
        Role::Leader(tx) => tx,
    };
    let mut landing = Landing::new(flights, key, tx);
    let (value, outcome, shared) = run().await?;
    landing.outcome = shared;
    drop(landing);
    Ok(Flown::Own(value, outcome))
}

/// The entry's MessagePack payload, to share with callers waiting in this
/// process (`None` for a raw entry).
fn msgpack_payload(cache: &Cache, raw: &[u8]) -> Option<Vec<u8>> {
    let d = codec::decode_entry(raw).ok()?;
    if d.codec != codec::Codec::MsgPack {
        return None;
    }
    d.payload(cache.max_value_bytes()).ok()
}

impl Cache {
    /// Reads `key`; on a miss runs `loader`, stores its value with `opts`
    /// and returns it.
    ///
    /// - Concurrent calls for the same key in this process share one loader
    ///   run ([`Source::Shared`]); with a [load
    ///   lease](crate::CacheBuilder::load_lease), so do calls in other
    ///   processes ([`Source::Waited`]).
    /// - The store is guarded: if the key is deleted or one of `opts`' tags
    ///   invalidated after this call's read, the value is returned but not
    ///   stored ([`Source::LoadedNotStored`]), so an invalidation that
    ///   returned is never undone by a loader that read old data.
    /// - Loader errors are returned and never cached.
    ///
    /// To set the TTL or tags from the loaded value, or not cache it, use
    /// [`Cache::get_or_compute_with`]; to refresh hot keys before they
    /// expire, [`Cache::get_or_refresh`].
    ///
    /// ```no_run
    /// # async fn demo(cache: tagcache::Cache) -> Result<(), Box<dyn std::error::Error>> {
    /// use tagcache::SetOptions;
    /// let page = cache
    ///     .get_or_compute("page:/shoes", &SetOptions::new().tag("product:42"), || async {
    ///         Ok::<_, std::io::Error>("<h1>Shoes</h1>".to_string())
    ///     })
    ///     .await?;
    /// println!("{} ({:?})", page.value, page.source);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ComputeError::Loader`] with the loader's error;
    /// [`ComputeError::Cache`] for invalid input and Redis errors.
    pub async fn get_or_compute<T, E, F, Fut>(
        &self,
        key: impl AsRef<[u8]>,
        opts: &SetOptions,
        loader: F,
    ) -> Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_compute_with(key, opts, |_| loader()).await
    }

    // The read-through methods repeat each other's signatures on purpose: each is public API.
    /// [`Cache::get_or_compute`] whose loader gets a [`LoadContext`]:
    /// from what it loaded it may set the entry's TTL, grace and tags
    /// ([`LoadContext::set_ttl`], ...), or say not to cache it
    /// ([`LoadContext::dont_cache`], [`Source::Uncached`]). What it sets
    /// applies to this store only; callers sharing its run get its value.
    ///
    /// # Errors
    /// As [`Cache::get_or_compute`]; options the loader set are checked
    /// when the value is stored (an invalid TTL is
    /// [`ComputeError::Cache`]).
    pub async fn get_or_compute_with<T, E, F, Fut>(
        &self,
        key: impl AsRef<[u8]>,
        opts: &SetOptions,
        loader: F,
    ) -> Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(LoadContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let key = key.as_ref();
        self.read_through("get_or_compute", key, opts, false, loader, |_, _, _, _| {})
            .await
    }

    /// The strict read-throughs' path ([`Cache::get_or_compute_with`],
    /// [`Cache::get_or_refresh_with`]): one read of
    /// the entry and Redis' clock (and its `PTTL` when `with_pttl`); a
    /// fresh hit is returned after `on_hit` saw it with the read's time,
    /// the `PTTL` and the loader (an eager refresh starts there); else the
    /// loader runs once per key ([`Cache::fly`]), and a stale entry is
    /// served if it fails. Traced and counted as `op`.
    pub(super) async fn read_through<T, E, F, Fut>(
        &self,
        op: &'static str,
        key: &[u8],
        opts: &SetOptions,
        with_pttl: bool,
        loader: F,
        on_hit: impl FnOnce(&codec::Decoded<'_>, u64, i64, F),
    ) -> Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(LoadContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let span = self.read_through_span(op, key);
        let work = async {
            let (cached, since, pttl) = self.read_for_refresh(key, with_pttl).await?;
            let stale = match cached {
                Some(bytes) => {
                    let d = codec::decode_entry(&bytes)?;
                    if !is_stale(&d, since / 1000) {
                        let value = self.decode(&bytes)?;
                        on_hit(&d, since, pttl, loader);
                        return Ok(Computed {
                            value,
                            source: Source::Hit,
                        });
                    }
                    Some(bytes)
                }
                None => None,
            };
            let fresh = self
                .fly(key, opts, since, loader, None, stale.is_some())
                .await;
            serve_stale_on_failure(self, fresh, stale)
        };
        let result = tracing::Instrument::instrument(work, span.clone()).await;
        record_source(self.namespace(), &span, &result);
        result
    }

    pub(super) fn read_through_span(&self, op: &'static str, key: &[u8]) -> tracing::Span {
        observe::op_span(self.namespace(), op, Some(key), self.key_logging())
    }

    /// The load lease of a call, if it takes one.
    pub(crate) fn lease_for(&self, opts: &SetOptions) -> Option<LeaseConfig> {
        let configured = self.core_arc().limits.lease;
        match opts.lease {
            Some(false) => None,
            Some(true) => Some(configured.unwrap_or_else(LeaseConfig::fallback)),
            None => configured,
        }
    }

    /// The miss path: one loader run per key in this process (and, with a
    /// lease, across processes). With `fail_safe` = Some(timeout), the
    /// store is bounded by the timeout and its failure only means the value
    /// is not stored.
    pub(crate) async fn fly<T, E, F, Fut>(
        &self,
        key: &[u8],
        opts: &SetOptions,
        since: u64,
        loader: F,
        fail_safe: Option<Duration>,
        has_stale: bool,
    ) -> Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(LoadContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let ns = self.namespace();
        let flown = single_flight(ns, self.flights(), key, || async {
            let (since, held) = match self.lease_for(opts) {
                None => (since, None),
                Some(cfg) => match self.lease_or_wait(key, cfg).await {
                    Ok(Leased::Held(held, since)) => (since, Some(held)),
                    Ok(Leased::Alone(since)) => (since, None),
                    Ok(Leased::Value(raw)) => {
                        let value = self.decode(&raw)?;
                        return Ok((value, Source::Waited, msgpack_payload(self, &raw)));
                    }
                    Err(e) if fail_safe.is_some() && !e.is_invalid_input() => {
                        note_bypass(ns, "lease", BypassReason::from_error(&e));
                        (since, None)
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            let loaded = self
                .load(key, opts, since, loader, fail_safe, false, has_stale)
                .await;
            if let Some(held) = held {
                held.release().await;
            }
            let (value, source, payload) = loaded?;
            // Share only a value the fences accepted: a refused store means
            // an invalidation ran during the load, and a caller that joined
            // after it returned must not get data read before it.
            let shared = (source == Source::Loaded).then_some(payload);
            Ok((value, source, shared))
        })
        .await?;
        Ok(match flown {
            Flown::Own(value, source) => Computed { value, source },
            Flown::Shared(value) => Computed {
                value,
                source: Source::Shared,
            },
        })
    }

    /// Runs the loader with its context, then stores its value (fenced by
    /// `since`) unless it said not to cache it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn load<T, E, F, Fut>(
        &self,
        key: &[u8],
        opts: &SetOptions,
        since: u64,
        loader: F,
        fail_safe: Option<Duration>,
        refresh: bool,
        has_stale: bool,
    ) -> Result<(T, Source, Vec<u8>), ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(LoadContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let ns = self.namespace();
        let ctx = LoadContext::new(key, opts, refresh, has_stale);
        let started = Instant::now();
        let loaded = loader(ctx.clone()).await;
        observe::record_loader(ns, loaded.is_ok(), started.elapsed().as_secs_f64());
        let value = loaded.map_err(ComputeError::Loader)?;
        let payload = codec::to_msgpack(&value)?;
        let Some(opts) = ctx.outcome() else {
            return Ok((value, Source::Uncached, payload));
        };
        let stored = match fail_safe {
            None => {
                let stored = self.store_guarded(key, &payload, &opts, since).await?;
                if !stored {
                    observe::count_refused(ns, "compute");
                }
                stored
            }
            Some(limit) => {
                let store = self.store_guarded(key, &payload, &opts, since);
                match tokio::time::timeout(limit, store).await {
                    Ok(Ok(stored)) => {
                        if !stored {
                            observe::count_refused(ns, "compute");
                        }
                        stored
                    }
                    Ok(Err(e)) if e.is_invalid_input() => return Err(e.into()),
                    Ok(Err(e)) => {
                        note_bypass(ns, "set", BypassReason::from_error(&e));
                        false
                    }
                    Err(_) => {
                        note_bypass(ns, "set", BypassReason::Timeout);
                        false
                    }
                }
            }
        };
        let source = if stored {
            Source::Loaded
        } else {
            Source::LoadedNotStored
        };
        Ok((value, source, payload))
    }
}

/// Counts a read-through's outcome, and records it on its span.
pub(super) fn record_source<T, E>(
    namespace: &str,
    span: &tracing::Span,
    result: &Result<Computed<T>, ComputeError<E>>,
) {
    let outcome = count_source(namespace, result);
    if !span.is_disabled() {
        span.record("outcome", outcome);
    }
}

/// Counts a read-through's outcome; returns its label.
pub(crate) fn count_source<T, E>(
    namespace: &str,
    result: &Result<Computed<T>, ComputeError<E>>,
) -> &'static str {
    let outcome = source_label(result);
    observe::count_read_through(namespace, outcome);
    outcome
}

/// The metric label of a read-through's outcome.
fn source_label<T, E>(result: &Result<Computed<T>, ComputeError<E>>) -> &'static str {
    match result {
        Ok(c) => c.source.as_str(),
        Err(ComputeError::Loader(_)) => "loader_error",
        Err(ComputeError::Cache(_)) => "error",
    }
}
