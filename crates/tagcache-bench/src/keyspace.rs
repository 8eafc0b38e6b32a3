//! Hierarchical keyspaces: what a path costs to write, per depth, and a
//! prefix query against the SCAN MATCH an application would otherwise run.
//!
//! - `set_path` with 2, 4 and 6 parts vs `set_bytes` of the same key
//!   (parts joined by `:`) with no tags, `--concurrency` calls in flight:
//!   a path of `d` parts carries `d` prefix indexes.
//! - `cache.query(org:<g>:*:*:*)` vs `SCAN MATCH {ns.0}:e:org:<g>:*` over
//!   the whole server (then MGET of what it found): wall time to get the
//!   same matches with their values. SCAN appears only as a baseline.
//! - A group fetch that hits (`cache.group(..).fetch`, 100 owners of 100
//!   boolean fields) vs raw `HGET` on hashes of the same shape.
//! - Bulk legacy migration (`cache.legacy_migration`, one rule
//!   `id-{id}-identity-{attr}` -> scope `["dsr", id]`) vs the same move by
//!   hand: `SCAN MATCH` + pipelined `GET`/`PTTL` + `SET PX`/`DEL`, keys
//!   moved per second.
//!
//! Only on the bench's private server: path keys are not the `item:<i>`
//! keys the janitor deletes by name, so the phase runs last and empties
//! the server (FLUSHALL) before each round.

use std::time::Instant;

use serde::Serialize;
use tagcache::{Cache, KeyPath, PathPattern, SetOptions};

use super::layout::Space;
use super::report::{Comparison, Run};
use super::{drive, Bench, TTL};
use crate::error::{BenchError, Result};

/// Depths measured.
const DEPTHS: [usize; 3] = [2, 4, 6];
/// Entries per first-level group (`org:<g>`).
const GROUP: u64 = 1000;

/// The parts of entry `i` at depth `d`: `org`, its group, then narrower
/// groups, the last part unique.
fn parts(i: u64, d: usize) -> Vec<String> {
    let mut p = vec!["org".to_owned(), (i / GROUP).to_string()];
    for j in 2..d.saturating_sub(1) {
        p.push(format!("l{j}-{}", i / (GROUP >> (2 * j)).max(1)));
    }
    if d > 2 {
        p.push(i.to_string());
    } else {
        p[1] = i.to_string();
    }
    p
}

/// A prefix query beside SCAN MATCH.
#[derive(Debug, Clone, Serialize)]
pub struct PrefixQuery {
    /// The pattern queried.
    pub pattern: String,
    /// Keys in the server when it ran (what SCAN walks).
    pub dbsize: u64,
    /// Matches (with values) tagcache returned.
    pub tagcache_matches: u64,
    /// Wall time of `query(..).collect()`, milliseconds (median round).
    pub tagcache_ms: f64,
    /// Matches SCAN MATCH found.
    pub scan_matches: u64,
    /// SCAN calls.
    pub scan_calls: u64,
    /// Wall time of SCAN MATCH + MGET, milliseconds (median round).
    pub scan_ms: f64,
    /// scan_ms / tagcache_ms.
    pub speedup: f64,
}

/// The phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct KeyspaceReport {
    /// Write cost per depth.
    pub writes: Vec<Comparison>,
    /// The prefix query.
    pub prefix_query: Option<PrefixQuery>,
    /// Group fetch hits vs HGET.
    pub group_fetch: Comparison,
    /// Bulk legacy migration vs raw SCAN + GET + SET.
    pub migration: Comparison,
}

/// Runs the phase (private server only; `None` otherwise).
pub async fn run(b: &Bench<'_>) -> Result<Option<KeyspaceReport>> {
    if !b.target.is_private() {
        return Ok(None);
    }
    let n = b.plan.entries;
    let rounds = b.plan.rounds;
    let c = b.plan.concurrency;
    let value = "v".repeat(b.plan.value_size);
    let value = &value;
    let mut writes = Vec::new();
    let mut prefix = None;
    for d in DEPTHS {
        let (mut best_path, mut best_plain) = (None, None);
        for round in 0..rounds {
            b.progress.set(format!(
                "keyspaces: depth {d} (round {}/{rounds})",
                round + 1
            ));
            flush(b).await?;
            let plain = b
                .cache(&b.plan.namespace(&format!("ks-b{d}-{round}")))
                .await?;
            let plain = &plain;
            let run = b
                .measure(
                    &["evalsha"],
                    n,
                    drive(0..n, c, |i| async move {
                        let key = parts(i, d).join(":");
                        let opts = SetOptions::new().ttl(TTL);
                        Ok(plain.set_bytes(key, value.as_bytes(), &opts).await?)
                    }),
                )
                .await?;
            best_plain = Some(Run::faster(best_plain, run));
            let ns = b.plan.namespace(&format!("ks-p{d}-{round}"));
            let paths = b.cache(&ns).await?;
            let paths_ref = &paths;
            let run = b
                .measure(
                    &["evalsha"],
                    n,
                    drive(0..n, c, |i| async move {
                        let path = KeyPath::from_parts(parts(i, d));
                        let opts = SetOptions::new().ttl(TTL);
                        Ok(paths_ref.set_path(&path, value, &opts).await?)
                    }),
                )
                .await?;
            best_path = Some(Run::faster(best_path, run));
            if d == 4 && round + 1 == rounds {
                prefix = Some(prefix_query(b, &paths, &Space::new(ns)).await?);
            }
        }
        writes.push(Comparison::new(
            match d {
                2 => "set_path_2",
                4 => "set_path_4",
                _ => "set_path_6",
            },
            format!("set_path, {d} parts, {c} in flight"),
            best_path.unwrap_or_default(),
            format!("set_bytes of the same key, no tags, {c} in flight"),
            best_plain.unwrap_or_default(),
            None,
        ));
    }
    let group_fetch = groups(b).await?;
    let migration = migration(b).await?;
    flush(b).await?;
    Ok(Some(KeyspaceReport {
        writes,
        prefix_query: prefix,
        group_fetch,
        migration,
    }))
}

/// Owners and fields per owner of the group measurement.
const OWNERS: u64 = 100;
const FIELDS: u64 = 100;

fn owner_field(i: u64) -> (u64, String) {
    (i % OWNERS, format!("branch-{}", (i / OWNERS) % FIELDS))
}

async fn groups(b: &Bench<'_>) -> Result<Comparison> {
    flush(b).await?;
    b.progress.set("keyspaces: writing groups");
    let cache = b.cache(&b.plan.namespace("ks-grp")).await?;
    let space = Space::new(b.plan.namespace("ks-hash"));
    let cache = &cache;
    let space = &space;
    let group =
        |o: u64| -> Result<tagcache::Group> { Ok(cache.group("protected", o)?.default_ttl(TTL)) };
    drive(0..OWNERS * FIELDS, 64, |i| async move {
        let (o, f) = owner_field(i);
        group(o)?.set(&f, &true).await?;
        redis::cmd("HSET")
            .arg(space.entry(&format!("grp:{o}")))
            .arg(&f)
            .arg(&[0xc3u8][..])
            .query_async::<()>(&mut b.raw.clone())
            .await?;
        Ok(())
    })
    .await?;
    let n = b.plan.entries;
    let c = b.plan.concurrency;
    let (mut tc, mut raw) = (None, None);
    for round in 0..b.plan.rounds {
        b.progress.set(format!(
            "keyspaces: group fetch vs HGET (round {}/{})",
            round + 1,
            b.plan.rounds
        ));
        let run = b
            .measure(
                &["hget"],
                n,
                drive(0..n, c, |i| async move {
                    let (o, f) = owner_field(i);
                    let (v, how) = group(o)?
                        .fetch(&f, || async { Err::<bool, _>("loader called on a hit") })
                        .await
                        .map_err(|e| BenchError::error(format!("group fetch: {e}")))?
                        .into_parts();
                    if v && how == tagcache::Fetched::Hit {
                        Ok(())
                    } else {
                        Err(BenchError::error(format!("group fetch of {o}/{f} missed")))
                    }
                }),
            )
            .await?;
        tc = Some(Run::faster(tc, run));
        let run = b
            .measure(
                &["hget"],
                n,
                drive(0..n, c, |i| async move {
                    let (o, f) = owner_field(i);
                    let v: Option<Vec<u8>> = redis::cmd("HGET")
                        .arg(space.entry(&format!("grp:{o}")))
                        .arg(&f)
                        .query_async(&mut b.raw.clone())
                        .await?;
                    v.map(drop)
                        .ok_or_else(|| BenchError::error(format!("HGET of {o}/{f} missed")))
                }),
            )
            .await?;
        raw = Some(Run::faster(raw, run));
    }
    Ok(Comparison::new(
        "group_fetch",
        format!("group(..).fetch hit, {c} in flight"),
        tc.unwrap_or_default(),
        format!("HGET, {c} in flight"),
        raw.unwrap_or_default(),
        None,
    ))
}

/// Writes `n` legacy keys `id-<i>-identity-email` (with a TTL).
async fn seed_legacy(b: &Bench<'_>, n: u64) -> Result<()> {
    flush(b).await?;
    for start in (0..n).step_by(1000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 1000).min(n) {
            pipe.cmd("SET")
                .arg(format!("id-{i}-identity-email"))
                .arg("user@example.com")
                .arg("PX")
                .arg(3_600_000)
                .ignore();
        }
        pipe.query_async::<()>(&mut b.raw.clone()).await?;
    }
    Ok(())
}

/// Bulk legacy migration vs the same moves made with raw commands.
async fn migration(b: &Bench<'_>) -> Result<Comparison> {
    let n = b.plan.entries.min(100_000);
    let rules = tagcache::legacy::LegacyRules::new([tagcache::legacy::LegacyRule::new(
        "id-{id}-identity-{attr}",
    )
    .scope(["dsr", "{id}"])
    .part("identity:{attr}")])?;
    let (mut tc, mut raw) = (None, None);
    for round in 0..b.plan.rounds {
        b.progress.set(format!(
            "keyspaces: legacy migration (round {}/{})",
            round + 1,
            b.plan.rounds
        ));
        seed_legacy(b, n).await?;
        let cache = b
            .cache(&b.plan.namespace(&format!("ks-mig{round}")))
            .await?;
        let (cache, rules) = (&cache, &rules);
        let run = b
            .measure(&["scan", "evalsha"], n, async move {
                let report = cache
                    .legacy_migration(
                        Some(rules),
                        tagcache::legacy::MigrateOptions::new().batch(1000),
                    )
                    .await?
                    .run(|_, _| {})
                    .await?;
                if report.migrated == n {
                    Ok(())
                } else {
                    Err(BenchError::error(format!(
                        "migrated {} of {n} legacy keys",
                        report.migrated
                    )))
                }
            })
            .await?;
        tc = Some(Run::faster(tc, run));

        seed_legacy(b, n).await?;
        let space = Space::new(b.plan.namespace(&format!("ks-migraw{round}")));
        let space = &space;
        let run = b
            .measure(&["scan", "get", "pttl", "set", "del"], n, async move {
                let mut conn = b.raw.clone();
                let mut cursor = 0u64;
                let mut moved = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg("id-*-identity-*")
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await?;
                    if !keys.is_empty() {
                        let mut read = redis::pipe();
                        for k in &keys {
                            read.get(k).cmd("PTTL").arg(k);
                        }
                        let got: Vec<redis::Value> = read.query_async(&mut conn).await?;
                        let mut write = redis::pipe();
                        for (k, pair) in keys.iter().zip(got.chunks(2)) {
                            let id = k.trim_start_matches("id-").split('-').next().unwrap_or("");
                            let ttl = match pair.get(1) {
                                Some(redis::Value::Int(ms)) if *ms > 0 => *ms,
                                _ => 3_600_000,
                            };
                            write
                                .cmd("SET")
                                .arg(space.entry(&format!("dsr:{id}:identity\\:email")))
                                .arg(match pair.first() {
                                    Some(redis::Value::BulkString(v)) => v.as_slice(),
                                    _ => &[][..],
                                })
                                .arg("PX")
                                .arg(ttl)
                                .ignore()
                                .del(k)
                                .ignore();
                            moved += 1;
                        }
                        write.query_async::<()>(&mut conn).await?;
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                if moved == n {
                    Ok(())
                } else {
                    Err(BenchError::error(format!(
                        "moved {moved} of {n} legacy keys by hand"
                    )))
                }
            })
            .await?;
        raw = Some(Run::faster(raw, run));
    }
    Ok(Comparison::new(
        "legacy_migration",
        format!("legacy_migration, {n} keys, 1000/step"),
        tc.unwrap_or_default(),
        "SCAN MATCH + GET/PTTL + SET PX/DEL (no index)".to_owned(),
        raw.unwrap_or_default(),
        None,
    ))
}

/// Empties the private server.
async fn flush(b: &Bench<'_>) -> Result<()> {
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut b.raw.clone())
        .await?;
    Ok(())
}

async fn prefix_query(b: &Bench<'_>, cache: &Cache, space: &Space) -> Result<PrefixQuery> {
    let g = (b.plan.entries / GROUP) / 2;
    let pattern = PathPattern::new().part("org").part(g).any().any();
    let glob = space.entry(&format!("org:{g}:*"));
    let mut conn = b.raw.clone();
    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await?;
    let (mut tc, mut scan) = (Vec::new(), Vec::new());
    let (mut tc_matches, mut scan_matches, mut scan_calls) = (0, 0, 0);
    for round in 0..b.plan.rounds.max(3) {
        b.progress.set(format!(
            "keyspaces: prefix query vs SCAN (round {})",
            round + 1
        ));
        let t = Instant::now();
        let found: Vec<(KeyPath, String)> = cache.query(&pattern).collect().await?;
        tc.push(t.elapsed().as_secs_f64() * 1e3);
        tc_matches = found.len() as u64;

        let t = Instant::now();
        let mut cursor = 0u64;
        let mut keys: Vec<String> = Vec::new();
        scan_calls = 0;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&glob)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            scan_calls += 1;
            keys.extend(page);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let mut values = 0;
        for chunk in keys.chunks(1000) {
            let v: Vec<Option<Vec<u8>>> =
                redis::cmd("MGET").arg(chunk).query_async(&mut conn).await?;
            values += v.iter().flatten().count() as u64;
        }
        scan.push(t.elapsed().as_secs_f64() * 1e3);
        scan_matches = values;
    }
    if tc_matches != scan_matches {
        return Err(BenchError::error(format!(
            "prefix query found {tc_matches} matches, SCAN MATCH {scan_matches}"
        )));
    }
    let tagcache_ms = super::measure::median(&mut tc);
    let scan_ms = super::measure::median(&mut scan);
    Ok(PrefixQuery {
        pattern: format!("org:{g}:*:*"),
        dbsize,
        tagcache_matches: tc_matches,
        tagcache_ms,
        scan_matches,
        scan_calls,
        scan_ms,
        speedup: scan_ms / tagcache_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_have_the_asked_depth_and_are_unique() {
        for d in DEPTHS {
            assert_eq!(parts(12_345, d).len(), d);
            assert_ne!(parts(12_345, d), parts(12_346, d));
            let want: &[&str] = if d == 2 {
                &["org", "12345"]
            } else {
                &["org", "12"]
            };
            assert_eq!(parts(12_345, d)[..2], *want);
        }
    }
}
