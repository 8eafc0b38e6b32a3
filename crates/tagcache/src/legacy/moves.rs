//! Moving legacy keys into entries, and deleting stale twins.
//!
//! The single-server move is one script per batch (`legacy_move.lua`):
//! read the legacy value, write the entry with its remaining TTL and index
//! edges, delete the legacy key, all atomically. On Redis Cluster the
//! legacy key's slot is not the entry's, so [`Core::legacy_moves`] goes in
//! two ordered steps there instead: (1) read the value, its `PTTL` and
//! whether the entry exists, (2) write the entry through the ordinary
//! write path (one slot), (3) run `legacy_del_if.lua` on the legacy key
//! with the value's SHA1. A crash between (2) and (3) leaves at worst a
//! twin, which reads and passes delete, never a lost value; a write of the
//! same part racing (1)-(2) can be overwritten by the legacy value (the
//! price of not being atomic across slots).

use std::time::Duration;

use redis::Value;

use super::rules::LegacyTarget;
use crate::engine::core::Core;
use crate::engine::write::WriteOp;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::codec::{self, Codec, Compression};
use crate::observe::metrics as names;
use crate::scripts::table::KeyTable;
use crate::scripts::{ScriptCall, SCRIPTS};

/// Most moves in one script call.
const MAX_MOVES: usize = 128;

/// One legacy key to move.
#[derive(Debug, Clone)]
pub(crate) struct Move {
    /// The legacy key's name.
    pub(crate) legacy: Vec<u8>,
    /// The new entry's key (owner path plus part, encoded).
    pub(crate) member: Vec<u8>,
    /// The entry's bucket (of its key, as for every entry).
    pub(crate) bucket: u16,
    /// The rule's tags, then the reserved tags the key implies.
    pub(crate) tags: Vec<Vec<u8>>,
    /// SHA1 (hex) of the value read, when the move must only happen if
    /// the legacy key still holds it.
    pub(crate) expected: Option<String>,
}

impl Move {
    /// The move of `legacy` to `target`.
    ///
    /// # Errors
    /// A target path deeper than [`crate::MAX_PATH_DEPTH`].
    pub(crate) fn new(core: &Core, legacy: Vec<u8>, target: &LegacyTarget) -> Result<Self> {
        let member = target.key().encode();
        let mut tags: Vec<Vec<u8>> = Vec::with_capacity(target.tags.len() + 3);
        for t in target
            .tags
            .iter()
            .cloned()
            .chain(crate::layout::path::implied_tags(&member)?)
        {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        crate::layout::path::ensure_an_edge(&mut tags);
        Ok(Self {
            legacy,
            bucket: core.space.bucket_of(&member),
            member,
            tags,
            expected: None,
        })
    }
}

/// What became of one move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moved {
    /// The entry was written and the legacy key deleted.
    Migrated,
    /// The entry existed already: the legacy key was a stale twin and was
    /// deleted.
    Twin,
    /// The legacy key no longer exists.
    Gone,
    /// The legacy key holds another value than the one read: left alone.
    Changed,
    /// The legacy key is not a string: left alone.
    NotString,
}

impl Core {
    /// Moves legacy keys, in batches of at most 128 per script call.
    pub(crate) async fn legacy_moves(
        &self,
        moves: &[Move],
        default_ttl: Duration,
    ) -> Result<Vec<Moved>> {
        let mut out = Vec::with_capacity(moves.len());
        if self.conn.is_cluster() {
            for mv in moves {
                out.push(self.legacy_move_two_steps(mv, default_ttl).await?);
            }
        } else {
            for batch in moves.chunks(MAX_MOVES) {
                out.extend(self.legacy_move_call(batch, default_ttl).await?);
            }
        }
        metrics::counter!(names::LEGACY_MIGRATED_TOTAL, "namespace" => self.space.namespace().to_owned())
            .increment(out.iter().filter(|m| **m == Moved::Migrated).count() as u64);
        Ok(out)
    }

    async fn legacy_move_call(&self, moves: &[Move], default_ttl: Duration) -> Result<Vec<Moved>> {
        let mut table = KeyTable::new(&self.space);
        let mut shapes = Vec::with_capacity(moves.len());
        for mv in moves {
            table.entry(mv.bucket, &mv.member);
            let reg = table.registry(mv.bucket);
            let nums: Vec<usize> = mv.tags.iter().map(|t| table.tag(mv.bucket, t)).collect();
            shapes.push((reg, nums));
        }
        let legacy_keys: Vec<Vec<u8>> = moves.iter().map(|m| m.legacy.clone()).collect();
        let trim = self.limits.trim_limit.to_string();
        let ttl = millis(default_ttl).to_string();
        let mut call = table.call(
            &SCRIPTS.legacy_move,
            [trim.as_bytes(), ttl.as_bytes()],
            &legacy_keys,
        );
        call.arg(millis(self.limits.max_ttl));
        for (mv, (reg, nums)) in moves.iter().zip(&shapes) {
            let header =
                codec::encode_entry(&mv.tags, b"", Codec::Raw, Compression::none(), false, None);
            call.arg(mv.member.as_slice())
                .arg(*reg)
                .arg(mv.expected.as_deref().unwrap_or(""))
                .arg(header)
                .arg(nums.len());
            for j in nums {
                call.arg(*j);
            }
        }
        let replies: Vec<Value> = self.conn.run(&call).await?;
        if replies.len() != moves.len() {
            return Err(Error::new(
                ErrorKind::Protocol,
                "legacy_move.lua answered the wrong count",
            ));
        }
        replies
            .into_iter()
            .map(|r| match r {
                Value::Int(1) => Ok(Moved::Migrated),
                Value::Int(2) => Ok(Moved::Twin),
                Value::Int(0) => Ok(Moved::Gone),
                Value::Int(3) => Ok(Moved::Changed),
                Value::Int(4) => Ok(Moved::NotString),
                other => Err(Error::new(
                    ErrorKind::Protocol,
                    format!("legacy_move.lua answered {other:?}"),
                )),
            })
            .collect()
    }

    /// The cluster move: read, write the entry, delete the legacy key if
    /// unchanged (see the module docs).
    async fn legacy_move_two_steps(&self, mv: &Move, default_ttl: Duration) -> Result<Moved> {
        let entry = self.space.entry(mv.bucket, &mv.member);
        let mut pipe = redis::pipe();
        pipe.get(mv.legacy.as_slice())
            .pttl(mv.legacy.as_slice())
            .ignore_errors();
        let replies: Vec<Value> = self.conn.pipe(&pipe).await?;
        let exists: bool = self.conn.query(redis::cmd("EXISTS").arg(&entry)).await?;
        let (value, pttl) = match replies.as_slice() {
            [Value::BulkString(v), Value::Int(t)] => (v.clone(), *t),
            [Value::Nil, ..] => return Ok(Moved::Gone),
            [Value::ServerError(_), ..] => return Ok(Moved::NotString),
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("legacy move read answered {other:?}"),
                ))
            }
        };
        let sha1 = super::sha1_hex(&value);
        if mv.expected.as_ref().is_some_and(|e| *e != sha1) {
            return Ok(Moved::Changed);
        }
        if !exists {
            let ttl = match u64::try_from(pttl) {
                Ok(ms) => ms.max(1),
                Err(_) => millis(default_ttl),
            };
            let mut stored =
                codec::encode_entry(&mv.tags, b"", Codec::Raw, Compression::none(), false, None);
            stored.extend_from_slice(&value);
            let op = WriteOp {
                key: mv.member.clone(),
                bucket: mv.bucket,
                value: stored,
                ttl_ms: ttl.min(millis(self.limits.max_ttl)),
                grace_ms: 0,
                tags: mv.tags.as_slice().into(),
                since: 0,
            };
            self.write(std::slice::from_ref(&op)).await?;
        }
        // Only after the entry is written: a crash leaves a twin, not a loss.
        self.legacy_delete_if(&mv.legacy, &sha1).await?;
        Ok(if exists { Moved::Twin } else { Moved::Migrated })
    }

    /// Deletes a legacy key if it still holds the value whose SHA1 is
    /// `sha1`; says whether it did.
    pub(crate) async fn legacy_delete_if(&self, legacy: &[u8], sha1: &str) -> Result<bool> {
        let mut call = ScriptCall::new(&SCRIPTS.legacy_del_if, &[legacy]);
        call.arg(sha1);
        Ok(self.conn.run::<u8>(&call).await? == 1)
    }

    /// Deletes legacy keys whatever they hold (one pipelined `DEL` per key;
    /// one call each on a cluster, where they live in different slots);
    /// returns how many existed.
    pub(crate) async fn legacy_delete(&self, keys: &[Vec<u8>]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        if self.conn.is_cluster() {
            let mut n = 0;
            for k in keys {
                n += self.conn.query::<u64>(redis::cmd("DEL").arg(k)).await?;
            }
            return Ok(n);
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.del(k.as_slice());
        }
        let deleted: Vec<u64> = self.conn.pipe(&pipe).await?;
        Ok(deleted.iter().sum())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
