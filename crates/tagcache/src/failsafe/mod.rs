//! The fail-safe view: the cache is never the reason a request fails.
//!
//! Through [`Cache::fail_safe`], a Redis error or timeout never reaches the
//! caller: a read says [`Lookup::Bypassed`] (never a fake miss), a write is
//! skipped and says so, and an invalidation that cannot reach Redis is kept
//! in a bounded in-process journal and replayed, in order, as soon as Redis
//! answers — while reads bypass every entry a pending invalidation covers.
//! Only invalid input (an empty key, say) is an `Err`: a bug in the call,
//! never trouble with Redis.
//!
//! Each view method repeats the signature (and generic bounds) of the
//! strict method it wraps on purpose, so the two APIs read alike; the
//! bodies only bound the strict call and classify its failure (`bounded`,
//! `written`, `removal`, `load_only`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::cache::{Cache, SetOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::failsafe::journal::{Pending, ReadMark};
use crate::layout::codec::{self, is_stale_now, Codec};
use crate::layout::keys::validate_key;
use crate::observe::metrics as names;
use crate::observe::op_span;
use tracing::Instrument;

mod compute;
mod group;
pub(crate) mod journal;
mod keyspaces;

pub use group::FailSafeGroup;
pub use keyspaces::FailSafeScope;

/// Why the cache was bypassed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BypassReason {
    /// Redis did not answer within the operation timeout.
    Timeout,
    /// The connection failed.
    Connection,
    /// The circuit breaker is open.
    CircuitOpen,
    /// Redis is out of memory (writes only).
    OutOfMemory,
    /// A pending (journaled) invalidation covers the entry.
    PendingInvalidation,
    /// The stored bytes could not be decoded as the requested type.
    Undecodable,
    /// Any other Redis error.
    Error(ErrorKind),
}

impl BypassReason {
    pub(crate) fn from_error(e: &Error) -> Self {
        match e.kind() {
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::Connection => Self::Connection,
            ErrorKind::CircuitOpen => Self::CircuitOpen,
            ErrorKind::OutOfMemory => Self::OutOfMemory,
            ErrorKind::Codec => Self::Undecodable,
            k => Self::Error(k),
        }
    }

    /// A short stable name, for metric labels and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::CircuitOpen => "circuit_open",
            Self::OutOfMemory => "out_of_memory",
            Self::PendingInvalidation => "pending_invalidation",
            Self::Undecodable => "undecodable",
            Self::Error(k) => k.as_str(),
        }
    }
}

/// The outcome of a fail-safe read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup<T> {
    /// The cached value.
    Hit(T),
    /// Not cached.
    Miss,
    /// The cache could not be used; read the source of truth.
    Bypassed(BypassReason),
}

impl<T> Lookup<T> {
    /// The value of a hit.
    pub fn hit(self) -> Option<T> {
        match self {
            Self::Hit(v) => Some(v),
            _ => None,
        }
    }
}

/// The outcome of a fail-safe write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Written {
    /// Stored.
    Stored,
    /// Not stored.
    Skipped(BypassReason),
}

/// The outcome of a fail-safe invalidation or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    /// Done: this many entries were removed.
    Done(u64),
    /// Redis was unreachable: the removal is journaled, reads bypass what
    /// it covers, and it is replayed as soon as Redis answers.
    Journaled,
}

/// One log line per burst of bypasses (and one when they stop, logged by
/// the breaker).
static LAST_BYPASS_LOG: AtomicU64 = AtomicU64::new(0);

/// Counts a bypass and logs it, at most once per 10 s per process.
pub(crate) fn note_bypass(namespace: &str, op: &'static str, reason: BypassReason) {
    metrics::counter!(names::BYPASSES_TOTAL, "namespace" => namespace.to_owned(), "op" => op, "reason" => reason.as_str())
        .increment(1);
    let now = codec::local_now_ms() / 1000;
    let last = LAST_BYPASS_LOG.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST_BYPASS_LOG
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            namespace,
            op,
            reason = reason.as_str(),
            "cache bypassed (logged once per 10 s)"
        );
    }
}

/// The fail-safe view of a [`Cache`]; see the module docs. Cheap to clone.
///
/// ```no_run
/// # async fn demo(cache: tagcache::Cache) -> tagcache::Result<()> {
/// use tagcache::SetOptions;
/// let fs = cache.fail_safe();
/// let price = match fs.get::<u32>("price:42").await?.hit() {
///     Some(p) => p,
///     None => {
///         let p = 1999; // read the database
///         fs.set("price:42", &p, &SetOptions::new().tag("product:42")).await?;
///         p
///     }
/// };
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FailSafeCache {
    cache: Cache,
    timeout: Duration,
}

impl Cache {
    /// The fail-safe view of this cache (the one applications should use).
    pub fn fail_safe(&self) -> FailSafeCache {
        FailSafeCache {
            cache: self.clone(),
            timeout: self.op_timeout(),
        }
    }
}

impl FailSafeCache {
    /// The same view with another per-operation timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The strict cache behind this view.
    pub fn strict(&self) -> &Cache {
        &self.cache
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        key: Option<&[u8]>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<std::result::Result<T, BypassReason>> {
        self.bounded_with(op, key, move || fut).await
    }

    /// A write through [`FailSafeCache::bounded`]: stored, or skipped with
    /// the reason Redis failed.
    async fn written(
        &self,
        op: &'static str,
        key: Option<&[u8]>,
        fut: impl Future<Output = Result<()>>,
    ) -> Result<Written> {
        let outcome = self.bounded(op, key, fut).await?;
        Ok(outcome.map_or_else(Written::Skipped, |()| Written::Stored))
    }

    /// [`FailSafeCache::bounded`] of the future `start` makes: built in
    /// place inside this one's state, never moved (the read path).
    async fn bounded_with<T, F: Future<Output = Result<T>>>(
        &self,
        op: &'static str,
        key: Option<&[u8]>,
        start: impl FnOnce() -> F,
    ) -> Result<std::result::Result<T, BypassReason>> {
        let span = op_span(self.cache.namespace(), op, key, self.cache.key_logging());
        let started = Instant::now();
        // A single-call operation is already bounded by the connection's
        // response timeout; a timer per call is only needed for a tighter
        // limit (it costs a few percent of a cache hit).
        // Pinned once: the wrappers below move a pointer, not the call's
        // state (moving futures was a visible part of a hit's CPU).
        let fut = std::pin::pin!(start());
        let timer = self.timeout < self.cache.response_timeout();
        // Without a subscriber for the span, no wrapper around the call.
        let result = match (timer, span.is_disabled()) {
            (false, true) => Some(fut.await),
            (false, false) => Some(fut.instrument(span.clone()).await),
            (true, true) => tokio::time::timeout(self.timeout, fut).await.ok(),
            (true, false) => tokio::time::timeout(self.timeout, fut)
                .instrument(span.clone())
                .await
                .ok(),
        };
        let out = match result {
            Some(Ok(v)) => Ok(Ok(v)),
            Some(Err(e)) if e.is_invalid_input() => Err(e),
            Some(Err(e)) => Ok(Err(BypassReason::from_error(&e))),
            None => Ok(Err(BypassReason::Timeout)),
        };
        self.cache
            .hot_metrics()
            .record_op(op, started.elapsed().as_secs_f64());
        let outcome = match &out {
            Ok(Ok(_)) => "ok",
            Ok(Err(reason)) => {
                note_bypass(self.cache.namespace(), op, *reason);
                reason.as_str()
            }
            Err(_) => "invalid_input",
        };
        span.record("outcome", outcome);
        out
    }

    async fn lookup_raw(&self, key: &[u8]) -> Result<Lookup<(Codec, Vec<u8>)>> {
        let mark = self.cache.journal().mark();
        // `get_raw` validates the key; `bounded` returns invalid input as Err.
        match self
            .bounded_with("get", Some(key), || self.cache.get_raw(key))
            .await?
        {
            Ok(raw) => Ok(self.classify(key, raw, mark)),
            Err(reason) => Ok(Lookup::Bypassed(reason)),
        }
    }

    /// What a read of `key` that found `raw` serves: a miss when absent or
    /// stale, a bypass when a pending invalidation covers the entry (by
    /// key, key prefix or tag; or one pending at `mark`, taken before the
    /// read, was replayed meanwhile) or its bytes do not decode, else the
    /// hit.
    ///
    /// The payload is taken out of `raw` (no copy) unless compressed.
    fn classify(
        &self,
        key: &[u8],
        raw: Option<Vec<u8>>,
        mark: ReadMark,
    ) -> Lookup<(Codec, Vec<u8>)> {
        let Some(raw) = raw else {
            self.cache.hot_metrics().misses.increment(1);
            return Lookup::Miss;
        };
        let max_len = self.cache.max_value_bytes();
        let decoded = codec::decode_entry(&raw).and_then(|d| {
            let tags = if self.cache.journal().is_active() {
                codec::parse_tags(d.tag_section)?
            } else {
                Vec::new()
            };
            let stale = is_stale_now(&d);
            let body = d.body(&raw);
            // A compressed payload is inflated here: one that does not
            // inflate makes the entry undecodable, whatever else holds.
            let inflated = if body.is_compressed() {
                Some(d.payload(max_len)?)
            } else {
                None
            };
            Ok((d.codec, body, inflated, tags, stale))
        });
        match decoded {
            Ok((_, _, _, _, true)) => {
                self.cache.hot_metrics().misses.increment(1);
                Lookup::Miss
            }
            Ok((_, _, _, tags, _)) if self.cache.journal().covers_read(mark, key, &tags) => {
                self.pending_bypass("get")
            }
            Ok((codec, body, inflated, _, _)) => {
                let payload = match inflated {
                    Some(p) => Ok(p),
                    None => body.take(raw, max_len),
                };
                match payload {
                    Ok(payload) => {
                        self.cache.hot_metrics().hits.increment(1);
                        Lookup::Hit((codec, payload))
                    }
                    Err(_) => {
                        note_bypass(self.cache.namespace(), "get", BypassReason::Undecodable);
                        Lookup::Bypassed(BypassReason::Undecodable)
                    }
                }
            }
            Err(_) => {
                note_bypass(self.cache.namespace(), "get", BypassReason::Undecodable);
                Lookup::Bypassed(BypassReason::Undecodable)
            }
        }
    }

    /// A bypass because a pending invalidation covers what was asked for.
    fn pending_bypass<T>(&self, op: &'static str) -> Lookup<T> {
        note_bypass(
            self.cache.namespace(),
            op,
            BypassReason::PendingInvalidation,
        );
        Lookup::Bypassed(BypassReason::PendingInvalidation)
    }

    /// A removal that is journaled when Redis fails: `pending` is what the
    /// replayer runs once Redis answers (an idempotent superset of `run`).
    async fn removal(
        &self,
        op: &'static str,
        run: impl Future<Output = Result<u64>>,
        pending: impl FnOnce() -> Pending,
    ) -> Result<Removal> {
        match run.await {
            Ok(n) => Ok(Removal::Done(n)),
            Err(e) if e.is_invalid_input() => Err(e),
            Err(e) => {
                note_bypass(self.cache.namespace(), op, BypassReason::from_error(&e));
                self.cache.journal().push(pending());
                Ok(Removal::Journaled)
            }
        }
    }

    /// Reads a typed value.
    ///
    /// # Errors
    /// Only for invalid input (an empty or oversized key).
    pub async fn get<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Lookup<T>> {
        Ok(typed(self.lookup_raw(key.as_ref()).await?))
    }

    /// Reads a value's payload bytes.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn get_bytes(&self, key: impl AsRef<[u8]>) -> Result<Lookup<Vec<u8>>> {
        Ok(bytes(self.lookup_raw(key.as_ref()).await?))
    }

    /// Stores a typed value; skipped (and said so) when Redis fails.
    ///
    /// # Errors
    /// Only for invalid input (key, tags, TTL, size).
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<[u8]>,
        value: &T,
        opts: &SetOptions,
    ) -> Result<Written> {
        let key = key.as_ref();
        self.written("set", Some(key), self.cache.set(key, value, opts))
            .await
    }

    /// Stores raw bytes; skipped (and said so) when Redis fails.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn set_bytes(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: &SetOptions,
    ) -> Result<Written> {
        let key = key.as_ref();
        self.written("set", Some(key), self.cache.set_bytes(key, value, opts))
            .await
    }

    /// Deletes entries; journaled when Redis is unreachable.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn delete_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Removal> {
        let keys: Vec<Vec<u8>> = keys.into_iter().map(|k| k.as_ref().to_vec()).collect();
        for k in &keys {
            validate_key(k)?;
        }
        self.removal("delete", self.cache.delete_many(&keys), || {
            Pending::Keys(keys.clone())
        })
        .await
    }

    /// Deletes one entry; journaled when Redis is unreachable.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<Removal> {
        self.delete_many([key]).await
    }

    /// Invalidates tags; journaled when Redis is unreachable. Never
    /// forgets an acknowledged invalidation: see [`Removal::Journaled`].
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn invalidate_tags<T: AsRef<[u8]>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<Removal> {
        let tags: Vec<Vec<u8>> = tags.into_iter().map(|t| t.as_ref().to_vec()).collect();
        self.removal("invalidate", self.cache.invalidate_tags(&tags), || {
            Pending::Tags(tags.clone())
        })
        .await
    }

    /// Deletes every entry and group of the namespace (as
    /// [`Cache::clear`]); when Redis is unreachable the clear is journaled,
    /// every read bypasses the cache until it is replayed, and it is
    /// replayed like an invalidation.
    ///
    /// # Errors
    /// None in practice (kept for symmetry with the other removals).
    pub async fn clear(&self) -> Result<Removal> {
        self.removal("clear", self.cache.clear(), || Pending::Clear)
            .await
    }

    /// Invalidates one tag; journaled when Redis is unreachable.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn invalidate_tag(&self, tag: impl AsRef<[u8]>) -> Result<Removal> {
        self.invalidate_tags([tag]).await
    }

    /// Pending (journaled) invalidations and deletes.
    pub fn pending(&self) -> usize {
        self.cache.journal().len()
    }

    /// Whether the journal overflowed (every read bypasses the cache until
    /// the maximum TTL has passed since, or until acknowledged).
    pub fn journal_overflowed(&self) -> bool {
        self.cache.journal().overflowed()
    }

    /// Confirms that the namespace was flushed (or that stale reads are
    /// acceptable) after a journal overflow: reads use the cache again.
    pub fn acknowledge_journal_overflow(&self) {
        self.cache.journal().acknowledge_overflow();
    }
}

/// A raw hit as a typed value (an undecodable one is a bypass).
fn typed<T: DeserializeOwned>(found: Lookup<(Codec, Vec<u8>)>) -> Lookup<T> {
    match found {
        Lookup::Hit((c, payload)) => match codec::from_payload(c, &payload) {
            Ok(v) => Lookup::Hit(v),
            Err(_) => Lookup::Bypassed(BypassReason::Undecodable),
        },
        Lookup::Miss => Lookup::Miss,
        Lookup::Bypassed(r) => Lookup::Bypassed(r),
    }
}

/// A raw hit as payload bytes.
fn bytes(found: Lookup<(Codec, Vec<u8>)>) -> Lookup<Vec<u8>> {
    match found {
        Lookup::Hit((_, payload)) => Lookup::Hit(payload),
        Lookup::Miss => Lookup::Miss,
        Lookup::Bypassed(r) => Lookup::Bypassed(r),
    }
}
