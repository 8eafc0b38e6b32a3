//! The L1 tier (docs/l1.md): `get_bytes` served from the L1 against `GET`
//! with the same calls in flight (throughput, and the L1 hit's p50/p99
//! latency), and the Redis time the announcements add to single writes:
//! the `INCR` and `SPUBLISH` each write's transaction (or script) carries,
//! as a share of the writes' own time (`INFO commandstats` counts commands
//! run inside a transaction or a script under their own names, and the
//! `EXEC`'s or script's time includes theirs).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tagcache::{Cache, L1Options, SetOptions};

use super::layout::item_key;
use super::report::{Comparison, Goal, Run};
use super::writes::Kept;
use super::{drive, server, Bench};
use crate::error::{BenchError, Result};

/// Runs the L1 rows.
pub async fn run(b: &Bench<'_>, kept: &Kept) -> Result<Vec<Comparison>> {
    let cache = l1_cache(b, kept.tagcache.space.name()).await?;
    let n = b.plan.entries;
    let c = b.plan.concurrency;
    let rounds = b.plan.rounds;
    b.progress.set("l1: filling");
    gets(b, &cache, None).await?;
    let (mut hits, mut raw_get) = (None, None);
    for round in 1..=rounds {
        b.progress
            .set(format!("l1: hits vs GET (round {round}/{rounds})"));
        raw_get = Some(Run::faster(
            raw_get,
            b.measure(&["get"], n, raw_gets(b, kept)).await?,
        ));
        hits = Some(Run::faster(
            hits,
            b.measure(&["get"], n, gets(b, &cache, None)).await?,
        ));
    }
    b.progress.set("l1: hit latency");
    let latencies = Mutex::new(Vec::with_capacity(usize::try_from(n).unwrap_or(0)));
    gets(b, &cache, Some(&latencies)).await?;
    let mut lat = latencies.into_inner().unwrap_or_else(|p| p.into_inner());
    lat.sort_unstable();
    let pct = |p: usize| {
        lat.get(lat.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    let (p50, p99) = (pct(50), pct(99));
    let stats = cache.l1_stats().unwrap_or_default();

    b.progress.set("l1: announcement share of a write");
    let before = server::sample(&b.raw).await?;
    let writes = b
        .measure(&["exec", "evalsha"], n, rewrite(b, &cache))
        .await?;
    let after = server::sample(&b.raw).await?;
    let usec = |name: &str| before.usec_until(&after, name) as f64;
    // A transaction's EXEC and a script's EVALSHA each include the time
    // of the commands they run.
    let share = (usec("incr") + usec("spublish")) / (usec("exec") + usec("evalsha")).max(1.0);
    Ok(vec![
        Comparison::new(
            "l1_get",
            format!(
                "get_bytes from the L1, {c} in flight (hit p50 {} µs, p99 {} µs; goal p99 < 5 µs; {} hits)",
                p50 as f64 / 1000.0,
                p99 as f64 / 1000.0,
                stats.hits
            ),
            hits.unwrap_or_default(),
            format!("GET, {c} in flight"),
            raw_get.unwrap_or_default(),
            Some(Goal::at_least("l1_get_ratio", 20.0, "")),
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

async fn l1_cache(b: &Bench<'_>, namespace: &str) -> Result<Cache> {
    let cache = Cache::builder(b.target.url())
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

/// Reads every entry; with `latencies`, records each call's ns.
async fn gets(b: &Bench<'_>, cache: &Cache, latencies: Option<&Mutex<Vec<u64>>>) -> Result<()> {
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
        let start = Instant::now();
        let found = cache.get_bytes(item_key(i)).await?;
        if let Some(l) = latencies {
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            l.lock().unwrap_or_else(|p| p.into_inner()).push(ns);
        }
        match found {
            Some(_) => Ok(()),
            None => Err(BenchError::error(format!(
                "get_bytes found no value for {}",
                item_key(i)
            ))),
        }
    })
    .await
}

async fn raw_gets(b: &Bench<'_>, kept: &Kept) -> Result<()> {
    let space = &kept.raw.space;
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(space.entry(&item_key(i)))
            .query_async(&mut b.raw.clone())
            .await?;
        value
            .map(|_| ())
            .ok_or_else(|| BenchError::error(format!("GET found no value for {}", item_key(i))))
    })
    .await
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
