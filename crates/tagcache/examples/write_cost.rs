//! Client CPU of one write: `N` writes of one mode, `IN_FLIGHT` at a time
//! on one thread, for counting instructions per write with callgrind
//! (deterministic on a noisy machine):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/examples/write_cost MODE N
//! ```
//!
//! Run each mode with two `N`s; the difference of the instruction counts
//! divided by the difference of the `N`s is the cost of one write (setup
//! and teardown cancel out). Every write is a new key with two tags and a
//! 256-byte value, as in `tagcache bench`. Modes: `raw` (one pipeline per
//! write: `SET PX` + a `ZADD` per tag + a registry `ZADD LT` per tag, on a
//! `MultiplexedConnection`, as the bench's baseline; with the key's prefix
//! index, which tagcache writes too), `set_bytes`
//! (concurrent `set_bytes`, which tagcache coalesces into batches),
//! `set_many` (`set_many_bytes` of 100 entries a call, two calls in
//! flight), `raw_many` (its raw equivalent: pipelines of 100 entries, the
//! registry `ZADD LT`s once per pipeline). Starts a private
//! redis-server unless `REDIS_URL` is set. BENCHMARKS.md ("Writes: client
//! CPU per call") has the figures.
//!
//! A third argument `WORKERS` above 1 runs a multi-thread runtime of that
//! many workers instead, and `raw` and `set_bytes` then write from
//! `IN_FLIGHT` tasks (each its share of the writes, one at a time), as an
//! application's request handlers would: for wall time against CPU time
//! (`/usr/bin/time`), not for callgrind.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tagcache::SetOptions;

// Shared with read_cost, which reads fields this example does not.
#[allow(dead_code)]
#[path = "common/mod.rs"]
mod common;
/// Writes in flight at once (the bench's default concurrency).
const IN_FLIGHT: usize = 64;
/// Entries per `set_many_bytes` call.
const BATCH: u64 = 100;
/// TTL of every entry.
const TTL: Duration = Duration::from_secs(600);

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "set_bytes".to_owned());
    let n: u64 = args.next().map_or(10_000, |s| s.parse().expect("N"));
    let workers: usize = args.next().map_or(1, |s| s.parse().expect("WORKERS"));
    let rt = if workers > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .unwrap();
    if workers > 1 {
        rt.block_on(run_tasks(&mode, n));
    } else {
        rt.block_on(run(&mode, n));
    }
}

/// `raw` or `set_bytes` from `IN_FLIGHT` tasks.
async fn run_tasks(mode: &str, n: u64) {
    let setup = common::setup("wcost").await;
    let value = std::sync::Arc::new(vec![7u8; 256]);
    let ns = std::sync::Arc::new(setup.ns.clone());
    let mut tasks = Vec::new();
    for t in 0..IN_FLIGHT as u64 {
        let (cache, mut raw) = (setup.cache.clone(), setup.raw.clone());
        let (value, ns, mode) = (value.clone(), ns.clone(), mode.to_owned());
        tasks.push(tokio::spawn(async move {
            for i in (t..n).step_by(IN_FLIGHT) {
                write_one(&mode, i, &cache, &mut raw, &ns, &value).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("{mode}: {n} writes from {IN_FLIGHT} tasks");
}

/// One write of mode `raw` (a pipeline) or `set_bytes`: entry `i`.
async fn write_one(
    mode: &str,
    i: u64,
    cache: &tagcache::Cache,
    raw: &mut redis::aio::MultiplexedConnection,
    ns: &str,
    value: &[u8],
) {
    match mode {
        "raw" => {
            let pipe = raw_pipeline(ns, value, i..i + 1);
            pipe.query_async::<()>(raw).await.unwrap();
        }
        "set_bytes" => {
            let opts = SetOptions::new().ttl(TTL).tags(tags_of(i));
            cache
                .set_bytes(format!("item:{i}"), value, &opts)
                .await
                .unwrap();
        }
        other => panic!("mode {other} is not one write at a time"),
    }
}

fn tags_of(i: u64) -> [String; 2] {
    [format!("owner:{}", i / 10), format!("t1:{}", i % 97)]
}

/// The indexes tagcache files entry `i` in: its tags and the prefix of
/// its key `item:<i>` (a 2-part path), which the raw modes write too.
fn edges_of(i: u64) -> [String; 3] {
    let [a, b] = tags_of(i);
    [a, b, "\0pitem".to_owned()]
}

async fn run(mode: &str, n: u64) {
    let setup = common::setup("wcost").await;
    let value = vec![7u8; 256];
    let (cache, raw, value, ns) = (&setup.cache, &setup.raw, &value, setup.ns.as_str());
    match mode {
        "raw" | "set_bytes" => {
            stream::iter(0..n)
                .for_each_concurrent(IN_FLIGHT, |i| async move {
                    write_one(mode, i, cache, &mut raw.clone(), ns, value).await;
                })
                .await;
        }
        "raw_many" => {
            let calls = n.div_ceil(BATCH);
            stream::iter(0..calls)
                .for_each_concurrent(2, |c| async move {
                    let pipe = raw_pipeline(ns, value, c * BATCH..((c + 1) * BATCH).min(n));
                    pipe.query_async::<()>(&mut raw.clone()).await.unwrap();
                })
                .await;
        }
        "set_many" => {
            let calls = n.div_ceil(BATCH);
            stream::iter(0..calls)
                .for_each_concurrent(2, |c| async move {
                    let items = (c * BATCH..((c + 1) * BATCH).min(n)).map(|i| {
                        let opts = SetOptions::new().ttl(TTL).tags(tags_of(i));
                        (format!("item:{i}"), value.as_slice(), opts)
                    });
                    cache.set_many_bytes(items).await.unwrap();
                })
                .await;
        }
        other => panic!("unknown mode {other}"),
    }
    println!("{mode}: {n} writes");
}

/// What tagcache's write of entries `range` does, as raw commands: per
/// entry `SET PX` and a `ZADD` per index, then one registry `ZADD LT` per
/// index written.
fn raw_pipeline(ns: &str, value: &[u8], range: std::ops::Range<u64>) -> redis::Pipeline {
    let ttl = TTL.as_millis() as u64;
    let expiry = now_ms() + ttl;
    let mut pipe = redis::pipe();
    let mut indexes = std::collections::BTreeSet::new();
    for i in range {
        let key = format!("item:{i}");
        pipe.cmd("SET")
            .arg(format!("{{{ns}.0}}:e:{key}"))
            .arg(value)
            .arg("PX")
            .arg(ttl)
            .ignore();
        for t in edges_of(i) {
            pipe.cmd("ZADD")
                .arg(format!("{{{ns}.0}}:t:{t}"))
                .arg(expiry)
                .arg(&key)
                .ignore();
            indexes.insert(t);
        }
    }
    for t in indexes {
        pipe.cmd("ZADD")
            .arg(format!("{{{ns}.0}}:reg"))
            .arg("LT")
            .arg(expiry)
            .arg(t)
            .ignore();
    }
    pipe
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
