//! The tags this process last wrote for each key, so a transaction that
//! rewrites a key with fewer tags can remove the lost edges inside itself.
//!
//! The transaction write path learns an old entry's tags only from its
//! `SET … GET` reply, after the transaction ran; a lost tag then costs a
//! second step (`unlink.lua`). When this process wrote the key before, it
//! already knows those tags: `ZREM <lost tag's index> <key>` goes inside
//! the transaction, where it is always right (after the `EXEC` the entry
//! does not carry that tag, whatever the old entry was). The reply still
//! says what the old entry really carried, and a tag the guess missed
//! takes the second step as before: a wrong or outdated guess (another
//! process wrote the key, it was deleted, the map was full) costs at most
//! a no-op `ZREM`, never an edge.
//!
//! Bounded: at most [`MAX_KEYS`] keys and [`MAX_BYTES`] bytes of keys and
//! tags; when either is reached the map starts over (a miss only means the
//! second step).

use foldhash::HashMap;
use std::sync::{Arc, Mutex};

/// Most keys remembered.
pub(crate) const MAX_KEYS: usize = 65_536;
/// Most bytes of keys and tag names remembered.
pub(crate) const MAX_BYTES: usize = 8 << 20;

/// One key's tags as last written here.
pub(crate) type Tags = Arc<[Vec<u8>]>;

/// Key -> the tags this process last wrote for it (a key's bucket follows
/// from the key).
#[derive(Debug, Default)]
pub(crate) struct RecentTags {
    inner: Mutex<Map>,
}

#[derive(Debug, Default)]
struct Map {
    tags: HashMap<Vec<u8>, Tags>,
    bytes: usize,
}

fn size(key: &[u8], tags: &[Vec<u8>]) -> usize {
    key.len() + tags.iter().map(Vec::len).sum::<usize>()
}

impl RecentTags {
    /// The tags last written here for `key`, if remembered.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Tags> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.tags.get(key).cloned()
    }

    /// Remembers what was just written (`None`: the key's entry is gone or
    /// unknown now).
    pub(crate) fn record<'a>(&self, writes: impl IntoIterator<Item = (&'a [u8], Option<Tags>)>) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (key, tags) in writes {
            let Map { tags: known, bytes } = &mut *map;
            let Some(tags) = tags else {
                if let Some(old) = known.remove(key) {
                    *bytes -= size(key, &old);
                }
                continue;
            };
            let add = size(key, &tags);
            // A key written before: its tags are replaced in place (the
            // common rewrite costs one lookup and no copy of the key).
            if let Some(slot) = known.get_mut(key) {
                *bytes = *bytes - size(key, slot) + add;
                *slot = tags;
                if *bytes > MAX_BYTES {
                    known.clear();
                    *bytes = 0;
                }
                continue;
            }
            if known.len() >= MAX_KEYS || *bytes + add > MAX_BYTES {
                known.clear();
                *bytes = 0;
            }
            *bytes += add;
            known.insert(key.to_vec(), tags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Tags {
        names.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    #[test]
    fn remembers_the_last_write_and_forgets_removed_keys() {
        let recent = RecentTags::default();
        recent.record([(&b"k"[..], Some(tags(&["a", "b"])))]);
        recent.record([(&b"k"[..], Some(tags(&["c"])))]);
        assert_eq!(recent.get(b"k"), Some(tags(&["c"])));
        assert_eq!(recent.get(b"j"), None);
        recent.record([(&b"k"[..], None)]);
        assert_eq!(recent.get(b"k"), None);
        assert_eq!(recent.inner.lock().unwrap().bytes, 0);
    }

    #[test]
    fn a_rewrite_in_place_past_the_byte_bound_starts_over() {
        let recent = RecentTags::default();
        recent.record([(&b"a"[..], Some(tags(&["x"])))]);
        let big = vec![b'x'; MAX_BYTES];
        recent.record([(&b"a"[..], Some(Arc::from(vec![big])))]);
        assert_eq!(recent.get(b"a"), None);
        assert_eq!(recent.inner.lock().unwrap().bytes, 0);
    }

    #[test]
    fn starts_over_when_full() {
        let recent = RecentTags::default();
        let big = vec![b'x'; MAX_BYTES / 2];
        recent.record([(&b"a"[..], Some(Arc::from(vec![big.clone()])))]);
        recent.record([(&b"b"[..], Some(Arc::from(vec![big])))]);
        assert_eq!(recent.get(b"a"), None);
        assert!(recent.get(b"b").is_some());
        assert!(recent.inner.lock().unwrap().bytes <= MAX_BYTES);
    }
}
