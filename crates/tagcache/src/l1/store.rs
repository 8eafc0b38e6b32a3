//! Where the L1 keeps its entries: `moka` owns them — the byte budget,
//! eviction and expiry — and a sharded map mirrors what moka holds, for
//! hits.
//!
//! The mirror has one replica per core (up to [`MAX_REPLICAS`], a power
//! of two), each thread reading its own: a read lock writes the shard's lock word, and
//! threads on two cores reading one map pass those lines back and forth
//! on most hits (measured here: two threads read one shared map at 1.0–1.6×
//! the rate of one, their own replicas at 1.9–2.0×). Writes (fills,
//! drops) go to every replica; each replica costs one [`Hot`] (64 bytes)
//! per entry, counted in the byte budget.
//!
//! Why the mirror: a `moka::sync::Cache::get` costs 350–1000 ns on the
//! 2-core machine the bench runs on (it logs every read for its eviction
//! policy, and drains that log inline), a `HashMap` lookup ~30 ns; the
//! L1's goal is a hit at a fraction of a Redis round trip (docs/l1.md,
//! *Hit cost*). Hits read the mirror; one hit in [`SAMPLE`] is also read
//! through moka, so its eviction policy still sees which entries are
//! popular. Every entry moka drops (evicted, expired, replaced,
//! invalidated) leaves the mirror through moka's eviction listener; an
//! entry in the mirror is checked by the same validity rules as ever (its
//! own expiry included), so a mirror entry moka has already dropped is
//! never served past its bounds.

use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::slot::Hot;
use super::{striped, Slot};

/// Shards of each replica of the mirror (a power of two).
const SHARDS: u64 = 32;
/// Replicas of the mirror at most (one per core up to this, rounded down
/// to a power of two).
const MAX_REPLICAS: usize = 4;
/// One hit in this many is also read through moka.
const SAMPLE: u64 = 64;

/// The mirror's maps hold each slot's [`Hot`] fields (its key among them,
/// compared on every hit), one cache line each, placed by a seeded hash
/// of the key.
type Map = HashTable<Hot>;

/// One shard of the mirror, alone on its cache lines: a read lock writes
/// its lock word, and two threads reading neighbouring shards would
/// otherwise pass one line back and forth.
#[repr(align(128))]
#[derive(Default)]
struct Shard(RwLock<Map>);

impl Shard {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Map> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Map> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The mirror's replicas, each [`SHARDS`] shards.
struct Mirror(Box<[Box<[Shard]>]>);

impl Mirror {
    /// `replicas` rounded down to a power of two.
    fn new(replicas: usize) -> Self {
        let replicas = 1 << replicas.max(1).ilog2();
        let replica = || (0..SHARDS).map(|_| Shard::default()).collect();
        Self((0..replicas).map(|_| replica()).collect())
    }

    /// The shard of hash `h` in this thread's replica (middle bits of the
    /// hash: the table inside uses the low ones for the position and the
    /// top ones for its tags).
    fn mine(&self, h: u64) -> &Shard {
        // (A power of two: a mask, not a division, on every hit.)
        let replica = &self.0[striped::thread_number() & (self.0.len() - 1)];
        &replica[((h >> 32) % SHARDS) as usize]
    }

    /// The shard of hash `h` in every replica.
    fn every(&self, h: u64) -> impl Iterator<Item = &Shard> {
        self.0
            .iter()
            .map(move |r| &r[((h >> 32) % SHARDS) as usize])
    }

    /// Removes the entry of hash `h` that `is` picks, from every replica.
    fn remove(&self, h: u64, is: impl Fn(&Hot) -> bool) {
        for shard in self.every(h) {
            let mut map = shard.write();
            if let Ok(found) = map.find_entry(h, &is) {
                found.remove();
            }
        }
    }
}

/// The entries of one L1.
pub(crate) struct Store {
    moka: moka::sync::Cache<Vec<u8>, Arc<Slot>>,
    mirror: Arc<Mirror>,
    hasher: RandomState,
    /// The L1's epoch ([`Hot`]'s expiry counts from it).
    epoch: Instant,
}

thread_local! {
    /// Hits read on this thread, to sample one in [`SAMPLE`].
    static READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

struct SlotExpiry;

impl moka::Expiry<Vec<u8>, Arc<Slot>> for SlotExpiry {
    fn expire_after_create(
        &self,
        _key: &Vec<u8>,
        value: &Arc<Slot>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.expires.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &Vec<u8>,
        value: &Arc<Slot>,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.expires.saturating_duration_since(updated_at))
    }
}

/// Removes the entry of hash `h` from the mirror if it is still `slot`
/// (a newer entry under the same key stays).
fn unmirror(mirror: &Mirror, h: u64, slot: &Arc<Slot>) {
    mirror.remove(h, |hot| Arc::ptr_eq(&hot.slot, slot));
}

impl Store {
    /// An empty store of `capacity_bytes`; `on_capacity` is called for
    /// each entry evicted for space.
    pub(crate) fn new(
        capacity_bytes: u64,
        epoch: Instant,
        on_capacity: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::with_replicas(capacity_bytes, epoch, cores.min(MAX_REPLICAS), on_capacity)
    }

    /// [`Store::new`] with `replicas` replicas of the mirror.
    fn with_replicas(
        capacity_bytes: u64,
        epoch: Instant,
        replicas: usize,
        on_capacity: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let mirror = Arc::new(Mirror::new(replicas));
        let replicas = mirror.0.len();
        let hasher = RandomState::default();
        let (listened, hashed) = (mirror.clone(), hasher.clone());
        let moka = moka::sync::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(move |k: &Vec<u8>, v: &Arc<Slot>| {
                // Both copies of the key, the bytes, the tags, and the
                // bookkeeping of moka and the slot (~100 bytes), and of
                // each replica of the mirror (a `Hot` and its control
                // byte, with the table's slack).
                let tags: usize = v.tags.iter().map(|t| t.len() + 16).sum();
                let books = 100 + 80 * replicas;
                u32::try_from(k.len() + v.data.len() + tags + books).unwrap_or(u32::MAX)
            })
            .expire_after(SlotExpiry)
            .eviction_listener(move |k: Arc<Vec<u8>>, v: Arc<Slot>, cause| {
                unmirror(&listened, hashed.hash_one(k.as_slice()), &v);
                if cause == moka::notification::RemovalCause::Size {
                    on_capacity();
                }
            })
            .build();
        Self {
            moka,
            mirror,
            hasher,
            epoch,
        }
    }

    /// What `look` makes of the entry under `key`, if there is one (valid
    /// or not: `look` decides). `look` runs while the map is read: it
    /// must not touch the store.
    pub(crate) fn look<R>(&self, key: &[u8], look: impl FnOnce(&Hot) -> R) -> Option<R> {
        let h = self.hasher.hash_one(key);
        let found = self
            .mirror
            .mine(h)
            .read()
            .find(h, |hot| hot.key() == key)
            .map(look)?;
        // (A count per thread: no shared line written on a hit.)
        let n = READS.with(|r| {
            r.set(r.get().wrapping_add(1));
            r.get()
        });
        if n.is_multiple_of(SAMPLE) {
            // (Tells moka's policy the entry is read; after the map is let
            // go: moka may evict inline, and its listener writes the map.)
            let _ = self.moka.get(key);
        }
        Some(found)
    }

    /// Stores `slot` under `key` (in the mirror first: moka's listener
    /// then removes exactly what moka drops, this one included).
    pub(crate) fn insert(&self, key: &[u8], slot: Arc<Slot>) {
        let h = self.hasher.hash_one(key);
        let hot = Hot::of(&slot, self.epoch);
        for shard in self.mirror.every(h) {
            let mut map = shard.write();
            match map.find_entry(h, |old| old.key() == key) {
                Ok(mut old) => *old.get_mut() = hot.clone(),
                Err(_) => {
                    map.insert_unique(h, hot.clone(), |e| self.hasher.hash_one(e.key()));
                }
            }
        }
        self.moka.insert(key.to_vec(), slot);
    }

    /// Drops the entry under `key`.
    pub(crate) fn remove(&self, key: &[u8]) {
        let h = self.hasher.hash_one(key);
        self.mirror.remove(h, |hot| hot.key() == key);
        self.moka.invalidate(key);
    }

    /// Drops every entry.
    pub(crate) fn clear(&self) {
        for shard in self.mirror.0.iter().flat_map(|r| r.iter()) {
            shard.write().clear();
        }
        self.moka.invalidate_all();
    }

    /// Lets moka apply what is pending (expiries, evictions) when no
    /// write does it: called on every listener check.
    pub(crate) fn maintain(&self) {
        self.moka.run_pending_tasks();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l1::Seen;

    fn slot(key: &[u8], bytes: usize) -> Arc<Slot> {
        let mut data = key.to_vec();
        data.resize(key.len() + bytes, 0);
        let now = Instant::now();
        Arc::new(Slot {
            data: data.into(),
            key_len: key.len(),
            body: None,
            fresh_until: None,
            tags: Box::new([]),
            gen: 1,
            seen: Seen {
                bucket: 0,
                counter: 0,
            },
            expires: now + Duration::from_secs(60),
            read_us: 0,
            received: now,
            redis_expires: now + Duration::from_secs(60),
        })
    }

    #[test]
    fn what_moka_evicts_leaves_every_replica_and_a_newer_entry_stays() {
        let evicted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = evicted.clone();
        let store = Store::with_replicas(20_000, Instant::now(), 4, move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        // Every replica holds exactly what this thread's finds.
        let same_everywhere = |store: &Store| {
            let keys = (0..100u32).map(|i| format!("k{i}").into_bytes());
            let found = keys
                .chain([b"r".to_vec()])
                .filter(|k| store.look(k, |_| ()).is_some())
                .count();
            let counts: Vec<usize> = (store.mirror.0.iter())
                .map(|r| r.iter().map(|s| s.read().len()).sum())
                .collect();
            assert_eq!(counts, vec![found; 4]);
        };
        for i in 0..100u32 {
            let key = format!("k{i}").into_bytes();
            store.insert(&key, slot(&key, 1000));
        }
        store.maintain();
        let kept = (0..100u32)
            .filter(|i| store.look(format!("k{i}").as_bytes(), |_| ()).is_some())
            .count();
        assert!(kept <= 20, "{kept} kept in 20 kB");
        assert!(evicted.load(std::sync::atomic::Ordering::Relaxed) >= 80);
        same_everywhere(&store);
        // (Room for what follows: moka's policy may refuse to admit a new
        // entry into a full cache.)
        store.clear();
        store.maintain();
        same_everywhere(&store);
        // Replaced: the new entry is served, not dropped by the old one's
        // removal.
        let s = slot(b"r", 10);
        store.insert(b"r", s);
        let newer = slot(b"r", 20);
        store.insert(b"r", newer.clone());
        store.maintain();
        let got = store.look(b"r", |hot| hot.slot.clone()).unwrap();
        assert!(Arc::ptr_eq(&got, &newer));
        same_everywhere(&store);
        store.remove(b"r");
        assert!(store.look(b"r", |_| ()).is_none());
        same_everywhere(&store);
        store.insert(b"r", slot(b"r", 10));
        store.insert(b"k1", slot(b"k1", 10));
        same_everywhere(&store);
        store.clear();
        store.maintain();
        assert!(store.look(b"r", |_| ()).is_none());
        same_everywhere(&store);
    }
}
