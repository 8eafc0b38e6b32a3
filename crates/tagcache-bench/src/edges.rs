//! What the reserved edges of layout version 2 cost per write: Redis time
//! (`INFO commandstats`: usec of the commands the client sends, a script's
//! usec including its inner commands) per entry written, for
//!
//! - tagcache: a flat key with 0 tags (it still carries the all-entries
//!   edge `\0a`), a flat key with 2 tags, a 3-part path key with 2 tags
//!   (plus 2 prefix edges `\0porg`, `\0porg:<g>`);
//! - raw baselines sent directly: `SET PX` alone, `SET PX` + one `ZADD` per
//!   tag, and the same with the reserved edges added by hand (one more
//!   `ZADD` for `\0a`, two more for the prefixes);
//!
//! each way twice: one call in flight (one `set_bytes` / one pipeline per
//! entry: the read-through store after a miss) and batched
//! (`set_many_bytes` / one pipeline per `--batch` entries, a few in flight).
//! Every case writes new keys into a fresh namespace; cases alternate
//! within a round and each keeps its lowest Redis time over the rounds.

use serde::Serialize;
use tagcache::{Cache, SetOptions};

use super::layout::{prefix_tag, Footprint, Keys, Space, ALL_TAG};
use super::report::Run;
use super::workload::Workload;
use super::{batches, drive, now_ms, Bench, BATCHES_IN_FLIGHT, TTL};
use crate::error::Result;

/// Entries per case written one call at a time (at most; `--entries`
/// caps it).
pub const SINGLE_ENTRIES: u64 = 5_000;
/// Entries per case written in batches (at most).
pub const BATCHED_ENTRIES: u64 = 20_000;
/// Tags of the tagged cases.
const TAGS: usize = 2;

/// Who writes, and which index edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Tagcache,
    /// `SET PX` + one `ZADD` per tag, plus (by hand) the `\0a` edge and
    /// the key's prefix edges when asked.
    Raw {
        all: bool,
        prefixes: bool,
    },
}

/// One way of writing a data set.
#[derive(Debug, Clone, Copy)]
struct Case {
    id: &'static str,
    label: &'static str,
    keys: Keys,
    tags: usize,
    writer: Writer,
}

const RAW: Writer = Writer::Raw {
    all: false,
    prefixes: false,
};
const RAW_ALL: Writer = Writer::Raw {
    all: true,
    prefixes: false,
};

/// In the order run: baselines and tagcache alternate.
const CASES: [Case; 8] = [
    Case {
        id: "raw_set",
        label: "raw SET PX",
        keys: Keys::Flat,
        tags: 0,
        writer: RAW,
    },
    Case {
        id: "tc_flat_0",
        label: "tagcache, flat key, 0 tags",
        keys: Keys::Flat,
        tags: 0,
        writer: Writer::Tagcache,
    },
    Case {
        id: "raw_set_all",
        label: "raw SET PX + 1 ZADD (\\0a by hand)",
        keys: Keys::Flat,
        tags: 0,
        writer: RAW_ALL,
    },
    Case {
        id: "raw_2",
        label: "raw SET PX + 2 ZADD",
        keys: Keys::Flat,
        tags: TAGS,
        writer: RAW,
    },
    Case {
        id: "tc_flat_2",
        label: "tagcache, flat key, 2 tags",
        keys: Keys::Flat,
        tags: TAGS,
        writer: Writer::Tagcache,
    },
    Case {
        id: "raw_3",
        label: "raw SET PX + 3 ZADD (2 tags + \\0a by hand)",
        keys: Keys::Flat,
        tags: TAGS,
        writer: RAW_ALL,
    },
    Case {
        id: "tc_path_2",
        label: "tagcache, 3-part path key, 2 tags",
        keys: Keys::Org,
        tags: TAGS,
        writer: Writer::Tagcache,
    },
    Case {
        id: "raw_5",
        label: "raw SET PX + 5 ZADD (2 tags + \\0a + 2 prefixes by hand)",
        keys: Keys::Org,
        tags: TAGS,
        writer: Writer::Raw {
            all: true,
            prefixes: true,
        },
    },
];

/// tagcache case, baseline case.
const COMPARED: [(&str, &str); 6] = [
    ("tc_flat_0", "raw_set"),
    ("tc_flat_0", "raw_set_all"),
    ("tc_flat_2", "raw_2"),
    ("tc_flat_2", "raw_3"),
    ("tc_path_2", "raw_2"),
    ("tc_path_2", "raw_5"),
];

/// How the writes are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One call (or pipeline) per entry, one in flight.
    Single,
    /// `--batch` entries per call (or pipeline), [`BATCHES_IN_FLIGHT`]
    /// in flight.
    Batched,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Single => "one call in flight",
            Mode::Batched => "batched",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Mode::Single => "s",
            Mode::Batched => "b",
        }
    }
}

/// One case's figures.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Stable name (`tc_flat_0`, `raw_set`, ...).
    pub id: &'static str,
    /// What was written how.
    pub label: &'static str,
    /// Redis time per entry written, µs: the lowest of the rounds.
    pub server_usec_per_op: f64,
    /// Redis time per entry of every round, µs.
    pub rounds_server_usec_per_op: Vec<f64>,
    /// Commands sent per entry.
    pub commands_sent_per_op: f64,
    /// Commands executed per entry, including those run inside scripts.
    pub commands_executed_per_op: f64,
    /// The best round's entries per second (client-side, for scale).
    pub ops_per_sec: f64,
}

/// tagcache against one baseline.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeComparison {
    /// tagcache case id.
    pub tagcache: &'static str,
    /// Baseline case id.
    pub baseline: &'static str,
    /// Redis µs per op, tagcache.
    pub tagcache_usec: f64,
    /// Redis µs per op, baseline.
    pub baseline_usec: f64,
    /// tagcache / baseline (Redis time: above 1 costs more).
    pub ratio: f64,
}

/// An extra cost, in Redis µs per write, read off two cases.
#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    /// Stable name.
    pub id: &'static str,
    /// What it is and how it is computed.
    pub label: &'static str,
    /// µs per write.
    pub usec: f64,
}

/// One mode's results.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    /// How the writes were sent.
    pub mode: Mode,
    /// Entries written per case.
    pub entries: u64,
    /// Entries per call (1 for [`Mode::Single`]).
    pub per_call: u64,
    /// Calls in flight.
    pub in_flight: usize,
    /// Every case.
    pub cases: Vec<CaseResult>,
    /// tagcache against its baselines.
    pub comparisons: Vec<EdgeComparison>,
    /// Extra costs of the reserved edges.
    pub attributions: Vec<Attribution>,
}

/// The phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeReport {
    /// Rounds (each case keeps its lowest Redis time).
    pub rounds: u32,
    /// Bytes per value.
    pub value_size: usize,
    /// Example keys: flat, path.
    pub example_keys: [String; 2],
    /// One call in flight, then batched.
    pub modes: Vec<ModeReport>,
}

/// Runs both modes.
pub async fn run(b: &Bench<'_>) -> Result<EdgeReport> {
    let single = b.plan.entries.min(SINGLE_ENTRIES);
    let batched = b.plan.entries.min(BATCHED_ENTRIES);
    let modes = vec![
        run_mode(b, Mode::Single, single).await?,
        run_mode(b, Mode::Batched, batched).await?,
    ];
    Ok(EdgeReport {
        rounds: b.plan.rounds,
        value_size: b.plan.value_size,
        example_keys: [Keys::Flat.name(12_345), Keys::Org.name(12_345)],
        modes,
    })
}

async fn run_mode(b: &Bench<'_>, mode: Mode, n: u64) -> Result<ModeReport> {
    let rounds = b.plan.rounds;
    let wl = Workload::new(n, TAGS, b.plan.value_size);
    let mut runs: Vec<Vec<Run>> = CASES.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (c, case) in CASES.iter().enumerate() {
            b.progress.set(format!(
                "write edges, {}: {} (round {}/{rounds})",
                mode.label(),
                case.label,
                round + 1
            ));
            runs[c].push(once(b, &wl, mode, c, case, n, round).await?);
        }
    }
    let cases: Vec<CaseResult> = CASES
        .iter()
        .zip(runs)
        .map(|(case, runs)| summarize(case, &runs))
        .collect();
    let usec = |id: &str| {
        cases
            .iter()
            .find(|c| c.id == id)
            .map_or(f64::NAN, |c| c.server_usec_per_op)
    };
    let comparisons = COMPARED
        .iter()
        .map(|&(tc, base)| EdgeComparison {
            tagcache: tc,
            baseline: base,
            tagcache_usec: usec(tc),
            baseline_usec: usec(base),
            ratio: usec(tc) / usec(base),
        })
        .collect();
    let attributions = vec![
        Attribution {
            id: "tc_flat_0_minus_raw_set",
            label: "tagcache flat 0 tags − raw SET PX (script call + checks + \\0a edge)",
            usec: usec("tc_flat_0") - usec("raw_set"),
        },
        Attribution {
            id: "tc_edge",
            label: "tagcache, one edge in the script: (flat 2 tags − flat 0 tags) / 2 \
                    (\\0a is written like a tag)",
            usec: (usec("tc_flat_2") - usec("tc_flat_0")) / TAGS as f64,
        },
        Attribution {
            id: "raw_all_edge",
            label: "\\0a edge by hand: raw SET PX + 1 ZADD − raw SET PX",
            usec: usec("raw_set_all") - usec("raw_set"),
        },
        Attribution {
            id: "raw_all_edge_tagged",
            label: "\\0a edge by hand beside 2 tags: raw 3 ZADD − raw 2 ZADD",
            usec: usec("raw_3") - usec("raw_2"),
        },
        Attribution {
            id: "tc_prefix_edges",
            label: "tagcache, 2 prefix edges: path 3 parts − flat (same 2 tags)",
            usec: usec("tc_path_2") - usec("tc_flat_2"),
        },
        Attribution {
            id: "raw_prefix_edges",
            label: "2 prefix edges by hand: raw 5 ZADD − raw 3 ZADD",
            usec: usec("raw_5") - usec("raw_3"),
        },
    ];
    let (per_call, in_flight) = match mode {
        Mode::Single => (1, 1),
        Mode::Batched => (b.plan.batch, BATCHES_IN_FLIGHT),
    };
    Ok(ModeReport {
        mode,
        entries: n,
        per_call,
        in_flight,
        cases,
        comparisons,
        attributions,
    })
}

fn summarize(case: &Case, runs: &[Run]) -> CaseResult {
    let best = runs
        .iter()
        .min_by(|a, b| {
            a.cost
                .server_usec_per_op
                .total_cmp(&b.cost.server_usec_per_op)
        })
        .copied()
        .unwrap_or_default();
    CaseResult {
        id: case.id,
        label: case.label,
        server_usec_per_op: best.cost.server_usec_per_op,
        rounds_server_usec_per_op: runs.iter().map(|r| r.cost.server_usec_per_op).collect(),
        commands_sent_per_op: best.cost.commands_sent_per_op,
        commands_executed_per_op: best.cost.commands_executed_per_op,
        ops_per_sec: runs.iter().map(|r| r.ops_per_sec).fold(0.0, f64::max),
    }
}

async fn once(
    b: &Bench<'_>,
    wl: &Workload,
    mode: Mode,
    c: usize,
    case: &Case,
    n: u64,
    round: u32,
) -> Result<Run> {
    let space = Space::new(b.plan.namespace(&format!("ed-{}{c}-{round}", mode.short())));
    let fp = Footprint {
        space,
        entries: n,
        keys: case.keys,
        tags: wl.tag_set(n, None),
    };
    b.janitor.track(&fp);
    let run = match case.writer {
        Writer::Tagcache => {
            let cache = b.cache(fp.space.name()).await?;
            let w = Writes { b, wl, case, n };
            b.measure(&["evalsha"], n, w.tagcache(&cache, mode)).await?
        }
        Writer::Raw { all, prefixes } => {
            let w = Writes { b, wl, case, n };
            b.measure(&["set", "zadd"], n, w.raw(&fp.space, mode, all, prefixes))
                .await?
        }
    };
    b.janitor.wipe(&b.raw, &fp).await?;
    Ok(run)
}

/// The writes of one case.
struct Writes<'a, 'b> {
    b: &'a Bench<'b>,
    wl: &'a Workload,
    case: &'a Case,
    n: u64,
}

impl Writes<'_, '_> {
    fn tags(&self, i: u64) -> Vec<String> {
        let mut tags = self.wl.tags_of(i, None);
        tags.truncate(self.case.tags);
        tags
    }

    fn per_call(&self, mode: Mode) -> (u64, usize) {
        match mode {
            Mode::Single => (1, 1),
            Mode::Batched => (self.b.plan.batch, BATCHES_IN_FLIGHT),
        }
    }

    async fn tagcache(&self, cache: &Cache, mode: Mode) -> Result<()> {
        let (per_call, in_flight) = self.per_call(mode);
        let value = self.wl.value();
        let keys = self.case.keys;
        match mode {
            Mode::Single => {
                drive(0..self.n, in_flight, |i| async move {
                    let opts = SetOptions::new().ttl(TTL).tags(self.tags(i));
                    Ok(cache.set_bytes(keys.name(i), value, &opts).await?)
                })
                .await
            }
            Mode::Batched => {
                drive(batches(self.n, per_call), in_flight, |range| async move {
                    let items = range.map(|i| {
                        let opts = SetOptions::new().ttl(TTL).tags(self.tags(i));
                        (keys.name(i), value, opts)
                    });
                    Ok(cache.set_many_bytes(items).await?)
                })
                .await
            }
        }
    }

    async fn raw(&self, space: &Space, mode: Mode, all: bool, prefixes: bool) -> Result<()> {
        let (per_call, in_flight) = self.per_call(mode);
        let ttl = TTL.as_millis() as u64;
        drive(batches(self.n, per_call), in_flight, |range| async move {
            let mut pipe = redis::pipe();
            let expiry = now_ms() + ttl;
            for i in range {
                let key = self.case.keys.name(i);
                pipe.cmd("SET")
                    .arg(space.entry(&key))
                    .arg(self.wl.value())
                    .arg("PX")
                    .arg(ttl)
                    .ignore();
                let mut indexes = self.tags(i);
                if all {
                    indexes.push(ALL_TAG.to_owned());
                }
                if prefixes {
                    indexes.extend(self.case.keys.prefixes(i).iter().map(|p| prefix_tag(p)));
                }
                for t in indexes {
                    pipe.cmd("ZADD")
                        .arg(space.tag(&t))
                        .arg(expiry)
                        .arg(&key)
                        .ignore();
                }
            }
            pipe.query_async::<()>(&mut self.b.raw.clone()).await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compared_cases_exist_and_pair_tagcache_with_raw() {
        for (tc, base) in COMPARED {
            let find = |id: &str| CASES.iter().find(|c| c.id == id).map(|c| c.writer);
            assert_eq!(find(tc), Some(Writer::Tagcache), "{tc}");
            assert!(matches!(find(base), Some(Writer::Raw { .. })), "{base}");
        }
    }
}
