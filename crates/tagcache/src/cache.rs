//! The cache handle: its state, and reading entries. Its writes are in
//! `cache/writes.rs`, its index operations (delete, invalidate, tag
//! listings, sweep, stats, clear) in `cache/indexes.rs`; the subsystems add
//! theirs (`keyspace`, `readthrough`, `failsafe`, `legacy`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::engine::core::Core;
use crate::engine::queue::WriteQueue;
use crate::error::{ErrorKind, Result};
use crate::failsafe::journal::Journal;
use crate::l1::Taken;
use crate::layout::codec::{self, is_stale_now};
use crate::layout::keys::validate_key;
use crate::layout::payload::{self, Payload};
pub(crate) use crate::options::SetOptions;
use crate::readthrough::flight::Flights;
use crate::server::ServerInfo;
use crate::tasks::AbortOnDrop;

mod indexes;
mod writes;

/// A Redis cache whose entries carry tags: write entries with their tags in
/// one atomic step, then list or invalidate everything under a tag.
///
/// # Contents
/// - build: [`Cache::builder`]; about the handle:
///   [`namespace`](Cache::namespace), [`server_info`](Cache::server_info),
///   [`circuit_state`](Cache::circuit_state);
/// - write: [`set`](Cache::set), [`set_bytes`](Cache::set_bytes),
///   [`set_many`](Cache::set_many), [`set_many_bytes`](Cache::set_many_bytes);
/// - read: [`get`](Cache::get), [`get_bytes`](Cache::get_bytes),
///   [`get_bytes_shared`](Cache::get_bytes_shared),
///   [`get_many`](Cache::get_many), [`get_many_bytes`](Cache::get_many_bytes),
///   [`get_payload`](Cache::get_payload), [`exists`](Cache::exists),
///   [`ttl`](Cache::ttl), [`tags`](Cache::tags);
/// - read-through: [`get_or_compute`](Cache::get_or_compute),
///   [`get_or_compute_with`](Cache::get_or_compute_with) (the loader sets
///   TTL and tags, or keeps the value out), [`get_or_refresh`](Cache::get_or_refresh),
///   [`get_or_refresh_with`](Cache::get_or_refresh_with)
///   (eager refresh);
/// - remove: [`delete`](Cache::delete), [`delete_many`](Cache::delete_many),
///   [`clear`](Cache::clear), [`clear_with_progress`](Cache::clear_with_progress);
/// - tags: [`invalidate_tag`](Cache::invalidate_tag),
///   [`invalidate_tags`](Cache::invalidate_tags),
///   [`keys_with_tag`](Cache::keys_with_tag), [`tag_len`](Cache::tag_len),
///   [`has_tag`](Cache::has_tag);
/// - hierarchical keys: [`set_path`](Cache::set_path),
///   [`get_path`](Cache::get_path), [`delete_path`](Cache::delete_path),
///   [`invalidate_prefix`](Cache::invalidate_prefix),
///   [`paths_under`](Cache::paths_under), [`query`](Cache::query);
/// - views: [`scope`](Cache::scope), [`group`](Cache::group),
///   [`fail_safe`](Cache::fail_safe);
/// - legacy keys: [`legacy_migration`](Cache::legacy_migration);
/// - upkeep: [`prune`](Cache::prune), [`prune_step`](Cache::prune_step),
///   [`stats`](Cache::stats), [`l1_stats`](Cache::l1_stats) (the in-process
///   tier of [`CacheBuilder::l1`](crate::CacheBuilder::l1)).
///
/// A `Cache` is cheap to clone; clones share one multiplexed connection,
/// one write queue and one background sweeper.
///
/// # Example
/// ```no_run
/// # async fn demo() -> tagcache::Result<()> {
/// use std::time::Duration;
/// use tagcache::{Cache, SetOptions};
///
/// let cache = Cache::builder("redis://127.0.0.1:6379").namespace("shop").build().await?;
/// let page = "<h1>Blue shoes</h1>".to_string();
/// cache
///     .set("page:/shoes/blue", &page, &SetOptions::new().ttl(Duration::from_secs(600)).tags(["product:42", "category:shoes"]))
///     .await?;
/// assert_eq!(cache.get::<String>("page:/shoes/blue").await?, Some(page));
///
/// // Product 42 changed: every page showing it goes, in bounded chunks.
/// let removed = cache.invalidate_tag("product:42").await?;
/// assert_eq!(removed, 1);
/// assert_eq!(cache.get::<String>("page:/shoes/blue").await?, None);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Cache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) core: Arc<Core>,
    pub(crate) writes: WriteQueue,
    pub(crate) info: Arc<std::sync::OnceLock<ServerInfo>>,
    pub(crate) flights: Flights,
    pub(crate) journal: Arc<Journal>,
    pub(crate) hot_metrics: crate::observe::metrics::HotMetrics,
    pub(crate) op_timeout: Duration,
    pub(crate) response_timeout: Duration,
    /// Legacy-key rules and mode ([`CacheBuilder::legacy`]), if any.
    pub(crate) legacy: Option<Arc<crate::legacy::Legacy>>,
    /// The in-process L1 tier ([`CacheBuilder::l1`]), if enabled.
    pub(crate) l1: Option<Arc<crate::l1::L1>>,
    pub(crate) _l1_listener: Option<AbortOnDrop>,
    pub(crate) _sweeper: Option<AbortOnDrop>,
    pub(crate) _replayer: AbortOnDrop,
}

impl Cache {
    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    fn core(&self) -> &Core {
        &self.inner.core
    }

    /// The namespace this cache reads and writes.
    pub fn namespace(&self) -> &str {
        self.core().space.namespace()
    }

    /// Facts read from the server at connect.
    ///
    /// Empty fields until a lazily built cache has reached Redis.
    pub fn server_info(&self) -> ServerInfo {
        self.inner.info.get().cloned().unwrap_or(ServerInfo {
            redis_version: String::new(),
            eviction_policy: String::new(),
        })
    }

    pub(crate) fn flights(&self) -> &Flights {
        &self.inner.flights
    }

    pub(crate) fn hot_metrics(&self) -> &crate::observe::metrics::HotMetrics {
        &self.inner.hot_metrics
    }

    pub(crate) fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    pub(crate) fn op_timeout(&self) -> Duration {
        self.inner.op_timeout
    }

    /// The connection's per-call response timeout.
    pub(crate) fn response_timeout(&self) -> Duration {
        self.inner.response_timeout
    }

    pub(crate) fn legacy(&self) -> Option<&Arc<crate::legacy::Legacy>> {
        self.inner.legacy.as_ref()
    }

    pub(crate) fn key_logging(&self) -> crate::observe::KeyLogging {
        self.core().limits.key_logging
    }

    pub(crate) fn max_value_bytes(&self) -> usize {
        self.core().limits.max_value_bytes
    }

    /// The stored bytes of an entry (header included).
    pub(crate) async fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(l1) = self.l1() {
            return Ok(self.l1_entry(l1, key).await?.bytes().map(<[u8]>::to_vec));
        }
        let get = self.get_cmd(key)?;
        self.core().conn.query(&get).await
    }

    pub(crate) fn l1_arc(&self) -> Option<&Arc<crate::l1::L1>> {
        self.inner.l1.as_ref()
    }

    /// This process changed these keys: its L1 stops serving them now (the
    /// announcement tells the other processes).
    pub(crate) fn l1_keys_changed<K: AsRef<[u8]>>(&self, keys: &[K]) {
        if let Some(l1) = &self.inner.l1 {
            l1.keys_changed(keys);
        }
    }

    /// This process invalidated these tags (see [`Cache::l1_keys_changed`]).
    pub(crate) fn l1_tags_invalidated<T: AsRef<[u8]>>(&self, tags: &[T]) {
        if let Some(l1) = &self.inner.l1 {
            l1.tags_invalidated(tags);
        }
    }

    /// This process cleared the namespace: its L1 drops everything now.
    pub(crate) fn l1_drop_all(&self) {
        if let Some(l1) = &self.inner.l1 {
            l1.drop_all(crate::l1::DropCause::Announcement);
        }
    }

    /// The L1 tier's counters, or `None` when it is not enabled
    /// ([`crate::CacheBuilder::l1`]).
    pub fn l1_stats(&self) -> Option<crate::L1Stats> {
        self.inner.l1.as_ref().map(|l1| l1.stats())
    }

    /// State of the circuit breaker in front of Redis.
    pub fn circuit_state(&self) -> crate::CircuitState {
        self.core().conn.breaker().state()
    }

    /// One round trip: the entry's bytes and Redis' clock (µs), the time a
    /// guarded write compares fences with. Through the L1 when there is
    /// one (a hit: no round trip, the clock estimated; see
    /// [`crate::l1::read::Entry`]).
    pub(crate) async fn get_with_time(&self, key: &[u8]) -> Result<(Option<Bytes>, u64)> {
        if let Some(l1) = self.l1() {
            let e = self.l1_entry(l1, key).await?;
            let now_us = e.now_us();
            return Ok((e.into_bytes(), now_us));
        }
        let mut pipe = redis::pipe();
        pipe.add_command(self.get_cmd(key)?).cmd("TIME");
        let (raw, (secs, micros)): (Option<Vec<u8>>, (u64, u64)) =
            self.core().conn.pipe(&pipe).await?;
        Ok((raw.map(Bytes::from), secs * 1_000_000 + micros))
    }

    pub(crate) fn core_arc(&self) -> &Arc<Core> {
        &self.inner.core
    }

    fn entry_key(&self, key: &[u8]) -> Result<Vec<u8>> {
        validate_key(key)?;
        let space = &self.core().space;
        Ok(space.entry(space.bucket_of(key), key))
    }

    /// `GET` of one entry: the key checked, the name written straight into
    /// a command buffer of the exact size (the hot path of every read).
    pub(crate) fn get_cmd(&self, key: &[u8]) -> Result<redis::Cmd> {
        validate_key(key)?;
        let space = &self.core().space;
        let name = space.entry_name(space.bucket_of(key), key);
        let mut cmd = redis::Cmd::with_capacity(2, 3 + name.len());
        cmd.arg("GET").arg(name);
        Ok(cmd)
    }

    pub(crate) fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        self.decode_value(&codec::decode_entry(bytes)?)
    }

    /// The typed value of a decoded entry (read in place unless
    /// compressed); a raw entry reads only into byte-buffer types.
    fn decode_value<T: DeserializeOwned>(&self, d: &codec::Decoded<'_>) -> Result<T> {
        d.with_payload(self.core().limits.max_value_bytes, |p| {
            codec::from_payload(d.codec, p)
        })?
    }

    /// A typed value, or `None` when the entry is stale (in its grace
    /// period: plain reads treat it as gone; compared with this host's
    /// clock).
    pub(crate) fn decode_fresh<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<Option<T>> {
        let d = codec::decode_entry(bytes)?;
        if is_stale_now(&d) {
            return Ok(None);
        }
        self.decode_value(&d).map(Some)
    }

    /// Payload bytes, or `None` when the entry is stale.
    pub(crate) fn decode_bytes_fresh(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        let d = codec::decode_entry(bytes)?;
        if is_stale_now(&d) {
            return Ok(None);
        }
        d.payload(self.core().limits.max_value_bytes).map(Some)
    }

    /// As [`Cache::decode_bytes_fresh`], taking the payload out of `bytes`
    /// instead of copying it.
    pub(crate) fn take_bytes_fresh(&self, bytes: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let d = codec::decode_entry(&bytes)?;
        if is_stale_now(&d) {
            return Ok(None);
        }
        let body = d.body(&bytes);
        body.take(bytes, self.core().limits.max_value_bytes)
            .map(Some)
    }

    /// Reads a typed value; `None` when absent or expired. One `GET`.
    ///
    /// # Errors
    /// Redis errors; [`ErrorKind::Codec`](crate::ErrorKind::Codec) when the stored value is not a
    /// MessagePack entry of the requested type.
    pub async fn get<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>> {
        if let Some(l1) = self.l1() {
            let e = self.l1_entry(l1, key.as_ref()).await?;
            return Ok(e
                .bytes()
                .map(|b| self.decode_fresh(b))
                .transpose()?
                .flatten());
        }
        let get = self.get_cmd(key.as_ref())?;
        let raw: Option<Vec<u8>> = self.core().conn.query(&get).await?;
        Ok(raw.map(|b| self.decode_fresh(&b)).transpose()?.flatten())
    }

    /// Reads a value's payload bytes (decompressed); `None` when absent.
    ///
    /// # Errors
    /// Redis errors; [`ErrorKind::Codec`](crate::ErrorKind::Codec) for bytes not in tagcache format.
    pub async fn get_bytes(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let key = key.as_ref();
        if let Some(l1) = self.l1() {
            let max = self.max_value_bytes();
            let raw = match self.l1_payload(l1, key, |data, at| data[at..].to_vec())? {
                Some(Taken::Payload(p)) => return Ok(Some(p)),
                Some(Taken::Stale) => return Ok(None),
                Some(Taken::Slot(slot)) => {
                    return Ok(slot.fresh_payload(max)?.map(Cow::into_owned))
                }
                None => self
                    .l1_fetch(l1, key, self.bucket_of(key))
                    .await?
                    .into_bytes(),
            };
            return Ok(raw
                .map(|b| self.decode_bytes_fresh(&b))
                .transpose()?
                .flatten());
        }
        let get = self.get_cmd(key)?;
        let raw: Option<Vec<u8>> = self.core().conn.query(&get).await?;
        Ok(raw.map(|b| self.take_bytes_fresh(b)).transpose()?.flatten())
    }

    /// As [`Cache::get_bytes`], the payload as [`Bytes`](crate::Bytes) that
    /// share the buffer they were found in instead of a copy: an L1 hit
    /// ([`CacheBuilder::l1`](crate::CacheBuilder::l1)) hands out the L1's
    /// own bytes — no allocation, no copy —, a read from Redis the bytes it
    /// received. The fastest way to read raw bytes through the L1; a
    /// compressed payload is decompressed into new bytes, as ever.
    ///
    /// # Errors
    /// As [`Cache::get_bytes`].
    pub async fn get_bytes_shared(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        let max = self.max_value_bytes();
        if let Some(l1) = self.l1() {
            let raw = match self.l1_payload(l1, key, |data, at| data.slice(at..))? {
                Some(Taken::Payload(p)) => return Ok(Some(p)),
                Some(Taken::Stale) => return Ok(None),
                Some(Taken::Slot(slot)) => return slot.fresh_payload_shared(max),
                None => self
                    .l1_fetch(l1, key, self.bucket_of(key))
                    .await?
                    .into_bytes(),
            };
            return raw
                .map(|b| share_fresh(b, max))
                .transpose()
                .map(Option::flatten);
        }
        let get = self.get_cmd(key)?;
        let raw: Option<Vec<u8>> = self.core().conn.query(&get).await?;
        Ok(raw
            .map(|b| self.take_bytes_fresh(b))
            .transpose()?
            .flatten()
            .map(Bytes::from))
    }

    /// The bucket of a valid key.
    fn bucket_of(&self, key: &[u8]) -> u16 {
        self.core().space.bucket_of(key)
    }

    /// The stored bytes of many entries, in the order asked: one `MGET`,
    /// or through the L1 when there is one ([`Cache::l1_many`]).
    async fn mget<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<K> = keys.into_iter().collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(l1) = self.l1() {
            let found = self.l1_many(l1, &keys).await?;
            return Ok(found.into_iter().map(|b| b.map(Vec::from)).collect());
        }
        let space = &self.core().space;
        let mut bytes = 4;
        for k in &keys {
            let k = k.as_ref();
            validate_key(k)?;
            // (+4: a bucket number has at most 4 digits more than `0`.)
            bytes += space.entry_name(0, k).len() + 4;
        }
        // The names are written straight into one buffer of the right size.
        let mut mget = redis::Cmd::with_capacity(keys.len() + 1, bytes);
        mget.arg("MGET");
        for k in &keys {
            let k = k.as_ref();
            mget.arg(space.entry_name(space.bucket_of(k), k));
        }
        self.core().conn.query(&mget).await
    }

    /// Reads many typed values with one `MGET`, in the order asked.
    ///
    /// # Errors
    /// As [`Cache::get`].
    pub async fn get_many<T: DeserializeOwned, K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<T>>> {
        self.mget(keys)
            .await?
            .into_iter()
            .map(|v| Ok(v.map(|b| self.decode_fresh(&b)).transpose()?.flatten()))
            .collect()
    }

    /// Reads many payloads with one `MGET`, in the order asked.
    ///
    /// # Errors
    /// As [`Cache::get_bytes`].
    pub async fn get_many_bytes<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.mget(keys)
            .await?
            .into_iter()
            .map(|v| Ok(v.map(|b| self.take_bytes_fresh(b)).transpose()?.flatten()))
            .collect()
    }

    /// Whether an entry exists.
    ///
    /// # Errors
    /// Invalid key, Redis errors.
    pub async fn exists(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let k = self.entry_key(key.as_ref())?;
        self.core().conn.query(redis::cmd("EXISTS").arg(k)).await
    }

    /// The entry's remaining TTL; `None` when absent.
    ///
    /// # Errors
    /// Invalid key, Redis errors.
    pub async fn ttl(&self, key: impl AsRef<[u8]>) -> Result<Option<Duration>> {
        let k = self.entry_key(key.as_ref())?;
        let ms: i64 = self.core().conn.query(redis::cmd("PTTL").arg(k)).await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    /// The entry's tags, in the order written; `None` when absent. Besides
    /// the caller's tags, a hierarchical key lists the reserved prefix
    /// tags it implies (byte 0, `p`, the encoded prefix; see
    /// [`crate::KeyPath`]).
    ///
    /// # Errors
    /// Invalid key, Redis errors, a corrupt entry.
    pub async fn tags(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<Vec<u8>>>> {
        let key = key.as_ref();
        validate_key(key)?;
        let bucket = self.core().space.bucket_of(key);
        let mut sections = match self.core().read_sections(bucket, &[key.to_vec()]).await {
            Ok(sections) => sections,
            // The script only sees that the entry is malformed; a read says
            // why, so `tags` and `get` report the very same error.
            Err(e) if e.kind() == ErrorKind::Codec => {
                self.get_bytes(key).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let tags = sections
            .pop()
            .flatten()
            .map(|s| codec::parse_tags(&s))
            .transpose()?;
        // The all-entries tag is on every entry: an implementation detail.
        Ok(tags.map(|t| {
            t.into_iter()
                .filter(|t| t != crate::layout::keys::ALL_TAG)
                .collect()
        }))
    }
}

/// The payload of stored entry bytes sharing their buffer (no copy unless
/// compressed), or `None` when the entry is stale.
fn share_fresh(bytes: Bytes, max_len: usize) -> Result<Option<Bytes>> {
    let d = codec::decode_entry(&bytes)?;
    if is_stale_now(&d) {
        return Ok(None);
    }
    let body = d.body(&bytes);
    Ok(Some(body.shared(&bytes, max_len)?))
}

impl Cache {
    /// Reads an entry's payload with its encoding; `None` when absent or
    /// expired (or stale, as [`Cache::get_bytes`]). One `GET`.
    ///
    /// # Errors
    /// Invalid key, Redis errors; [`ErrorKind::Codec`] for stored bytes
    /// not in tagcache format, tag section included (the same error
    /// [`Cache::tags`] reports for them).
    pub async fn get_payload(&self, key: impl AsRef<[u8]>) -> Result<Option<Payload>> {
        let Some(raw) = self.get_raw(key.as_ref()).await? else {
            return Ok(None);
        };
        payload::of_entry(&raw, self.max_value_bytes())
    }
}

#[cfg(test)]
mod tests {

    /// The "Contents" list of [`Cache`] names every public method, wherever
    /// its `impl Cache` block lives.
    #[test]
    fn contents_lists_every_public_method() {
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let doc = include_str!("cache.rs");
        let contents =
            &doc[doc.find("/// # Contents").unwrap()..doc.find("/// A `Cache` is cheap").unwrap()];
        let mut stack = vec![std::path::PathBuf::from(src)];
        let mut missing = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let mut inside = false;
                for line in text.lines() {
                    if line.starts_with("impl Cache {") {
                        inside = true;
                    } else if line.starts_with('}') {
                        inside = false;
                    } else if inside {
                        let rest = line
                            .strip_prefix("    pub async fn ")
                            .or_else(|| line.strip_prefix("    pub fn "));
                        if let Some(rest) = rest {
                            let name: String = rest
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect();
                            if !contents.contains(&format!("Cache::{name})"))
                                && !contents.contains(&format!("[`Cache::{name}`]"))
                            {
                                missing.push(name);
                            }
                        }
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "missing from Cache's Contents: {missing:?}"
        );
    }
}
