//! Write throughput: tagcache against the raw commands that do what its
//! write does (SET PX, a ZADD per index edge, a registry ZADD LT per
//! index), sent the same way, plus plain pipelined SET for scale. The
//! entries' keys are `item:<i>`, 2-part paths: tagcache files each in the
//! `item` prefix index besides its tags, and so do the raw baselines.
//!
//! Batched: `set_many_bytes` of `--batch` entries vs a pipeline of the
//! same entries, [`BATCHES_IN_FLIGHT`] of either in flight. One at a time:
//! `--concurrency` concurrent `set_bytes` calls (tagcache coalesces them)
//! vs as many concurrent one-entry pipelines.

use std::collections::BTreeSet;

use tagcache::{Cache, SetOptions};

use super::layout::{item_key, prefix_tag, Footprint, Keys, Space};
use super::measure::paired_ratio;
use super::report::{Comparison, Goal, Run};
use super::{batches, drive, now_ms, Bench, BATCHES_IN_FLIGHT, TTL};
use crate::error::{BenchError, Result};

/// The least a script can do for a batch with the same effect on the
/// data: SET PX and a ZADD per tag for each entry, one registry ZADD LT
/// per tag (no old-tag cleanup, no trimming, no declared keys). It shows
/// how much of tagcache's write cost is the script call itself.
/// ARGV: entry prefix, index prefix, registry, ttl ms, expiry ms, then per
/// entry: key, value, tag count, tags.
const MINIMAL_SET_LUA: &str = r"
local ep, tp, reg, ttl, exp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local seen = {}
local i = 6
while i <= #ARGV do
  local key, nt = ARGV[i], tonumber(ARGV[i + 2])
  redis.call('SET', ep .. key, ARGV[i + 1], 'PX', ttl)
  for j = 1, nt do
    local tag = ARGV[i + 2 + j]
    redis.call('ZADD', tp .. tag, exp, key)
    seen[tag] = true
  end
  i = i + 3 + nt
end
for tag in pairs(seen) do
  redis.call('ZADD', reg, 'LT', exp, tag)
end
return 1
";

/// One way of writing the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    RawPlain,
    RawBatched,
    SetMany,
    LuaBatched,
    RawEach,
    SetBytes,
}

/// In the order run (baselines and tagcache alternate, so drift of a
/// noisy machine hits both; odd rounds swap each goal's pair).
const MODES: [Mode; 6] = [
    Mode::RawPlain,
    Mode::RawBatched,
    Mode::SetMany,
    Mode::LuaBatched,
    Mode::RawEach,
    Mode::SetBytes,
];

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::RawPlain => "raw SET PX, pipelined",
            Mode::RawBatched => "raw SET PX + ZADDs, pipelined",
            Mode::SetMany => "tagcache set_many_bytes",
            Mode::LuaBatched => "minimal Lua script per batch",
            Mode::RawEach => "raw SET PX + ZADDs, one pipeline per entry",
            Mode::SetBytes => "tagcache set_bytes",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Mode::RawPlain => "w-plain",
            Mode::RawBatched => "w-raw",
            Mode::SetMany => "w-many",
            Mode::LuaBatched => "w-lua",
            Mode::RawEach => "w-raw1",
            Mode::SetBytes => "w-one",
        }
    }

    /// The commands its client sends.
    fn sent(self) -> &'static [&'static str] {
        match self {
            Mode::RawPlain => &["set"],
            Mode::RawBatched | Mode::RawEach => &["set", "zadd"],
            Mode::LuaBatched => &["evalsha"],
            // The transaction write path (EXEC includes what it runs) and
            // any script call (unlink, fallbacks); the clock's TIME, once
            // per 10 s, is left out (inside set.lua it would count twice).
            Mode::SetMany | Mode::SetBytes => &["evalsha", "multi", "exec"],
        }
    }
}

/// The data sets kept for the read phase.
#[derive(Debug)]
pub struct Kept {
    /// Written by `set_many_bytes`.
    pub tagcache: Footprint,
    /// Written by the batched raw pipeline.
    pub raw: Footprint,
}

/// Runs every write mode `--rounds` times; each goal's ratio is the median
/// of its per-round ratios (tagcache and its baseline run one after the
/// other, in alternating order), the ops/s columns each side's best round.
pub async fn run(b: &Bench<'_>) -> Result<(Vec<Comparison>, Kept)> {
    let rounds = b.plan.rounds;
    let mut best: [Option<Run>; MODES.len()] = [None; MODES.len()];
    let mut all: [Vec<f64>; MODES.len()] = Default::default();
    let (mut kept_tc, mut kept_raw) = (None, None);
    for round in 0..rounds {
        let mut order = MODES;
        if round % 2 == 1 {
            // tagcache before its baseline this round.
            order.swap(1, 2);
            order.swap(4, 5);
        }
        for mode in order {
            let m = index_of(mode);
            b.progress.set(format!(
                "writes: {} (round {}/{rounds})",
                mode.label(),
                round + 1
            ));
            let (run, fp) = write_once(b, mode, round).await?;
            best[m] = Some(Run::faster(best[m], run));
            all[m].push(run.ops_per_sec);
            match (round + 1 == rounds, mode) {
                (true, Mode::SetMany) => kept_tc = Some(fp),
                (true, Mode::RawBatched) => kept_raw = Some(fp),
                _ => b.janitor.wipe(&b.raw, &fp).await?,
            }
        }
    }
    let (Some(tagcache), Some(raw)) = (kept_tc, kept_raw) else {
        return Err(BenchError::error("no write round ran"));
    };
    Ok((compare(b, &best, &all), Kept { tagcache, raw }))
}

fn index_of(mode: Mode) -> usize {
    MODES.iter().position(|m| *m == mode).unwrap_or(0)
}

/// The median over the rounds of `ours` / `baseline` (ops/s).
fn paired(all: &[Vec<f64>; MODES.len()], ours: Mode, baseline: Mode) -> f64 {
    paired_ratio(&all[index_of(ours)], &all[index_of(baseline)])
}

/// Only the data sets the read phases need, written once, unmeasured
/// (`--only` without `writes`).
pub async fn prefill(b: &Bench<'_>) -> Result<Kept> {
    b.progress.set("writes: the data set the reads use");
    let (_, tagcache) = write_once(b, Mode::SetMany, 0).await?;
    let (_, raw) = write_once(b, Mode::RawBatched, 0).await?;
    Ok(Kept { tagcache, raw })
}

fn compare(
    b: &Bench<'_>,
    best: &[Option<Run>; MODES.len()],
    all: &[Vec<f64>; MODES.len()],
) -> Vec<Comparison> {
    let run = |mode: Mode| {
        MODES
            .iter()
            .position(|m| *m == mode)
            .and_then(|i| best[i])
            .unwrap_or_default()
    };
    let c = b.plan.concurrency;
    let k = b.plan.workload.tag_count();
    let n = b.plan.batch;
    let method = format!("median of {} paired rounds", b.plan.rounds);
    vec![
        Comparison::new(
            "set_many",
            format!("set_many_bytes, {k} tags, {n}/call"),
            run(Mode::SetMany),
            format!("pipelined SET PX + {k} ZADD + prefix ZADD, registry ZADD LT"),
            run(Mode::RawBatched),
            None,
        )
        .with_ratio(
            paired(all, Mode::SetMany, Mode::RawBatched),
            method.clone(),
            Goal::at_least("set_many_ratio", 0.8, ""),
        ),
        Comparison::new(
            "set_bytes",
            format!("set_bytes, {k} tags, {c} in flight"),
            run(Mode::SetBytes),
            format!("{c} one-entry pipelines in flight"),
            run(Mode::RawEach),
            None,
        )
        .with_ratio(
            paired(all, Mode::SetBytes, Mode::RawEach),
            method,
            Goal::at_least("set_bytes_ratio", 0.8, ""),
        ),
        Comparison::new(
            "set_many_vs_lua",
            format!("set_many_bytes, {k} tags, {n}/call"),
            run(Mode::SetMany),
            format!("minimal Lua script, {n} entries/call"),
            run(Mode::LuaBatched),
            None,
        ),
        Comparison::new(
            "set_many_vs_set",
            format!("set_many_bytes, {k} tags, {n}/call"),
            run(Mode::SetMany),
            "pipelined plain SET PX (no tags)".to_owned(),
            run(Mode::RawPlain),
            None,
        ),
        Comparison::new(
            "set_bytes_vs_set",
            format!("set_bytes, {k} tags, {c} in flight"),
            run(Mode::SetBytes),
            "pipelined plain SET PX (no tags)".to_owned(),
            run(Mode::RawPlain),
            None,
        ),
    ]
}

async fn write_once(b: &Bench<'_>, mode: Mode, round: u32) -> Result<(Run, Footprint)> {
    let n = b.plan.entries;
    let wl = &b.plan.workload;
    let space = Space::new(b.plan.namespace(&format!("{}{round}", mode.suffix())));
    let tags = match mode {
        Mode::RawPlain => BTreeSet::new(),
        _ => wl.tag_set(n, None),
    };
    let fp = Footprint {
        keys: Keys::Items,
        space,
        entries: n,
        tags,
    };
    b.janitor.track(&fp);
    let sent = mode.sent();
    let run = match mode {
        Mode::RawPlain => b.measure(sent, n, raw_batched(b, &fp.space, false)).await?,
        Mode::RawBatched => b.measure(sent, n, raw_batched(b, &fp.space, true)).await?,
        Mode::RawEach => b.measure(sent, n, raw_each(b, &fp.space)).await?,
        Mode::LuaBatched => {
            let script = redis::Script::new(MINIMAL_SET_LUA);
            script.load_async(&mut b.raw.clone()).await?;
            b.measure(sent, n, lua_batched(b, &fp.space, &script))
                .await?
        }
        Mode::SetMany => {
            let cache = b.cache(fp.space.name()).await?;
            b.measure(sent, n, set_many(b, &cache)).await?
        }
        Mode::SetBytes => {
            let cache = b.cache(fp.space.name()).await?;
            b.measure(sent, n, set_bytes(b, &cache)).await?
        }
    };
    Ok((run, fp))
}

/// Appends the commands of entry `i` (SET PX and, when `tagged`, a ZADD
/// per tag and one for its key's prefix) and collects its tags.
fn push_entry(
    b: &Bench<'_>,
    pipe: &mut redis::Pipeline,
    space: &Space,
    i: u64,
    tagged: bool,
    tags: &mut BTreeSet<String>,
) -> u64 {
    let ttl = TTL.as_millis() as u64;
    let expiry = now_ms() + ttl;
    let key = item_key(i);
    pipe.cmd("SET")
        .arg(space.entry(&key))
        .arg(b.plan.workload.value())
        .arg("PX")
        .arg(ttl)
        .ignore();
    if tagged {
        for t in edges_of(b, i) {
            pipe.cmd("ZADD")
                .arg(space.tag(&t))
                .arg(expiry)
                .arg(&key)
                .ignore();
            tags.insert(t);
        }
    }
    expiry
}

/// The indexes entry `i` is filed in: its tags and its key's prefix.
fn edges_of(b: &Bench<'_>, i: u64) -> Vec<String> {
    let mut tags = b.plan.workload.tags_of(i, None);
    tags.extend(Keys::Items.prefixes(i).iter().map(|p| prefix_tag(p)));
    tags
}

/// One registry ZADD LT per distinct tag, as tagcache's script does once
/// per tag and call.
fn push_registry(pipe: &mut redis::Pipeline, space: &Space, tags: BTreeSet<String>, expiry: u64) {
    for t in tags {
        pipe.cmd("ZADD")
            .arg(space.registry())
            .arg("LT")
            .arg(expiry)
            .arg(t)
            .ignore();
    }
}

async fn raw_batched(b: &Bench<'_>, space: &Space, tagged: bool) -> Result<()> {
    drive(
        batches(b.plan.entries, b.plan.batch),
        BATCHES_IN_FLIGHT,
        |range| async move {
            let mut pipe = redis::pipe();
            let mut tags = BTreeSet::new();
            let mut expiry = u64::MAX;
            for i in range {
                expiry = expiry.min(push_entry(b, &mut pipe, space, i, tagged, &mut tags));
            }
            push_registry(&mut pipe, space, tags, expiry);
            pipe.query_async::<()>(&mut b.raw.clone()).await?;
            Ok(())
        },
    )
    .await
}

async fn lua_batched(b: &Bench<'_>, space: &Space, script: &redis::Script) -> Result<()> {
    let ttl = TTL.as_millis() as u64;
    drive(
        batches(b.plan.entries, b.plan.batch),
        BATCHES_IN_FLIGHT,
        |range| async move {
            let mut call = script.prepare_invoke();
            call.arg(space.entry_prefix())
                .arg(space.tag(""))
                .arg(space.registry())
                .arg(ttl)
                .arg(now_ms() + ttl);
            for i in range {
                let tags = edges_of(b, i);
                call.arg(item_key(i))
                    .arg(b.plan.workload.value())
                    .arg(tags.len())
                    .arg(tags);
            }
            call.invoke_async::<()>(&mut b.raw.clone()).await?;
            Ok(())
        },
    )
    .await
}

async fn raw_each(b: &Bench<'_>, space: &Space) -> Result<()> {
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
        let mut pipe = redis::pipe();
        let mut tags = BTreeSet::new();
        let expiry = push_entry(b, &mut pipe, space, i, true, &mut tags);
        push_registry(&mut pipe, space, tags, expiry);
        pipe.query_async::<()>(&mut b.raw.clone()).await?;
        Ok(())
    })
    .await
}

/// The workload's entries through `set_many_bytes`, `--batch` a call,
/// [`BATCHES_IN_FLIGHT`] calls in flight (also the cluster's write).
pub async fn set_many(b: &Bench<'_>, cache: &Cache) -> Result<()> {
    let wl = &b.plan.workload;
    drive(
        batches(b.plan.entries, b.plan.batch),
        BATCHES_IN_FLIGHT,
        |range| async move {
            let items = range.map(|i| {
                let opts = SetOptions::new().ttl(TTL).tags(wl.tags_of(i, None));
                (item_key(i), wl.value(), opts)
            });
            Ok(cache.set_many_bytes(items).await?)
        },
    )
    .await
}

async fn set_bytes(b: &Bench<'_>, cache: &Cache) -> Result<()> {
    let wl = &b.plan.workload;
    drive(0..b.plan.entries, b.plan.concurrency, |i| async move {
        let opts = SetOptions::new().ttl(TTL).tags(wl.tags_of(i, None));
        Ok(cache.set_bytes(item_key(i), wl.value(), &opts).await?)
    })
    .await
}

/// Writes entries `0..n` with tagcache, untimed (the setup of the later
/// phases): `entry(i)` gives the value and options of entry `i`.
pub async fn load<F>(cache: &Cache, n: u64, entry: F) -> Result<()>
where
    F: Fn(u64) -> (Vec<u8>, SetOptions),
{
    let entry = &entry;
    drive(batches(n, 1000), BATCHES_IN_FLIGHT, |range| async move {
        let items = range.map(|i| {
            let (value, opts) = entry(i);
            (item_key(i), value, opts)
        });
        Ok(cache.set_many_bytes(items).await?)
    })
    .await
}
