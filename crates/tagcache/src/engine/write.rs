//! Writing entries: batches of entries per server call (the queue that
//! coalesces concurrent single writes into such batches is
//! [`crate::engine::queue`]).
//!
//! Each batch goes as one `MULTI`/`EXEC` ([`crate::engine::transaction`]) or one
//! `set.lua` call, per [`crate::WritePath`] and per entry (trims and large
//! values need the script; a batch mixing both is sent as runs, in order).

use foldhash::{HashMap, HashMapExt};

use redis::Value;

use crate::engine::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::scripts::table::KeyTable;
use crate::scripts::SCRIPTS;

/// Most entries in one call (transaction or `set.lua`).
pub(crate) const MAX_BATCH_ENTRIES: usize = 128;
/// Most tag edges in one call (an entry with more tags goes alone).
const MAX_BATCH_TAGS: usize = 4096;
/// Most value bytes in one call (a larger value goes alone).
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Retries when an entry's old tags were not declared (its tags changed).
const MAX_ATTEMPTS: usize = 8;

/// One entry to write, validated and encoded.
#[derive(Debug)]
pub(crate) struct WriteOp {
    pub(crate) key: Vec<u8>,
    pub(crate) bucket: u16,
    pub(crate) value: Vec<u8>,
    pub(crate) ttl_ms: u64,
    /// How long the entry stays, stale, after its TTL (0: none).
    pub(crate) grace_ms: u64,
    /// Shared, not copied, with what [`crate::engine::recent`] remembers
    /// of the write.
    pub(crate) tags: crate::engine::recent::Tags,
    /// Server µs at which the caller's read began (guarded read-through
    /// writes); 0 for plain writes.
    pub(crate) since: u64,
}

impl Core {
    /// Writes entries in bounded batches, in order; says per entry whether
    /// it was stored (a guarded write can be refused by a fence). On a
    /// cluster each call carries one bucket (one hash slot); writes of one
    /// key keep their order because a key has one bucket.
    pub(crate) async fn write(&self, ops: &[WriteOp]) -> Result<Vec<bool>> {
        self.write_refs(&ops.iter().collect::<Vec<_>>()).await
    }

    /// As [`Core::write`], for entries held elsewhere.
    pub(crate) async fn write_refs(&self, ops: &[&WriteOp]) -> Result<Vec<bool>> {
        if !self.conn.is_cluster() || ops.iter().all(|o| o.bucket == ops[0].bucket) {
            return self.write_in_order(ops).await;
        }
        let mut by_bucket: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
        for (i, op) in ops.iter().enumerate() {
            by_bucket.entry(op.bucket).or_default().push(i);
        }
        let mut stored = vec![false; ops.len()];
        let mut group = Vec::new();
        for indices in by_bucket.values() {
            group.clear();
            group.extend(indices.iter().map(|&i| ops[i]));
            let done = self.write_in_order(&group).await?;
            for (&i, s) in indices.iter().zip(done) {
                stored[i] = s;
            }
        }
        Ok(stored)
    }

    async fn write_in_order(&self, ops: &[&WriteOp]) -> Result<Vec<bool>> {
        let mut stored = Vec::with_capacity(ops.len());
        let mut start = 0;
        while start < ops.len() {
            let mut end = start;
            let (mut tags, mut bytes) = (0, 0);
            while end < ops.len() {
                let op = &ops[end];
                let fits = end - start < MAX_BATCH_ENTRIES
                    && tags + op.tags.len() <= MAX_BATCH_TAGS
                    && bytes + op.value.len() <= MAX_BATCH_BYTES;
                if !fits && end > start {
                    break;
                }
                tags += op.tags.len();
                bytes += op.value.len();
                end += 1;
            }
            stored.extend(self.write_batch(&ops[start..end]).await?);
            start = end;
        }
        Ok(stored)
    }

    /// One batch, in order: runs of entries that fit the transaction path
    /// go as one transaction each, the others as one script call each.
    async fn write_batch(&self, ops: &[&WriteOp]) -> Result<Vec<bool>> {
        let mut stored = Vec::with_capacity(ops.len());
        let mut start = 0;
        while start < ops.len() {
            let tx = self.fits_transaction(ops[start]);
            let end = ops[start..]
                .iter()
                .position(|o| self.fits_transaction(o) != tx)
                .map_or(ops.len(), |p| start + p);
            let run = &ops[start..end];
            stored.extend(if tx {
                self.write_transaction(run).await?
            } else {
                self.write_scripted(run).await?
            });
            start = end;
        }
        Ok(stored)
    }

    /// One batch through `set.lua`: usually one script call; entries whose
    /// old tags were not declared are sent again with those tags' index
    /// keys.
    pub(crate) async fn write_scripted(&self, ops: &[&WriteOp]) -> Result<Vec<bool>> {
        let mut stored = vec![true; ops.len()];
        let mut pending: Vec<(usize, Vec<Vec<u8>>)> = (0..ops.len()).map(|i| (i, vec![])).collect();
        let trim = self.limits.trim_limit.to_string();
        let window = self.limits.fence_window_us();
        for _ in 0..MAX_ATTEMPTS {
            let mut table = KeyTable::new(&self.space);
            let mut shapes = Vec::with_capacity(pending.len());
            for (i, old) in &pending {
                let op = &ops[*i];
                table.entry(op.bucket, &op.key);
                let reg = table.registry(op.bucket);
                let nums: Vec<usize> = op.tags.iter().map(|t| table.tag(op.bucket, t)).collect();
                for t in old {
                    table.tag(op.bucket, t);
                }
                shapes.push((reg, nums));
            }
            let mut call = table.call(&SCRIPTS.set, [trim.as_bytes(), window.as_bytes()], &[]);
            for ((i, _), (reg, nums)) in pending.iter().zip(&shapes) {
                let op = &ops[*i];
                call.arg(op.key.as_slice())
                    .arg(*reg)
                    .arg(op.value.as_slice())
                    .arg(op.ttl_ms)
                    .arg(op.grace_ms)
                    .arg(op.since)
                    .arg(nums.len());
                for j in nums {
                    call.arg(*j);
                }
            }
            let replies: Vec<Value> = self.conn.run(&call).await?;
            if replies.len() != pending.len() {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    "set.lua answered the wrong count",
                ));
            }
            let mut again = Vec::new();
            for ((i, mut old), reply) in pending.into_iter().zip(replies) {
                match reply {
                    Value::Int(1) => {}
                    Value::Int(2) => stored[i] = false,
                    Value::Int(0) => again.push((i, old)),
                    Value::Array(missing) => {
                        for m in missing {
                            if let Value::BulkString(t) = m {
                                old.push(t);
                            }
                        }
                        again.push((i, old));
                    }
                    other => {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            format!("set.lua answered {other:?}"),
                        ))
                    }
                }
            }
            if again.is_empty() {
                return Ok(stored);
            }
            pending = again;
        }
        Err(Error::new(
            ErrorKind::Contended,
            "the tags of an entry kept changing during the write",
        ))
    }
}

/// Keeps the last write of each key, in the order of those last writes.
pub(crate) fn last_write_wins(ops: Vec<WriteOp>) -> Vec<WriteOp> {
    let mut last: HashMap<Vec<u8>, usize> = HashMap::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        last.insert(op.key.clone(), i);
    }
    if last.len() == ops.len() {
        return ops;
    }
    ops.into_iter()
        .enumerate()
        .filter(|(i, op)| last.get(&op.key) == Some(i))
        .map(|(_, op)| op)
        .collect()
}
