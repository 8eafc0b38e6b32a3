//! The benchmark's view of Redis key names, and cleaning up what it wrote.
//!
//! tagcache builds its key names privately (its `keys.rs`); the raw
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
    fn fence(&self) -> String {
        format!("{{{}.0}}:fence", self.ns)
    }

    /// `{<ns>}:meta`.
    fn meta(&self) -> String {
        format!("{{{}}}:meta", self.ns)
    }

    /// Every key a namespace can hold for these tags, besides entries.
    pub fn index_keys<'a>(
        &'a self,
        tags: &'a BTreeSet<String>,
    ) -> impl Iterator<Item = String> + 'a {
        tags.iter()
            .flat_map(|t| [self.tag(t), self.snapshot(t)])
            .chain([self.registry(), self.inflight(), self.fence(), self.meta()])
    }
}

/// The bench's cache keys: `item:0`, `item:1`, ...
pub fn item_key(i: u64) -> String {
    format!("item:{i}")
}

/// Everything one phase may have written: `entries` items and these tags
/// in one namespace.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// Where.
    pub space: Space,
    /// Items `item:0 .. item:<entries - 1>`.
    pub entries: u64,
    /// Every tag those items may carry.
    pub tags: BTreeSet<String>,
}

/// Deletes a footprint's keys by name (UNLINK, 1000 names a call).
pub async fn wipe(conn: &MultiplexedConnection, fp: &Footprint) -> Result<()> {
    let mut conn = conn.clone();
    let names = (0..fp.entries)
        .map(|i| fp.space.entry(&item_key(i)))
        .chain(fp.space.index_keys(&fp.tags));
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
                "{b-1.0}:reg",
                "{b-1.0}:inv",
                "{b-1.0}:fence",
                "{b-1}:meta"
            ]
        );
    }
}
