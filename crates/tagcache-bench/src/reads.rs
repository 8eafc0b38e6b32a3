//! Read throughput: `get_bytes` vs GET and `get_many_bytes` vs MGET, sent
//! the same way on both sides, over the data sets of the write phase.
//!
//! The GET baseline runs on a bare multiplexed connection without response
//! timeout; a second row compares `get_bytes` with GET through what a
//! bounded client needs too — a reconnecting `ConnectionManager` with a
//! response timeout (one timer per call), as tagcache's connection is — to
//! tell tagcache's own cost from the connection's.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tagcache::Cache;

use super::layout::{item_key, Space};
use super::report::{Comparison, Goal, Run};
use super::writes::Kept;
use super::{batches, drive, Bench, BATCHES_IN_FLIGHT, MGET_KEYS};
use crate::error::{BenchError, Result};

/// Runs each read `--rounds` times and compares the best runs.
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
    for round in 1..=rounds {
        let note = |what: &str| {
            b.progress
                .set(format!("reads: {what} (round {round}/{rounds})"))
        };
        note("raw GET");
        raw_get = Some(Run::faster(
            raw_get,
            b.measure(&["get"], n, gets_raw(b, raw)).await?,
        ));
        note("tagcache get_bytes");
        get = Some(Run::faster(
            get,
            b.measure(&["get"], n, gets(b, &cache)).await?,
        ));
        note("GET through a ConnectionManager");
        managed_get = Some(Run::faster(
            managed_get,
            b.measure(&["get"], n, gets_managed(b, raw, &managed))
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
    let c = b.plan.concurrency;
    Ok(vec![
        Comparison::new(
            "get",
            format!("get_bytes, {c} in flight"),
            get.unwrap_or_default(),
            format!("GET, {c} in flight"),
            raw_get.unwrap_or_default(),
            Some(Goal::at_least("get_ratio", 0.95, "")),
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

async fn gets(b: &Bench<'_>, cache: &Cache) -> Result<()> {
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
        match cache.get_bytes(item_key(i)).await? {
            Some(_) => Ok(()),
            None => Err(missing("get_bytes", i)),
        }
    })
    .await
}

async fn gets_raw(b: &Bench<'_>, space: &Space) -> Result<()> {
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
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
