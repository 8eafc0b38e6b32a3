//! What the demo counts while it runs: read outcomes and latencies,
//! invalidations, stale pages served, and the namespace's size as sampled
//! once a second.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use tagcache::Source;

/// Shared counters; readers, writers and the sampler update them.
#[derive(Debug, Default)]
pub struct Meter {
    reads: AtomicU64,
    hits: AtomicU64,
    loaded: AtomicU64,
    not_stored: AtomicU64,
    shared: AtomicU64,
    failed: AtomicU64,
    invalidations: AtomicU64,
    removed: AtomicU64,
    journaled: AtomicU64,
    stale: AtomicU64,
    first_stale: Mutex<Option<String>>,
    /// Read latencies in µs since the last [`Meter::take_window`].
    window: Mutex<Vec<u32>>,
    /// Every read latency in µs.
    all: Mutex<Vec<u32>>,
    entries: AtomicU64,
    indexes: AtomicU64,
    index_memory: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Reads answered (any source).
    pub reads: u64,
    /// Served from the cache.
    pub hits: u64,
    /// Rendered by this read and stored.
    pub loaded: u64,
    /// Rendered but not stored: an invalidation (or a delete) ran while
    /// the loader did, or Redis was bypassed.
    pub not_stored: u64,
    /// Rendered by a concurrent read of the same page.
    pub shared: u64,
    /// Reads that failed (only invalid input can fail a fail-safe read).
    pub failed: u64,
    /// Invalidations returned.
    pub invalidations: u64,
    /// Entries they removed.
    pub removed: u64,
    /// Invalidations journaled because Redis did not answer.
    pub journaled: u64,
    /// Pages served older than a fence in place when their read began.
    pub stale: u64,
    /// Live pages (last sample).
    pub entries: u64,
    /// Tag indexes (last sample).
    pub indexes: u64,
    /// Bytes of index keys (last sample).
    pub index_memory: u64,
}

impl Counts {
    /// The hit ratio of the reads counted.
    pub fn hit_ratio(&self) -> f64 {
        if self.reads == 0 {
            0.0
        } else {
            self.hits as f64 / self.reads as f64
        }
    }

    /// What happened between `earlier` and `self` (samples stay as they are).
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            reads: self.reads - earlier.reads,
            hits: self.hits - earlier.hits,
            loaded: self.loaded - earlier.loaded,
            not_stored: self.not_stored - earlier.not_stored,
            shared: self.shared - earlier.shared,
            failed: self.failed - earlier.failed,
            invalidations: self.invalidations - earlier.invalidations,
            removed: self.removed - earlier.removed,
            journaled: self.journaled - earlier.journaled,
            stale: self.stale - earlier.stale,
            ..*self
        }
    }
}

/// Percentiles of read latency.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Latency {
    fn of(mut us: Vec<u32>) -> Self {
        if us.is_empty() {
            return Self::default();
        }
        us.sort_unstable();
        let at =
            |q: usize| Duration::from_micros(u64::from(us[(us.len() * q / 100).min(us.len() - 1)]));
        Self {
            p50: at(50),
            p99: at(99),
            max: Duration::from_micros(u64::from(us[us.len() - 1])),
        }
    }
}

impl Meter {
    /// Counts one read and its latency.
    pub fn read(&self, source: Option<Source>, took: Duration) {
        self.reads.fetch_add(1, Relaxed);
        let counter = match source {
            Some(Source::Hit) => &self.hits,
            Some(Source::Loaded) => &self.loaded,
            Some(Source::Shared) => &self.shared,
            Some(_) => &self.not_stored,
            None => &self.failed,
        };
        counter.fetch_add(1, Relaxed);
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        lock(&self.window).push(us);
        lock(&self.all).push(us);
    }

    /// Counts a stale page served; keeps the first one's description.
    pub fn stale(&self, what: impl FnOnce() -> String) {
        if self.stale.fetch_add(1, Relaxed) == 0 {
            *lock(&self.first_stale) = Some(what());
        }
    }

    /// The first stale page served, described.
    pub fn first_stale(&self) -> Option<String> {
        lock(&self.first_stale).clone()
    }

    /// Counts one invalidation: `removed` entries, or journaled (`None`).
    pub fn invalidated(&self, removed: Option<u64>) {
        self.invalidations.fetch_add(1, Relaxed);
        match removed {
            Some(n) => self.removed.fetch_add(n, Relaxed),
            None => self.journaled.fetch_add(1, Relaxed),
        };
    }

    /// Records a sample of the namespace's size.
    pub fn sampled(&self, entries: u64, indexes: u64, index_memory: u64) {
        self.entries.store(entries, Relaxed);
        self.indexes.store(indexes, Relaxed);
        self.index_memory.store(index_memory, Relaxed);
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        Counts {
            reads: self.reads.load(Relaxed),
            hits: self.hits.load(Relaxed),
            loaded: self.loaded.load(Relaxed),
            not_stored: self.not_stored.load(Relaxed),
            shared: self.shared.load(Relaxed),
            failed: self.failed.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
            removed: self.removed.load(Relaxed),
            journaled: self.journaled.load(Relaxed),
            stale: self.stale.load(Relaxed),
            entries: self.entries.load(Relaxed),
            indexes: self.indexes.load(Relaxed),
            index_memory: self.index_memory.load(Relaxed),
        }
    }

    /// Read latency since the previous call.
    pub fn take_window(&self) -> Latency {
        Latency::of(std::mem::take(&mut *lock(&self.window)))
    }

    /// Read latency over the whole run.
    pub fn overall(&self) -> Latency {
        Latency::of(lock(&self.all).clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_source_and_latency() {
        let m = Meter::default();
        m.read(Some(Source::Hit), Duration::from_micros(100));
        m.read(Some(Source::Loaded), Duration::from_micros(2000));
        m.read(Some(Source::LoadedNotStored), Duration::from_micros(300));
        let c = m.counts();
        assert_eq!((c.reads, c.hits, c.loaded, c.not_stored), (3, 1, 1, 1));
        let w = m.take_window();
        assert_eq!(w.p50, Duration::from_micros(300));
        assert_eq!(w.max, Duration::from_millis(2));
        assert_eq!(m.take_window().max, Duration::ZERO);
        assert_eq!(m.overall().max, Duration::from_millis(2));
        m.invalidated(Some(4));
        m.invalidated(None);
        let d = m.counts().since(&c);
        assert_eq!(
            (d.reads, d.invalidations, d.removed, d.journaled),
            (0, 2, 4, 1)
        );
    }
}
