//! The optional in-process L1 tier in front of Redis (docs/l1.md).
//!
//! Entries read from Redis are kept ([`store`]: a byte-weighed `moka`
//! cache, mirrored for hits) for at most [`L1Options::ttl`] and never past
//! their Redis expiry. Every reader of a value reads through [`read`].
//! Every script that changes an entry announces it (shard pub/sub, one
//! channel per bucket, with a per-bucket sequence number); [`listener`]
//! applies the announcements and detects lost ones.
//!
//! Validity is decided with *generations* rather than by scanning: every
//! applied announcement (or drop) takes the next generation and marks what
//! it covers (a key, a tag, or a whole bucket's floor). An L1 entry
//! remembers the generation at which the read that filled it *began*; it
//! is served only while no mark newer than that covers its key, one of its
//! tags or its bucket. So an announcement drops exactly the entries of its
//! tag (each entry carries its tags), and a fill that began before an
//! announcement covering it is refused (fenced fills). Marks older than
//! `ttl` cover no live entry and are pruned.

pub(crate) mod announce;
pub(crate) mod cluster_listener;
pub(crate) mod listener;
mod options;
pub(crate) mod read;
mod slot;
mod store;
mod striped;

pub use options::L1Options;
pub(crate) use slot::{Found, Hot, Seen, Slot, Taken, Ticket};

use std::collections::{HashMap, VecDeque};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::observe::metrics::{
    L1_ANNOUNCEMENT_LAG_SECONDS, L1_DROPS_TOTAL, L1_FILLS_REFUSED_TOTAL, L1_HITS_TOTAL,
    L1_MISSES_TOTAL,
};

/// Why L1 entries were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropCause {
    /// An announcement (or this process' own write) covered them.
    Announcement,
    /// A bucket's sequence numbers showed a lost announcement.
    Gap,
    /// The subscription connection was lost, or Redis restarted.
    Disconnect,
    /// The circuit breaker opened.
    Circuit,
    /// Bookkeeping outgrew its bound.
    Overflow,
}

impl DropCause {
    fn as_str(self) -> &'static str {
        match self {
            Self::Announcement => "announcement",
            Self::Gap => "gap",
            Self::Disconnect => "disconnect",
            Self::Circuit => "circuit",
            Self::Overflow => "overflow",
        }
    }
}

/// Counters of the L1 tier ([`crate::Cache::l1_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct L1Stats {
    /// Reads served from the L1.
    pub hits: u64,
    /// Reads that went to Redis.
    pub misses: u64,
    /// Fills refused: an announcement covering the key arrived while the
    /// read was in flight (or the read took longer than the L1 ttl).
    pub fills_refused: u64,
    /// Entries dropped by an announcement (keys; tags and clears count
    /// once per announcement).
    pub dropped_by_announcement: u64,
    /// Buckets dropped because an announcement was lost.
    pub dropped_by_gap: u64,
    /// Times the whole L1 was dropped because the subscription was lost.
    pub dropped_by_disconnect: u64,
    /// Times the whole L1 was dropped because the circuit opened.
    pub dropped_by_circuit: u64,
    /// Times the whole L1 was dropped because more keys and tags were
    /// announced within one `ttl` than its bookkeeping keeps (2^20).
    pub dropped_by_overflow: u64,
    /// Entries evicted for capacity.
    pub evicted_for_capacity: u64,
    /// Announcements received.
    pub announcements: u64,
    /// Delivery lag of recent announcements (Redis clock at the change to
    /// this host's clock at receipt), µs: median.
    pub lag_p50_us: u64,
    /// Same, 99th percentile.
    pub lag_p99_us: u64,
    /// Largest lag seen since the cache was built, µs.
    pub lag_max_us: u64,
    /// Whether every bucket is subscribed and in sequence (the L1 serves
    /// and fills only then).
    pub synced: bool,
}

/// A mark: the generation of the last announcement covering a key or tag,
/// and its bucket and sequence number (`u64::MAX` for this process' own
/// changes, whose number is unknown: they excuse no read).
#[derive(Debug, Clone, Copy)]
struct Mark {
    gen: u64,
    at: Instant,
    bucket: u16,
    seq: u64,
}

impl Mark {
    /// Whether this mark makes stale an entry read at `gen` that saw `seen`.
    fn covers(&self, gen: u64, seen: Seen) -> bool {
        self.gen > gen && !(self.bucket == seen.bucket && self.seq <= seen.counter)
    }
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    /// Subscribed and in sequence: the L1 serves and fills this bucket.
    synced: bool,
    /// The last sequence number applied.
    last_seq: Option<u64>,
    /// Entries filled before this generation are invalid.
    floor: u64,
}

#[derive(Debug)]
struct State {
    gen: u64,
    buckets: Vec<Bucket>,
    keys: HashMap<Vec<u8>, Mark>,
    tags: HashMap<Vec<u8>, Mark>,
}

/// Marks kept at most (keys and tags announced within one `ttl`); past it
/// the whole L1 is dropped and the marks forgotten.
const MAX_MARKS: usize = 1 << 20;
/// Lag samples kept for the percentiles.
const LAG_SAMPLES: usize = 4096;

#[derive(Debug)]
struct Counters {
    hits: striped::Striped,
    misses: AtomicU64,
    refused: AtomicU64,
    by_announcement: AtomicU64,
    by_gap: AtomicU64,
    by_disconnect: AtomicU64,
    by_circuit: AtomicU64,
    by_overflow: AtomicU64,
    capacity: Arc<AtomicU64>,
    announcements: AtomicU64,
    lag_max: AtomicU64,
}

/// Metric handles, resolved once (the hit path must not look them up).
#[derive(Debug)]
struct Meters {
    hits: metrics::Counter,
    misses: metrics::Counter,
    refused: metrics::Counter,
    lag: metrics::Histogram,
    namespace: String,
}

/// The L1 tier of one cache handle (shared by its clones).
pub(crate) struct L1 {
    cache: store::Store,
    state: RwLock<State>,
    /// The generation of the last change to `state` that can make an
    /// entry invalid (a mark, a drop, a bucket out of sync). An entry
    /// filled at or after it is valid without looking at `state`: the
    /// hit path then reads two atomics and takes no lock.
    changed: AtomicU64,
    options: L1Options,
    counters: Counters,
    meters: Meters,
    lags: Mutex<VecDeque<u64>>,
    /// The L1 was dropped for this episode of an open circuit.
    circuit_dropped: AtomicBool,
    /// When the listener last proved every bucket in sequence (ms since
    /// `epoch`; 0: never). Entries are served only within two check
    /// periods of it, so a stalled listener (a paused process, a starved
    /// task, a silent connection) cannot leave the L1 serving: the
    /// staleness bound holds whatever the delivery does.
    confirmed_ms: AtomicU64,
    /// Two check periods, ms: how long a confirmation lets the L1 serve.
    serve_window_ms: u64,
    epoch: Instant,
}

impl std::fmt::Debug for L1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1")
            .field("options", &self.options)
            .finish()
    }
}

impl L1 {
    /// An empty L1 for `buckets` buckets; nothing is served until the
    /// listener has subscribed.
    pub(crate) fn new(options: L1Options, buckets: u16, namespace: &str) -> Self {
        let capacity = Arc::new(AtomicU64::new(0));
        let evicted = capacity.clone();
        let ns = namespace.to_owned();
        let capacity_metric =
            metrics::counter!(L1_DROPS_TOTAL, "namespace" => ns.clone(), "cause" => "capacity");
        let epoch = Instant::now();
        let serve_window_ms =
            u64::try_from(2 * options.check_period.as_millis()).unwrap_or(u64::MAX);
        let cache = store::Store::new(options.capacity_bytes, epoch, move || {
            evicted.fetch_add(1, Ordering::Relaxed);
            capacity_metric.increment(1);
        });
        Self {
            cache,
            changed: AtomicU64::new(1),
            state: RwLock::new(State {
                gen: 1,
                buckets: vec![Bucket::default(); usize::from(buckets)],
                keys: HashMap::new(),
                tags: HashMap::new(),
            }),
            counters: Counters {
                hits: striped::Striped::default(),
                misses: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                by_announcement: AtomicU64::new(0),
                by_gap: AtomicU64::new(0),
                by_disconnect: AtomicU64::new(0),
                by_circuit: AtomicU64::new(0),
                by_overflow: AtomicU64::new(0),
                capacity,
                announcements: AtomicU64::new(0),
                lag_max: AtomicU64::new(0),
            },
            meters: Meters {
                hits: metrics::counter!(L1_HITS_TOTAL, "namespace" => ns.clone()),
                misses: metrics::counter!(L1_MISSES_TOTAL, "namespace" => ns.clone()),
                refused: metrics::counter!(L1_FILLS_REFUSED_TOTAL, "namespace" => ns.clone()),
                lag: metrics::histogram!(L1_ANNOUNCEMENT_LAG_SECONDS, "namespace" => ns.clone()),
                namespace: ns,
            },
            options,
            lags: Mutex::new(VecDeque::with_capacity(LAG_SAMPLES)),
            circuit_dropped: AtomicBool::new(false),
            confirmed_ms: AtomicU64::new(0),
            serve_window_ms,
            epoch,
        }
    }

    fn ms_at(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The listener has just applied every announcement up to each
    /// bucket's counter.
    pub(crate) fn confirm(&self) {
        self.confirm_at(Instant::now());
    }

    /// As [`confirm`](Self::confirm), for a check sent at `sent` (the
    /// cluster's check proves the state as of its send, not of its end).
    pub(crate) fn confirm_at(&self, sent: Instant) {
        self.confirmed_ms
            .fetch_max(self.ms_at(sent).max(1), Ordering::AcqRel);
    }

    /// Whether the last confirmation is recent enough to serve, `now_ns`
    /// after the epoch.
    fn confirmed_within(&self, now_ns: u64) -> bool {
        let at = self.confirmed_ms.load(Ordering::Acquire);
        at > 0 && (now_ns / 1_000_000).saturating_sub(at) <= self.serve_window_ms
    }

    pub(crate) fn options(&self) -> &L1Options {
        &self.options
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of `key` if the L1 may serve it. `owner`: the name whose
    /// key announcements cover it (the key itself; a group field's group
    /// member). `redis_down`: the circuit breaker is not closed.
    pub(crate) fn get(
        &self,
        key: &[u8],
        owner: &[u8],
        bucket: u16,
        redis_down: bool,
    ) -> Option<Arc<Slot>> {
        self.look(key, owner, bucket, redis_down, |hot| hot.slot.clone())
    }

    /// As [`L1::get`], with what `take` makes of the entry's [`Hot`]
    /// fields instead of its slot (while the mirror is read: `take` should
    /// only clone what it keeps). A raw reader's hit then never reads the
    /// slot.
    pub(crate) fn look<R>(
        &self,
        key: &[u8],
        owner: &[u8],
        bucket: u16,
        redis_down: bool,
        take: impl FnOnce(&Hot) -> R,
    ) -> Option<R> {
        if redis_down && !self.options.serve_while_down {
            if !self.circuit_dropped.swap(true, Ordering::AcqRel) {
                self.drop_all(DropCause::Circuit);
            }
            return self.miss();
        }
        // (Read before written: the hit path writes no shared line.)
        if !redis_down && self.circuit_dropped.load(Ordering::Relaxed) {
            self.circuit_dropped.store(false, Ordering::Release);
        }
        // (One clock read, as time since the epoch: what both the
        // confirmation and the entry's expiry are kept as.)
        let since = Instant::now().saturating_duration_since(self.epoch);
        let now_ns = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        let lenient = redis_down && self.options.serve_while_down;
        if !lenient && !self.confirmed_within(now_ns) {
            return self.miss();
        }
        // (The marks' read lock may be taken while the mirror's shard is
        // read: nothing takes a shard's lock while holding the marks'.)
        let found = self.cache.look(key, |hot| {
            let valid = hot.expires_ns > now_ns
                && ((!lenient && hot.gen >= self.changed.load(Ordering::Acquire)) || {
                    let slot = &hot.slot;
                    let st = self.read_state();
                    let b = &st.buckets[usize::from(bucket)];
                    (b.synced || lenient) && st.current(b, owner, &slot.tags, slot.gen, slot.seen)
                });
            valid.then(|| take(hot))
        });
        match found {
            Some(Some(taken)) => {
                self.counters.hits.increment();
                self.meters.hits.increment(1);
                Some(taken)
            }
            Some(None) => {
                self.cache.remove(key);
                self.miss()
            }
            None => self.miss(),
        }
    }

    fn miss<R>(&self) -> Option<R> {
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        self.meters.misses.increment(1);
        None
    }

    /// Starts a read that may fill the L1; `None` while the bucket is not
    /// in sequence (nothing may be filled then).
    pub(crate) fn ticket(&self, bucket: u16) -> Option<Ticket> {
        let st = self.read_state();
        st.buckets[usize::from(bucket)].synced.then(|| Ticket {
            gen: st.gen,
            at: Instant::now(),
        })
    }

    /// Stores what a read found, unless an announcement covering it arrived
    /// since the read began (and is not one the read already saw). `key`
    /// and `owner` as in [`L1::get`].
    pub(crate) fn fill(&self, ticket: Ticket, key: &[u8], owner: &[u8], found: Found) {
        let seen = found.seen;
        let Ok(pttl) = u64::try_from(found.pttl_ms) else {
            return;
        };
        let mut life = self.options.ttl.min(Duration::from_millis(pttl));
        if let Some(f) = found.fresh_until {
            // (Both on Redis' clock.)
            let left_us = f.saturating_mul(1000).saturating_sub(found.read_us);
            life = life.min(Duration::from_micros(left_us));
        }
        let expires = ticket.at + life;
        let now = Instant::now();
        if expires <= now {
            self.refuse();
            return;
        }
        let tags: Box<[Box<[u8]>]> = found.tags.into_iter().map(Vec::into_boxed_slice).collect();
        let current = {
            let st = self.read_state();
            let b = &st.buckets[usize::from(seen.bucket)];
            b.synced && st.current(b, owner, &tags, ticket.gen, seen)
        };
        if !current {
            self.refuse();
            return;
        }
        let mut data = Vec::with_capacity(key.len() + found.raw.len());
        data.extend_from_slice(key);
        data.extend_from_slice(&found.raw);
        let slot = Arc::new(Slot {
            data: data.into(),
            key_len: key.len(),
            body: found.body.map(|b| b.after(key.len())),
            fresh_until: found.fresh_until,
            tags,
            gen: ticket.gen,
            seen,
            expires,
            read_us: found.read_us,
            received: found.received,
            redis_expires: ticket.at + Duration::from_millis(pttl),
        });
        // An announcement applied between the check and this insert marks
        // a newer generation than the slot's: the next read refuses it.
        self.cache.insert(key, slot);
    }

    fn refuse(&self) {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        self.meters.refused.increment(1);
    }

    /// Marks keys as changed (an announcement, or this process' own write
    /// or delete): their entries are no longer served (and go from memory
    /// at their next read, their expiry or eviction).
    pub(crate) fn keys_changed<K: AsRef<[u8]>>(&self, keys: &[K]) {
        self.keys_announced(0, u64::MAX, keys);
    }

    /// [`L1::keys_changed`] by announcement `seq` of `bucket`.
    pub(crate) fn keys_announced<K: AsRef<[u8]>>(&self, bucket: u16, seq: u64, keys: &[K]) {
        self.mark(bucket, seq, keys, |st| &mut st.keys);
        self.count_drop(DropCause::Announcement, keys.len() as u64);
        self.check_marks();
    }

    /// Marks tags as invalidated: every entry carrying one is dropped.
    pub(crate) fn tags_invalidated<T: AsRef<[u8]>>(&self, tags: &[T]) {
        self.tags_announced(0, u64::MAX, tags);
    }

    /// [`L1::tags_invalidated`] by announcement `seq` of `bucket`.
    pub(crate) fn tags_announced<T: AsRef<[u8]>>(&self, bucket: u16, seq: u64, tags: &[T]) {
        self.mark(bucket, seq, tags, |st| &mut st.tags);
        self.count_drop(DropCause::Announcement, 1);
        self.check_marks();
    }

    /// Files one new generation's mark, by announcement `seq` of `bucket`,
    /// for each of `items` in the map `marks` picks (keys or tags).
    fn mark<I: AsRef<[u8]>>(
        &self,
        bucket: u16,
        seq: u64,
        items: &[I],
        marks: fn(&mut State) -> &mut HashMap<Vec<u8>, Mark>,
    ) {
        let mut st = self.write_state();
        st.gen += 1;
        let mark = Mark {
            gen: st.gen,
            at: Instant::now(),
            bucket,
            seq,
        };
        let gen = st.gen;
        let map = marks(&mut st);
        for item in items {
            map.insert(item.as_ref().to_vec(), mark);
        }
        self.changed.store(gen, Ordering::Release);
    }

    /// Drops one bucket's entries (a clear, a lost announcement).
    pub(crate) fn drop_bucket(&self, bucket: u16, cause: DropCause) {
        let mut st = self.write_state();
        st.gen += 1;
        let gen = st.gen;
        st.buckets[usize::from(bucket)].floor = gen;
        self.changed.store(gen, Ordering::Release);
        drop(st);
        self.count_drop(cause, 1);
    }

    /// Drops every entry.
    pub(crate) fn drop_all(&self, cause: DropCause) {
        let mut st = self.write_state();
        st.gen += 1;
        let gen = st.gen;
        for b in &mut st.buckets {
            b.floor = gen;
        }
        if cause == DropCause::Overflow {
            st.keys.clear();
            st.tags.clear();
        }
        self.changed.store(gen, Ordering::Release);
        drop(st);
        self.cache.clear();
        self.count_drop(cause, 1);
    }

    fn count_drop(&self, cause: DropCause, n: u64) {
        let c = match cause {
            DropCause::Announcement => &self.counters.by_announcement,
            DropCause::Gap => &self.counters.by_gap,
            DropCause::Disconnect => &self.counters.by_disconnect,
            DropCause::Circuit => &self.counters.by_circuit,
            DropCause::Overflow => &self.counters.by_overflow,
        };
        c.fetch_add(n, Ordering::Relaxed);
        metrics::counter!(L1_DROPS_TOTAL, "namespace" => self.meters.namespace.clone(), "cause" => cause.as_str())
            .increment(n);
    }

    /// Bounds the marks: drops the whole L1 when they outgrow
    /// [`MAX_MARKS`] (a storm of distinct keys within one `ttl`).
    fn check_marks(&self) {
        let over = {
            let st = self.read_state();
            st.keys.len() + st.tags.len() > MAX_MARKS
        };
        if over {
            self.drop_all(DropCause::Overflow);
        }
    }

    /// Forgets marks older than `ttl`: no entry filled before them is still
    /// served (entries live at most `ttl` from their read), and a fill
    /// that began before them is refused by age.
    pub(crate) fn prune_marks(&self) {
        let horizon = self.options.ttl + Duration::from_secs(1);
        let now = Instant::now();
        let mut st = self.write_state();
        st.keys.retain(|_, m| now.duration_since(m.at) < horizon);
        st.tags.retain(|_, m| now.duration_since(m.at) < horizon);
        drop(st);
        self.cache.maintain();
    }

    /// Records an announcement's delivery lag.
    pub(crate) fn record_lag(&self, lag_us: u64) {
        self.counters.announcements.fetch_add(1, Ordering::Relaxed);
        self.counters.lag_max.fetch_max(lag_us, Ordering::Relaxed);
        self.meters.lag.record(lag_us as f64 / 1e6);
        let mut lags = self.lags.lock().unwrap_or_else(|p| p.into_inner());
        if lags.len() == LAG_SAMPLES {
            lags.pop_front();
        }
        lags.push_back(lag_us);
    }

    /// The bucket's last applied sequence number.
    pub(crate) fn last_seq(&self, bucket: u16) -> Option<u64> {
        self.read_state().buckets[usize::from(bucket)].last_seq
    }

    /// Sets a bucket's sequence and whether it is in sync.
    pub(crate) fn set_seq(&self, bucket: u16, seq: Option<u64>, synced: bool) {
        let mut st = self.write_state();
        let was = st.buckets[usize::from(bucket)].synced;
        let b = &mut st.buckets[usize::from(bucket)];
        b.last_seq = seq;
        b.synced = synced;
        if was && !synced {
            st.gen += 1;
            self.changed.store(st.gen, Ordering::Release);
        }
    }

    /// The subscription is gone: nothing is filled, and (unless entries
    /// may be served while Redis is down) everything is dropped.
    pub(crate) fn unsync_all(&self) {
        {
            let mut st = self.write_state();
            for b in &mut st.buckets {
                b.synced = false;
            }
            st.gen += 1;
            self.changed.store(st.gen, Ordering::Release);
        }
        if !self.options.serve_while_down {
            self.drop_all(DropCause::Disconnect);
        }
    }

    /// The counters, for [`crate::Cache::l1_stats`].
    pub(crate) fn stats(&self) -> L1Stats {
        let c = &self.counters;
        let mut lags: Vec<u64> = self
            .lags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        lags.sort_unstable();
        let pct = |p: usize| {
            if lags.is_empty() {
                0
            } else {
                lags[(lags.len() - 1) * p / 100]
            }
        };
        L1Stats {
            hits: c.hits.load(),
            misses: c.misses.load(Ordering::Relaxed),
            fills_refused: c.refused.load(Ordering::Relaxed),
            dropped_by_announcement: c.by_announcement.load(Ordering::Relaxed),
            dropped_by_gap: c.by_gap.load(Ordering::Relaxed),
            dropped_by_disconnect: c.by_disconnect.load(Ordering::Relaxed),
            dropped_by_circuit: c.by_circuit.load(Ordering::Relaxed),
            dropped_by_overflow: c.by_overflow.load(Ordering::Relaxed),
            evicted_for_capacity: c.capacity.load(Ordering::Relaxed),
            announcements: c.announcements.load(Ordering::Relaxed),
            lag_p50_us: pct(50),
            lag_p99_us: pct(99),
            lag_max_us: c.lag_max.load(Ordering::Relaxed),
            synced: self.read_state().buckets.iter().all(|b| b.synced),
        }
    }
}

impl State {
    /// Whether an entry filled at generation `gen` is still current: no
    /// drop of its bucket, announcement of its key or of one of its tags
    /// came after its read began.
    fn current(
        &self,
        bucket: &Bucket,
        key: &[u8],
        tags: &[Box<[u8]>],
        gen: u64,
        seen: Seen,
    ) -> bool {
        if bucket.floor > gen {
            return false;
        }
        // (Empty maps are skipped: no key hashing on a quiet cache.)
        if !self.keys.is_empty() && self.keys.get(key).is_some_and(|m| m.covers(gen, seen)) {
            return false;
        }
        self.tags.is_empty()
            || !tags
                .iter()
                .any(|t| self.tags.get(&t[..]).is_some_and(|m| m.covers(gen, seen)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::codec::{self, encode_entry, Codec, Compression};
    use bytes::Bytes;

    fn entry(tags: &[&str]) -> Vec<u8> {
        let tags: Vec<Vec<u8>> = tags.iter().map(|t| t.as_bytes().to_vec()).collect();
        encode_entry(&tags, b"v", Codec::Raw, Compression::default(), false, None)
    }

    fn fill(l1: &L1, t: Ticket, key: &[u8], seen: Seen, raw: Vec<u8>, pttl_ms: i64) {
        let d = codec::decode_entry(&raw).unwrap();
        let found = Found {
            seen,
            tags: codec::parse_tags(d.tag_section).unwrap(),
            fresh_until: d.fresh_until,
            body: Some(d.body(&raw)),
            raw: raw.into(),
            pttl_ms,
            read_us: 0,
            received: Instant::now(),
        };
        l1.fill(t, key, key, found);
    }

    fn seen(bucket: u16, counter: u64) -> Seen {
        Seen { bucket, counter }
    }

    #[tokio::test]
    async fn an_announcement_the_read_already_saw_does_not_refuse_its_fill() {
        let l1 = synced_l1();
        // The write (announcement 5) happened before the read, which saw
        // counter 5; its announcement arrives after the read began.
        let t = l1.ticket(0).unwrap();
        l1.keys_announced(0, 5, &[b"k"]);
        fill(&l1, t, b"k", seen(0, 5), entry(&["x"]), 60_000);
        assert!(l1.get(b"k", b"k", 0, false).is_some());
        // A later one (6) does; so does this process' own write.
        l1.tags_announced(0, 6, &[b"x"]);
        assert!(l1.get(b"k", b"k", 0, false).is_none());
        let t = l1.ticket(0).unwrap();
        l1.keys_changed(&[b"j"]);
        fill(&l1, t, b"j", seen(0, u64::MAX - 1), entry(&[]), 60_000);
        assert!(l1.get(b"j", b"j", 0, false).is_none());
        // Another bucket's numbers excuse nothing.
        let t = l1.ticket(1).unwrap();
        l1.keys_announced(0, 1, &[b"i"]);
        fill(&l1, t, b"i", seen(1, 9), entry(&[]), 60_000);
        assert!(l1.get(b"i", b"i", 1, false).is_none());
    }

    fn synced_l1() -> L1 {
        let l1 = L1::new(L1Options::new(), 2, "t");
        l1.set_seq(0, Some(0), true);
        l1.set_seq(1, Some(0), true);
        l1.confirm();
        l1
    }

    #[tokio::test]
    async fn a_fill_that_began_before_an_announcement_covering_it_is_refused() {
        let l1 = synced_l1();
        // By key.
        let t = l1.ticket(0).unwrap();
        l1.keys_changed(&[b"k"]);
        fill(&l1, t, b"k", seen(0, 0), entry(&["x"]), 60_000);
        assert!(l1.get(b"k", b"k", 0, false).is_none());
        // By tag.
        let t = l1.ticket(0).unwrap();
        l1.tags_invalidated(&[b"x"]);
        fill(&l1, t, b"k", seen(0, 0), entry(&["y", "x"]), 60_000);
        assert!(l1.get(b"k", b"k", 0, false).is_none());
        // By a drop of its bucket (a gap, a clear).
        let t = l1.ticket(1).unwrap();
        l1.drop_bucket(1, DropCause::Gap);
        fill(&l1, t, b"j", seen(1, 0), entry(&[]), 60_000);
        assert!(l1.get(b"j", b"j", 1, false).is_none());
        assert_eq!(l1.stats().fills_refused, 3);
        // Fills that began after are kept; another tag's or bucket's
        // announcement leaves them alone.
        let t = l1.ticket(0).unwrap();
        fill(&l1, t, b"k", seen(0, 0), entry(&["x"]), 60_000);
        l1.tags_invalidated(&[b"z"]);
        l1.drop_bucket(1, DropCause::Gap);
        l1.keys_changed(&[b"other"]);
        assert!(l1.get(b"k", b"k", 0, false).is_some());
    }

    #[test]
    fn a_group_field_is_covered_by_its_group_members_announcements() {
        let l1 = synced_l1();
        let found = |tags: &[&str]| Found {
            seen: seen(0, 0),
            raw: Bytes::from_static(b"\xc3"),
            tags: tags.iter().map(|t| t.as_bytes().to_vec()).collect(),
            fresh_until: None,
            body: None,
            pttl_ms: 60_000,
            read_us: 0,
            received: Instant::now(),
        };
        for field in [&b"\0gflags:7/f1"[..], b"\0gflags:7/f2"] {
            let t = l1.ticket(0).unwrap();
            l1.fill(t, field, b"\0gflags:7", found(&["t"]));
            assert!(l1.get(field, b"\0gflags:7", 0, false).is_some());
        }
        // An announcement of the field's L1 key itself means nothing.
        l1.keys_announced(0, 1, &[b"\0gflags:7/f1"]);
        assert!(l1.get(b"\0gflags:7/f1", b"\0gflags:7", 0, false).is_some());
        // The member's: every field goes.
        l1.keys_announced(0, 2, &[b"\0gflags:7"]);
        assert!(l1.get(b"\0gflags:7/f1", b"\0gflags:7", 0, false).is_none());
        assert!(l1.get(b"\0gflags:7/f2", b"\0gflags:7", 0, false).is_none());
        // So does the group's tag.
        let t = l1.ticket(0).unwrap();
        l1.fill(t, b"\0gflags:7/f1", b"\0gflags:7", found(&["t"]));
        l1.tags_announced(0, 3, &[b"t"]);
        assert!(l1.get(b"\0gflags:7/f1", b"\0gflags:7", 0, false).is_none());
    }

    #[tokio::test]
    async fn an_announcement_after_the_fill_drops_exactly_the_covered_entries() {
        let l1 = synced_l1();
        for (k, tags) in [("a", &["x"][..]), ("b", &["y"]), ("c", &["x", "y"])] {
            let t = l1.ticket(0).unwrap();
            fill(&l1, t, k.as_bytes(), seen(0, 0), entry(tags), 60_000);
        }
        l1.tags_invalidated(&[b"x"]);
        assert!(l1.get(b"a", b"a", 0, false).is_none());
        assert!(l1.get(b"b", b"b", 0, false).is_some());
        assert!(l1.get(b"c", b"c", 0, false).is_none());
    }

    #[tokio::test]
    async fn nothing_is_filled_or_served_out_of_sync_nor_past_the_redis_ttl() {
        let l1 = L1::new(L1Options::new(), 1, "t");
        assert!(l1.ticket(0).is_none(), "not subscribed yet");
        l1.set_seq(0, Some(0), true);
        l1.confirm();
        let t = l1.ticket(0).unwrap();
        fill(&l1, t, b"k", seen(0, 0), entry(&[]), 30);
        assert!(l1.get(b"k", b"k", 0, false).is_some());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(l1.get(b"k", b"k", 0, false).is_none(), "past its Redis TTL");
        let t = l1.ticket(0).unwrap();
        fill(&l1, t, b"k", seen(0, 0), entry(&[]), 60_000);
        l1.unsync_all();
        assert!(l1.get(b"k", b"k", 0, false).is_none());
        assert!(l1.ticket(0).is_none());
        // Circuit open: dropped (unless serving while down was asked for).
        l1.set_seq(0, Some(0), true);
        let t = l1.ticket(0).unwrap();
        fill(&l1, t, b"k", seen(0, 0), entry(&[]), 60_000);
        assert!(l1.get(b"k", b"k", 0, true).is_none());
        assert!(l1.get(b"k", b"k", 0, false).is_none());
        assert_eq!(l1.stats().dropped_by_circuit, 1);
    }
}
