//! The legacy side of a scope's operations: reads that fall back to the
//! legacy key, deletes and membership checks that cover it, and listings
//! and clears that scan for an owner's legacy keys while the namespace is
//! in transition.

use std::collections::HashSet;
use std::sync::Arc;

use super::moves::{Move, Moved};
use super::rules::{Classified, LegacyTarget};
use super::{default_ttl, scan, sha1_hex, Legacy};
use crate::engine::core::Core;
use crate::error::Result;
use crate::layout::path::{KeyPath, Part};

/// Keys `SCAN` is asked to look at per call in a scope's fallbacks.
const SCAN_COUNT: usize = 1000;

/// What a scoped read found.
#[derive(Debug)]
pub(crate) enum Read {
    /// The entry's stored bytes (tagcache format).
    Entry(Vec<u8>),
    /// A legacy value (raw bytes), returned in place of a missing entry.
    Legacy(Vec<u8>),
}

/// Reads `part` of `owner`: the entry and its legacy key in one round
/// trip; moves the legacy value on a miss, deletes a stale twin on a hit
/// (both in [`super::LegacyMode::Migrate`] only).
pub(crate) async fn read(
    core: &Core,
    legacy: &Legacy,
    owner: &KeyPath,
    bucket: u16,
    part: &Part,
) -> Result<Option<Read>> {
    let member = owner.clone().push(part.clone()).encode();
    let entry_key = core.space.entry(bucket, &member);
    let Some((legacy_key, target)) = legacy.rules.legacy_key_of(owner, part) else {
        let raw: Option<Vec<u8>> = core.conn.query(redis::cmd("GET").arg(entry_key)).await?;
        return Ok(raw.map(Read::Entry));
    };
    let (entry, old) = if core.conn.is_cluster() {
        // Two slots: two commands, sent together.
        let get_entry = redis::cmd("GET").arg(&entry_key).clone();
        let get_old = redis::cmd("GET").arg(&legacy_key).clone();
        let (entry, old) = tokio::join!(
            core.conn.query::<Option<Vec<u8>>>(&get_entry),
            core.conn.query::<Option<Vec<u8>>>(&get_old)
        );
        (entry?, old.ok().flatten())
    } else {
        let mut pipe = redis::pipe();
        pipe.get(&entry_key).get(&legacy_key).ignore_errors();
        let replies: Vec<redis::RedisResult<Option<Vec<u8>>>> = core.conn.pipe(&pipe).await?;
        let mut it = replies.into_iter();
        (
            it.next().transpose()?.flatten(),
            it.next().and_then(|r| r.ok()).flatten(),
        )
    };
    // A legacy key that is not a string (WRONGTYPE) holds no value for us:
    // `old` is `None` then. A malformed entry holds nothing either: beside
    // a legacy value it is replaced by it (the move overwrites it).
    let entry = entry.filter(|e| old.is_none() || crate::layout::codec::decode_entry(e).is_ok());
    match (entry, old) {
        (Some(entry), Some(old)) => {
            if legacy.migrates() {
                core.legacy_delete_if(&legacy_key, &sha1_hex(&old)).await?;
            }
            Ok(Some(Read::Entry(entry)))
        }
        (Some(entry), None) => Ok(Some(Read::Entry(entry))),
        (None, Some(old)) => {
            if legacy.migrates() {
                let mut mv = Move::new(core, legacy_key, &target)?;
                mv.expected = Some(sha1_hex(&old));
                // Whatever happened meanwhile (a concurrent move, a new
                // write), `old` was the value when this read was made.
                core.legacy_moves(&[mv], default_ttl(&legacy.rules, core))
                    .await?;
            }
            Ok(Some(Read::Legacy(old)))
        }
        (None, None) => Ok(None),
    }
}

/// Deletes the legacy key of `part` of `owner`; says whether it existed.
pub(crate) async fn delete(
    core: &Core,
    legacy: &Legacy,
    owner: &KeyPath,
    part: &Part,
) -> Result<bool> {
    match legacy.rules.legacy_key_of(owner, part) {
        Some((key, _)) => Ok(core.legacy_delete(&[key]).await? > 0),
        None => Ok(false),
    }
}

// Same parameters and lookup as `delete` on purpose: one small function a command.
/// Whether the legacy key of `part` of `owner` exists.
pub(crate) async fn contains(
    core: &Core,
    legacy: &Legacy,
    owner: &KeyPath,
    part: &Part,
) -> Result<bool> {
    match legacy.rules.legacy_key_of(owner, part) {
        Some((key, _)) => core.conn.query(redis::cmd("EXISTS").arg(key)).await,
        None => Ok(false),
    }
}

/// Walks `SCAN MATCH` over each of an owner's legacy globs, yielding the
/// keys that map exactly to this owner.
#[derive(Debug)]
struct OwnerScan {
    owner: KeyPath,
    globs: Vec<Vec<u8>>,
    glob: usize,
    cursor: u64,
}

impl OwnerScan {
    fn new(legacy: &Legacy, owner: &KeyPath) -> Self {
        Self {
            owner: owner.clone(),
            globs: legacy.rules.owner_globs(owner),
            glob: 0,
            cursor: 0,
        }
    }

    /// The owner's legacy keys of the next `SCAN` call (possibly none);
    /// `None` once every glob has been walked.
    async fn next_batch(
        &mut self,
        core: &Core,
        legacy: &Legacy,
    ) -> Result<Option<Vec<(Vec<u8>, LegacyTarget)>>> {
        let Some(glob) = self.globs.get(self.glob) else {
            return Ok(None);
        };
        let (next, keys) = scan(core, self.cursor, Some(glob), SCAN_COUNT).await?;
        self.cursor = next;
        if next == 0 {
            self.glob += 1;
        }
        Ok(Some(
            keys.into_iter()
                .filter_map(|k| match legacy.rules.classify(&k) {
                    // Exact: the whole key maps to this very owner.
                    Classified::Mapped(t) if t.owner == self.owner => Some((k, t)),
                    _ => None,
                })
                .collect(),
        ))
    }
}

/// The legacy phase of [`crate::ScopeKeys`]: pages of the owner's legacy
/// keys, as the new paths they map to; in `Migrate` mode each is moved
/// first (and a stale twin deleted: its entry is listed by the index).
#[derive(Debug)]
pub(crate) struct LegacyKeys {
    core: Arc<Core>,
    legacy: Arc<Legacy>,
    owner: KeyPath,
    scan: Option<OwnerScan>,
    started: bool,
}

impl LegacyKeys {
    pub(crate) fn new(core: Arc<Core>, legacy: Arc<Legacy>, owner: KeyPath) -> Self {
        Self {
            core,
            legacy,
            owner,
            scan: None,
            started: false,
        }
    }

    /// The next non-empty page; `None` at the end (at once when the
    /// namespace's migration has completed). `seen` collects the member
    /// keys returned, so the index phase can skip them.
    pub(crate) async fn next_page(
        &mut self,
        seen: &mut HashSet<Vec<u8>>,
    ) -> Result<Option<Vec<KeyPath>>> {
        if !self.started {
            self.started = true;
            if self.legacy.in_transition(&self.core).await? {
                self.scan = Some(OwnerScan::new(&self.legacy, &self.owner));
            }
        }
        loop {
            let Some(scan) = self.scan.as_mut() else {
                return Ok(None);
            };
            let Some(found) = scan.next_batch(&self.core, &self.legacy).await? else {
                self.scan = None;
                return Ok(None);
            };
            let found: Vec<(Vec<u8>, LegacyTarget)> = found
                .into_iter()
                .filter(|(_, t)| !seen.contains(&t.key().encode()))
                .collect();
            let keep: Vec<bool> = if self.legacy.migrates() && !found.is_empty() {
                let moves: Vec<Move> = found
                    .iter()
                    .map(|(k, t)| Move::new(&self.core, k.clone(), t))
                    .collect::<Result<_>>()?;
                let ttl = default_ttl(&self.legacy.rules, &self.core);
                self.core
                    .legacy_moves(&moves, ttl)
                    .await?
                    .into_iter()
                    .map(|m| m == Moved::Migrated)
                    .collect()
            } else {
                vec![true; found.len()]
            };
            let mut page = Vec::new();
            for ((_, t), keep) in found.into_iter().zip(keep) {
                let path = t.key();
                if keep && seen.insert(path.encode()) {
                    page.push(path);
                }
            }
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
    }
}

/// Deletes every legacy key of `owner` while the namespace is in
/// transition; returns how many.
pub(crate) async fn clear(core: &Core, legacy: &Legacy, owner: &KeyPath) -> Result<u64> {
    if !legacy.in_transition(core).await? {
        return Ok(0);
    }
    let mut scan = OwnerScan::new(legacy, owner);
    let mut removed = 0;
    while let Some(found) = scan.next_batch(core, legacy).await? {
        let keys: Vec<Vec<u8>> = found.into_iter().map(|(k, _)| k).collect();
        removed += core.legacy_delete(&keys).await?;
    }
    Ok(removed)
}
