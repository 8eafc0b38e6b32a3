//! Client CPU of one read: `N` sequential reads of one mode, for counting
//! instructions per call with callgrind (deterministic on a noisy machine):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/examples/read_cost MODE N [IN_FLIGHT]
//! ```
//!
//! (the count is the `summary:` line of `cg.out`).
//!
//! `IN_FLIGHT` (default 1) reads at a time, on one thread. Run each mode
//! with two `N`s; the difference of the instruction counts divided by the
//! difference of the `N`s is the cost of one read (setup,
//! prefill and teardown cancel out). Modes: `raw` (`GET` on a
//! `MultiplexedConnection`, as the bench's baseline), `manager` (`GET`
//! through a `ConnectionManager` configured like tagcache's), `get_bytes`,
//! `fail_safe` (`fail_safe().get_bytes`); `sizes` prints the size of each
//! call's future instead. Starts a private redis-server unless `REDIS_URL`
//! is set. BENCHMARKS.md ("Reads: client CPU per call") has the figures.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tagcache::{Lookup, SetOptions};

#[path = "common/mod.rs"]
mod common;
use common::TIMEOUT;
/// Distinct keys read round-robin.
const KEYS: u64 = 1_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "get_bytes".to_owned());
    let n: u64 = args.next().map_or(10_000, |s| s.parse().expect("N"));
    let in_flight: usize = args.next().map_or(1, |s| s.parse().expect("IN_FLIGHT"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&mode, n, in_flight));
}

async fn run(mode: &str, n: u64, in_flight: usize) {
    let setup = common::setup("cost").await;
    let (cache, url, ns) = (&setup.cache, setup.url.as_str(), setup.ns.as_str());
    let value = vec![7u8; 256];
    let opts = SetOptions::new()
        .ttl(Duration::from_secs(600))
        .tag("a")
        .tag("b");
    let items: Vec<(String, &[u8], SetOptions)> = (0..KEYS)
        .map(|i| (format!("item:{i}"), value.as_slice(), opts.clone()))
        .collect();
    cache.set_many_bytes(items).await.unwrap();
    let client = redis::Client::open(url).unwrap();
    let raw = &setup.raw;
    let manager = redis::aio::ConnectionManager::new_with_config(
        client.clone(),
        redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1),
    )
    .await
    .unwrap();
    let fs = cache.fail_safe();
    if mode == "sizes" {
        // Bytes of each call's future (what a task or a combinator moves).
        let mut cmd = redis::cmd("GET");
        cmd.arg("k");
        let mut conn = raw.clone();
        let raw_get = cmd.query_async::<Option<Vec<u8>>>(&mut conn);
        println!("raw GET future: {} B", std::mem::size_of_val(&raw_get));
        println!(
            "get_bytes future: {} B",
            std::mem::size_of_val(&cache.get_bytes("k"))
        );
        println!(
            "fail_safe().get_bytes future: {} B",
            std::mem::size_of_val(&fs.get_bytes("k"))
        );
        return;
    }
    let (manager, fs) = (&manager, &fs);
    let read = |i: u64| async move {
        let key = format!("item:{}", i % KEYS);
        match mode {
            "raw" | "manager" => {
                let name = format!("{{{ns}.0}}:e:{key}");
                let mut cmd = redis::cmd("GET");
                cmd.arg(name);
                let v: Option<Vec<u8>> = if mode == "raw" {
                    cmd.query_async(&mut raw.clone()).await.unwrap()
                } else {
                    cmd.query_async(&mut manager.clone()).await.unwrap()
                };
                v.is_some()
            }
            "get_bytes" => cache.get_bytes(key).await.unwrap().is_some(),
            "fail_safe" => matches!(fs.get_bytes(key).await.unwrap(), Lookup::Hit(_)),
            other => panic!("unknown mode {other}"),
        }
    };
    let hits = std::cell::Cell::new(0u64);
    if in_flight <= 1 {
        for i in 0..n {
            let hit = read(i).await;
            hits.set(hits.get() + u64::from(hit));
        }
    } else {
        let hits = &hits;
        stream::iter(0..n)
            .for_each_concurrent(in_flight, |i| async move {
                let hit = read(i).await;
                hits.set(hits.get() + u64::from(hit));
            })
            .await;
    }
    let hits = hits.get();
    assert_eq!(hits, n, "every read hits");
    let names: Vec<String> = (0..KEYS).map(|i| format!("item:{i}")).collect();
    cache.delete_many(names).await.unwrap();
    println!("{mode}: {n} reads");
}
