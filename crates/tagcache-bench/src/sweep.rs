//! The sweep's stall bound: `Cache::prune()` over indexes full of members
//! to remove, with the PING probe running, on a normal and (with
//! `--slow-server`) a slowed server. Two cases, on fresh entries written by
//! tagcache (keys `item:<i>`, the bench's tags):
//!
//! - `expired`: every entry expired (TTL 1 s, then a wait), so every index
//!   member is due for the expiry trim (`sweep_tag.lua`);
//! - `gone`: every entry deleted behind tagcache's back (raw `UNLINK`
//!   before the probe starts), so every member is found by the check for
//!   members whose entry is gone (`sweep_gone.lua`, one `EXISTS` each).
//!
//! Both scripts are paced by the Redis time they report (`pace.rs` in the
//! library), so the longest stall should stay near the per-call budget
//! (~1 ms, more on the slowed server) whatever the number of members.
//! Each case runs `--rounds` times; the table shows each case's median
//! round, and the goals check the waits of every round pooled per
//! condition (one prune lasts too short for a 99th percentile of its own).

use std::time::Duration;

use serde::Serialize;

use super::layout::Footprint;
use super::measure;
use super::pin::while_pinned;
use super::probe::Stalls;
use super::report::Goal;
use super::slow::Slowdown;
use super::Bench;
use crate::error::{BenchError, Result};

/// TTL of the `expired` case's entries.
const SHORT_TTL: Duration = Duration::from_secs(1);
/// TTL of the `gone` case's entries (they are deleted, not expired).
const LONG_TTL: Duration = Duration::from_secs(3600);

/// One prune.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRun {
    /// `expired` or `gone`.
    pub case: &'static str,
    /// On the slowed server.
    pub slowed: bool,
    /// Entries written (all of them expired or deleted).
    pub entries: u64,
    /// Members the prune removed (expired, or whose entry was gone).
    pub members_removed: u64,
    /// Wall time, milliseconds.
    pub wall_ms: f64,
    /// Wall time of every round, milliseconds, fastest first.
    pub rounds_wall_ms: Vec<f64>,
    /// The longest stall of any round, milliseconds.
    pub worst_round_longest_stall_ms: f64,
    /// Members removed per second.
    pub members_per_sec: f64,
    /// Redis time (usec of the commands sent) per member removed, µs.
    pub server_usec_per_member: f64,
    /// What the PING probe saw.
    pub stalls: Stalls,
}

/// The phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// The machine's load average (1, 5, 15 min) when the phase began.
    pub load_average: Option<[f64; 3]>,
    /// What the probe saw with the server idle.
    pub idle_stalls: Stalls,
    /// The same with the server slowed (`--slow-server`).
    pub slowed_idle_stalls: Option<Stalls>,
    /// One per case (and per condition): the round with the median wall
    /// time.
    pub runs: Vec<SweepRun>,
    /// Per condition, the waits of every round of both cases pooled: what
    /// the goals check (one prune of 20 000 entries lasts ~50–250 ms, too
    /// few PINGs for a 99th percentile other than the longest).
    pub pooled: Vec<PooledStalls>,
    /// The CPUs of the server and of the bench (`None`: not pinned).
    pub pinned: Option<(u32, String)>,
    /// Stall goals (longest ≤ 10 ms, p99 ≤ 5 ms, normal and slowed).
    pub goals: Vec<Goal>,
}

/// The probe's waits of every round of both cases, under one condition.
#[derive(Debug, Clone, Serialize)]
pub struct PooledStalls {
    /// On the slowed server.
    pub slowed: bool,
    /// Rounds pooled (each runs both cases).
    pub rounds: u32,
    /// Their summary.
    pub stalls: Stalls,
}

impl SweepReport {
    /// The runs, in words (printed as the phase's section).
    pub fn render(&self) -> String {
        let mut out = String::from(
            "\n\nThe sweep (Cache::prune) with every member due; PING probe every 1 ms",
        );
        if let Some([a, b, c]) = self.load_average {
            out += &format!("\n  load average {a:.2} {b:.2} {c:.2}");
        }
        if let Some((server, bench)) = &self.pinned {
            out += &format!("; redis-server on CPU {server}, the bench on CPU {bench}");
        }
        let idle = |s: &Stalls| format!("longest {:.1} ms, p99 {:.1} ms", s.longest_ms, s.p99_ms);
        out += &format!("\n  idle server: {}", idle(&self.idle_stalls));
        if let Some(s) = &self.slowed_idle_stalls {
            out += &format!("; idle slowed server: {}", idle(s));
        }
        for r in &self.runs {
            out += &format!(
                "\n  {:<7} {:<7} {} entries: {} members removed in {:.0} ms ({:.0}/s), \
                 {:.2} µs of Redis time per member; stalls: longest {:.1} ms, p99 {:.1} ms",
                r.case,
                if r.slowed { "slowed" } else { "normal" },
                r.entries,
                r.members_removed,
                r.wall_ms,
                r.members_per_sec,
                r.server_usec_per_member,
                r.stalls.longest_ms,
                r.stalls.p99_ms
            );
        }
        for p in &self.pooled {
            out += &format!(
                "\n  {}: {} round(s) of both cases, {} PINGs: longest {:.1} ms, p99 {:.1} ms",
                if p.slowed { "slowed" } else { "normal" },
                p.rounds,
                p.stalls.pings,
                p.stalls.longest_ms,
                p.stalls.p99_ms
            );
        }
        out
    }
}

/// Both cases, and again on the slowed server with `--slow-server`.
pub async fn run(b: &Bench<'_>) -> Result<SweepReport> {
    if b.plan.slow_server && !b.target.is_private() {
        return Err(BenchError::error(
            "--slow-server needs the bench's private redis-server (drop --url)",
        ));
    }
    let load_average = super::invalidate::load_average();
    let (mut report, pinned) =
        while_pinned(&b.raw, b.target.is_private(), measured(b, load_average)).await?;
    report.pinned = pinned;
    Ok(report)
}

/// [`run`] once the CPUs are set.
async fn measured(b: &Bench<'_>, load_average: Option<[f64; 3]>) -> Result<SweepReport> {
    let n = b.plan.clear_entries;
    b.progress.set("sweep: idle probe");
    let idle_stalls = super::invalidate::idle_probe(b).await?;
    let (mut runs, normal) = all_rounds(b, n, false).await?;
    let mut pooled = vec![normal];
    let mut slowed_idle_stalls = None;
    if b.plan.slow_server {
        let slowdown = Slowdown::start(&b.raw, b.plan.slow_by).await?;
        let measured = async {
            b.progress.set("sweep: idle probe, server slowed");
            let idle = super::invalidate::idle_probe(b).await?;
            let slowed = all_rounds(b, n, true).await?;
            Ok::<_, BenchError>((idle, slowed))
        }
        .await;
        slowdown.stop()?;
        let (idle, (slowed_runs, slowed)) = measured?;
        slowed_idle_stalls = Some(idle);
        runs.extend(slowed_runs);
        pooled.push(slowed);
    }
    let mut goals = Vec::new();
    for p in &pooled {
        let (longest, p99) = if p.slowed {
            ("sweep_slowed_longest_stall_ms", "sweep_slowed_p99_stall_ms")
        } else {
            ("sweep_longest_stall_ms", "sweep_p99_stall_ms")
        };
        goals.push(Goal::at_most(longest, 10.0, "ms").check(p.stalls.longest_ms));
        goals.push(Goal::at_most(p99, 5.0, "ms").check(p.stalls.p99_ms));
    }
    Ok(SweepReport {
        load_average,
        idle_stalls,
        slowed_idle_stalls,
        runs,
        pooled,
        pinned: None,
        goals,
    })
}

/// Both cases, `--rounds` times: the median round of each (by wall time)
/// and the waits of every round pooled.
async fn all_rounds(b: &Bench<'_>, n: u64, slowed: bool) -> Result<(Vec<SweepRun>, PooledStalls)> {
    let mut rounds: [Vec<SweepRun>; 2] = [Vec::new(), Vec::new()];
    let mut waits = Vec::new();
    for round in 0..b.plan.rounds {
        for (i, case) in [Case::Expired, Case::Gone].into_iter().enumerate() {
            let (run, seen) = once(b, case, n, slowed, round).await?;
            rounds[i].push(run);
            waits.extend(seen);
        }
    }
    let runs = rounds
        .into_iter()
        .filter_map(measure::median_round)
        .collect();
    let pooled = PooledStalls {
        slowed,
        rounds: b.plan.rounds,
        stalls: Stalls::of(&waits),
    };
    Ok((runs, pooled))
}

measure::impl_round!(SweepRun);

#[derive(Debug, Clone, Copy)]
enum Case {
    Expired,
    Gone,
}

/// One prune: its figures and every wait the probe saw.
async fn once(
    b: &Bench<'_>,
    case: Case,
    n: u64,
    slowed: bool,
    round: u32,
) -> Result<(SweepRun, Vec<Duration>)> {
    let (id, short) = match case {
        Case::Expired => ("expired", "sx"),
        Case::Gone => ("gone", "sg"),
    };
    let suffix = format!("{short}{}{round}", u8::from(slowed));
    let ttl = match case {
        Case::Expired => SHORT_TTL,
        Case::Gone => LONG_TTL,
    };
    let phase = format!("sweep: writing {n} entries ({id})");
    let (cache, fp) = measure::prepare_with_ttl(b, &suffix, n, None, phase, ttl).await?;
    match case {
        Case::Expired => tokio::time::sleep(SHORT_TTL + Duration::from_millis(300)).await,
        Case::Gone => unlink_entries(b, &fp).await?,
    }
    let phase = format!("sweep: prune ({id}, {n} entries)");
    let m = measure::measure(b, phase, async { Ok(cache.prune().await?) }).await?;
    b.janitor.wipe(&b.raw, &fp).await?;
    // Expired entries are also deleted by Redis' own expiry meanwhile, so
    // the check for gone entries may reach some of their members first.
    let removed = m.out.members_removed + m.out.gone_members_removed;
    let cost = m
        .before
        .cost_until(&m.after, &["evalsha", "zrange", "time"], removed);
    let wall_s = m.wall.as_secs_f64().max(1e-9);
    let run = SweepRun {
        case: id,
        slowed,
        entries: n,
        members_removed: removed,
        wall_ms: wall_s * 1000.0,
        rounds_wall_ms: Vec::new(),
        worst_round_longest_stall_ms: m.stalls.longest_ms,
        members_per_sec: removed as f64 / wall_s,
        server_usec_per_member: cost.server_usec_per_op,
        stalls: m.stalls,
    };
    Ok((run, m.waits))
}

/// Deletes the footprint's entries (not their indexes) with raw `UNLINK`s.
async fn unlink_entries(b: &Bench<'_>, fp: &Footprint) -> Result<()> {
    let mut conn = b.raw.clone();
    let names: Vec<String> = (0..fp.entries)
        .map(|i| fp.space.entry(&fp.keys.name(i)))
        .collect();
    for batch in names.chunks(1000) {
        redis::cmd("UNLINK")
            .arg(batch)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}
