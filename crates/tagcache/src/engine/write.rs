//! Writing entries: batches of entries per server call, and a queue that
//! coalesces concurrent single writes into such batches.
//!
//! Each batch goes as one `MULTI`/`EXEC` ([`crate::engine::transaction`]) or one
//! `set.lua` call, per [`crate::WritePath`] and per entry (trims and large
//! values need the script; a batch mixing both is sent as runs, in order). A server call costs Redis more than the commands in it,
//! so single `set`s waiting at the same time share a call. The queue keeps
//! one call in flight and gathers the next batch while it runs: a lone
//! write goes out at once, a burst goes out together.

use std::collections::HashMap;
use std::sync::Arc;

use redis::Value;
use tokio::sync::{mpsc, oneshot};

use crate::engine::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::scripts::table::KeyTable;
use crate::scripts::SCRIPTS;

/// Most entries in one call (transaction or `set.lua`).
const MAX_BATCH_ENTRIES: usize = 128;
/// Most tag edges in one call (an entry with more tags goes alone).
const MAX_BATCH_TAGS: usize = 4096;
/// Most value bytes in one call (a larger value goes alone).
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Retries when an entry's old tags were not declared (its tags changed).
const MAX_ATTEMPTS: usize = 8;
/// Writes waiting for the queue before callers wait for room.
const QUEUE_DEPTH: usize = 8192;

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
        if !self.conn.is_cluster() || ops.iter().all(|o| o.bucket == ops[0].bucket) {
            return self.write_in_order(&ops.iter().collect::<Vec<_>>()).await;
        }
        let mut by_bucket: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
        for (i, op) in ops.iter().enumerate() {
            by_bucket.entry(op.bucket).or_default().push(i);
        }
        let mut stored = vec![false; ops.len()];
        let mut group = Vec::new();
        for indices in by_bucket.values() {
            group.clear();
            group.extend(indices.iter().map(|&i| &ops[i]));
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

struct Job {
    ops: Vec<WriteOp>,
    done: oneshot::Sender<Result<Vec<bool>>>,
}

/// The coalescing queue in front of [`Core::write`].
#[derive(Debug)]
pub(crate) struct WriteQueue {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} ops)", self.ops.len())
    }
}

impl WriteQueue {
    /// Starts the queue's task; it ends when the queue is dropped.
    pub(crate) fn start(core: Arc<Core>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE_DEPTH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut count = first.ops.len();
                let mut jobs = vec![first];
                while count < MAX_BATCH_ENTRIES {
                    match rx.try_recv() {
                        Ok(job) => {
                            count += job.ops.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let sizes: Vec<usize> = jobs.iter().map(|j| j.ops.len()).collect();
                let ops: Vec<WriteOp> = jobs
                    .iter_mut()
                    .flat_map(|j| std::mem::take(&mut j.ops))
                    .collect();
                let result = core.write(&ops).await;
                let mut offset = 0;
                for (job, size) in jobs.into_iter().zip(sizes) {
                    // A caller that gave up (dropped its future) ignores it.
                    let _ = job.done.send(match &result {
                        Ok(stored) => Ok(stored[offset..offset + size].to_vec()),
                        Err(e) => Err(e.duplicate()),
                    });
                    offset += size;
                }
            }
        });
        Self { tx }
    }

    /// Queues writes and waits until Redis acknowledged them; says per
    /// entry whether it was stored.
    pub(crate) async fn submit(&self, ops: Vec<WriteOp>) -> Result<Vec<bool>> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { ops, done })
            .await
            .map_err(|_| Error::new(ErrorKind::Connection, "the write queue has stopped"))?;
        wait.await
            .map_err(|_| Error::new(ErrorKind::Connection, "the write queue has stopped"))?
    }
}
