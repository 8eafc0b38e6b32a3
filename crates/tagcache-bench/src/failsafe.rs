//! Fail-safe overhead: `fail_safe().get_bytes` vs `get_bytes` and
//! `fail_safe().set_bytes` vs `set_bytes`, same cache, same keys, same
//! concurrency, in many short interleaved rounds (the order alternates
//! each round); the ratio reported is the median of the per-round ratios,
//! so the drift of a noisy machine hits both sides of each pair.
//!
//! Then the latency of fail-safe calls once the breaker is open: a cache
//! on a private redis-server of its own, the server killed, calls until
//! `circuit_state()` is `Open`, then single calls timed one by one.

use std::time::{Duration, Instant};

use serde::Serialize;
use tagcache::{Cache, CircuitState, Lookup, SetOptions, Written};

use super::layout::item_key;
use super::measure::{median, pair};
use super::report::{Comparison, Goal, Run};
use super::writes::Kept;
use super::{drive, Bench, TTL};
use tagcache_testkit::{Launch, PrivateRedis};

use crate::error::{BenchError, Result};

/// Keys per round (capped by `--entries`).
const ROUND_OPS: u64 = 5_000;
/// Fail-safe calls timed with the breaker open.
const OPEN_CALLS: u32 = 10_000;

/// Latency of fail-safe calls with the circuit open.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpenLatency {
    /// Calls made after the server was killed until the breaker opened.
    pub calls_to_open: u32,
    /// Time from the kill until the breaker was open, milliseconds.
    pub ms_to_open: f64,
    /// Calls timed (one at a time).
    pub calls: u32,
    /// Calls that answered `Bypassed` (all of them, when the breaker works).
    pub bypassed: u32,
    /// Median, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Slowest call, microseconds.
    pub max_us: f64,
    /// Goal: no network wait (p99 well under a millisecond).
    pub goals: Vec<Goal>,
}

/// The overhead rows (for the throughput table).
pub async fn run(b: &Bench<'_>, kept: &Kept) -> Result<Vec<Comparison>> {
    let cache = b.cache(kept.tagcache.space.name()).await?;
    let n = b.plan.entries.min(ROUND_OPS);
    let rounds = (b.plan.rounds * 7).max(5);
    let c = b.plan.concurrency;
    let (mut get, mut fs_get, mut get_ratios) = (None, None, Vec::new());
    let (mut set, mut fs_set, mut set_ratios) = (None, None, Vec::new());
    for round in 0..rounds {
        b.progress
            .set(format!("fail-safe overhead (round {}/{rounds})", round + 1));
        // Alternate which side goes first.
        let fs_first = round % 2 == 1;
        let (plain, safe) = pair(
            fs_first,
            b.measure(&["get"], n, gets(b, &cache, n, false)),
            b.measure(&["get"], n, gets(b, &cache, n, true)),
        )
        .await?;
        get_ratios.push(safe.ops_per_sec / plain.ops_per_sec);
        get = Some(Run::faster(get, plain));
        fs_get = Some(Run::faster(fs_get, safe));

        let sent = &["evalsha", "multi", "exec"];
        let (plain, safe) = pair(
            fs_first,
            b.measure(sent, n, sets(b, &cache, n, false)),
            b.measure(sent, n, sets(b, &cache, n, true)),
        )
        .await?;
        set_ratios.push(safe.ops_per_sec / plain.ops_per_sec);
        set = Some(Run::faster(set, plain));
        fs_set = Some(Run::faster(fs_set, safe));
    }
    Ok(vec![
        Comparison::new(
            "fail_safe_get",
            format!("fail_safe().get_bytes, {c} in flight"),
            fs_get.unwrap_or_default(),
            format!("get_bytes, {c} in flight"),
            get.unwrap_or_default(),
            None,
        )
        .with_ratio(
            median(&mut get_ratios),
            format!("median of {rounds} paired rounds of {n}"),
            Goal::at_least("fail_safe_get_ratio", 0.97, ""),
        ),
        Comparison::new(
            "fail_safe_set",
            format!("fail_safe().set_bytes, {c} in flight"),
            fs_set.unwrap_or_default(),
            format!("set_bytes, {c} in flight"),
            set.unwrap_or_default(),
            None,
        )
        .with_ratio(
            median(&mut set_ratios),
            format!("median of {rounds} paired rounds of {n}"),
            Goal::at_least("fail_safe_set_ratio", 0.97, ""),
        ),
    ])
}

async fn gets(b: &Bench<'_>, cache: &Cache, n: u64, safe: bool) -> Result<()> {
    let fs = cache.fail_safe();
    let fs = &fs;
    drive(0..n, b.plan.concurrency, |i| async move {
        let hit = if safe {
            matches!(fs.get_bytes(item_key(i)).await?, Lookup::Hit(_))
        } else {
            cache.get_bytes(item_key(i)).await?.is_some()
        };
        if hit {
            Ok(())
        } else {
            Err(BenchError::error(format!(
                "{} found no value for {}",
                if safe {
                    "fail_safe().get_bytes"
                } else {
                    "get_bytes"
                },
                item_key(i)
            )))
        }
    })
    .await
}

async fn sets(b: &Bench<'_>, cache: &Cache, n: u64, safe: bool) -> Result<()> {
    let fs = cache.fail_safe();
    let fs = &fs;
    let wl = &b.plan.workload;
    drive(0..n, b.plan.concurrency, |i| async move {
        // The same key, value and tags as the write phase stored.
        let opts = SetOptions::new().ttl(TTL).tags(wl.tags_of(i, None));
        if safe {
            match fs.set_bytes(item_key(i), wl.value(), &opts).await? {
                Written::Stored => Ok(()),
                other => Err(BenchError::error(format!(
                    "fail_safe().set_bytes did not store {}: {other:?}",
                    item_key(i)
                ))),
            }
        } else {
            Ok(cache.set_bytes(item_key(i), wl.value(), &opts).await?)
        }
    })
    .await
}

/// The latency of fail-safe reads once the breaker is open.
pub async fn open_latency(b: &Bench<'_>) -> Result<OpenLatency> {
    b.progress.set("fail-safe: breaker open latency");
    let server = PrivateRedis::start_async(Launch::detached()).await?;
    let cache = Cache::builder(server.url())
        .namespace(b.plan.namespace("fs-open"))
        .auto_sweep(None)
        .eviction_check(tagcache::EvictionCheck::Warn)
        .build()
        .await?;
    let fs = cache.fail_safe();
    fs.set_bytes("k", b"v", &SetOptions::new().ttl(TTL)).await?;
    drop(server); // SIGKILL, waited for
    let killed = Instant::now();
    let mut calls_to_open = 0;
    while cache.circuit_state() != CircuitState::Open {
        if killed.elapsed() > Duration::from_secs(60) || calls_to_open >= 100_000 {
            return Err(BenchError::error(format!(
                "the breaker did not open after {calls_to_open} calls to a dead server"
            )));
        }
        let _ = fs.get_bytes("k").await?;
        calls_to_open += 1;
    }
    let ms_to_open = killed.elapsed().as_secs_f64() * 1e3;
    let mut us = Vec::with_capacity(OPEN_CALLS as usize);
    let mut bypassed = 0;
    for _ in 0..OPEN_CALLS {
        let t = Instant::now();
        let r = fs.get_bytes("k").await?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
        if matches!(r, Lookup::Bypassed(_)) {
            bypassed += 1;
        }
    }
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)];
    let p99_us = at(0.99);
    Ok(OpenLatency {
        calls_to_open,
        ms_to_open,
        calls: OPEN_CALLS,
        bypassed,
        p50_us: at(0.5),
        p99_us,
        max_us: us.last().copied().unwrap_or(0.0),
        goals: vec![Goal::at_most("fail_safe_open_p99_us", 100.0, " µs").check(p99_us)],
    })
}
