//! What the L1 keeps of an entry ([`Slot`]), what a read hands it to
//! keep ([`Found`]), and the proofs a fill carries ([`Seen`], [`Ticket`]).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::error::Result;
use crate::layout::codec::{self, Body};

/// One cached entry.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Its L1 key, then the stored bytes as Redis holds them (an entry's
    /// header, tags and payload; a group field's MessagePack value): one
    /// allocation, so a hit compares the key and reads the value in
    /// neighbouring memory.
    pub(super) data: Bytes,
    pub(super) key_len: usize,
    /// Where an entry's payload sits in `data`, found when it was filled
    /// (a hit decodes nothing); `None` for a group field.
    pub(super) body: Option<Body>,
    /// Until when (Redis ms) an entry with a grace period is fresh.
    pub(super) fresh_until: Option<u64>,
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
    /// The stored bytes.
    pub(crate) fn raw(&self) -> &[u8] {
        &self.data[self.key_len..]
    }

    /// The stored bytes, shared (no copy).
    pub(crate) fn raw_bytes(&self) -> Bytes {
        self.data.slice(self.key_len..)
    }

    /// An entry's payload, borrowed in place unless compressed; `None`
    /// when the entry is stale (in its grace period: plain reads treat it
    /// as gone, as [`codec::is_stale_now`]).
    pub(crate) fn fresh_payload(&self, max_len: usize) -> Result<Option<Cow<'_, [u8]>>> {
        if self.is_stale_now() {
            return Ok(None);
        }
        match self.body {
            Some(body) => Ok(Some(body.of(&self.data, max_len)?)),
            None => Err(codec::malformed()),
        }
    }

    /// As [`Slot::fresh_payload`], sharing the L1's buffer (no copy
    /// unless compressed).
    pub(crate) fn fresh_payload_shared(&self, max_len: usize) -> Result<Option<Bytes>> {
        if self.is_stale_now() {
            return Ok(None);
        }
        match self.body {
            Some(body) => Ok(Some(body.shared(&self.data, max_len)?)),
            None => Err(codec::malformed()),
        }
    }

    pub(super) fn is_stale_now(&self) -> bool {
        self.fresh_until.is_some_and(|f| f < codec::local_now_ms())
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

/// What a hit reads of a slot, kept in the mirror's map itself (the slot
/// is one more dependent cache miss away): a valid hit of a raw reader
/// reads this — one cache line — then the first line of the bytes (the
/// key, compared), and never the slot.
#[derive(Debug, Clone)]
#[repr(align(64))]
pub(crate) struct Hot {
    /// The slot's `data` (the same buffer).
    data: Bytes,
    /// The slot's generation.
    pub(super) gen: u64,
    /// The slot's expiry, in ns since the L1's epoch.
    pub(super) expires_ns: u64,
    pub(super) slot: Arc<Slot>,
    /// The key's length; [`GRACED`] set when the entry has a grace period
    /// (its fresh-until time is in the slot).
    key_len: u32,
    /// Where an uncompressed payload starts in `data`; [`NO_PAYLOAD`]
    /// for a compressed one or a group field (read from the slot).
    payload_at: u32,
}

// One cache line: a hit reads no second one of the map.
const _: () = assert!(std::mem::size_of::<Hot>() == 64);

/// [`Hot::key_len`]'s flag of an entry with a grace period.
const GRACED: u32 = 1 << 31;
/// [`Hot::payload_at`] of a payload that is not served from the map.
const NO_PAYLOAD: u32 = u32::MAX;

/// What a raw-bytes reader takes out of a hit.
#[derive(Debug)]
pub(crate) enum Taken<T> {
    /// The payload, as the reader wants it.
    Payload(T),
    /// The entry is stale (in its grace period): plain reads treat it as
    /// gone.
    Stale,
    /// A compressed payload: decompressed from the slot once the map is
    /// let go.
    Slot(Arc<Slot>),
}

impl Hot {
    /// The mirror's copy of `slot`'s hot fields (`epoch`: the L1's).
    pub(super) fn of(slot: &Arc<Slot>, epoch: Instant) -> Self {
        let payload_at = match slot.body {
            Some(b) if !b.is_compressed() => u32::try_from(b.start()).unwrap_or(NO_PAYLOAD),
            _ => NO_PAYLOAD,
        };
        // (Keys are far shorter than 2^31 bytes: MAX_KEY_LEN.)
        let key_len = u32::try_from(slot.key_len).unwrap_or(0) & !GRACED;
        let graced = if slot.fresh_until.is_some() {
            GRACED
        } else {
            0
        };
        let expires = slot.expires.saturating_duration_since(epoch).as_nanos();
        Self {
            data: slot.data.clone(),
            gen: slot.gen,
            expires_ns: u64::try_from(expires).unwrap_or(u64::MAX),
            slot: slot.clone(),
            key_len: key_len | graced,
            payload_at,
        }
    }

    /// Its L1 key.
    pub(super) fn key(&self) -> &[u8] {
        let len = (self.key_len & !GRACED) as usize;
        self.data.get(..len).unwrap_or_default()
    }

    /// The payload of an entry, as `take` makes it out of the bytes and
    /// where the payload starts in them (cheap work only: this runs while
    /// the map is read).
    pub(crate) fn payload<T>(&self, take: impl FnOnce(&Bytes, usize) -> T) -> Taken<T> {
        if self.key_len & GRACED != 0 && self.slot.is_stale_now() {
            return Taken::Stale;
        }
        if self.payload_at == NO_PAYLOAD {
            return Taken::Slot(self.slot.clone());
        }
        Taken::Payload(take(&self.data, self.payload_at as usize))
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
    /// Where an entry's payload sits in `raw`; `None` for a group field.
    pub(crate) body: Option<Body>,
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
