//! Hash groups: many small cached fields of one owner in one Redis hash
//! ("is branch B protected in project P?").
//!
//! - Field names are hashed with SHA-256, truncated to 16 bytes: fixed
//!   width whatever the name, and collision-resistant (2^64 work for a
//!   generic collision) even when names are chosen by untrusted users.
//! - Values are MessagePack: a bool costs one byte.
//! - The hash gets its TTL when it is created; later writes never extend
//!   it. Redis 7.0 has no per-field expiry, so every field lives as long as
//!   the hash: a field written a second before the hash expires goes with
//!   it (a miss, recomputed), and no field outlives the hash's TTL.
//! - When the hash holds `cap` fields (default 1000) and a new one comes,
//!   it is dropped whole and started afresh, so it cannot grow unbounded.
//! - A group can carry tags: invalidating one drops the hash. The group is
//!   an ordinary index member (its key is `{ns.b}:e:\0g<name>:<owner>`),
//!   so invalidation, exactness and the sweep work as for entries.
//! - [`Group::fetch`] is a read-through like [`Cache::get_or_compute`]:
//!   concurrent fetches of one field in this process share one loader run,
//!   and the store is fenced: when the group is cleared, or one of its
//!   tags invalidated, after the fetch's read began, the value is returned
//!   but not stored ([`Fetched::NotStored`]), so a clear is never undone
//!   by a loader that read old data.

use std::future::Future;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::error::{InvalidInput, Result};
use crate::failsafe::{note_bypass, BypassReason};
use crate::layout::codec;
use crate::layout::keys;
use crate::layout::keys::validate_tag;
use crate::layout::path::{KeyPath, Part};
use crate::observe::metrics as names;
use crate::readthrough::compute::{single_flight, ComputeError, Computed, Flown};
use crate::scripts::{ScriptCall, SCRIPTS};

/// Fields a group holds before it is dropped and started afresh.
pub const DEFAULT_GROUP_CAP: usize = 1000;

/// Bytes of a hashed field name.
const FIELD_LEN: usize = 16;

/// The hash field holding the group's tag section.
const TAGS_FIELD: &[u8] = keys::GROUP_TAGS_FIELD;

/// Where a [`Group::fetch`] value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fetched {
    /// The cached field.
    Hit,
    /// Computed and stored.
    Miss,
    /// Dry run: computed; the cached field (if any) agreed.
    DryRun,
    /// Dry run: computed; the cached field differed (logged and counted).
    Mismatch,
    /// Computed by a concurrent fetch of the same field in this process.
    Shared,
    /// Computed but not stored: the group was cleared (or deleted), or
    /// one of its tags invalidated, while the loader ran (storing the value
    /// could bring back data older than that invalidation).
    NotStored,
    /// Fail-safe view only: the cache could not be used; computed and not
    /// stored.
    Bypassed(BypassReason),
}

impl Fetched {
    /// The outcome's name, as the Python bindings say it (`"hit"`,
    /// `"miss"`, `"not_stored"`, `"bypassed"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::DryRun => "dry_run",
            Self::Mismatch => "mismatch",
            Self::Shared => "shared",
            Self::NotStored => "not_stored",
            Self::Bypassed(_) => "bypassed",
        }
    }
}

/// What a fetch read in one round trip: the field, the group's tag
/// section, and Redis' clock (µs), which the store's fences are compared
/// with.
#[derive(Debug)]
pub(crate) struct FieldRead {
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) section: Option<Vec<u8>>,
    pub(crate) since: u64,
}

/// One owner's hash of small cached fields: `cache.group("protected_branches", project_id)`.
///
/// ```no_run
/// # async fn demo(cache: tagcache::Cache) -> Result<(), Box<dyn std::error::Error>> {
/// let group = cache.group("protected_branches", 42)?.tag("project:42");
/// let protected = group
///     .fetch("main", || async { Ok::<_, std::io::Error>(true) })
///     .await?
///     .value;
/// group.clear().await?; // the project's rules changed
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Group {
    cache: Cache,
    name: String,
    member: Vec<u8>,
    bucket: u16,
    ttl: Duration,
    cap: usize,
    tags: Vec<Vec<u8>>,
    dry_run: bool,
}

impl Cache {
    /// The hash group `name` of `owner`.
    ///
    /// # Errors
    /// An empty name or owner.
    pub fn group(&self, name: &str, owner: impl Into<Part>) -> Result<Group> {
        let id = KeyPath::from_parts([Part::from(name), owner.into()]);
        id.validate()?;
        let member = keys::group_member(&id.encode());
        let bucket = self.core_arc().space.bucket_of(&member);
        Ok(Group {
            cache: self.clone(),
            name: name.to_owned(),
            member,
            bucket,
            ttl: self.core_arc().limits.default_ttl,
            cap: DEFAULT_GROUP_CAP,
            tags: Vec::new(),
            dry_run: false,
        })
    }
}

impl Group {
    /// TTL this handle gives the hash when one of its writes creates it
    /// (later writes never extend it). Default: the cache's default TTL
    /// ([`CacheBuilder::default_ttl`](crate::CacheBuilder::default_ttl)).
    /// The hash's remaining TTL is read by [`Group::ttl`].
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Fields held before the hash is dropped and started afresh.
    /// Default: 1000.
    pub fn cap(mut self, cap: usize) -> Self {
        self.cap = cap.max(1);
        self
    }

    /// A tag whose invalidation drops the group.
    pub fn tag(mut self, tag: impl AsRef<[u8]>) -> Self {
        self.tags.push(tag.as_ref().to_vec());
        self
    }

    /// Dry run: compute every value anyway and return it, reporting (log
    /// and metric) when the cached value differs. Default: off.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }

    fn key(&self) -> Vec<u8> {
        self.cache.core_arc().space.entry(self.bucket, &self.member)
    }

    /// The group's index member (its key without the bucket prefix).
    pub(crate) fn member(&self) -> &[u8] {
        &self.member
    }

    /// The stored field name: 16 bytes of SHA-256 of the name.
    pub(crate) fn field(name: &[u8]) -> Vec<u8> {
        Sha256::digest(name)[..FIELD_LEN].to_vec()
    }

    fn count(&self, what: &'static str) {
        metrics::counter!(what, "namespace" => self.cache.namespace().to_owned(), "group" => self.name.clone())
            .increment(1);
    }

    /// Reads a field through the cache: on a miss, `loader` computes it and
    /// it is stored. Counts hits and misses (`tagcache_group_hits_total`,
    /// `tagcache_group_misses_total`).
    ///
    /// - Concurrent fetches of the same field in this process share one
    ///   loader run ([`Fetched::Shared`]).
    /// - The store is fenced: if the group is cleared, or one of its tags
    ///   invalidated, after this call's read, the value is returned but not
    ///   stored ([`Fetched::NotStored`]).
    ///
    /// # Errors
    /// The loader's error (nothing is cached), invalid tags or TTL, Redis
    /// and codec errors.
    pub async fn fetch<T, E, F, Fut>(
        &self,
        field: impl AsRef<[u8]>,
        loader: F,
    ) -> std::result::Result<Computed<T, Fetched>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned + PartialEq,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let field = Self::field(field.as_ref());
        let read = self.read(&field).await?;
        let (value, source) = self.resolve(&field, read, loader, None).await?;
        Ok(Computed { value, source })
    }

    /// Reads a field and the group's tag section, with Redis' clock;
    /// through the L1 when there is one (see [`Group::read_l1`]).
    pub(crate) async fn read(&self, field: &[u8]) -> Result<FieldRead> {
        if let Some(l1) = self.cache.l1() {
            return self.read_l1(l1, field).await;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.key())
            .arg(field)
            .arg(TAGS_FIELD)
            .cmd("TIME");
        type Reply = ((Option<Vec<u8>>, Option<Vec<u8>>), (u64, u64));
        let ((value, section), (secs, micros)): Reply =
            self.cache.core_arc().conn.pipe(&pipe).await?;
        Ok(FieldRead {
            value,
            section,
            since: secs * 1_000_000 + micros,
        })
    }

    /// A field through the L1: its L1 key is the group's member and the
    /// field name, and it is covered by the member's announcements (every
    /// group write and clear announces the member) and by the group's
    /// tags. A miss reads the bucket's announcement counter, the field
    /// and tag section, the hash's `PTTL` and Redis' clock in one round
    /// trip, and fills the L1 fenced (as [`Cache::get`] does).
    async fn read_l1(&self, l1: &crate::l1::L1, field: &[u8]) -> Result<FieldRead> {
        let mut l1_key = self.member.clone();
        l1_key.extend_from_slice(field);
        let down = self.cache.circuit_state() != crate::CircuitState::Closed;
        if let Some(slot) = l1.get(&l1_key, &self.member, self.bucket, down) {
            // (Only the fail-safe view looks at the tags, while invalidations
            // are journaled.)
            let section = self
                .cache
                .journal()
                .is_active()
                .then(|| codec::tag_section(&slot.tags()));
            return Ok(FieldRead {
                value: Some(slot.raw().to_vec()),
                section,
                since: slot.redis_now_us(std::time::Instant::now()),
            });
        }
        let ticket = l1.ticket(self.bucket);
        let space = &self.cache.core_arc().space;
        let key = self.key();
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(space.l1(self.bucket))
            .cmd("HMGET")
            .arg(&key)
            .arg(field)
            .arg(TAGS_FIELD)
            .cmd("PTTL")
            .arg(&key)
            .cmd("TIME");
        type Reply = (
            Option<u64>,
            (Option<Vec<u8>>, Option<Vec<u8>>),
            i64,
            (u64, u64),
        );
        let (counter, (value, section), pttl_ms, (secs, micros)): Reply =
            self.cache.core_arc().conn.pipe(&pipe).await?;
        let read_us = secs * 1_000_000 + micros;
        let tags = section.as_deref().map(codec::parse_tags);
        if let (Some(ticket), Some(v), Some(Ok(tags))) = (ticket, &value, tags) {
            let found = crate::l1::Found {
                seen: crate::l1::Seen {
                    bucket: self.bucket,
                    counter: counter.unwrap_or(0),
                },
                raw: v.clone().into(),
                tags,
                fresh_until: None,
                body: None,
                pttl_ms,
                read_us,
                received: std::time::Instant::now(),
            };
            l1.fill(ticket, &l1_key, &self.member, found);
        }
        Ok(FieldRead {
            value,
            section,
            since: read_us,
        })
    }

    /// The rest of a fetch once the field was read. With `fail_safe` =
    /// Some(timeout), an undecodable field or a failed store only means
    /// the value is not cached ([`Fetched::Bypassed`]).
    pub(crate) async fn resolve<T, E, F, Fut>(
        &self,
        field: &[u8],
        read: FieldRead,
        loader: F,
        fail_safe: Option<Duration>,
    ) -> std::result::Result<(T, Fetched), ComputeError<E>>
    where
        T: Serialize + DeserializeOwned + PartialEq,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let cached = match read.value.map(|b| codec::from_msgpack::<T>(&b)).transpose() {
            Ok(cached) => cached,
            Err(e) if fail_safe.is_none() => return Err(e.into()),
            Err(_) => {
                let reason = BypassReason::Undecodable;
                note_bypass(self.cache.namespace(), "group_fetch", reason);
                let computed = loader().await.map_err(ComputeError::Loader)?;
                return Ok((computed, Fetched::Bypassed(reason)));
            }
        };
        match (cached, self.dry_run) {
            (Some(v), false) => {
                self.count(names::GROUP_HITS_TOTAL);
                Ok((v, Fetched::Hit))
            }
            (Some(v), true) => {
                self.count(names::GROUP_HITS_TOTAL);
                let computed = loader().await.map_err(ComputeError::Loader)?;
                if computed == v {
                    Ok((computed, Fetched::DryRun))
                } else {
                    self.count(names::GROUP_MISMATCHES_TOTAL);
                    tracing::warn!(namespace = self.cache.namespace(), group = %self.name, "dry run: cached group field differs from the computed value");
                    Ok((computed, Fetched::Mismatch))
                }
            }
            (None, _) => {
                self.count(names::GROUP_MISSES_TOTAL);
                self.fly(field, read.since, loader, fail_safe).await
            }
        }
    }

    /// The miss path: one loader run per field in this process, then a
    /// store fenced by `since`.
    async fn fly<T, E, F, Fut>(
        &self,
        field: &[u8],
        since: u64,
        loader: F,
        fail_safe: Option<Duration>,
    ) -> std::result::Result<(T, Fetched), ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        // Group members start with a reserved byte no cache key has, and
        // field names have a fixed width: this never names another flight.
        let mut flight = self.member.clone();
        flight.extend_from_slice(field);
        let flown = single_flight(
            self.cache.namespace(),
            self.cache.flights(),
            &flight,
            || async {
                let started = std::time::Instant::now();
                let loaded = loader().await;
                let ns = self.cache.namespace();
                crate::observe::record_loader(ns, loaded.is_ok(), started.elapsed().as_secs_f64());
                let value = loaded.map_err(ComputeError::Loader)?;
                let payload = codec::to_msgpack(&value)?;
                let how = self.store(field, &payload, since, fail_safe).await?;
                if how == Fetched::NotStored {
                    crate::observe::count_refused(ns, "group");
                }
                // Share only a value the fences accepted.
                let shared = (how == Fetched::Miss).then_some(payload);
                Ok((value, how, shared))
            },
        )
        .await?;
        Ok(match flown {
            Flown::Own(value, how) => (value, how),
            Flown::Shared(value) => (value, Fetched::Shared),
        })
    }

    /// A fenced store: [`Fetched::Miss`] when stored, `NotStored` when a
    /// fence refused it, `Bypassed` when the fail-safe store failed.
    async fn store(
        &self,
        field: &[u8],
        payload: &[u8],
        since: u64,
        fail_safe: Option<Duration>,
    ) -> Result<Fetched> {
        let put = self.put(field, payload, since.max(1));
        let stored = match fail_safe {
            None => put.await?,
            Some(limit) => {
                let reason = match tokio::time::timeout(limit, put).await {
                    Ok(Ok(stored)) => return Ok(Self::stored(stored)),
                    Ok(Err(e)) if e.is_invalid_input() => return Err(e),
                    Ok(Err(e)) => BypassReason::from_error(&e),
                    Err(_) => BypassReason::Timeout,
                };
                note_bypass(self.cache.namespace(), "group_set", reason);
                return Ok(Fetched::Bypassed(reason));
            }
        };
        Ok(Self::stored(stored))
    }

    fn stored(stored: bool) -> Fetched {
        if stored {
            Fetched::Miss
        } else {
            Fetched::NotStored
        }
    }

    /// Stores a field directly (unfenced, like [`Cache::set`]).
    ///
    /// # Errors
    /// Invalid tags or TTL, Redis errors.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        field: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<()> {
        self.put(&Self::field(field.as_ref()), &codec::to_msgpack(value)?, 0)
            .await
            .map(drop)
    }

    /// Stores one field; with `since` > 0 (Redis µs when the caller's read
    /// began) only if no fence newer than that covers the group's key or
    /// one of its tags. Says whether it was stored.
    async fn put(&self, field: &[u8], value: &[u8], since: u64) -> Result<bool> {
        let core = self.cache.core_arc();
        let limits = &core.limits;
        if self.ttl < Duration::from_millis(1) {
            return Err(InvalidInput::TtlTooShort.into());
        }
        if self.ttl > limits.max_ttl {
            return Err(InvalidInput::TtlAboveMax(
                self.ttl.as_millis(),
                limits.max_ttl.as_millis(),
            )
            .into());
        }
        for t in &self.tags {
            validate_tag(t)?;
        }
        // Every group is in some index, so a namespace clear finds it.
        let mut tags: Vec<Vec<u8>> = self.tags.clone();
        crate::layout::path::ensure_an_edge(&mut tags);
        let mut keys = vec![self.key()];
        keys.extend(tags.iter().map(|t| core.space.tag(self.bucket, t)));
        keys.push(core.space.registry(self.bucket));
        keys.push(core.space.fence(self.bucket));
        keys.push(core.space.l1(self.bucket));
        let mut call = ScriptCall::new(&SCRIPTS.group_put, &keys);
        call.arg(tags.len())
            .arg(field)
            .arg(value)
            .arg(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX))
            .arg(self.cap)
            .arg(codec::tag_section(&tags))
            .arg(self.member.as_slice())
            .arg(since)
            .arg(limits.fence_window_us());
        for t in &tags {
            call.arg(t.as_slice());
        }
        let status = core.conn.run::<u8>(&call).await;
        // Whatever the outcome, this process' L1 stops serving the group's
        // fields now (its announcement tells the other processes).
        self.cache.l1_keys_changed(&[&self.member]);
        Ok(status? != 2)
    }

    /// How many fields the hash holds.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn len(&self) -> Result<u64> {
        let n: u64 = self
            .cache
            .core_arc()
            .conn
            .query(redis::cmd("HLEN").arg(self.key()))
            .await?;
        Ok(n.saturating_sub(1))
    }

    /// The hash's remaining TTL; `None` when it does not exist. Named
    /// like [`Cache::ttl`] and [`Scope::ttl`](crate::Scope::ttl); the TTL a
    /// new hash gets is set by [`Group::default_ttl`].
    ///
    /// # Errors
    /// Redis errors.
    pub async fn ttl(&self) -> Result<Option<Duration>> {
        let ms: i64 = self
            .cache
            .core_arc()
            .conn
            .query(redis::cmd("PTTL").arg(self.key()))
            .await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    /// Drops the whole group (with its tag edges); `true` if it existed.
    /// Fences the group's key, so a fetch whose read began before cannot
    /// store its value afterwards.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn clear(&self) -> Result<bool> {
        let core = self.cache.core_arc();
        let deleted = core
            .delete_in_bucket(self.bucket, vec![self.member.clone()])
            .await;
        self.cache.l1_keys_changed(&[&self.member]);
        Ok(deleted? == 1)
    }
}
