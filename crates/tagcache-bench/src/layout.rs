//! The benchmark's view of Redis key names, and cleaning up what it wrote.
//!
//! tagcache builds its key names privately (its `layout/keys.rs`); the raw
//! baselines must write keys of the same shape and the bench must delete
//! everything it wrote without SCAN, so this module mirrors the layout of
//! `docs/redis-layout.md` for a one-bucket namespace. It is the only place
//! in the CLI that formats a Redis key.

use std::collections::BTreeSet;
use std::sync::Mutex;

use redis::aio::MultiplexedConnection;

use crate::error::Result;

/// Key names of one namespace with one bucket (`{<ns>.0}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    ns: String,
}

impl Space {
    /// The names of namespace `ns`.
    pub fn new(ns: impl Into<String>) -> Self {
        Self { ns: ns.into() }
    }

    /// The namespace.
    pub fn name(&self) -> &str {
        &self.ns
    }

    /// `{<ns>.0}:e:<key>`: an entry string.
    pub fn entry(&self, key: &str) -> String {
        format!("{{{}.0}}:e:{key}", self.ns)
    }

    /// The prefix of every entry key (what a member is appended to).
    pub fn entry_prefix(&self) -> String {
        self.entry("")
    }

    /// `{<ns>.0}:t:<tag>`: a tag index.
    pub fn tag(&self, tag: &str) -> String {
        format!("{{{}.0}}:t:{tag}", self.ns)
    }

    /// `{<ns>.0}:x:<tag>`: an invalidation snapshot.
    fn snapshot(&self, tag: &str) -> String {
        format!("{{{}.0}}:x:{tag}", self.ns)
    }

    /// `{<ns>.0}:reg`: the tag registry.
    pub fn registry(&self) -> String {
        format!("{{{}.0}}:reg", self.ns)
    }

    /// `{<ns>.0}:inv`: invalidations in flight.
    pub fn inflight(&self) -> String {
        format!("{{{}.0}}:inv", self.ns)
    }

    /// `{<ns>.0}:fence`: last invalidations and deletes.
    pub fn fence(&self) -> String {
        format!("{{{}.0}}:fence", self.ns)
    }

    /// `{<ns>.0}:l1`: the announcement counter (L1 tiers).
    fn l1(&self) -> String {
        format!("{{{}.0}}:l1", self.ns)
    }

    /// `{<ns>}:meta`.
    fn meta(&self) -> String {
        format!("{{{}}}:meta", self.ns)
    }

    /// Every key a namespace can hold for these tags, besides entries
    /// (the reserved all-entries index `\0a` included).
    pub fn index_keys<'a>(
        &'a self,
        tags: &'a BTreeSet<String>,
    ) -> impl Iterator<Item = String> + 'a {
        tags.iter()
            .map(String::as_str)
            .chain([ALL_TAG])
            .flat_map(|t| [self.tag(t), self.snapshot(t)])
            .chain([
                self.registry(),
                self.inflight(),
                self.fence(),
                self.l1(),
                self.meta(),
            ])
    }
}

/// The reserved tag an entry with no other edge carries (layout version
/// 2), so that every entry is in some index.
pub const ALL_TAG: &str = "\0a";

/// The reserved tag of the prefix index of `prefix` (layout version 2).
pub fn prefix_tag(prefix: &str) -> String {
    format!("\0p{prefix}")
}

/// The bench's cache keys: `item:0`, `item:1`, ...
pub fn item_key(i: u64) -> String {
    Keys::Items.name(i)
}

/// Entries per `org:<g>` group of [`Keys::Org`] keys.
pub const ORG_GROUP: u64 = 100;

/// The shape of a phase's cache keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `item:<i>`: a 2-part path (one prefix edge, `\0pitem`).
    Items,
    /// `flat-<i>`: one part, not a path (only the `\0a` edge).
    Flat,
    /// `org:<i / 100>:<i>`: a 3-part path (prefix edges `\0porg` and
    /// `\0porg:<g>`).
    Org,
}

impl Keys {
    /// The key of entry `i`.
    pub fn name(self, i: u64) -> String {
        match self {
            Keys::Items => format!("item:{i}"),
            Keys::Flat => format!("flat-{i}"),
            Keys::Org => format!("org:{}:{i}", i / ORG_GROUP),
        }
    }

    /// The proper prefixes of entry `i`'s key (whose prefix indexes
    /// tagcache writes it into).
    pub fn prefixes(self, i: u64) -> Vec<String> {
        match self {
            Keys::Items => vec!["item".to_owned()],
            Keys::Flat => Vec::new(),
            Keys::Org => vec!["org".to_owned(), format!("org:{}", i / ORG_GROUP)],
        }
    }

    /// The prefix tags of entries `0..n`.
    pub fn prefix_tags(self, n: u64) -> BTreeSet<String> {
        let step = match self {
            Keys::Org => ORG_GROUP,
            _ => n.max(1),
        };
        (0..n)
            .step_by(usize::try_from(step).unwrap_or(usize::MAX))
            .flat_map(|i| self.prefixes(i))
            .map(|p| prefix_tag(&p))
            .collect()
    }
}

/// Everything one phase may have written: `entries` items and these tags
/// in one namespace.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// Where.
    pub space: Space,
    /// Items `0 .. entries - 1`.
    pub entries: u64,
    /// Their key shape.
    pub keys: Keys,
    /// Every tag those items may carry (their prefix tags and `\0a` are
    /// added by [`wipe`]).
    pub tags: BTreeSet<String>,
}

/// Deletes a footprint's keys by name (UNLINK, 1000 names a call).
pub async fn wipe(conn: &MultiplexedConnection, fp: &Footprint) -> Result<()> {
    let mut conn = conn.clone();
    let mut tags = fp.keys.prefix_tags(fp.entries);
    tags.extend(fp.tags.iter().cloned());
    let names = (0..fp.entries)
        .map(|i| fp.space.entry(&fp.keys.name(i)))
        .chain(fp.space.index_keys(&tags));
    let mut batch = Vec::with_capacity(1000);
    for name in names {
        batch.push(name);
        if batch.len() == 1000 {
            redis::cmd("UNLINK")
                .arg(&batch)
                .query_async::<()>(&mut conn)
                .await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        redis::cmd("UNLINK")
            .arg(&batch)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

/// Remembers what the bench wrote so that an error or Ctrl-C still leaves
/// the server as it was found.
#[derive(Debug, Default)]
pub struct Janitor {
    pending: Mutex<Vec<Footprint>>,
}

impl Janitor {
    /// Records a footprint before anything is written to it.
    pub fn track(&self, fp: &Footprint) {
        if let Ok(mut p) = self.pending.lock() {
            p.push(fp.clone());
        }
    }

    /// Deletes a footprint now.
    pub async fn wipe(&self, conn: &MultiplexedConnection, fp: &Footprint) -> Result<()> {
        wipe(conn, fp).await?;
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|x| x.space != fp.space);
        }
        Ok(())
    }

    /// Deletes every footprint not deleted yet.
    pub async fn wipe_all(&self, conn: &MultiplexedConnection) -> Result<()> {
        let todo = self
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for fp in &todo {
            wipe(conn, fp).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_layout() {
        let s = Space::new("b-1");
        assert_eq!(s.entry("item:7"), "{b-1.0}:e:item:7");
        assert_eq!(s.tag("owner:1"), "{b-1.0}:t:owner:1");
        assert_eq!(s.registry(), "{b-1.0}:reg");
        let tags: BTreeSet<String> = ["a".to_owned()].into();
        let all: Vec<String> = s.index_keys(&tags).collect();
        assert_eq!(
            all,
            [
                "{b-1.0}:t:a",
                "{b-1.0}:x:a",
                "{b-1.0}:t:\0a",
                "{b-1.0}:x:\0a",
                "{b-1.0}:reg",
                "{b-1.0}:inv",
                "{b-1.0}:fence",
                "{b-1.0}:l1",
                "{b-1}:meta"
            ]
        );
    }

    #[test]
    fn key_shapes_and_their_prefixes() {
        assert_eq!(Keys::Flat.name(3), "flat-3");
        assert!(Keys::Flat.prefix_tags(10).is_empty());
        assert_eq!(Keys::Org.name(250), "org:2:250");
        assert_eq!(Keys::Org.prefixes(250), ["org", "org:2"]);
        let tags = Keys::Org.prefix_tags(250);
        assert_eq!(tags.len(), 4, "{tags:?}");
        assert!(tags.contains("\0porg:2"));
        assert_eq!(
            Keys::Items.prefix_tags(5).into_iter().collect::<Vec<_>>(),
            ["\0pitem"]
        );
    }
}
