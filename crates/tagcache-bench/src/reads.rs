//! Read throughput: `get_bytes` vs GET and `get_many_bytes` vs MGET, sent
//! the same way on both sides, over the data sets of the write phase.
//!
//! Read-through hits: `get_or_compute` vs a pipelined GET + TIME (what a
//! fenced read-through reads), and `get_or_refresh` with eager refresh on
//! (not due) vs GET + PTTL + TIME.
//!
//! The GET baseline runs on a bare multiplexed connection without response
//! timeout; a second row compares `get_bytes` with GET through what a
//! bounded client needs too — a reconnecting `ConnectionManager` with a
//! response timeout (one timer per call), as tagcache's connection is — to
//! tell tagcache's own cost from the connection's.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tagcache::{Cache, SetOptions};

use super::layout::{item_key, Space};
use super::measure::{median, pair};
use super::report::{Comparison, Goal, Run};
use super::writes::Kept;
use super::{batches, drive, Bench, BATCHES_IN_FLIGHT, MGET_KEYS, TTL};
use crate::error::{BenchError, Result};

/// Reads per paired round of the `get` goal's ratio (capped by
/// `--entries`).
const PAIRED_OPS: u64 = 10_000;

/// Runs each read `--rounds` times and compares the best runs; the `get`
/// goal's ratio is the median of paired rounds (as the fail-safe rows).
pub async fn run(b: &Bench<'_>, kept: &Kept) -> Result<Vec<Comparison>> {
    let cache = b.cache(kept.tagcache.space.name()).await?;
    let raw = &kept.raw.space;
    let n = b.plan.entries;
    let rounds = b.plan.rounds;
    let managed = ConnectionManager::new_with_config(
        b.client.clone(),
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(30))),
    )
    .await?;
    let (mut get, mut raw_get, mut many, mut mget) = (None, None, None, None);
    let mut managed_get = None;
    let (mut rt, mut rt_raw, mut eager, mut eager_raw) = (None, None, None, None);
    for round in 1..=rounds {
        let note = |what: &str| {
            b.progress
                .set(format!("reads: {what} (round {round}/{rounds})"))
        };
        note("raw GET");
        raw_get = Some(Run::faster(
            raw_get,
            b.measure(&["get"], n, gets_raw(b, raw, n)).await?,
        ));
        note("tagcache get_bytes");
        get = Some(Run::faster(
            get,
            b.measure(&["get"], n, gets(b, &cache, n)).await?,
        ));
        note("GET through a ConnectionManager");
        managed_get = Some(Run::faster(
            managed_get,
            b.measure(&["get"], n, gets_managed(b, raw, &managed))
                .await?,
        ));
        note("raw GET + TIME");
        rt_raw = Some(Run::faster(
            rt_raw,
            b.measure(&["get", "time"], n, read_through_raw(b, raw, false))
                .await?,
        ));
        note("tagcache get_or_compute hits");
        rt = Some(Run::faster(
            rt,
            b.measure(&["get", "time"], n, read_through(b, &cache, false))
                .await?,
        ));
        note("raw GET + PTTL + TIME");
        eager_raw = Some(Run::faster(
            eager_raw,
            b.measure(&["get", "pttl", "time"], n, read_through_raw(b, raw, true))
                .await?,
        ));
        note("tagcache get_or_refresh hits, eager refresh on");
        eager = Some(Run::faster(
            eager,
            b.measure(&["get", "pttl", "time"], n, read_through(b, &cache, true))
                .await?,
        ));
        note("raw MGET");
        mget = Some(Run::faster(
            mget,
            b.measure(&["mget"], n, mgets_raw(b, raw)).await?,
        ));
        note("tagcache get_many_bytes");
        many = Some(Run::faster(
            many,
            b.measure(&["mget"], n, get_many(b, &cache)).await?,
        ));
    }
    // The goal's ratio: many short rounds, each side's order alternating,
    // so a machine's drift between rounds hits both sides of each pair.
    let (paired_n, paired_rounds) = (n.min(PAIRED_OPS), (rounds * 7).max(5));
    let mut get_ratios = Vec::with_capacity(paired_rounds as usize);
    for round in 0..paired_rounds {
        b.progress.set(format!(
            "reads: get_bytes / GET (paired round {}/{paired_rounds})",
            round + 1
        ));
        let (t, r) = pair(
            round % 2 == 0,
            b.measure(&["get"], paired_n, gets(b, &cache, paired_n)),
            b.measure(&["get"], paired_n, gets_raw(b, raw, paired_n)),
        )
        .await?;
        get_ratios.push(t.ops_per_sec / r.ops_per_sec);
    }
    let c = b.plan.concurrency;
    Ok(vec![
        Comparison::new(
            "get",
            format!("get_bytes, {c} in flight"),
            get.unwrap_or_default(),
            format!("GET, {c} in flight"),
            raw_get.unwrap_or_default(),
            None,
        )
        .with_ratio(
            median(&mut get_ratios),
            format!("median of {paired_rounds} paired rounds of {paired_n}"),
            Goal::at_least("get_ratio", 0.95, ""),
        ),
        Comparison::new(
            "get_vs_managed",
            format!("get_bytes, {c} in flight"),
            get.unwrap_or_default(),
            format!("GET via ConnectionManager + response timeout, {c} in flight"),
            managed_get.unwrap_or_default(),
            None,
        ),
        Comparison::new(
            "get_or_compute_hit",
            format!("get_or_compute hit, {c} in flight"),
            rt.unwrap_or_default(),
            format!("GET + TIME pipelined, {c} in flight"),
            rt_raw.unwrap_or_default(),
            None,
        ),
        Comparison::new(
            "get_or_refresh_hit",
            format!("get_or_refresh hit (eager refresh on), {c} in flight"),
            eager.unwrap_or_default(),
            format!("GET + PTTL + TIME pipelined, {c} in flight"),
            eager_raw.unwrap_or_default(),
            None,
        ),
        Comparison::new(
            "get_many",
            format!("get_many_bytes, {MGET_KEYS} keys/call"),
            many.unwrap_or_default(),
            format!("MGET, {MGET_KEYS} keys/call"),
            mget.unwrap_or_default(),
            Some(Goal::at_least("get_many_ratio", 0.95, "")),
        ),
    ])
}

fn missing(what: &str, i: u64) -> BenchError {
    BenchError::error(format!("{what} found no value for {}", item_key(i)))
}

async fn gets(b: &Bench<'_>, cache: &Cache, n: u64) -> Result<()> {
    drive(0..n, b.plan.concurrency, |i| async move {
        match cache.get_bytes(item_key(i)).await? {
            Some(_) => Ok(()),
            None => Err(missing("get_bytes", i)),
        }
    })
    .await
}

async fn gets_raw(b: &Bench<'_>, space: &Space, n: u64) -> Result<()> {
    drive(0..n, b.plan.concurrency, |i| async move {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(space.entry(&item_key(i)))
            .query_async(&mut b.raw.clone())
            .await?;
        value.map(|_| ()).ok_or_else(|| missing("GET", i))
    })
    .await
}

async fn gets_managed(b: &Bench<'_>, space: &Space, managed: &ConnectionManager) -> Result<()> {
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(space.entry(&item_key(i)))
            .query_async(&mut managed.clone())
            .await?;
        value.map(|_| ()).ok_or_else(|| missing("GET", i))
    })
    .await
}

async fn get_many(b: &Bench<'_>, cache: &Cache) -> Result<()> {
    drive(
        batches(b.plan.entries, MGET_KEYS),
        BATCHES_IN_FLIGHT,
        |range| async move {
            let first = range.start;
            let values = cache.get_many_bytes(range.map(item_key)).await?;
            match values.iter().position(Option::is_none) {
                Some(p) => Err(missing("get_many_bytes", first + p as u64)),
                None => Ok(()),
            }
        },
    )
    .await
}

async fn mgets_raw(b: &Bench<'_>, space: &Space) -> Result<()> {
    drive(
        batches(b.plan.entries, MGET_KEYS),
        BATCHES_IN_FLIGHT,
        |range| async move {
            let first = range.start;
            let names: Vec<String> = range.map(|i| space.entry(&item_key(i))).collect();
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(names)
                .query_async(&mut b.raw.clone())
                .await?;
            match values.iter().position(Option::is_none) {
                Some(p) => Err(missing("MGET", first + p as u64)),
                None => Ok(()),
            }
        },
    )
    .await
}

/// A raw payload read through a typed read-through (raw entries read into
/// types that ask for bytes).
struct Bytes;

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&[])
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> std::result::Result<Bytes, E> {
                Ok(Bytes)
            }
        }
        d.deserialize_bytes(Visit)
    }
}

/// Read-through hits; a miss (the loader runs) fails the bench. With
/// `eager`, eager refresh is on but never due (the entries were just
/// written with an hour's TTL).
async fn read_through(b: &Bench<'_>, cache: &Cache, eager: bool) -> Result<()> {
    let opts = SetOptions::new().ttl(TTL);
    let opts = if eager {
        opts.eager_refresh(0.999)
    } else {
        opts
    };
    let opts = &opts;
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
        let loader = |_| async { Err::<Bytes, &str>("a read-through miss") };
        let found = if eager {
            cache.get_or_refresh_with(item_key(i), opts, loader).await
        } else {
            cache.get_or_compute_with(item_key(i), opts, loader).await
        };
        found
            .map(drop)
            .map_err(|e| BenchError::error(format!("read-through of {}: {e}", item_key(i))))
    })
    .await
}

async fn read_through_raw(b: &Bench<'_>, space: &Space, pttl: bool) -> Result<()> {
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
        let name = space.entry(&item_key(i));
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&name);
        if pttl {
            pipe.cmd("PTTL").arg(&name);
        }
        pipe.cmd("TIME");
        let values: Vec<redis::Value> = pipe.query_async(&mut b.raw.clone()).await?;
        match values.first() {
            Some(redis::Value::BulkString(_)) => Ok(()),
            _ => Err(missing("GET + TIME", i)),
        }
    })
    .await
}
