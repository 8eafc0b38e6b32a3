//! The L1 tier (docs/l1.md): `get_bytes` (and `get_bytes_shared`, which
//! copies nothing) served from the L1 against `GET` with the same calls in
//! flight (throughput, and the L1 hit's p50/p99 latency), and the Redis
//! time the announcements add to single writes:
//! the `INCR` and `SPUBLISH` each write's transaction (or script) carries,
//! as a share of the writes' own time (`INFO commandstats` counts commands
//! run inside a transaction or a script under their own names, and the
//! `EXEC`'s or script's time includes theirs).
//!
//! Hits never leave the process, so one task on the command's
//! single-threaded runtime would cap them at one core: both sides of the
//! hit rows run on a multi-threaded runtime of their own, each with every
//! driver shape of [`Spread`], and each side keeps its fastest ([`Shape`]).
//! Keys are built before the timing, on both sides. A hit run makes
//! [`L1_CALLS`] calls (passes over all the entries — at most
//! [`L1_PASSES`] —, each task going on over every entry rather than its
//! own share again).

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tagcache::{Cache, L1Options, SetOptions};

use super::layout::item_key;
use super::report::{Comparison, Goal, Run};
use super::spread::{Call, Shape, Spread};
use super::writes::Kept;
use super::{drive, server, Bench};
use crate::error::{BenchError, Result};

/// L1 calls per measured run at least (passes over the entries): a pass
/// of 20 000 hits lasts a few milliseconds, too short a window to time on
/// a shared machine.
const L1_CALLS: u64 = 1_000_000;
/// Passes over the entries at most (small test runs stay short).
const L1_PASSES: u64 = 50;

/// Runs the L1 rows.
pub async fn run(b: &Bench<'_>, kept: &Kept) -> Result<Vec<Comparison>> {
    let n = b.plan.entries;
    let c = b.plan.concurrency;
    let spread = Spread::start()?;
    let workers = spread.workers();
    let url = b.target.url().to_owned();
    let namespace = kept.tagcache.space.name().to_owned();
    let cache = spread.run(l1_cache(url, namespace)).await?;
    let [(raw_get, raw_shown), (shared, shared_shown), (copied, copied_shown)] =
        hits_vs_get(b, kept, &spread, &cache).await?;
    let stats = cache.l1_stats().unwrap_or_default();
    b.progress.set("l1: hit latency");
    let keys: Arc<[String]> = (0..n).map(item_key).collect();
    let (p50, p99) = spread
        .run(latencies(cache.clone(), keys, c, workers))
        .await?;
    let baseline = format!("GET, {c} in flight ({raw_shown})");

    b.progress.set("l1: announcement share of a write");
    let before = server::sample(&b.raw).await?;
    let writes = b
        .measure(&["exec", "evalsha"], n, rewrite(b, &cache))
        .await?;
    let after = server::sample(&b.raw).await?;
    drop(cache);
    spread.stop();
    let usec = |name: &str| before.usec_until(&after, name) as f64;
    // A transaction's EXEC and a script's EVALSHA each include the time
    // of the commands they run.
    let share = (usec("incr") + usec("spublish")) / (usec("exec") + usec("evalsha")).max(1.0);
    Ok(vec![
        Comparison::new(
            "l1_get",
            format!(
                "get_bytes from the L1, {c} in flight ({copied_shown}; hit p50 {} µs, p99 {} µs; goal p99 < 5 µs; {} hits)",
                p50 as f64 / 1000.0,
                p99 as f64 / 1000.0,
                stats.hits
            ),
            copied,
            baseline.clone(),
            raw_get,
            Some(Goal::at_least("l1_get_ratio", 20.0, "")),
        ),
        Comparison::new(
            "l1_get_shared",
            format!("get_bytes_shared (no copy) from the L1, {c} in flight ({shared_shown})"),
            shared,
            baseline,
            raw_get,
            None,
        ),
        Comparison::new(
            "announce_share",
            format!("INCR + SPUBLISH inside {n} set_bytes, {c} in flight"),
            writes,
            "the writes' Redis time (EXEC + EVALSHA)".to_owned(),
            writes,
            None,
        )
        .with_ratio(
            share,
            "Redis time of INCR + SPUBLISH over EXEC's + EVALSHA's (INFO commandstats)"
                .to_owned(),
            Goal::at_most("announce_share", 0.10, ""),
        ),
    ])
}

/// The best run of each side — raw `GET`, `get_bytes_shared` and
/// `get_bytes` hits — over the rounds and the driver shapes, each with
/// what every shape gave.
async fn hits_vs_get(
    b: &Bench<'_>,
    kept: &Kept,
    spread: &Spread,
    cache: &Cache,
) -> Result<[(Run, String); 3]> {
    let (n, c, rounds) = (b.plan.entries, b.plan.concurrency, b.plan.rounds);
    let client = b.client.clone();
    let raw = spread
        .run(async move {
            let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
            Ok(client
                .get_multiplexed_async_connection_with_config(&config)
                .await?)
        })
        .await?;
    // Keys are built once, on both sides: the rows time the reads.
    let keys: Arc<[String]> = (0..n).map(item_key).collect();
    let names: Arc<[String]> = (0..n).map(|i| kept.raw.space.entry(&item_key(i))).collect();
    let gets = Arc::new(Gets { raw, names });
    let hits = |read| {
        Arc::new(Hits {
            cache: cache.clone(),
            keys: keys.clone(),
            read,
        })
    };
    let (shared, copied) = (hits(Read::Shared), hits(Read::Copy));
    b.progress.set("l1: filling");
    spread.drive(Shape::PerWorker, 0..n, 1, c, &copied).await?;
    let passes = L1_CALLS.div_ceil(n).clamp(1, L1_PASSES);
    // [side][shape]: the best run of each.
    let mut best = [[None; Shape::ALL.len()]; 3];
    for round in 1..=rounds {
        b.progress
            .set(format!("l1: hits vs GET (round {round}/{rounds})"));
        for (s, shape) in Shape::ALL.into_iter().enumerate() {
            let run = b
                .measure_timed(&["get"], n, spread.drive(shape, 0..n, 1, c, &gets))
                .await?;
            best[0][s] = Some(Run::faster(best[0][s], run));
            for (side, hits) in [(1, &shared), (2, &copied)] {
                let timed = spread.drive(shape, 0..n, passes, c, hits);
                let run = b.measure_timed(&["get"], n * passes, timed).await?;
                best[side][s] = Some(Run::faster(best[side][s], run));
            }
        }
    }
    let workers = spread.workers();
    Ok(best.map(|runs| {
        let runs = runs.map(Option::unwrap_or_default);
        let shown = Shape::ALL
            .iter()
            .zip(&runs)
            .map(|(shape, r)| format!("{}: {:.0}k/s", shape.name(workers), r.ops_per_sec / 1e3))
            .collect::<Vec<_>>()
            .join(", ");
        let fastest = runs
            .into_iter()
            .fold(None, |best, r| Some(Run::faster(best, r)))
            .unwrap_or_default();
        (fastest, shown)
    }))
}

async fn l1_cache(url: String, namespace: String) -> Result<Cache> {
    let cache = Cache::builder(url)
        .namespace(namespace)
        .auto_sweep(None)
        .eviction_check(tagcache::EvictionCheck::Warn)
        .response_timeout(Duration::from_secs(30))
        .op_timeout(Duration::from_secs(30))
        .l1(L1Options::new()
            .capacity_bytes(4 << 30)
            .ttl(Duration::from_secs(600)))
        .build()
        .await?;
    let start = Instant::now();
    while !cache.l1_stats().is_some_and(|s| s.synced) {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(BenchError::error("the L1 did not subscribe within 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(cache)
}

/// How a hit hands out the value.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// `get_bytes_shared`: the L1's bytes, shared.
    Shared,
    /// `get_bytes`: a copy.
    Copy,
}

/// Reads of entries through the L1.
struct Hits {
    cache: Cache,
    keys: Arc<[String]>,
    read: Read,
}

impl Call for Hits {
    async fn call(&self, i: u64) -> Result<()> {
        let key = &self.keys[usize::try_from(i).unwrap_or(usize::MAX)];
        let found = match self.read {
            Read::Shared => self.cache.get_bytes_shared(key).await?.is_some(),
            Read::Copy => self.cache.get_bytes(key).await?.is_some(),
        };
        found
            .then_some(())
            .ok_or_else(|| BenchError::error(format!("the L1 read found no value for {key}")))
    }
}

/// Raw `GET`s of entries.
struct Gets {
    raw: MultiplexedConnection,
    names: Arc<[String]>,
}

impl Call for Gets {
    async fn call(&self, i: u64) -> Result<()> {
        let name = &self.names[usize::try_from(i).unwrap_or(usize::MAX)];
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(name)
            .query_async(&mut self.raw.clone())
            .await?;
        value
            .map(|_| ())
            .ok_or_else(|| BenchError::error(format!("GET found no value for {name}")))
    }
}

/// Each hit's latency (`get_bytes`, ns) with `c` calls in flight
/// spread over `workers` tasks: the p50 and p99.
async fn latencies(
    cache: Cache,
    keys: Arc<[String]>,
    c: usize,
    workers: usize,
) -> Result<(u64, u64)> {
    let tasks = workers.min(c).max(1);
    let spawned: Vec<_> = (0..tasks)
        .map(|t| {
            let (cache, keys) = (cache.clone(), keys.clone());
            let calls = c / tasks + usize::from(t < c % tasks);
            tokio::spawn(async move {
                let mine: Vec<usize> = (t..keys.len()).step_by(tasks).collect();
                let lat = std::sync::Mutex::new(Vec::with_capacity(mine.len()));
                let lat_ref = &lat;
                let (cache, keys) = (&cache, &keys);
                drive(mine, calls, |i| async move {
                    let start = Instant::now();
                    let found = cache.get_bytes(&keys[i]).await?;
                    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    lat_ref.lock().unwrap_or_else(|p| p.into_inner()).push(ns);
                    found
                        .map(drop)
                        .ok_or_else(|| BenchError::error(format!("no value for {}", keys[i])))
                })
                .await?;
                Ok::<_, BenchError>(lat.into_inner().unwrap_or_else(|p| p.into_inner()))
            })
        })
        .collect();
    let mut lat = Vec::new();
    for task in spawned {
        lat.extend(
            task.await
                .map_err(|e| BenchError::error(format!("a latency task failed: {e}")))??,
        );
    }
    lat.sort_unstable();
    let pct = |p: usize| {
        lat.get(lat.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    Ok((pct(50), pct(99)))
}

/// Writes every entry again, one call each, with the tags it has (the
/// data set stays the same).
async fn rewrite(b: &Bench<'_>, cache: &Cache) -> Result<()> {
    let wl = &b.plan.workload;
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
        let opts = SetOptions::new().ttl(super::TTL).tags(wl.tags_of(i, None));
        Ok(cache.set_bytes(item_key(i), wl.value(), &opts).await?)
    })
    .await
}
