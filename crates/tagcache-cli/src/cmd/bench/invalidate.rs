//! Invalidating one tag of N entries, four ways, each on a fresh set of N
//! entries written by tagcache (so each strategy finds the same data):
//!
//! - tagcache `invalidate_tag`: snapshot, then chunks of `chunk_size`;
//! - one Lua script deleting every entry of the index and the index: the
//!   server's physical limit (fewest round trips, no per-call overhead);
//! - one Lua script that also removes each entry from its other tags'
//!   indexes, as tagcache does: the limit for the complete job;
//! - KEYS with a pattern, then DEL of what it returned (1000 a call);
//! - SCAN MATCH, UNLINK of each page.
//!
//! (KEYS and SCAN appear here only as baselines; tagcache never uses them.)
//! For each, the wall time and the stalls a separate client saw.

use std::time::{Duration, Instant};

use serde::Serialize;
use tagcache::{Cache, SetOptions};

use super::census::{self, Census};
use super::layout::{Footprint, Keys, Space};
use super::probe::{Probe, Stalls};
use super::report::Goal;
use super::server::{self, Cost};
use super::writes::load;
use super::{Bench, TTL};
use crate::error::Result;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Tagcache,
    Lua,
    LuaEdges,
    KeysDel,
    ScanUnlink,
}

const STRATEGIES: [Strategy; 5] = [
    Strategy::Tagcache,
    Strategy::Lua,
    Strategy::LuaEdges,
    Strategy::KeysDel,
    Strategy::ScanUnlink,
];

impl Strategy {
    fn id(self) -> &'static str {
        match self {
            Strategy::Tagcache => "tagcache",
            Strategy::Lua => "lua",
            Strategy::LuaEdges => "lua_edges",
            Strategy::KeysDel => "keys_del",
            Strategy::ScanUnlink => "scan_unlink",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Strategy::Tagcache => "tagcache invalidate_tag",
            Strategy::Lua => "one Lua script (limit)",
            Strategy::LuaEdges => "one Lua script, + other tags' edges",
            Strategy::KeysDel => "KEYS + DEL",
            Strategy::ScanUnlink => "SCAN MATCH + UNLINK",
        }
    }

    /// Namespace suffix (namespaces are limited to 64 characters).
    fn short(self) -> &'static str {
        match self {
            Strategy::Tagcache => "tc",
            Strategy::Lua => "lua",
            Strategy::LuaEdges => "edges",
            Strategy::KeysDel => "keys",
            Strategy::ScanUnlink => "scan",
        }
    }

    fn sent(self) -> &'static [&'static str] {
        match self {
            Strategy::Tagcache => &["evalsha", "zrange"],
            Strategy::Lua | Strategy::LuaEdges => &["evalsha"],
            Strategy::KeysDel => &["keys", "del"],
            Strategy::ScanUnlink => &["scan", "unlink"],
        }
    }
}

/// One strategy's figures (of the round with the median wall time).
#[derive(Debug, Clone, Serialize)]
pub struct Invalidation {
    /// `tagcache`, `lua`, `keys_del`, `scan_unlink`.
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
    /// Commands the client sent in total.
    pub commands_sent: f64,
    /// Where that count comes from: `commandstats` (exact for commands
    /// that scripts do not also run), `monitor` (exact) or `monitor,
    /// extrapolated` (from a smaller census).
    pub commands_sent_source: &'static str,
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

/// The phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidationReport {
    /// What the probe saw with the server idle (the machine's noise).
    pub idle_stalls: Stalls,
    /// tagcache's commands, counted exactly (absent when MONITOR is not
    /// allowed); `runs[tagcache].commands_sent` comes from it.
    pub census: Option<SentCensus>,
    /// One per strategy.
    pub runs: Vec<Invalidation>,
    /// tagcache's wall time over the Lua script's.
    pub wall_vs_lua: f64,
    /// tagcache's wall time over the edge-removing Lua script's.
    pub wall_vs_lua_edges: f64,
    /// Wall-time and stall goals.
    pub goals: Vec<Goal>,
}

/// Runs every strategy `--rounds` times.
pub async fn run(b: &Bench<'_>) -> Result<InvalidationReport> {
    b.progress.set("invalidation: idle probe");
    let probe = Probe::start(&b.client)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_stalls = probe.stop().await?;
    let mut rounds: Vec<Vec<Invalidation>> = STRATEGIES.iter().map(|_| Vec::new()).collect();
    for round in 0..b.plan.rounds {
        for (s, strategy) in STRATEGIES.iter().enumerate() {
            rounds[s].push(once(b, *strategy, round).await?);
        }
    }
    let mut runs: Vec<Invalidation> = rounds.into_iter().filter_map(median_round).collect();
    let census = census(b).await?;
    if let (Some(c), Some(run)) = (census, runs.iter_mut().find(|r| r.strategy == "tagcache")) {
        run.commands_sent = c.census.sent as f64 * run.entries as f64 / c.entries as f64;
        run.commands_sent_source = if c.entries == run.entries {
            "monitor"
        } else {
            "monitor, extrapolated"
        };
    }
    let wall = |s: Strategy| {
        runs.iter()
            .find(|r| r.strategy == s.id())
            .map_or(f64::NAN, |r| r.wall_ms)
    };
    let wall_vs_lua = wall(Strategy::Tagcache) / wall(Strategy::Lua);
    let wall_vs_lua_edges = wall(Strategy::Tagcache) / wall(Strategy::LuaEdges);
    let stall = runs
        .iter()
        .find(|r| r.strategy == Strategy::Tagcache.id())
        .map_or(f64::NAN, |r| r.stalls.longest_ms);
    let goals = vec![
        Goal::at_most("invalidate_wall_vs_lua", 1.25, "x").check(wall_vs_lua),
        Goal::at_most("invalidate_longest_stall_ms", 10.0, "ms").check(stall),
    ];
    Ok(InvalidationReport {
        idle_stalls,
        census,
        runs,
        wall_vs_lua,
        wall_vs_lua_edges,
        goals,
    })
}

/// The round with the median wall time, which also carries every round's
/// wall time and the worst stall of all rounds: on a noisy machine one
/// round can be descheduled for a long time, and a best-of would pair
/// one round's wall time with another's stall.
fn median_round(mut runs: Vec<Invalidation>) -> Option<Invalidation> {
    runs.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    let walls: Vec<f64> = runs.iter().map(|r| r.wall_ms).collect();
    let worst = runs.iter().map(|r| r.stalls.longest_ms).fold(0.0, f64::max);
    let mid = runs.len() / 2;
    let mut median = runs.into_iter().nth(mid)?;
    median.rounds_wall_ms = walls;
    median.worst_round_longest_stall_ms = worst;
    Some(median)
}

/// Writes `n` entries under the invalidated tag in a fresh namespace.
async fn prepare(b: &Bench<'_>, suffix: &str, n: u64, what: &str) -> Result<(Cache, Footprint)> {
    let wl = &b.plan.inv_workload;
    let space = Space::new(b.plan.namespace(suffix));
    let fp = Footprint {
        keys: Keys::Items,
        space: space.clone(),
        entries: n,
        tags: wl.tag_set(n, Some(INVALIDATED)),
    };
    b.janitor.track(&fp);
    let cache = b.cache(space.name()).await?;
    b.progress
        .set(format!("invalidation: writing {n} entries for {what}"));
    load(&cache, n, |i| {
        let tags = wl.tags_of(i, Some(INVALIDATED));
        (wl.value().to_vec(), SetOptions::new().ttl(TTL).tags(tags))
    })
    .await?;
    Ok((cache, fp))
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

async fn once(b: &Bench<'_>, strategy: Strategy, round: u32) -> Result<Invalidation> {
    let n = b.plan.invalidate_entries;
    let suffix = format!("inv-{}{round}", strategy.short());
    let (cache, fp) = prepare(b, &suffix, n, strategy.label()).await?;
    let space = fp.space.clone();
    let script = redis::Script::new(match strategy {
        Strategy::LuaEdges => DELETE_WITH_EDGES_LUA,
        _ => DELETE_ALL_LUA,
    });
    script.load_async(&mut b.raw.clone()).await?;
    if let Some(log) = &b.slowlog {
        log.reset().await?;
    }
    b.progress
        .set(format!("invalidation: {} ({n} entries)", strategy.label()));
    let before = server::sample(&b.raw).await?;
    let probe = Probe::start(&b.client)?;
    let start = Instant::now();
    let deleted = execute(b, strategy, &cache, &space, &script).await;
    let wall = start.elapsed();
    let (stalls, probe_timeline_ms) = probe.stop_with_timeline().await?;
    let deleted = deleted?;
    let after = server::sample(&b.raw).await?;
    let server_longest_command_ms = match &b.slowlog {
        Some(log) => Some(log.longest_ms().await?),
        None => None,
    };
    b.janitor.wipe(&b.raw, &fp).await?;
    let cost = before.cost_until(&after, strategy.sent(), n);
    Ok(Invalidation {
        strategy: strategy.id(),
        label: strategy.label(),
        entries: n,
        deleted,
        wall_ms: wall.as_secs_f64() * 1000.0,
        rounds_wall_ms: Vec::new(),
        stalls,
        probe_timeline_ms,
        worst_round_longest_stall_ms: stalls.longest_ms,
        server_longest_command_ms,
        cost_per_entry: cost,
        commands_sent: cost.commands_sent_per_op * n as f64,
        commands_sent_source: "commandstats",
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
        Strategy::LuaEdges => Ok(script
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
        Strategy::ScanUnlink => {
            let (mut cursor, mut deleted) = (0u64, 0u64);
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    deleted += redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async::<u64>(&mut conn)
                        .await?;
                }
                if next == 0 {
                    return Ok(deleted);
                }
                cursor = next;
            }
        }
    }
}
