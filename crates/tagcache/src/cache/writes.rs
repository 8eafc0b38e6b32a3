//! The handle's writes: every API that writes an entry prepares it here
//! (`prepare`: validation, implied tags, encoding) and queues it
//! (`submit`), or writes a batch (`write_many`).

use foldhash::{HashSet, HashSetExt};
use std::time::Duration;

use serde::Serialize;

use crate::engine::write::{last_write_wins, WriteOp};
use crate::error::{InvalidInput, Result};
use crate::layout::codec::{self, Codec};
use crate::layout::keys::{validate_key, validate_tag};
use crate::options::SetOptions;

use super::Cache;

impl Cache {
    /// Queues prepared writes; says per entry whether it was stored.
    pub(crate) async fn submit(&self, ops: Vec<WriteOp>) -> Result<Vec<bool>> {
        let keys = self.l1_keys(&ops);
        let stored = self.inner.writes.submit(ops).await;
        self.l1_keys_changed(&keys);
        stored
    }

    /// Stores a MessagePack payload unless a fence newer than `since`
    /// covers the key or one of its tags; says whether it was stored.
    pub(crate) async fn store_guarded(
        &self,
        key: &[u8],
        payload: &[u8],
        opts: &SetOptions,
        since: u64,
    ) -> Result<bool> {
        let mut op = self.prepare(key, payload, Codec::MsgPack, opts)?;
        op.since = since.max(1);
        let stored = self.submit(vec![op]).await?;
        Ok(stored.first().copied().unwrap_or(false))
    }

    /// Validates and encodes one write: the caller's tags plus the
    /// reserved ones its key implies ([`crate::layout::path::implied_tags`], or the
    /// all-entries tag for an entry with no edge at all), in
    /// the key's bucket. Every API that writes an entry comes here, so a
    /// key's bucket and edges never depend on which API wrote it.
    pub(crate) fn prepare(
        &self,
        key: &[u8],
        payload: &[u8],
        codec: Codec,
        opts: &SetOptions,
    ) -> Result<WriteOp> {
        let core = self.core();
        validate_key(key)?;
        let limits = &core.limits;
        let mut seen = HashSet::with_capacity(opts.tags.len());
        let mut tags = Vec::with_capacity(opts.tags.len() + 2);
        for t in &opts.tags {
            validate_tag(t)?;
            if seen.insert(t.as_slice()) {
                tags.push(t.clone());
            }
        }
        if tags.len() > limits.max_tags {
            return Err(InvalidInput::TooManyTags(tags.len(), limits.max_tags).into());
        }
        tags.extend(crate::layout::path::implied_tags(key)?);
        crate::layout::path::ensure_an_edge(&mut tags);
        let ttl = opts.ttl.unwrap_or(limits.default_ttl);
        if ttl < Duration::from_millis(1) {
            return Err(InvalidInput::TtlTooShort.into());
        }
        let grace = opts.grace.unwrap_or(Duration::ZERO);
        if ttl + grace > limits.max_ttl {
            return Err(InvalidInput::TtlAboveMax(
                (ttl + grace).as_millis(),
                limits.max_ttl.as_millis(),
            )
            .into());
        }
        if payload.len() > limits.max_value_bytes {
            return Err(InvalidInput::ValueTooLarge(payload.len(), limits.max_value_bytes).into());
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        // Entries written with eager refresh carry their TTL, so a reader
        // knows which fraction of it has passed.
        let eager = opts.eager_permille.unwrap_or(limits.eager_permille) > 0;
        let value = codec::encode_entry(
            &tags,
            payload,
            codec,
            limits.compression,
            !grace.is_zero(),
            eager.then_some(ttl_ms),
        );
        Ok(WriteOp {
            key: key.to_vec(),
            bucket: core.space.bucket_of(key),
            value,
            ttl_ms,
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            tags: tags.into(),
            since: 0,
        })
    }

    /// Stores a typed value (MessagePack) with its tags, replacing any entry
    /// under `key` and every index edge it had, in one atomic step.
    ///
    /// Concurrent `set`s share server calls (see the crate docs); the call
    /// returns once Redis has applied the write (with
    /// [`WritePath::Transaction`](crate::WritePath::Transaction), both of
    /// its steps when the entry dropped a tag).
    ///
    /// # Errors
    /// Invalid key, tag, TTL or size ([`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput)), Redis
    /// errors (including [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory)).
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<[u8]>,
        value: &T,
        opts: &SetOptions,
    ) -> Result<()> {
        let payload = codec::to_msgpack(value)?;
        let op = self.prepare(key.as_ref(), &payload, Codec::MsgPack, opts)?;
        self.submit(vec![op]).await.map(drop)
    }

    /// Stores raw bytes (readable by any client that skips the header, see
    /// `docs/redis-layout.md`); otherwise like [`Cache::set`].
    ///
    /// # Errors
    /// As [`Cache::set`].
    pub async fn set_bytes(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: &SetOptions,
    ) -> Result<()> {
        let op = self.prepare(key.as_ref(), value.as_ref(), Codec::Raw, opts)?;
        self.submit(vec![op]).await.map(drop)
    }

    /// Stores many typed entries in batched calls (up to 128 entries a
    /// call, one transaction or script call each). A key given twice keeps its last value. Each entry is atomic
    /// with its edges; the batch as a whole is not a transaction.
    ///
    /// # Errors
    /// As [`Cache::set`]; nothing is written when an input is invalid.
    pub async fn set_many<K, T, I>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, T, SetOptions)>,
        K: AsRef<[u8]>,
        T: Serialize,
    {
        let mut ops = Vec::new();
        for (k, v, o) in items {
            let payload = codec::to_msgpack(&v)?;
            ops.push(self.prepare(k.as_ref(), &payload, Codec::MsgPack, &o)?);
        }
        self.write_many(ops).await
    }

    /// [`Cache::set_many`] for raw byte values.
    ///
    /// # Errors
    /// As [`Cache::set_many`].
    pub async fn set_many_bytes<K, V, I>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V, SetOptions)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let ops = items
            .into_iter()
            .map(|(k, v, o)| self.prepare(k.as_ref(), v.as_ref(), Codec::Raw, &o))
            .collect::<Result<Vec<_>>>()?;
        self.write_many(ops).await
    }

    /// Writes a prepared batch (the last write of a key wins).
    async fn write_many(&self, ops: Vec<WriteOp>) -> Result<()> {
        let keys = self.l1_keys(&ops);
        let written = self.core().write(&last_write_wins(ops)).await.map(drop);
        self.l1_keys_changed(&keys);
        written
    }

    /// The keys of a batch that the L1 must drop once it is written (none
    /// without an L1).
    fn l1_keys(&self, ops: &[WriteOp]) -> Vec<Vec<u8>> {
        match &self.inner.l1 {
            Some(_) => ops.iter().map(|op| op.key.clone()).collect(),
            None => Vec::new(),
        }
    }
}
