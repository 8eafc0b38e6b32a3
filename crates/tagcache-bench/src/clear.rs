//! Clearing a namespace of N entries, three ways, each on fresh entries
//! written by tagcache (keys `item:<i>`, the bench's tags, so every entry
//! also carries `\0a` and the prefix edge `\0pitem`):
//!
//! - tagcache `Cache::clear()`: an invalidation of the all-entries index
//!   `\0a`, in chunks sized to a per-call time budget, then a full sweep;
//! - `FLUSHDB` (private server only: it empties the whole database), one
//!   blocking command;
//! - `SCAN MATCH <namespace's keys> COUNT 1000` + `UNLINK` of each page
//!   (a baseline only: tagcache never scans).
//!
//! For each: wall time, entries per second, Redis time per entry and the
//! longest wait the PING probe saw.

use serde::Serialize;
use tagcache::Cache;

use super::census::{self, Census};
use super::layout::{Footprint, Space};
use super::measure::{self, measure, median_round};
use super::probe::Stalls;
use super::Bench;
use crate::error::Result;

/// Entries cleared by default (`--big` and `--invalidate-entries` raise it).
pub const DEFAULT_ENTRIES: u64 = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Tagcache,
    FlushDb,
    ScanUnlink,
}

impl Strategy {
    fn id(self) -> &'static str {
        match self {
            Strategy::Tagcache => "tagcache",
            Strategy::FlushDb => "flushdb",
            Strategy::ScanUnlink => "scan_unlink",
        }
    }

    /// Namespace suffix (namespaces are limited to 64 characters).
    fn short(self) -> &'static str {
        match self {
            Strategy::Tagcache => "tc",
            Strategy::FlushDb => "fl",
            Strategy::ScanUnlink => "sc",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Strategy::Tagcache => "tagcache Cache::clear()",
            Strategy::FlushDb => "FLUSHDB (blocking)",
            Strategy::ScanUnlink => "SCAN MATCH + UNLINK",
        }
    }

    /// The commands the client sends. tagcache's drain sends `EVALSHA`
    /// and `ZRANGE`; its sweep scripts also
    /// run a few `ZRANGE`s inside, which commandstats cannot tell apart,
    /// so its figure is a slight upper bound.
    fn sent(self) -> &'static [&'static str] {
        match self {
            Strategy::Tagcache => &["evalsha", "zrange"],
            Strategy::FlushDb => &["flushdb"],
            Strategy::ScanUnlink => &["scan", "unlink"],
        }
    }
}

/// One strategy's figures (the round with the median wall time).
#[derive(Debug, Clone, Serialize)]
pub struct ClearRun {
    /// `tagcache`, `flushdb`, `scan_unlink`.
    pub strategy: &'static str,
    /// Human name.
    pub label: &'static str,
    /// Entries in the namespace.
    pub entries: u64,
    /// Keys in the database before (entries, indexes, meta).
    pub keys_before: u64,
    /// Keys in the database after (tagcache keeps the namespace's meta).
    pub keys_after: u64,
    /// What the strategy reported deleted (tagcache: entries; FLUSHDB:
    /// keys before; SCAN: keys unlinked).
    pub deleted: u64,
    /// Wall time, milliseconds.
    pub wall_ms: f64,
    /// Wall time of every round, fastest first.
    pub rounds_wall_ms: Vec<f64>,
    /// Entries per second.
    pub entries_per_sec: f64,
    /// Redis time (usec of the commands sent) per entry, µs.
    pub server_usec_per_entry: f64,
    /// Commands sent in total.
    pub commands_sent: f64,
    /// What the PING probe saw.
    pub stalls: Stalls,
    /// The longest stall of any round.
    pub worst_round_longest_stall_ms: f64,
    /// The longest single command in the slow log (private server only).
    pub server_longest_command_ms: Option<f64>,
}

/// Entries of the MONITOR census of tagcache's clear (at most).
const CENSUS_MAX_ENTRIES: u64 = 100_000;

/// The commands an untimed `Cache::clear()` sent, counted by MONITOR.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClearCensus {
    /// Entries cleared in the census.
    pub entries: u64,
    /// What MONITOR saw.
    #[serde(flatten)]
    pub census: Census,
}

/// The phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct ClearReport {
    /// Entries per clear.
    pub entries: u64,
    /// Rounds.
    pub rounds: u32,
    /// One per strategy (FLUSHDB only on a private server).
    pub runs: Vec<ClearRun>,
    /// tagcache's round trips, counted exactly (absent when MONITOR is
    /// refused).
    pub census: Option<ClearCensus>,
}

/// Runs every strategy `--rounds` times.
pub async fn run(b: &Bench<'_>) -> Result<ClearReport> {
    let n = b.plan.clear_entries;
    let mut strategies = vec![Strategy::Tagcache];
    if b.target.is_private() {
        strategies.push(Strategy::FlushDb);
    }
    strategies.push(Strategy::ScanUnlink);
    let mut rounds: Vec<Vec<ClearRun>> = strategies.iter().map(|_| Vec::new()).collect();
    for round in 0..b.plan.rounds {
        for (s, strategy) in strategies.iter().enumerate() {
            rounds[s].push(once(b, *strategy, n, round).await?);
        }
    }
    let census = census(b, n.min(CENSUS_MAX_ENTRIES)).await?;
    Ok(ClearReport {
        entries: n,
        rounds: b.plan.rounds,
        runs: rounds.into_iter().filter_map(median_round).collect(),
        census,
    })
}

/// An untimed `Cache::clear()` of `n` entries under MONITOR; `None` when
/// the server refuses MONITOR.
async fn census(b: &Bench<'_>, n: u64) -> Result<Option<ClearCensus>> {
    let (cache, fp) = prepare(b, "cl-census", n, "the command census").await?;
    b.progress
        .set(format!("clear: counting tagcache's commands ({n} entries)"));
    let counted = census::count(b, async { Ok(cache.clear().await?) }).await;
    b.janitor.wipe(&b.raw, &fp).await?;
    match counted {
        Ok((_, census)) => Ok(Some(ClearCensus { entries: n, census })),
        Err(e) => {
            tracing::warn!("no command census (MONITOR refused?): {e}");
            Ok(None)
        }
    }
}

/// Writes `n` entries in a fresh namespace.
async fn prepare(b: &Bench<'_>, suffix: &str, n: u64, what: &str) -> Result<(Cache, Footprint)> {
    let phase = format!("clear: writing {n} entries for {what}");
    measure::prepare(b, suffix, n, None, phase).await
}

measure::impl_round!(ClearRun);

async fn once(b: &Bench<'_>, strategy: Strategy, n: u64, round: u32) -> Result<ClearRun> {
    let suffix = format!("cl-{}{round}", strategy.short());
    let (cache, fp) = prepare(b, &suffix, n, strategy.label()).await?;
    let space = fp.space.clone();
    let keys_before: u64 = redis::cmd("DBSIZE").query_async(&mut b.raw.clone()).await?;
    let phase = format!("clear: {} ({n} entries)", strategy.label());
    let m = measure(b, phase, execute(b, strategy, &cache, &space, keys_before)).await?;
    let (deleted, wall, stalls) = (m.out, m.wall, m.stalls);
    let (before, after, server_longest_command_ms) =
        (m.before, m.after, m.server_longest_command_ms);
    let keys_after: u64 = redis::cmd("DBSIZE").query_async(&mut b.raw.clone()).await?;
    b.janitor.wipe(&b.raw, &fp).await?;
    let cost = before.cost_until(&after, strategy.sent(), n);
    let wall_s = wall.as_secs_f64().max(1e-9);
    Ok(ClearRun {
        strategy: strategy.id(),
        label: strategy.label(),
        entries: n,
        keys_before,
        keys_after,
        deleted,
        wall_ms: wall_s * 1000.0,
        rounds_wall_ms: Vec::new(),
        entries_per_sec: n as f64 / wall_s,
        server_usec_per_entry: cost.server_usec_per_op,
        commands_sent: cost.commands_sent_per_op * n as f64,
        stalls,
        worst_round_longest_stall_ms: stalls.longest_ms,
        server_longest_command_ms,
    })
}

async fn execute(
    b: &Bench<'_>,
    strategy: Strategy,
    cache: &Cache,
    space: &Space,
    keys_before: u64,
) -> Result<u64> {
    let mut conn = b.raw.clone();
    match strategy {
        Strategy::Tagcache => Ok(cache.clear().await?),
        Strategy::FlushDb => {
            redis::cmd("FLUSHDB")
                .arg("SYNC")
                .query_async::<()>(&mut conn)
                .await?;
            Ok(keys_before)
        }
        Strategy::ScanUnlink => {
            // `{<ns>.<b>}:…` and `{<ns>}:…`; namespaces are [A-Za-z0-9_-],
            // nothing a glob would read as special.
            let pattern = format!("{{{}[.}}]*", space.name());
            measure::scan_unlink(&mut conn, &pattern).await
        }
    }
}
