//! Invalidating one tag of N entries, four ways, each on a fresh set of N
//! entries written by tagcache (so each strategy finds the same data):
//!
//! - tagcache `invalidate_tag`: snapshot, then chunks of `chunk_size`;
//! - one Lua script deleting every entry of the index and the index: the
//!   server's physical limit (fewest round trips, no per-call overhead);
//! - one Lua script that also removes each entry from its other tags'
//!   indexes, as tagcache does: the complete job, one command per edge;
//! - the same with the edges removed by one `ZREM` per index (members
//!   collected over the whole tag) and batched `DEL`s: the complete job
//!   at the fewest commands;
//! - KEYS with a pattern, then DEL of what it returned (1000 a call);
//! - SCAN MATCH, UNLINK of each page.
//!
//! (KEYS and SCAN appear here only as baselines; tagcache never uses them.)
//! For each, the wall time, the server time per entry and the stalls a
//! separate client saw. With `--slow-server` ([`super::slow`]), tagcache
//! and the Lua scripts run once more on a slowed server.

use std::time::Duration;

use serde::Serialize;
use tagcache::Cache;

use super::census::{self, Census};
use super::layout::{Footprint, Space};
use super::measure::{self, measure, median_round};
use super::pin::while_pinned;
use super::probe::{Probe, Stalls};
use super::report::Goal;
use super::server::Cost;
use super::slow::Slowdown;
use super::Bench;
use crate::error::{BenchError, Result};

/// The tag every entry of this phase carries (tag 0).
const INVALIDATED: &str = "inv:all";

/// The baseline script: one call, every member, no declared entry keys
/// (fine on a single server, which is all a baseline needs).
/// KEYS: tag index. ARGV: entry key prefix.
const DELETE_ALL_LUA: &str = r"
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local batch = {}
for _, m in ipairs(members) do
  batch[#batch + 1] = ARGV[1] .. m
  if #batch == 500 then
    redis.call('DEL', unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call('DEL', unpack(batch))
end
redis.call('DEL', KEYS[1])
return #members
";

/// The same as [`DELETE_ALL_LUA`], plus what tagcache also does: remove
/// each entry from its other tags' indexes, read from the entry's header
/// (`docs/redis-layout.md`). The limit for the complete job.
/// KEYS: tag index. ARGV: entry key prefix, tag index prefix, tag.
const DELETE_WITH_EDGES_LUA: &str = r"
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, m in ipairs(members) do
  local key = ARGV[1] .. m
  local head = redis.call('GETRANGE', key, 0, 5)
  if #head == 6 then
    local len = struct.unpack('>I4', head, 3)
    if len > 0 then
      local section = redis.call('GETRANGE', key, 6, 5 + len)
      local i = 1
      while i <= #section do
        local n = struct.unpack('>I2', section, i)
        local tag = string.sub(section, i + 2, i + 1 + n)
        if tag ~= ARGV[3] then
          redis.call('ZREM', ARGV[2] .. tag, m)
        end
        i = i + 2 + n
      end
    end
    redis.call('DEL', key)
  end
end
redis.call('DEL', KEYS[1])
return #members
";

/// [`DELETE_WITH_EDGES_LUA`] at the fewest commands: the members of each
/// other index are collected over the whole tag and removed with one
/// `ZREM` per index (500 members a command), entries with one `DEL` per
/// 500, and the tag section is read with one `GETRANGE` of the first 256
/// bytes when it fits.
/// KEYS: tag index. ARGV: entry key prefix, tag index prefix, tag.
const DELETE_WITH_EDGES_BATCHED_LUA: &str = r"
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local edges, order, doomed = {}, {}, {}
local function all(command, key, items)
  for i = 1, #items, 500 do
    local j = math.min(i + 499, #items)
    if key then
      redis.call(command, key, unpack(items, i, j))
    else
      redis.call(command, unpack(items, i, j))
    end
  end
end
for _, m in ipairs(members) do
  local key = ARGV[1] .. m
  local head = redis.call('GETRANGE', key, 0, 255)
  if #head >= 6 then
    local len = struct.unpack('>I4', head, 3)
    local section = string.sub(head, 7, 6 + len)
    if #section < len then
      section = redis.call('GETRANGE', key, 6, 5 + len)
    end
    local i = 1
    while i <= #section do
      local n = struct.unpack('>I2', section, i)
      local tag = string.sub(section, i + 2, i + 1 + n)
      if tag ~= ARGV[3] then
        local e = edges[tag]
        if not e then
          e = {}
          edges[tag] = e
          order[#order + 1] = tag
        end
        e[#e + 1] = m
      end
      i = i + 2 + n
    end
    doomed[#doomed + 1] = key
  end
end
all('DEL', nil, doomed)
for _, tag in ipairs(order) do
  all('ZREM', ARGV[2] .. tag, edges[tag])
end
redis.call('DEL', KEYS[1])
return #members
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Tagcache,
    Lua,
    LuaEdges,
    LuaEdgesBatched,
    KeysDel,
    ScanUnlink,
}

const STRATEGIES: [Strategy; 6] = [
    Strategy::Tagcache,
    Strategy::Lua,
    Strategy::LuaEdges,
    Strategy::LuaEdgesBatched,
    Strategy::KeysDel,
    Strategy::ScanUnlink,
];

/// What runs again on the slowed server (`--slow-server`).
const SLOWED: [Strategy; 4] = [
    Strategy::Tagcache,
    Strategy::Lua,
    Strategy::LuaEdges,
    Strategy::LuaEdgesBatched,
];

impl Strategy {
    fn id(self, slowed: bool) -> &'static str {
        match (self, slowed) {
            (Strategy::Tagcache, false) => "tagcache",
            (Strategy::Lua, false) => "lua",
            (Strategy::LuaEdges, false) => "lua_edges",
            (Strategy::LuaEdgesBatched, false) => "lua_edges_batched",
            (Strategy::KeysDel, false) => "keys_del",
            (Strategy::ScanUnlink, false) => "scan_unlink",
            (Strategy::Tagcache, true) => "tagcache_slowed",
            (Strategy::Lua, true) => "lua_slowed",
            (Strategy::LuaEdges, true) => "lua_edges_slowed",
            (Strategy::LuaEdgesBatched, true) => "lua_edges_batched_slowed",
            (Strategy::KeysDel, true) => "keys_del_slowed",
            (Strategy::ScanUnlink, true) => "scan_unlink_slowed",
        }
    }

    fn label(self, slowed: bool) -> &'static str {
        match (self, slowed) {
            (Strategy::Tagcache, false) => "tagcache invalidate_tag",
            (Strategy::Lua, false) => "one Lua script (limit)",
            (Strategy::LuaEdges, false) => "one Lua script, + other tags' edges",
            (Strategy::LuaEdgesBatched, false) => "one Lua script, + edges, batched",
            (Strategy::KeysDel, false) => "KEYS + DEL",
            (Strategy::ScanUnlink, false) => "SCAN MATCH + UNLINK",
            (Strategy::Tagcache, true) => "SLOWED tagcache invalidate_tag",
            (Strategy::Lua, true) => "SLOWED one Lua script (limit)",
            (Strategy::LuaEdges, true) => "SLOWED one Lua script, + edges",
            (Strategy::LuaEdgesBatched, true) => "SLOWED one Lua script, + edges, batched",
            (Strategy::KeysDel, true) => "SLOWED KEYS + DEL",
            (Strategy::ScanUnlink, true) => "SLOWED SCAN MATCH + UNLINK",
        }
    }

    /// Namespace suffix (namespaces are limited to 64 characters).
    fn short(self) -> &'static str {
        match self {
            Strategy::Tagcache => "tc",
            Strategy::Lua => "lua",
            Strategy::LuaEdges => "edges",
            Strategy::LuaEdgesBatched => "eb",
            Strategy::KeysDel => "keys",
            Strategy::ScanUnlink => "scan",
        }
    }

    fn sent(self) -> &'static [&'static str] {
        match self {
            Strategy::Tagcache => &["evalsha", "zrange"],
            Strategy::Lua | Strategy::LuaEdges | Strategy::LuaEdgesBatched => &["evalsha"],
            Strategy::KeysDel => &["keys", "del"],
            Strategy::ScanUnlink => &["scan", "unlink"],
        }
    }
}

/// One strategy's figures (of the round with the median wall time).
#[derive(Debug, Clone, Serialize)]
pub struct Invalidation {
    /// `tagcache`, `lua`, `lua_edges`, `lua_edges_batched`, `keys_del`,
    /// `scan_unlink`; with `_slowed` for the runs on the slowed server.
    pub strategy: &'static str,
    /// Human name.
    pub label: &'static str,
    /// Entries under the tag.
    pub entries: u64,
    /// Entries the strategy reported deleted.
    pub deleted: u64,
    /// Wall time, milliseconds.
    pub wall_ms: f64,
    /// Wall time of every round, milliseconds, fastest first.
    pub rounds_wall_ms: Vec<f64>,
    /// What the PING probe saw (in the median round).
    pub stalls: Stalls,
    /// The probe's waits over that round, `[ms since start, wait ms]`
    /// (for `--report` charts).
    pub probe_timeline_ms: Vec<[f64; 2]>,
    /// The longest stall of any round.
    pub worst_round_longest_stall_ms: f64,
    /// The longest single command in the slow log (private server only).
    pub server_longest_command_ms: Option<f64>,
    /// Server cost per entry deleted.
    pub cost_per_entry: Cost,
    /// Server µs per entry of every round, in round order (the rounds of
    /// all strategies alternate, so round `r` of two strategies ran
    /// seconds apart: their ratio is the one least moved by a machine
    /// that changes speed).
    pub rounds_server_usec_per_entry: Vec<f64>,
    /// Commands the client sent in total (`INFO commandstats` of the
    /// timed run; for tagcache, less the one `ZRANGE` each of its script
    /// calls runs inside: the fence trim's look at the lowest fence).
    pub commands_sent: f64,
}

/// Entries of the MONITOR census (the exact count of commands tagcache
/// sends); larger invalidations are extrapolated from it.
const CENSUS_MAX_ENTRIES: u64 = 100_000;

/// The commands an untimed tagcache invalidation sent, counted by MONITOR.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SentCensus {
    /// Entries invalidated in the census.
    pub entries: u64,
    /// What MONITOR saw.
    #[serde(flatten)]
    pub census: Census,
}

/// Server time per invalidated entry, tagcache's over each Lua script's
/// (same run, same server, same mode).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerRatios {
    /// tagcache's server µs per entry.
    pub tagcache_usec_per_entry: f64,
    /// Over the complete-job script, one command per edge.
    pub vs_lua_edges: f64,
    /// Over the complete-job script with batched `ZREM`s and `DEL`s.
    pub vs_lua_edges_batched: f64,
    /// Over the delete-only script.
    pub vs_lua: f64,
}

impl ServerRatios {
    fn of(runs: &[Invalidation], slowed: bool) -> Self {
        let usec = |s: Strategy| {
            runs.iter()
                .find(|r| r.strategy == s.id(slowed))
                .map_or(f64::NAN, |r| r.cost_per_entry.server_usec_per_op)
        };
        let rounds = |s: Strategy| {
            runs.iter()
                .find(|r| r.strategy == s.id(slowed))
                .map(|r| r.rounds_server_usec_per_entry.clone())
                .unwrap_or_default()
        };
        // The median of the rounds' ratios (round r of both ran seconds
        // apart); the ratio of the median rounds when the counts differ.
        let ratio = |s: Strategy| {
            let (tc, other) = (rounds(Strategy::Tagcache), rounds(s));
            if tc.is_empty() || tc.len() != other.len() {
                return usec(Strategy::Tagcache) / usec(s);
            }
            let mut r: Vec<f64> = tc.iter().zip(&other).map(|(a, b)| a / b).collect();
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        };
        Self {
            tagcache_usec_per_entry: usec(Strategy::Tagcache),
            vs_lua_edges: ratio(Strategy::LuaEdges),
            vs_lua_edges_batched: ratio(Strategy::LuaEdgesBatched),
            vs_lua: ratio(Strategy::Lua),
        }
    }
}

/// The invalidation on a slowed server (`--slow-server`).
#[derive(Debug, Clone, Serialize)]
pub struct SlowedReport {
    /// What slowed the server, in words.
    pub how: String,
    /// What the probe saw with the slowed server idle.
    pub idle_stalls: Stalls,
    /// Server time ratios on the slowed server (runs `*_slowed`).
    pub server_ratios: ServerRatios,
}

/// The phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidationReport {
    /// The machine's load average (1, 5, 15 min) when the phase began.
    pub load_average: Option<[f64; 3]>,
    /// What the probe saw with the server idle (the machine's noise).
    pub idle_stalls: Stalls,
    /// tagcache's commands, counted by MONITOR in an untimed run (absent
    /// when MONITOR is not allowed): what it sends apart from what its
    /// scripts run. MONITOR slows the server, so the time-paced calls
    /// carry fewer entries there than in the timed runs (whose
    /// `commands_sent` comes from `INFO commandstats`).
    pub census: Option<SentCensus>,
    /// One per strategy.
    pub runs: Vec<Invalidation>,
    /// tagcache's wall time over the Lua script's.
    pub wall_vs_lua: f64,
    /// tagcache's wall time over the edge-removing Lua script's.
    pub wall_vs_lua_edges: f64,
    /// Server time per entry against the Lua scripts.
    pub server_ratios: ServerRatios,
    /// The same on a slowed server (`--slow-server`).
    pub slowed: Option<SlowedReport>,
    /// The CPUs of the server and of the bench while measured (`None`:
    /// not pinned: a given server, one CPU, or no `taskset`).
    pub pinned: Option<(u32, String)>,
    /// Wall-time, server-time and stall goals.
    pub goals: Vec<Goal>,
}

impl InvalidationReport {
    /// The server-time ratios and stalls, in words (printed under the
    /// table).
    pub fn summary(&self) -> String {
        let line = |r: &ServerRatios, stalls: Option<Stalls>| {
            let mut out = format!(
                "server time per entry: tagcache {:.2} µs = {:.2}× the complete-job script, \
                 {:.2}× its batched form, {:.2}× the delete-only script",
                r.tagcache_usec_per_entry, r.vs_lua_edges, r.vs_lua_edges_batched, r.vs_lua
            );
            if let Some(s) = stalls {
                out += &format!(
                    "; tagcache's stalls: longest {:.1} ms, p99 {:.1} ms",
                    s.longest_ms, s.p99_ms
                );
            }
            out
        };
        let stalls = |slowed: bool| {
            self.runs
                .iter()
                .find(|r| r.strategy == Strategy::Tagcache.id(slowed))
                .map(|r| r.stalls)
        };
        let mut out = String::new();
        if let Some([a, b, c]) = self.load_average {
            out += &format!("\n  load average {a:.2} {b:.2} {c:.2}");
        }
        match &self.pinned {
            Some((server, bench)) => {
                out += &format!("; redis-server on CPU {server}, the bench on CPU {bench}");
            }
            None => out += "; redis-server and the bench not pinned",
        }
        out += &format!("\n  {}", line(&self.server_ratios, stalls(false)));
        if let Some(s) = &self.slowed {
            out += &format!(
                "\n  SLOWED ({}; idle longest {:.1} ms, p99 {:.1} ms): {}",
                s.how,
                s.idle_stalls.longest_ms,
                s.idle_stalls.p99_ms,
                line(&s.server_ratios, stalls(true))
            );
        }
        out
    }
}

/// `/proc/loadavg`, when there is one.
pub(super) fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Runs every strategy `--rounds` times (and, with `--slow-server`, the
/// Lua scripts and tagcache again on the slowed server).
pub async fn run(b: &Bench<'_>) -> Result<InvalidationReport> {
    if b.plan.slow_server && !b.target.is_private() {
        return Err(BenchError::error(
            "--slow-server needs the bench's private redis-server (drop --url)",
        ));
    }
    let load_average = load_average();
    let (mut report, pinned) =
        while_pinned(&b.raw, b.target.is_private(), measured(b, load_average)).await?;
    report.pinned = pinned;
    Ok(report)
}

/// [`run`] once the CPUs are set.
async fn measured(b: &Bench<'_>, load_average: Option<[f64; 3]>) -> Result<InvalidationReport> {
    b.progress.set("invalidation: idle probe");
    let idle_stalls = idle_probe(b).await?;
    let mut runs = all_rounds(b, &STRATEGIES, false).await?;
    let census = census(b).await?;
    let slowed = if b.plan.slow_server {
        let slowdown = Slowdown::start(&b.raw, b.plan.slow_by).await?;
        let how = slowdown.description.clone();
        let measured = async {
            b.progress.set("invalidation: idle probe, server slowed");
            let idle = idle_probe(b).await?;
            let slowed_runs = all_rounds(b, &SLOWED, true).await?;
            Ok::<_, BenchError>((idle, slowed_runs))
        }
        .await;
        slowdown.stop()?;
        let (idle_stalls, slowed_runs) = measured?;
        runs.extend(slowed_runs);
        Some(SlowedReport {
            how,
            idle_stalls,
            server_ratios: ServerRatios::of(&runs, true),
        })
    } else {
        None
    };
    let wall = |s: Strategy| {
        runs.iter()
            .find(|r| r.strategy == s.id(false))
            .map_or(f64::NAN, |r| r.wall_ms)
    };
    let wall_vs_lua = wall(Strategy::Tagcache) / wall(Strategy::Lua);
    let wall_vs_lua_edges = wall(Strategy::Tagcache) / wall(Strategy::LuaEdges);
    let server_ratios = ServerRatios::of(&runs, false);
    // The longest stall of the worst round; the 99th percentile of the
    // median round (each round PINGs ~1000 times).
    let stalls = |slowed: bool| {
        runs.iter()
            .find(|r| r.strategy == Strategy::Tagcache.id(slowed))
            .map(|r| (r.worst_round_longest_stall_ms, r.stalls.p99_ms))
    };
    // The wall time against the delete-only script (`wall_vs_lua`) is
    // reported, not held to a bound: that script leaves every other index
    // edge of the dropped entries behind, which no exact invalidation can.
    let (longest, p99) = stalls(false).unwrap_or((f64::NAN, f64::NAN));
    let mut goals = vec![
        Goal::at_most("invalidate_server_us_vs_lua_edges", 1.2, "x")
            .check(server_ratios.vs_lua_edges),
        Goal::at_most("invalidate_longest_stall_ms", 10.0, "ms").check(longest),
        Goal::at_most("invalidate_p99_stall_ms", 5.0, "ms").check(p99),
    ];
    if let Some((longest, p99)) = stalls(true) {
        goals.push(Goal::at_most("invalidate_slowed_longest_stall_ms", 10.0, "ms").check(longest));
        goals.push(Goal::at_most("invalidate_slowed_p99_stall_ms", 5.0, "ms").check(p99));
    }
    Ok(InvalidationReport {
        load_average,
        idle_stalls,
        census,
        runs,
        wall_vs_lua,
        wall_vs_lua_edges,
        server_ratios,
        slowed,
        pinned: None,
        goals,
    })
}

/// Half a second of probing an idle server.
pub(super) async fn idle_probe(b: &Bench<'_>) -> Result<Stalls> {
    let probe = Probe::start(&b.client)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(probe.stop().await?)
}

/// Every strategy of `strategies`, `--rounds` times; the median round of
/// each.
async fn all_rounds(
    b: &Bench<'_>,
    strategies: &[Strategy],
    slowed: bool,
) -> Result<Vec<Invalidation>> {
    let mut rounds: Vec<Vec<Invalidation>> = strategies.iter().map(|_| Vec::new()).collect();
    for round in 0..b.plan.rounds {
        for (s, strategy) in strategies.iter().enumerate() {
            rounds[s].push(once(b, *strategy, round, slowed).await?);
        }
    }
    Ok(rounds
        .into_iter()
        .filter_map(|all| {
            let per_round = all
                .iter()
                .map(|r| r.cost_per_entry.server_usec_per_op)
                .collect();
            let mut median = median_round(all)?;
            median.rounds_server_usec_per_entry = per_round;
            Some(median)
        })
        .collect())
}

// The round with the median wall time, which also carries every round's
// wall time and the worst stall of all rounds: on a noisy machine one
// round can be descheduled for a long time, and a best-of would pair
// one round's wall time with another's stall.
measure::impl_round!(Invalidation);

/// Writes `n` entries under the invalidated tag in a fresh namespace.
async fn prepare(b: &Bench<'_>, suffix: &str, n: u64, what: &str) -> Result<(Cache, Footprint)> {
    let phase = format!("invalidation: writing {n} entries for {what}");
    measure::prepare(b, suffix, n, Some(INVALIDATED), phase).await
}

/// An untimed tagcache invalidation under MONITOR; `None` when the server
/// refuses MONITOR.
async fn census(b: &Bench<'_>) -> Result<Option<SentCensus>> {
    let n = b.plan.invalidate_entries.min(CENSUS_MAX_ENTRIES);
    let (cache, fp) = prepare(b, "inv-census", n, "the command census").await?;
    b.progress.set(format!(
        "invalidation: counting tagcache's commands ({n} entries)"
    ));
    let counted = census::count(b, async { Ok(cache.invalidate_tag(INVALIDATED).await?) }).await;
    b.janitor.wipe(&b.raw, &fp).await?;
    match counted {
        Ok((_, census)) => Ok(Some(SentCensus { entries: n, census })),
        Err(e) => {
            tracing::warn!("no command census (MONITOR refused?): {e}");
            Ok(None)
        }
    }
}

async fn once(b: &Bench<'_>, strategy: Strategy, round: u32, slowed: bool) -> Result<Invalidation> {
    let n = b.plan.invalidate_entries;
    let suffix = format!(
        "inv-{}{}{round}",
        strategy.short(),
        if slowed { "s" } else { "" }
    );
    let (cache, fp) = prepare(b, &suffix, n, strategy.label(slowed)).await?;
    let space = fp.space.clone();
    let script = redis::Script::new(match strategy {
        Strategy::LuaEdges => DELETE_WITH_EDGES_LUA,
        Strategy::LuaEdgesBatched => DELETE_WITH_EDGES_BATCHED_LUA,
        _ => DELETE_ALL_LUA,
    });
    script.load_async(&mut b.raw.clone()).await?;
    let phase = format!("invalidation: {} ({n} entries)", strategy.label(slowed));
    let m = measure(b, phase, execute(b, strategy, &cache, &space, &script)).await?;
    let (deleted, wall, stalls, probe_timeline_ms) = (m.out, m.wall, m.stalls, m.timeline);
    let (before, after, server_longest_command_ms) =
        (m.before, m.after, m.server_longest_command_ms);
    b.janitor.wipe(&b.raw, &fp).await?;
    let cost = before.cost_until(&after, strategy.sent(), n);
    // tagcache's scripts (`snapshot.lua`, `drop.lua`) each run one
    // `ZRANGE` of their own (the fence trim's look at the lowest fence),
    // counted in `INFO commandstats` as if sent: not a command sent. (Its
    // time stays in: a mean over both kinds of `ZRANGE` would take off
    // part of the chunk reads, which are the costlier.)
    let sent_per_entry = match strategy {
        Strategy::Tagcache => {
            before
                .cost_until_nested(&after, strategy.sent(), &[("zrange", "evalsha")], n)
                .commands_sent_per_op
        }
        _ => cost.commands_sent_per_op,
    };
    Ok(Invalidation {
        strategy: strategy.id(slowed),
        label: strategy.label(slowed),
        entries: n,
        deleted,
        wall_ms: wall.as_secs_f64() * 1000.0,
        rounds_wall_ms: Vec::new(),
        stalls,
        probe_timeline_ms,
        worst_round_longest_stall_ms: stalls.longest_ms,
        server_longest_command_ms,
        cost_per_entry: cost,
        rounds_server_usec_per_entry: Vec::new(),
        commands_sent: sent_per_entry * n as f64,
    })
}

async fn execute(
    b: &Bench<'_>,
    strategy: Strategy,
    cache: &Cache,
    space: &Space,
    script: &redis::Script,
) -> Result<u64> {
    let mut conn = b.raw.clone();
    let pattern = space.entry("item:*");
    match strategy {
        Strategy::Tagcache => Ok(cache.invalidate_tag(INVALIDATED).await?),
        Strategy::Lua => Ok(script
            .key(space.tag(INVALIDATED))
            .arg(space.entry_prefix())
            .invoke_async(&mut conn)
            .await?),
        Strategy::LuaEdges | Strategy::LuaEdgesBatched => Ok(script
            .key(space.tag(INVALIDATED))
            .arg(space.entry_prefix())
            .arg(space.tag(""))
            .arg(INVALIDATED)
            .invoke_async(&mut conn)
            .await?),
        Strategy::KeysDel => {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await?;
            let mut pipe = redis::pipe();
            for chunk in keys.chunks(1000) {
                pipe.cmd("DEL").arg(chunk);
            }
            let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
            Ok(counts.iter().sum())
        }
        Strategy::ScanUnlink => measure::scan_unlink(&mut conn, &pattern).await,
    }
}
