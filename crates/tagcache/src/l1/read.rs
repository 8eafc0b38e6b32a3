//! Reads through the L1. Every reader the L1 serves (plain reads,
//! read-throughs, `get_many`, groups, the fail-safe view) comes here, so
//! all of them share one validity rule ([`L1::get`]) and one fill rule: a
//! miss reads the bucket's announcement counter first, then what it
//! needs, its `PTTL` and Redis' clock in the same round trip, and fills
//! the L1 fenced by the ticket taken before it ([`L1::fill`]).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{Found, Seen, Slot, Taken, Ticket, L1};
use crate::cache::Cache;
use crate::error::Result;
use crate::layout::codec;
use crate::layout::keys::validate_key;

/// An entry read through the L1.
#[derive(Debug)]
pub(crate) enum Entry {
    /// Served by the L1.
    Hit(Arc<Slot>),
    /// Read from Redis.
    Read {
        /// The stored bytes; `None` when absent.
        raw: Option<Bytes>,
        /// Redis' clock (µs) in the same round trip.
        now_us: u64,
        /// The entry's `PTTL`.
        pttl_ms: i64,
    },
}

impl Entry {
    /// The stored bytes; `None` when absent.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Hit(slot) => Some(slot.raw()),
            Self::Read { raw, .. } => raw.as_deref(),
        }
    }

    /// The stored bytes, owned (no copy).
    pub(crate) fn into_bytes(self) -> Option<Bytes> {
        match self {
            Self::Hit(slot) => Some(slot.raw_bytes()),
            Self::Read { raw, .. } => raw,
        }
    }

    /// Redis' clock now (µs): as read, or for an L1 hit estimated from
    /// the read that filled it (never ahead of Redis' own).
    pub(crate) fn now_us(&self) -> u64 {
        match self {
            Self::Hit(slot) => slot.redis_now_us(Instant::now()),
            Self::Read { now_us, .. } => *now_us,
        }
    }

    /// The entry's remaining TTL (ms), as `PTTL` says it (for an L1 hit,
    /// estimated from the read that filled it, never more than it is).
    pub(crate) fn pttl_ms(&self) -> i64 {
        match self {
            Self::Hit(slot) => slot.pttl_ms(Instant::now()),
            Self::Read { pttl_ms, .. } => *pttl_ms,
        }
    }
}

/// Redis' `TIME` reply in µs.
fn micros((secs, micros): (u64, u64)) -> u64 {
    secs * 1_000_000 + micros
}

/// One reply of a pipeline read as a list.
fn parse<T: redis::FromRedisValue>(v: redis::Value) -> Result<T> {
    Ok(redis::from_redis_value(v).map_err(redis::RedisError::from)?)
}

/// What the L1 keeps of stored entry bytes besides them: the tags, the
/// fresh-until time and where the payload sits; `None` for bytes that do
/// not decode (never kept: every read reports them).
fn entry_meta(raw: &[u8]) -> Option<(Vec<Vec<u8>>, Option<u64>, codec::Body)> {
    let d = codec::decode_entry(raw).ok()?;
    let tags = codec::parse_tags(d.tag_section).ok()?;
    Some((tags, d.fresh_until, d.body(raw)))
}

impl Cache {
    /// The L1 tier, when there is one.
    pub(crate) fn l1(&self) -> Option<&L1> {
        self.l1_arc().map(|l1| &**l1)
    }

    /// Whether the circuit breaker in front of Redis is not closed.
    fn redis_down(&self) -> bool {
        self.circuit_state() != crate::CircuitState::Closed
    }

    /// An entry through the L1: a hit costs no round trip; a miss reads
    /// the bucket's announcement counter, the entry, its `PTTL` and
    /// Redis' clock in one round trip and fills the L1 (unless an
    /// announcement covering the key arrived meanwhile).
    pub(crate) async fn l1_entry(&self, l1: &L1, key: &[u8]) -> Result<Entry> {
        validate_key(key)?;
        let bucket = self.core_arc().space.bucket_of(key);
        if let Some(slot) = l1.get(key, key, bucket, self.redis_down()) {
            return Ok(Entry::Hit(slot));
        }
        self.l1_fetch(l1, key, bucket).await
    }

    /// A raw reader's payload through the L1: a hit's as `take` makes it
    /// out of the stored bytes and where the payload starts in them
    /// (while the L1's map is read: cheap work only); `None` on a miss,
    /// which the caller reads with [`Cache::l1_fetch`]. Nothing is decoded
    /// and the slot is not read.
    pub(crate) fn l1_payload<T>(
        &self,
        l1: &L1,
        key: &[u8],
        take: impl FnOnce(&Bytes, usize) -> T,
    ) -> Result<Option<Taken<T>>> {
        validate_key(key)?;
        let bucket = self.core_arc().space.bucket_of(key);
        Ok(l1.look(key, key, bucket, self.redis_down(), |hot| hot.payload(take)))
    }

    /// The miss half of [`Cache::l1_entry`]: reads the entry from Redis
    /// and fills the L1.
    pub(crate) async fn l1_fetch(&self, l1: &L1, key: &[u8], bucket: u16) -> Result<Entry> {
        let space = &self.core_arc().space;
        let ticket = l1.ticket(bucket);
        let name = space.entry_name(bucket, key);
        let mut pipe = redis::pipe();
        // The counter first: every announcement up to it is of a change
        // the entry read after it already reflects.
        pipe.cmd("GET")
            .arg(space.l1(bucket))
            .add_command(self.get_cmd(key)?)
            .cmd("PTTL")
            .arg(name)
            .cmd("TIME");
        type Reply = (Option<u64>, Option<Vec<u8>>, i64, (u64, u64));
        let (counter, raw, pttl_ms, time): Reply = self.core_arc().conn.pipe(&pipe).await?;
        let received = Instant::now();
        let now_us = micros(time);
        let raw = raw.map(Bytes::from);
        if let (Some(ticket), Some(raw)) = (ticket, &raw) {
            let seen = Seen {
                bucket,
                counter: counter.unwrap_or(0),
            };
            self.l1_fill_entry(l1, ticket, key, seen, raw, pttl_ms, now_us, received);
        }
        Ok(Entry::Read {
            raw,
            now_us,
            pttl_ms,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn l1_fill_entry(
        &self,
        l1: &L1,
        ticket: Ticket,
        key: &[u8],
        seen: Seen,
        raw: &Bytes,
        pttl_ms: i64,
        read_us: u64,
        received: Instant,
    ) {
        let Some((tags, fresh_until, body)) = entry_meta(raw) else {
            return;
        };
        let found = Found {
            seen,
            raw: raw.clone(),
            tags,
            fresh_until,
            body: Some(body),
            pttl_ms,
            read_us,
            received,
        };
        l1.fill(ticket, key, key, found);
    }

    /// Many entries through the L1, in the order asked: the hits from the
    /// L1, the misses in one round trip (each missing bucket's counter,
    /// then each entry and its `PTTL`, and Redis' clock), each filled as
    /// [`Cache::l1_entry`] does.
    pub(crate) async fn l1_many<K: AsRef<[u8]>>(
        &self,
        l1: &L1,
        keys: &[K],
    ) -> Result<Vec<Option<Bytes>>> {
        let space = &self.core_arc().space;
        let down = self.redis_down();
        let mut out = Vec::with_capacity(keys.len());
        // (index in `keys`, bucket) of each miss.
        let mut misses: Vec<(usize, u16)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let k = k.as_ref();
            validate_key(k)?;
            let bucket = space.bucket_of(k);
            match l1.get(k, k, bucket, down) {
                Some(slot) => out.push(Some(slot.raw_bytes())),
                None => {
                    out.push(None);
                    misses.push((i, bucket));
                }
            }
        }
        if misses.is_empty() {
            return Ok(out);
        }
        let mut buckets: Vec<u16> = misses.iter().map(|m| m.1).collect();
        buckets.sort_unstable();
        buckets.dedup();
        let tickets: Vec<Option<Ticket>> = buckets.iter().map(|b| l1.ticket(*b)).collect();
        let mut pipe = redis::pipe();
        for b in &buckets {
            pipe.cmd("GET").arg(space.l1(*b));
        }
        for (i, bucket) in &misses {
            let key = keys[*i].as_ref();
            let name = space.entry_name(*bucket, key);
            pipe.add_command(self.get_cmd(key)?).cmd("PTTL").arg(name);
        }
        pipe.cmd("TIME");
        let mut replies: Vec<redis::Value> = self.core_arc().conn.pipe(&pipe).await?;
        let received = Instant::now();
        let time: Option<(u64, u64)> = replies.pop().map(parse).transpose()?;
        let time = time.map_or(0, micros);
        let mut replies = replies.into_iter();
        let mut counters = Vec::with_capacity(buckets.len());
        for _ in &buckets {
            let c: Option<Option<u64>> = replies.next().map(parse).transpose()?;
            counters.push(c.flatten().unwrap_or(0));
        }
        for (i, bucket) in misses {
            let raw: Option<Option<Vec<u8>>> = replies.next().map(parse).transpose()?;
            let pttl_ms: Option<i64> = replies.next().map(parse).transpose()?;
            let pttl_ms = pttl_ms.unwrap_or(-2);
            let Some(raw) = raw.flatten().map(Bytes::from) else {
                continue;
            };
            let at = buckets.binary_search(&bucket).unwrap_or(0);
            if let Some(ticket) = tickets[at] {
                let seen = Seen {
                    bucket,
                    counter: counters[at],
                };
                let key = keys[i].as_ref();
                self.l1_fill_entry(l1, ticket, key, seen, &raw, pttl_ms, time, received);
            }
            out[i] = Some(raw);
        }
        Ok(out)
    }
}
