//! What the L1 keeps of an entry ([`Slot`]), what a read hands it to
//! keep ([`Found`]), and the proofs a fill carries ([`Seen`], [`Ticket`]).

use std::time::Instant;

use bytes::Bytes;

/// One cached entry.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Its L1 key, then the stored bytes as Redis holds them (an entry's
    /// header, tags and payload; a group field's MessagePack value): one
    /// allocation, so a hit compares the key and reads the value in
    /// neighbouring memory.
    pub(super) data: Bytes,
    pub(super) key_len: usize,
    pub(super) tags: Box<[Box<[u8]>]>,
    /// Generation when the read that filled it began.
    pub(super) gen: u64,
    /// The read's proof of what it saw (see [`Seen`]).
    pub(super) seen: Seen,
    pub(super) expires: Instant,
    /// Redis' clock (µs) at the read, and when its answer arrived here.
    pub(super) read_us: u64,
    pub(super) received: Instant,
    /// When the entry expires in Redis (its `PTTL`, counted from before
    /// the read was sent: never later than it does).
    pub(super) redis_expires: Instant,
}

impl Slot {
    /// Its L1 key.
    pub(super) fn key(&self) -> &[u8] {
        &self.data[..self.key_len]
    }

    /// The stored bytes.
    pub(crate) fn raw(&self) -> &[u8] {
        &self.data[self.key_len..]
    }

    /// The stored bytes, shared (no copy).
    pub(crate) fn raw_bytes(&self) -> Bytes {
        self.data.slice(self.key_len..)
    }

    /// Redis' clock now (µs), from the read's and the time since its
    /// answer arrived (so never ahead of Redis' own).
    pub(crate) fn redis_now_us(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.received).as_micros();
        self.read_us
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    /// The tags whose invalidation covers it.
    pub(crate) fn tags(&self) -> Vec<Vec<u8>> {
        self.tags.iter().map(|t| t.to_vec()).collect()
    }

    /// The entry's remaining Redis TTL now, ms (never more than it is).
    pub(crate) fn pttl_ms(&self, now: Instant) -> i64 {
        let left = self
            .redis_expires
            .saturating_duration_since(now)
            .as_millis();
        i64::try_from(left).unwrap_or(i64::MAX)
    }
}

/// What a read from Redis found, to fill the L1 with.
#[derive(Debug)]
pub(crate) struct Found {
    /// The bucket's announcement counter, read before the entry.
    pub(crate) seen: Seen,
    /// The stored bytes.
    pub(crate) raw: Bytes,
    /// The tags whose invalidation covers it.
    pub(crate) tags: Vec<Vec<u8>>,
    /// Until when (Redis ms) it is fresh, for entries with a grace period.
    pub(crate) fresh_until: Option<u64>,
    /// Its `PTTL` as read with it.
    pub(crate) pttl_ms: i64,
    /// Redis' clock (µs) in the same round trip.
    pub(crate) read_us: u64,
    /// When the answer arrived.
    pub(crate) received: Instant,
}

/// What a read saw: its bucket's announcement counter, read just before
/// the entry in the same round trip. Every announcement numbered at or
/// below it is of a change made before the entry was read, so it does
/// not make that read stale (without it, an announcement of a write made
/// just before the read but delivered after the read began would refuse
/// the fill).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    pub(crate) bucket: u16,
    pub(crate) counter: u64,
}

/// A read about to fill the L1: when and at which generation it began.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    pub(super) gen: u64,
    pub(super) at: Instant,
}
