//! tagcache's integration tests: one binary, each test against its own
//! private redis-server (see the `tagcache-testkit` crate).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod basics;
mod both;
mod cluster;
mod compute;
mod concurrency;
mod drain;
mod examples;
mod failsafe_views;
mod faults;
mod grace;
mod groups;
mod inflight;
mod input;
mod keyspaces;
mod l1;
mod l1_multiprocess;
mod l1_readers;
mod layout;
mod legacy;
mod metrics;
mod namespaces;
mod props;
mod raw;
mod readthrough;
mod recovery;
mod seams;
mod server;
mod sweep;
mod tags;
mod tls;
mod write_path;

use std::time::Duration;

use tagcache::{Cache, KeyPath};
use tagcache_testkit::RedisServer;

/// A cache on `server` with deterministic settings (no background sweep).
pub async fn cache(server: &RedisServer) -> Cache {
    builder(server).build().await.expect("build cache")
}

/// [`cache`] with `buckets` buckets.
pub async fn cache_with_buckets(server: &RedisServer, buckets: u16) -> Cache {
    builder(server)
        .buckets(buckets)
        .build()
        .await
        .expect("build cache")
}

/// [`cache`] writing through `path`.
pub async fn cache_on(server: &RedisServer, path: tagcache::WritePath) -> Cache {
    builder(server)
        .write_path(path)
        .build()
        .await
        .expect("build cache")
}

/// Runs `calls` to the end, unwrapping each result, with each one's write
/// queued in the order given: `join_all` polls the calls in order, and
/// `unconstrained` (no cooperative budget) lets each reach the write queue
/// on that first poll.
pub async fn queued_in_order<F, T, E>(calls: impl IntoIterator<Item = F>)
where
    F: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Debug,
{
    for result in tokio::task::unconstrained(futures_util::future::join_all(calls)).await {
        result.unwrap();
    }
}

/// One round of the write queue's order check: queues, at once, seven
/// writes of other keys, `r<round>` with `first`, then `r<round>` with
/// `second` (on one thread the queue sees all nine and cuts them 8 + 1, so
/// the two writes of the key go in different batches, both in flight);
/// says whether the second write is what the key holds.
pub async fn second_write_won(cache: &Cache, round: usize, first: &[u8], second: &[u8]) -> bool {
    let key = format!("r{round}");
    let mut writes: Vec<(String, &[u8])> = (0..7)
        .map(|j| (format!("other{round}.{j}"), b"o".as_slice()))
        .collect();
    writes.push((key.clone(), first));
    writes.push((key.clone(), second));
    let opts = tagcache::SetOptions::new().tag("t");
    queued_in_order(writes.iter().map(|(k, v)| cache.set_bytes(k, v, &opts))).await;
    cache.get_bytes(&key).await.unwrap().as_deref() == Some(second)
}

/// Keys in the server other than the fence zsets and announcement
/// counters of namespace `test` (fences outlive invalidations and deletes
/// by the fence window, counters live as long as the namespace, by
/// design).
pub fn keys_besides_fences(server: &RedisServer) -> u64 {
    let dbsize: u64 = server.cmd(&[b"DBSIZE"]);
    let fences: Vec<String> = (0..16)
        .flat_map(|b| [format!("{{test.{b}}}:fence"), format!("{{test.{b}}}:l1")])
        .collect();
    let mut args: Vec<&[u8]> = vec![b"EXISTS"];
    args.extend(fences.iter().map(|f| f.as_bytes()));
    dbsize - server.cmd::<u64>(&args)
}

/// The paths under `parts` (`Cache::paths_under`, collected).
pub async fn paths_under<const N: usize>(cache: &Cache, parts: [&str; N]) -> Vec<KeyPath> {
    cache
        .paths_under(&KeyPath::from(parts))
        .collect()
        .await
        .expect("paths_under")
}

/// `Cache::invalidate_prefix` of `parts`: the entries removed.
pub async fn invalidate_under<const N: usize>(cache: &Cache, parts: [&str; N]) -> u64 {
    cache
        .invalidate_prefix(&KeyPath::from(parts))
        .await
        .expect("invalidate_prefix")
}

/// The operation timeout of [`fail_safe_cache`].
pub const OP_TIMEOUT: Duration = Duration::from_millis(100);

/// A cache for the fail-safe tests: short timeouts, so that a dead or
/// frozen server is noticed fast.
pub async fn fail_safe_cache(server: &RedisServer) -> Cache {
    builder(server)
        .op_timeout(OP_TIMEOUT)
        .response_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .await
        .expect("build fail-safe cache")
}

/// The builder `cache` uses, for tests that change a setting.
pub fn builder(server: &RedisServer) -> tagcache::CacheBuilder {
    Cache::builder(server.url())
        .namespace("test")
        .auto_sweep(None)
        .default_ttl(Duration::from_secs(600))
        // Generous: CI machines are small and busy. Tests about timeouts
        // set their own.
        .response_timeout(Duration::from_secs(5))
        .op_timeout(Duration::from_secs(5))
}
