//! Invalidations acknowledged while Redis was unreachable, kept in process
//! until they are replayed, so none is ever silently lost.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::layout::keys::prefix_tag;
use crate::observe::metrics as names;

/// One pending removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Invalidate these tags.
    Tags(Vec<Vec<u8>>),
    /// Delete these keys.
    Keys(Vec<Vec<u8>>),
    /// Clear the whole namespace (every read bypasses while it is pending).
    Clear,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Pending>,
    tags: HashMap<Vec<u8>, usize>,
    keys: HashMap<Vec<u8>, usize>,
    /// Namespace clears pending.
    clears: usize,
    /// When the journal overflowed: every entry written before then may be
    /// covered by a forgotten invalidation, so all reads bypass the cache
    /// until the maximum TTL has passed or an operator clears the flag.
    overflowed_at: Option<Instant>,
}

/// The journal as a read found it before asking Redis: see
/// [`Journal::covers_read`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadMark {
    /// Something was pending (or the journal overflowed).
    active: bool,
    /// Removals replayed so far.
    replayed: u64,
}

/// The bounded journal.
#[derive(Debug)]
pub(crate) struct Journal {
    capacity: usize,
    max_ttl: Duration,
    /// Fast path for reads: true when anything is pending or overflowed.
    active: AtomicBool,
    len: AtomicUsize,
    /// Removals replayed (popped) so far: a read that began before a
    /// replay finished may hold bytes the replay has since deleted.
    replayed: AtomicU64,
    state: Mutex<State>,
    namespace: String,
    /// The L1 tier: a journaled removal applies to it at once.
    l1: std::sync::OnceLock<std::sync::Arc<crate::l1::L1>>,
}

impl Journal {
    /// Makes journaled removals apply to this L1 at once (the journal
    /// replays them to Redis later).
    pub(crate) fn set_l1(&self, l1: std::sync::Arc<crate::l1::L1>) {
        let _ = self.l1.set(l1);
    }

    pub(crate) fn new(capacity: usize, max_ttl: Duration, namespace: &str) -> Self {
        Self {
            capacity,
            max_ttl,
            active: AtomicBool::new(false),
            len: AtomicUsize::new(0),
            replayed: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            namespace: namespace.to_owned(),
            l1: std::sync::OnceLock::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, s: &State) {
        self.len.store(s.queue.len(), Ordering::Release);
        self.active.store(
            !s.queue.is_empty() || s.overflowed_at.is_some(),
            Ordering::Release,
        );
        metrics::gauge!(names::JOURNAL_LEN, "namespace" => self.namespace.clone())
            .set(s.queue.len() as f64);
    }

    /// Pending removals.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Records a removal; returns false when the journal was full (it is
    /// then marked overflowed, which makes every read bypass the cache).
    pub(crate) fn push(&self, p: Pending) -> bool {
        if let Some(l1) = self.l1.get() {
            match &p {
                Pending::Tags(t) => l1.tags_invalidated(t),
                Pending::Keys(k) => l1.keys_changed(k),
                Pending::Clear => l1.drop_all(crate::l1::DropCause::Announcement),
            }
        }
        let mut s = self.lock();
        let fits = s.queue.len() < self.capacity;
        if fits {
            let (map, items) = match &p {
                Pending::Tags(t) => (&mut s.tags, t),
                Pending::Keys(k) => (&mut s.keys, k),
                Pending::Clear => {
                    s.clears += 1;
                    s.queue.push_back(p);
                    self.publish(&s);
                    return true;
                }
            };
            for i in items {
                *map.entry(i.clone()).or_insert(0) += 1;
            }
            s.queue.push_back(p);
        } else if s.overflowed_at.is_none() {
            s.overflowed_at = Some(Instant::now());
            tracing::error!(
                namespace = %self.namespace,
                capacity = self.capacity,
                "invalidation journal overflowed: every read bypasses the cache until the maximum ttl has passed or the overflow is acknowledged"
            );
        }
        self.publish(&s);
        fits
    }

    /// The oldest pending removal.
    pub(crate) fn front(&self) -> Option<Pending> {
        self.lock().queue.front().cloned()
    }

    /// Drops the oldest pending removal once it has been replayed.
    pub(crate) fn pop_front(&self) {
        let mut s = self.lock();
        if let Some(p) = s.queue.pop_front() {
            // Before the removal stops covering anything (see `covers_read`).
            self.replayed.fetch_add(1, Ordering::AcqRel);
            let (map, items) = match &p {
                Pending::Tags(t) => (&mut s.tags, t),
                Pending::Keys(k) => (&mut s.keys, k),
                Pending::Clear => {
                    s.clears = s.clears.saturating_sub(1);
                    self.publish(&s);
                    return;
                }
            };
            for i in items {
                if let Some(n) = map.get_mut(i) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(i);
                    }
                }
            }
        }
        self.publish(&s);
    }

    /// Whether reads must not serve an entry with this key and tags: the
    /// key is pending deletion, one of the tags pending invalidation, or
    /// the key lies under a path prefix pending invalidation (a prefix
    /// invalidation or scope clear, journaled as the prefix's reserved
    /// tag), whichever way the entry was written.
    pub(crate) fn covers(&self, key: &[u8], tags: &[Vec<u8>]) -> bool {
        if !self.active.load(Ordering::Acquire) {
            return false;
        }
        let mut s = self.lock();
        if let Some(at) = s.overflowed_at {
            if at.elapsed() < self.max_ttl {
                return true;
            }
            s.overflowed_at = None;
            self.publish(&s);
        }
        s.clears > 0
            || s.keys.contains_key(key)
            || tags.iter().any(|t| s.tags.contains_key(t))
            || under_pending_prefix(&s.tags, key)
    }

    /// Where the journal stands, taken by a read before it asks Redis.
    pub(crate) fn mark(&self) -> ReadMark {
        ReadMark {
            replayed: self.replayed.load(Ordering::Acquire),
            active: self.active.load(Ordering::Acquire),
        }
    }

    /// [`Journal::covers`] for bytes a read fetched after taking `mark`:
    /// also true when a removal pending at the mark was replayed since. The
    /// read's bytes may predate that replay's deletion, and the removal was
    /// acknowledged before the read began, so serving them would bring back
    /// what the caller was told is gone (the replay deletes in Redis first
    /// and only then stops covering).
    pub(crate) fn covers_read(&self, mark: ReadMark, key: &[u8], tags: &[Vec<u8>]) -> bool {
        (mark.active && self.replayed.load(Ordering::Acquire) != mark.replayed)
            || self.covers(key, tags)
    }

    /// Whether anything is pending or overflowed (reads must check).
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Whether the journal overflowed and reads bypass the cache.
    pub(crate) fn overflowed(&self) -> bool {
        self.lock().overflowed_at.is_some()
    }

    /// Clears the overflow flag (an operator confirmed the namespace was
    /// flushed, or accepts the risk).
    pub(crate) fn acknowledge_overflow(&self) {
        let mut s = self.lock();
        s.overflowed_at = None;
        self.publish(&s);
    }
}

/// Whether a pending tag is the reserved prefix tag (`\0p<prefix>`, see
/// `layout/keys.rs`) of the key itself or of one of its path prefixes: the key's
/// bytes up to an unescaped `:`.
fn under_pending_prefix(pending: &HashMap<Vec<u8>, usize>, key: &[u8]) -> bool {
    if pending.is_empty() {
        return false;
    }
    let mut probe = Vec::with_capacity(key.len() + 2);
    probe.extend_from_slice(&prefix_tag(b""));
    let mut escaped = false;
    for &b in key {
        if !escaped && b == b':' && pending.contains_key(&probe) {
            return true;
        }
        escaped = !escaped && b == b'\\';
        probe.push(b);
    }
    pending.contains_key(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_clear_covers_every_key() {
        let j = Journal::new(4, Duration::from_secs(60), "t");
        assert!(j.push(Pending::Clear));
        assert!(j.covers(b"anything", &[]));
        j.pop_front();
        assert!(!j.covers(b"anything", &[]));
    }

    /// Regression: a read whose `GET` was answered just before a replay
    /// deleted its entry, and checked the journal just after the replay
    /// popped the removal, served an entry invalidated before the read
    /// began (seen once in a loaded run of the fail-safe views' tests).
    #[test]
    fn a_read_begun_before_a_replay_finished_is_still_covered() {
        let j = Journal::new(4, Duration::from_secs(60), "t");
        let tags = vec![b"t1".to_vec()];
        let idle = j.mark();
        assert!(j.push(Pending::Tags(tags.clone())));
        let before = j.mark();
        j.pop_front();
        assert!(!j.covers(b"k", &tags));
        assert!(j.covers_read(before, b"k", &tags));
        assert!(
            j.covers_read(before, b"other", &[]),
            "any entry: its tags may be stale"
        );
        assert!(!j.covers_read(j.mark(), b"k", &tags));
        assert!(
            !j.covers_read(idle, b"k", &tags),
            "nothing was pending at the mark"
        );
    }

    #[test]
    fn tracks_what_pending_removals_cover() {
        let j = Journal::new(2, Duration::from_secs(60), "t");
        assert!(!j.covers(b"k", &[b"t".to_vec()]));
        assert!(j.push(Pending::Tags(vec![b"t".to_vec()])));
        assert!(j.push(Pending::Keys(vec![b"k".to_vec()])));
        assert!(j.covers(b"x", &[b"t".to_vec()]));
        assert!(j.covers(b"k", &[]));
        assert!(!j.covers(b"x", &[b"u".to_vec()]));
        j.pop_front();
        assert!(!j.covers(b"x", &[b"t".to_vec()]));
        assert_eq!(j.len(), 1);
        assert!(j.push(Pending::Keys(vec![b"y".to_vec()])));
        assert!(!j.push(Pending::Keys(vec![b"z".to_vec()])), "full");
        assert!(j.overflowed());
        assert!(j.covers(b"anything", &[]));
        j.acknowledge_overflow();
        assert!(!j.covers(b"anything", &[]));
    }

    #[test]
    fn a_pending_prefix_covers_every_key_under_it_however_written() {
        use crate::layout::path::KeyPath;
        let j = Journal::new(8, Duration::from_secs(60), "t");
        let prefix = KeyPath::from(["dsr", "pr-1"]);
        assert!(j.push(Pending::Tags(vec![prefix.as_prefix_tag()])));
        // Untagged plain keys, paths and scoped parts alike.
        assert!(j.covers(b"dsr:pr-1", &[]));
        assert!(j.covers(b"dsr:pr-1:a", &[]));
        assert!(j.covers(b"dsr:pr-1:a:b\\:c", &[]));
        // Whole parts only, and an escaped separator is no boundary.
        assert!(!j.covers(b"dsr:pr-10:a", &[]));
        assert!(!j.covers(b"dsr", &[]));
        assert!(!j.covers(b"other:dsr:pr-1", &[]));
        let odd = KeyPath::from(["a:b"]);
        assert!(j.push(Pending::Tags(vec![odd.as_prefix_tag()])));
        assert!(j.covers(b"a\\:b:c", &[]));
        assert!(!j.covers(b"a:b:c", &[]));
        let slash = KeyPath::from(["x\\"]);
        assert!(j.push(Pending::Tags(vec![slash.as_prefix_tag()])));
        assert!(j.covers(&KeyPath::from(["x\\", "y"]).encode(), &[]));
    }
}
