//! The write queue: concurrent single writes (`set`, `set_bytes`, the
//! read-through stores, scope and path writes) share server calls.
//!
//! A caller queues its prepared writes and waits for Redis' answer. The
//! queue's task takes what is waiting and sends it as one batch
//! ([`Core::write`]), keeping up to [`BATCHES_IN_FLIGHT`] batches in flight
//! at once: while Redis runs one batch, this process answers the callers
//! of another and prepares the next, so the client's work and Redis' work
//! overlap instead of taking turns. A lone write goes out at once; a burst
//! is shared out over the free slots, at least [`MIN_SHARE`] entries a
//! batch (a server call costs Redis more than the commands in it), at most
//! [`MAX_BATCH_ENTRIES`].
//!
//! Order: writes of one key apply in the order they were queued. A job
//! that writes a key some batch in flight also writes waits, and so does
//! every job queued after it, until that batch is answered; within one
//! batch [`Core::write`] keeps the queue's order.
//!
//! Each batch runs as a task of its own, so on a multi-thread runtime the
//! client's work of several batches (building the transaction, reading
//! the replies) runs on several workers; the queue's task only cuts
//! batches and tracks their keys.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use foldhash::HashMap;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::engine::core::Core;
use crate::engine::write::{WriteOp, MAX_BATCH_ENTRIES};
use crate::error::{Error, ErrorKind, Result};

/// Batches in flight at once.
pub(crate) const BATCHES_IN_FLIGHT: usize = 4;
/// Fewest entries a batch takes when more are waiting (a burst is not cut
/// finer than this to fill every slot).
pub(crate) const MIN_SHARE: usize = 8;
/// Jobs waiting for the queue's task before callers wait for room.
const QUEUE_DEPTH: usize = 8192;

struct Job {
    ops: Vec<WriteOp>,
    done: oneshot::Sender<Result<Vec<bool>>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} ops)", self.ops.len())
    }
}

/// The coalescing queue in front of [`Core::write`].
#[derive(Debug)]
pub(crate) struct WriteQueue {
    tx: mpsc::Sender<Job>,
}

impl WriteQueue {
    /// Starts the queue's task; it ends when the queue is dropped and the
    /// writes queued before are answered.
    pub(crate) fn start(core: Arc<Core>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE_DEPTH);
        tokio::spawn(Dispatcher::new(core).run(rx));
        Self { tx }
    }

    /// Queues writes and waits until Redis acknowledged them; says per
    /// entry whether it was stored.
    pub(crate) async fn submit(&self, ops: Vec<WriteOp>) -> Result<Vec<bool>> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { ops, done })
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::new(ErrorKind::Connection, "the write queue has stopped")
}

/// A batch sent: its jobs, and the hashes of the keys it holds.
struct Sent {
    jobs: Vec<Job>,
    keys: Vec<u64>,
}

/// The queue's task: the jobs it holds and the batches in flight.
struct Dispatcher {
    core: Arc<Core>,
    waiting: Waiting,
}

/// Jobs taken off the channel, and the keys of the batches in flight.
#[derive(Default)]
struct Waiting {
    /// Each job with the hashes of its keys (taken once, when queued).
    jobs: VecDeque<(Job, Vec<u64>)>,
    /// Entries in `jobs`.
    ops: usize,
    /// Key hash -> batches in flight that write it. A collision only makes
    /// a job wait for an unrelated batch.
    busy: HashMap<u64, u32>,
    hasher: RandomState,
}

impl Dispatcher {
    fn new(core: Arc<Core>) -> Self {
        Self {
            core,
            waiting: Waiting::default(),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut in_flight = FuturesUnordered::new();
        let mut open = true;
        loop {
            while self.waiting.jobs.len() < QUEUE_DEPTH {
                match rx.try_recv() {
                    Ok(job) => self.waiting.push(job),
                    Err(_) => break,
                }
            }
            while in_flight.len() < BATCHES_IN_FLIGHT {
                let Some(Sent { jobs, keys }) =
                    self.waiting.take(BATCHES_IN_FLIGHT - in_flight.len())
                else {
                    break;
                };
                // Each batch is a task of its own: on a multi-thread
                // runtime batches are built and answered on every worker.
                // Its callers are answered from the task; its keys stay
                // here and are freed once the task ended, however it
                // ended (a panic drops its jobs: their callers get an
                // error, and later writes of those keys still go).
                let core = self.core.clone();
                let batch = tokio::spawn(async move {
                    let ops: Vec<&WriteOp> = jobs.iter().flat_map(|j| &j.ops).collect();
                    let result = core.write_refs(&ops).await;
                    answer(jobs, result);
                });
                in_flight.push(async move {
                    // Err: the task panicked or the runtime is shutting
                    // down; either way it is over.
                    let _ = batch.await;
                    keys
                });
            }
            tokio::select! {
                Some(keys) = in_flight.next(), if !in_flight.is_empty() => {
                    self.waiting.release(&keys);
                }
                job = rx.recv(), if open && self.waiting.jobs.len() < QUEUE_DEPTH => match job {
                    Some(job) => self.waiting.push(job),
                    None => open = false,
                },
                // Nothing in flight and the channel closed: `take` sent
                // every waiting job above, as no key is busy.
                else => break,
            }
        }
    }
}

impl Waiting {
    fn push(&mut self, job: Job) {
        self.ops += job.ops.len();
        let hashes = job
            .ops
            .iter()
            .map(|op| self.hasher.hash_one(&op.key))
            .collect();
        self.jobs.push_back((job, hashes));
    }

    /// The next batch for one of `free` slots: the waiting jobs from the
    /// front, up to an even share of what waits, stopping at a job whose
    /// key a batch in flight writes. `None` when nothing can go.
    fn take(&mut self, free: usize) -> Option<Sent> {
        let share = self
            .ops
            .div_ceil(free.max(1))
            .clamp(MIN_SHARE, MAX_BATCH_ENTRIES);
        let (mut jobs, mut keys, mut count) = (Vec::new(), Vec::new(), 0);
        while let Some((job, hashes)) = self.jobs.front() {
            if count > 0 && count + job.ops.len() > share {
                break;
            }
            if hashes.iter().any(|h| self.busy.contains_key(h)) {
                break;
            }
            let Some((job, hashes)) = self.jobs.pop_front() else {
                break;
            };
            count += job.ops.len();
            keys.extend(hashes);
            jobs.push(job);
        }
        if jobs.is_empty() {
            return None;
        }
        self.ops -= count;
        for &h in &keys {
            *self.busy.entry(h).or_insert(0) += 1;
        }
        Some(Sent { jobs, keys })
    }

    /// Frees the keys of an answered batch.
    fn release(&mut self, keys: &[u64]) {
        for h in keys {
            if let Some(n) = self.busy.get_mut(h) {
                *n -= 1;
                if *n == 0 {
                    self.busy.remove(h);
                }
            }
        }
    }
}

/// Hands each caller its part of a batch's answer.
fn answer(jobs: Vec<Job>, result: Result<Vec<bool>>) {
    let total: usize = jobs.iter().map(|j| j.ops.len()).sum();
    let result = result.and_then(|stored| match stored.len() == total {
        true => Ok(stored),
        false => Err(Error::new(
            ErrorKind::Protocol,
            "a batch was answered for the wrong number of entries",
        )),
    });
    let mut offset = 0;
    for job in jobs {
        let size = job.ops.len();
        // A caller that gave up (dropped its future) ignores it.
        let _ = job.done.send(match &result {
            Ok(stored) => Ok(stored[offset..offset + size].to_vec()),
            Err(e) => Err(e.duplicate()),
        });
        offset += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(keys: &[&str]) -> Job {
        let ops = keys
            .iter()
            .map(|k| WriteOp {
                key: k.as_bytes().to_vec(),
                bucket: 0,
                value: Vec::new(),
                ttl_ms: 1000,
                grace_ms: 0,
                tags: Vec::new().into(),
                since: 0,
            })
            .collect();
        Job {
            ops,
            done: oneshot::channel().0,
        }
    }

    fn waiting(jobs: impl IntoIterator<Item = Job>) -> Waiting {
        let mut w = Waiting::default();
        for j in jobs {
            w.push(j);
        }
        w
    }

    fn keys_of(sent: &Sent) -> Vec<String> {
        let ops = sent.jobs.iter().flat_map(|j| &j.ops);
        ops.map(|o| String::from_utf8_lossy(&o.key).into_owned())
            .collect()
    }

    #[test]
    fn a_lone_write_goes_alone_and_a_burst_is_shared_over_the_free_slots() {
        let mut w = waiting([job(&["a"])]);
        assert_eq!(keys_of(&w.take(4).unwrap()), ["a"]);
        assert!(w.take(3).is_none());
        let names: Vec<String> = (0..64).map(|i| format!("k{i}")).collect();
        let mut w = waiting(names.iter().map(|k| job(&[k.as_str()])));
        let sizes: Vec<usize> = (0..4)
            .map(|used| w.take(4 - used).map_or(0, |s| s.jobs.len()))
            .collect();
        assert_eq!(sizes, [16, 16, 16, 16]);
        assert_eq!(w.ops, 0);
    }

    #[test]
    fn a_small_burst_is_not_cut_below_the_minimum_share() {
        let names: Vec<String> = (0..MIN_SHARE + 2).map(|i| format!("k{i}")).collect();
        let mut w = waiting(names.iter().map(|k| job(&[k.as_str()])));
        assert_eq!(w.take(4).unwrap().jobs.len(), MIN_SHARE);
        assert_eq!(w.take(3).unwrap().jobs.len(), 2);
    }

    #[test]
    fn a_job_whose_key_is_in_flight_waits_and_so_does_every_job_after_it() {
        let mut w = waiting([job(&["a"])]);
        let first = w.take(4).unwrap();
        w.push(job(&["b"]));
        w.push(job(&["x", "a"]));
        w.push(job(&["c"]));
        let second = w.take(3).unwrap();
        assert_eq!(keys_of(&second), ["b"], "stops at the job writing a again");
        assert!(w.take(2).is_none());
        w.release(&first.keys);
        assert_eq!(keys_of(&w.take(2).unwrap()), ["x", "a", "c"]);
        w.release(&second.keys);
        assert!(w.busy.contains_key(&w.hasher.hash_one(b"a".as_slice())));
    }

    #[test]
    fn writes_of_one_key_waiting_together_share_one_batch_in_order() {
        let mut w = waiting([job(&["a"]), job(&["a"]), job(&["b"])]);
        assert_eq!(keys_of(&w.take(1).unwrap()), ["a", "a", "b"]);
    }
}
