//! Calls driven from every core: a multi-threaded runtime of its own, and
//! a driver that splits the calls in flight over tasks on its workers.
//!
//! The rest of the bench drives its calls from one task on the command's
//! single-threaded runtime ([`super::drive`]): right when a round trip is
//! what is measured (the client's loop is never the bottleneck), wrong for
//! calls that never leave the process — an L1 hit would be capped by one
//! core while the second stays idle. Rows driven from here compare both
//! sides with both shapes ([`Shape`]) on the same runtime, and keep each
//! side's faster one.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

use super::drive;
use crate::error::{BenchError, Result};

/// How the calls in flight are spread over tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One task keeps every call in flight (`buffer_unordered`): one core
    /// at a time drives them, and a multiplexed connection sends all the
    /// calls ready in one poll as one write.
    OneTask,
    /// One task per worker, each over its own share of the items with its
    /// share of the calls in flight: every core drives calls.
    PerWorker,
    /// One task per call in flight, each making its calls one after the
    /// other (no combinator between the task and the call).
    PerCall,
}

impl Shape {
    /// Both shapes, in the order measured.
    pub const ALL: [Shape; 3] = [Shape::OneTask, Shape::PerWorker, Shape::PerCall];

    /// How the report names it.
    pub fn name(self, workers: usize) -> String {
        match self {
            Self::OneTask => "1 task".to_owned(),
            Self::PerWorker => format!("{workers} tasks"),
            Self::PerCall => "a task per call".to_owned(),
        }
    }
}

/// A call made once per item; its futures borrow it, so a call costs no
/// clone of what it reads (a shared reference count written from every
/// core would be a cost of its own).
pub trait Call: Send + Sync + 'static {
    /// The call for item `i`.
    fn call(&self, i: u64) -> impl Future<Output = Result<()>> + Send + '_;
}

/// A multi-threaded runtime with one worker per core.
pub struct Spread {
    runtime: Option<Runtime>,
    workers: usize,
}

impl Spread {
    /// Starts the runtime.
    ///
    /// # Errors
    /// The runtime cannot start.
    pub fn start() -> Result<Self> {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("bench-spread")
            .enable_all()
            .build()
            .map_err(|e| {
                BenchError::error(format!("cannot start a multi-threaded runtime: {e}"))
            })?;
        Ok(Self {
            runtime: Some(runtime),
            workers,
        })
    }

    /// Its worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    fn handle(&self) -> Result<&Handle> {
        self.runtime
            .as_ref()
            .map(Runtime::handle)
            .ok_or_else(|| BenchError::error("the spread runtime is stopped"))
    }

    /// Runs `work` on the runtime (what it builds — connections, caches —
    /// then has its background tasks there) and waits for it from the
    /// caller's runtime.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.handle()?
            .spawn(work)
            .await
            .map_err(|e| BenchError::error(format!("a spread task failed: {e}")))?
    }

    /// Makes `call` for every `i` of `items` `passes` times over (each task
    /// starting at its own share of them), with
    /// `in_flight` calls in flight shaped as `shape` says; returns the
    /// wall time from the first call to the last answer.
    pub async fn drive<C: Call>(
        &self,
        shape: Shape,
        items: Range<u64>,
        passes: u64,
        in_flight: usize,
        call: &Arc<C>,
    ) -> Result<Duration> {
        let tasks = match shape {
            Shape::OneTask => 1,
            Shape::PerWorker => self.workers.min(in_flight).max(1),
            Shape::PerCall => in_flight.max(1),
        };
        let handle = self.handle()?.clone();
        let call = call.clone();
        let all = (items.end - items.start).max(1);
        self.run(async move {
            let start = std::time::Instant::now();
            let spawned: Vec<_> = (0..tasks)
                .map(|t| {
                    let call = call.clone();
                    let share = share(&items, tasks, t);
                    let calls = in_flight / tasks + usize::from(t < in_flight % tasks);
                    handle.spawn(async move {
                        // Past the first pass, each task goes on over all
                        // the items (not its share again): a share small
                        // enough to stay in a core's cache would flatter
                        // calls that read memory.
                        let each = (0..passes * (share.end - share.start))
                            .map(|k| items.start + (share.start - items.start + k) % all);
                        if calls > 1 {
                            return drive(each, calls, |i| call.call(i)).await;
                        }
                        for i in each {
                            call.call(i).await?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for task in spawned {
                task.await
                    .map_err(|e| BenchError::error(format!("a spread task failed: {e}")))??;
            }
            Ok(start.elapsed())
        })
        .await
    }

    /// Stops the runtime without waiting for its tasks (a cache's
    /// background tasks end with it).
    pub fn stop(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Spread {
    fn drop(&mut self) {
        // (Dropping a runtime inside another one's task would panic.)
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Task `t`'s contiguous share of `items` split `tasks` ways.
fn share(items: &Range<u64>, tasks: usize, t: usize) -> Range<u64> {
    let len = items.end.saturating_sub(items.start);
    let (tasks, t) = (tasks as u64, t as u64);
    let at = |k: u64| items.start + len * k / tasks;
    at(t)..at(t + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_items_once() {
        let parts: Vec<Range<u64>> = (0..3).map(|t| share(&(10..20), 3, t)).collect();
        assert_eq!(parts, vec![10..13, 13..16, 16..20]);
        assert_eq!(share(&(0..1), 2, 0), 0..0);
        assert_eq!(share(&(0..1), 2, 1), 0..1);
    }
}
