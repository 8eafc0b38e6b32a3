//! What the bench writes: keys, tags and values, the same for tagcache and
//! for the raw baselines.
//!
//! Entry `i` is `item:<i>` and carries K tags, each covering about
//! [`GROUP`] entries (so index keys are real skiplist zsets, not the small
//! listpack form): tag 0 `owner:<i / GROUP>` groups consecutive keys, like
//! a per-owner key set; tags 1.. `t<j>:<h>` spread them, like content-type
//! or node tags, so one write batch touches many index keys. Values are
//! pseudo-random bytes (incompressible, as most cached values are).

use std::collections::BTreeSet;

/// Entries per tag.
pub const GROUP: u64 = 1000;

/// The data set.
#[derive(Debug, Clone)]
pub struct Workload {
    tags: usize,
    groups: u64,
    value: Vec<u8>,
}

impl Workload {
    /// `tags` tags per entry, values of `value_size` bytes, tag groups sized
    /// for `entries` entries.
    pub fn new(entries: u64, tags: usize, value_size: usize) -> Self {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let value = (0..value_size)
            .map(|_| {
                state = splitmix(state);
                state.to_le_bytes()[0]
            })
            .collect();
        Self {
            tags,
            groups: entries.div_ceil(GROUP).max(1),
            value,
        }
    }

    /// Tags per entry.
    pub fn tag_count(&self) -> usize {
        self.tags
    }

    /// The value every entry stores.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The tags of entry `i`; `first` replaces tag 0 (the invalidation
    /// phase puts all its entries under one tag).
    pub fn tags_of(&self, i: u64, first: Option<&str>) -> Vec<String> {
        (0..self.tags)
            .map(|j| match (j, first) {
                (0, Some(t)) => t.to_owned(),
                (0, None) => format!("owner:{}", i / GROUP),
                _ => format!("t{j}:{}", splitmix(i ^ ((j as u64) << 40)) % self.groups),
            })
            .collect()
    }

    /// Every tag entries `0..n` carry.
    pub fn tag_set(&self, n: u64, first: Option<&str>) -> BTreeSet<String> {
        (0..n).flat_map(|i| self.tags_of(i, first)).collect()
    }
}

/// The bytes of the tag section tagcache stores in an entry's header
/// (`u16` length + name per tag; `docs/redis-layout.md`), so untagged
/// entries can be padded to the same stored size.
pub fn tag_section_len(tags: &[String]) -> usize {
    tags.iter().map(|t| 2 + t.len()).sum()
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_cover_about_a_group_each() {
        let w = Workload::new(10_000, 3, 16);
        assert_eq!(w.value().len(), 16);
        assert_eq!(w.tags_of(1234, None)[0], "owner:1");
        assert_eq!(w.tags_of(1234, Some("inv:all"))[0], "inv:all");
        let set = w.tag_set(10_000, None);
        // 10 owners + about 10 groups for each of t1 and t2.
        assert!((25..=31).contains(&set.len()), "{}", set.len());
        assert_eq!(tag_section_len(&w.tags_of(5, None)), 2 + 7 + 2 + 4 + 2 + 4);
    }
}
