//! Read-through: `get_or_compute`, with one loader run per key and process
//! at a time, and writes guarded by fences so a value computed before an
//! invalidation is never stored after it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::watch;

use crate::cache::{Cache, SetOptions};
use crate::error::Error;
use crate::failsafe::{note_bypass, BypassReason};
use crate::layout::codec::{self, is_stale};

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
}

/// A value with the place it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Computed<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
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
    stale: Option<Vec<u8>>,
) -> Result<Computed<T>, ComputeError<E>> {
    match (fresh, stale) {
        (Err(ComputeError::Loader(e)), Some(bytes)) => match cache.decode(&bytes) {
            Ok(value) => {
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

/// What a loader's leader hands to the callers waiting on it: the payload
/// bytes, or `None` when it failed or was cancelled (they load themselves).
type Outcome = Option<Vec<u8>>;

/// In-flight loads of this process, by key.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    loads: Mutex<HashMap<Vec<u8>, watch::Receiver<Option<Outcome>>>>,
}

enum Role {
    Leader(watch::Sender<Option<Outcome>>),
    Follower(watch::Receiver<Option<Outcome>>),
}

impl Flights {
    fn join(&self, key: &[u8]) -> Role {
        let mut loads = self.loads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = loads.get(key) {
            return Role::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        loads.insert(key.to_vec(), rx);
        Role::Leader(tx)
    }

    fn leave(&self, key: &[u8]) {
        self.loads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// Removes the flight and wakes followers even when the leader's future is
/// dropped midway.
struct Landing<'a> {
    flights: &'a Flights,
    key: &'a [u8],
    tx: watch::Sender<Option<Outcome>>,
    outcome: Outcome,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.flights.leave(self.key);
        let _ = self.tx.send(Some(self.outcome.take()));
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
                return Ok(Flown::Shared(codec::from_msgpack(&payload)?));
            }
            // The leader failed or gave up: load on our own.
            let (value, outcome, _) = run().await?;
            return Ok(Flown::Own(value, outcome));
        }
        Role::Leader(tx) => tx,
    };
    let mut landing = Landing {
        flights,
        key,
        tx,
        outcome: None,
    };
    let (value, outcome, shared) = run().await?;
    landing.outcome = shared;
    drop(landing);
    Ok(Flown::Own(value, outcome))
}

impl Cache {
    /// Reads `key`; on a miss runs `loader`, stores its value with `opts`
    /// and returns it.
    ///
    /// - Concurrent calls for the same key in this process share one loader
    ///   run ([`Source::Shared`]).
    /// - The store is guarded: if the key is deleted or one of `opts`' tags
    ///   invalidated after this call's read, the value is returned but not
    ///   stored ([`Source::LoadedNotStored`]), so an invalidation that
    ///   returned is never undone by a loader that read old data.
    /// - Loader errors are returned and never cached.
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
        let key = key.as_ref();
        let (cached, since) = self.get_with_time(key).await?;
        let stale = match cached {
            Some(bytes) if !is_stale(&codec::decode_entry(&bytes)?, since / 1000) => {
                return Ok(Computed {
                    value: self.decode(&bytes)?,
                    source: Source::Hit,
                });
            }
            other => other,
        };
        let fresh = self.fly(key, opts, since, loader, None).await;
        serve_stale_on_failure(self, fresh, stale)
    }

    /// The miss path: one loader run per key in this process. With
    /// `fail_safe` = Some(timeout), the store is bounded by the timeout and
    /// its failure only means the value is not stored.
    pub(crate) async fn fly<T, E, F, Fut>(
        &self,
        key: &[u8],
        opts: &SetOptions,
        since: u64,
        loader: F,
        fail_safe: Option<std::time::Duration>,
    ) -> Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let flown = single_flight(self.flights(), key, || async {
            let (value, source, payload) = self.load(key, opts, since, loader, fail_safe).await?;
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

    async fn load<T, E, F, Fut>(
        &self,
        key: &[u8],
        opts: &SetOptions,
        since: u64,
        loader: F,
        fail_safe: Option<std::time::Duration>,
    ) -> Result<(T, Source, Vec<u8>), ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let value = loader().await.map_err(ComputeError::Loader)?;
        let payload = codec::to_msgpack(&value)?;
        let stored = match fail_safe {
            None => self.store_guarded(key, &payload, opts, since).await?,
            Some(limit) => {
                let store = self.store_guarded(key, &payload, opts, since);
                match tokio::time::timeout(limit, store).await {
                    Ok(Ok(stored)) => stored,
                    Ok(Err(e)) if e.is_invalid_input() => return Err(e.into()),
                    Ok(Err(e)) => {
                        note_bypass(self.namespace(), "set", BypassReason::from_error(&e));
                        false
                    }
                    Err(_) => {
                        note_bypass(self.namespace(), "set", BypassReason::Timeout);
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
