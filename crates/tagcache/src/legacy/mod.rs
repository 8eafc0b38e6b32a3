//! Moving a live system from its old key formats to scoped entries.
//!
//! An application that kept an owner's data under keys such as
//! `id-{id}-identity-{attr}` describes those formats with [`LegacyRules`]
//! and configures them on the cache ([`crate::CacheBuilder::legacy`]).
//! Then, for a [`crate::Scope`]:
//!
//! - **reads** (`get`, `get_bytes`) read the new key and the one legacy
//!   key it maps from in one round trip. The new key wins; on a miss the
//!   legacy value is returned and, in [`LegacyMode::Migrate`], moved by
//!   one script (`legacy_move.lua`): the entry is written as raw bytes with
//!   the legacy key's remaining TTL (or the rules' default, capped by the
//!   maximum TTL), indexed under the owner's scope and the rule's tags,
//!   and the legacy key deleted, only if it still holds the value read. A
//!   legacy key found beside an existing entry is a stale twin and is
//!   deleted (`legacy_del_if.lua`, only if unchanged);
//! - **writes** never create legacy keys; in `Migrate` mode a write also
//!   deletes the legacy twin of the part, so an older value cannot come
//!   back once the new entry expires;
//! - **delete** and **contains** also cover the legacy key (no SCAN: the
//!   key is computed from the rules);
//! - **keys** and **clear**, while the namespace is *in transition*, also
//!   cover the owner's legacy keys: a paged `SCAN MATCH` per rule (COUNT
//!   1000) with the owner's values glob-escaped into the pattern, each key
//!   found then matched exactly (so `pr-1` never takes `pr-10`'s keys).
//!   `keys` backfills what it finds in `Migrate` mode. `clear` deletes the
//!   legacy keys first and the scope's entries after, so a concurrent
//!   migration cannot slip an entry past it;
//! - **bulk migration** ([`crate::Cache::legacy_migration`]) walks the
//!   keyspace with SCAN, resumably; once a pass completes it sets the
//!   field `legacy_done` of the namespace's meta hash, and from then on no
//!   listing or clear scans again.
//!
//! On Redis Cluster a legacy key and its new key live in different hash
//! slots, so a move cannot be one script there; it becomes two ordered
//! steps: write the entry (like any write), then delete the legacy key
//! only if it still holds the value read (`legacy_del_if.lua`). A crash in
//! between leaves a twin, which the next read or pass deletes. The code
//! keeps that seam in `moves`: it runs the one-script move,
//! which needs every key in one server, on a standalone Redis, and the two
//! steps on a cluster. Scans on a cluster (which must visit every master)
//! are refused with a clear error for now.

mod migrate;
pub(crate) mod moves;
mod pattern;
mod rules;
pub(crate) mod scoped;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use migrate::{
    MigrateOptions, Migration, MigrationReport, MigrationStep, MoveAction, PlannedMove,
};
pub use rules::{LegacyRule, LegacyRules, LegacyTarget};

use crate::engine::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::keys::META_LEGACY_DONE;

/// What a cache does with legacy keys it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LegacyMode {
    /// Return legacy values and move them to the new layout (value,
    /// remaining TTL, index), deleting the legacy key; delete stale twins.
    Migrate,
    /// Return legacy values, never move them or delete twins (for a
    /// rollout where old code still reads the legacy keys). `delete` and
    /// `clear` still remove an owner's legacy keys: otherwise a deleted
    /// value would come back from its legacy copy.
    ReadOnly,
}

/// The legacy configuration of a cache.
#[derive(Debug)]
pub(crate) struct Legacy {
    pub(crate) rules: LegacyRules,
    pub(crate) mode: LegacyMode,
    /// Set once the namespace's migration-complete marker has been seen.
    done: AtomicBool,
}

impl Legacy {
    pub(crate) fn new(rules: LegacyRules, mode: LegacyMode) -> Self {
        Self {
            rules,
            mode,
            done: AtomicBool::new(false),
        }
    }

    /// Whether listings and clears must still look for legacy keys: until
    /// the marker is seen (one `HGET` per listing or clear; never again
    /// after it is seen).
    pub(crate) async fn in_transition(&self, core: &Core) -> Result<bool> {
        if self.done.load(Ordering::Acquire) {
            return Ok(false);
        }
        let marker: Option<String> = core
            .conn
            .query(
                redis::cmd("HGET")
                    .arg(core.space.meta())
                    .arg(META_LEGACY_DONE),
            )
            .await?;
        if marker.is_some() {
            self.done.store(true, Ordering::Release);
        }
        Ok(marker.is_none())
    }

    /// Records that the marker is set (a migration just completed).
    pub(crate) fn mark_done(&self) {
        self.done.store(true, Ordering::Release);
    }

    pub(crate) fn migrates(&self) -> bool {
        self.mode == LegacyMode::Migrate
    }
}

/// TTL for legacy keys without one: the rules' default, else the cache's.
pub(crate) fn default_ttl(rules: &LegacyRules, core: &Core) -> Duration {
    rules
        .ttl_for_keys_without_one()
        .unwrap_or(core.limits.default_ttl)
        .min(core.limits.max_ttl)
        .max(Duration::from_millis(1))
}

/// SHA1 (hex) of a value, as `redis.sha1hex` computes it.
pub(crate) fn sha1_hex(value: &[u8]) -> String {
    sha1_smol::Sha1::from(value).digest().to_string()
}

/// One `SCAN` call: the next cursor and the keys of this page.
///
/// # Errors
/// [`ErrorKind::Config`] on Redis Cluster, where a pass must visit every
/// master (not implemented yet): failing beats missing legacy keys.
pub(crate) async fn scan(
    core: &Core,
    cursor: u64,
    glob: Option<&[u8]>,
    count: usize,
) -> Result<(u64, Vec<Vec<u8>>)> {
    if core.conn.is_cluster() {
        return Err(Error::new(
            ErrorKind::Config,
            "legacy-key scans (transition listings and clears, bulk migration) \
             are not supported on Redis Cluster yet: run them against each master, \
             or complete the migration and set the marker",
        ));
    }
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor);
    if let Some(g) = glob {
        cmd.arg("MATCH").arg(g);
    }
    cmd.arg("COUNT").arg(count);
    core.conn.query(&cmd).await
}
