//! What a write costs Redis: Redis time (`INFO commandstats`: usec of the
//! commands the client sends; `EXEC` and `EVALSHA` include the commands
//! they run) per entry written, against raw baselines sent directly in the
//! same run (per entry one pipeline of `SET PX` + one `ZADD` per tag), for
//!
//! - tagcache through both write paths (`WritePath::Transaction`, the
//!   default, and `WritePath::Script`): flat keys with 0, 1, 2 and 8 tags,
//!   a 3-part path key with 2 tags (plus its 2 prefix edges), overwrites
//!   keeping the tags, overwrites changing one of two tags — written before
//!   by the same handle (it remembers the tags it wrote: the lost edge
//!   leaves inside the transaction) or by another handle, as another
//!   process would (the transaction's second step, `unlink.lua`, runs: its
//!   count per write is the `scripts/op` column) —, and `get_or_compute`
//!   after a miss (a read, then a guarded store: the transaction checked by
//!   `guard.lua` inside it, or `set.lua` on the script path);
//! - raw baselines: `SET PX` + 0, 1, 2 or 8 `ZADD`s, the path's prefixes by
//!   hand, the same on existing keys, and a `GET` before the pipeline;
//!   and the floors of the two writes that need a server-side condition
//!   on Redis 7.0: a fenced store (`fenced_store.lua`) and an exact
//!   rewrite of another process's entry (`exact_rewrite.lua`);
//!
//! each way twice: one call in flight (one `set_bytes` / one pipeline per
//! entry) and batched (`set_many_bytes` / one pipeline per `--batch`
//! entries, a few in flight). Every case writes into a fresh namespace
//! (overwrite cases fill it first, unmeasured); cases alternate within a
//! round and each keeps its lowest Redis time over the rounds.

use serde::Serialize;
use tagcache::{Cache, SetOptions, WritePath};

use super::layout::{prefix_tag, Footprint, Keys, Space, ALL_TAG};
use super::measure::paired_ratio;
use super::report::{Goal, Run};
use super::workload::Workload;
use super::{batches, drive, now_ms, Bench, BATCHES_IN_FLIGHT, TTL};
use crate::error::{BenchError, Result};

/// Entries per case written one call at a time (at most; `--entries`
/// caps it).
pub const SINGLE_ENTRIES: u64 = 5_000;
/// Entries per case written in batches (at most).
pub const BATCHED_ENTRIES: u64 = 20_000;
/// Tags of the workload (cases take the first 0, 1, 2 or 8).
const TAGS: usize = 8;

/// What the key holds before the measured write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    /// Nothing: a new key.
    New,
    /// An entry with the same tags (written, unmeasured, just before).
    Same,
    /// An entry whose first tag differs (`old:<g>` instead of
    /// `owner:<g>`): the write drops one tag and adds one.
    Changed,
    /// As `Changed`, written by another cache handle (another process):
    /// the writing handle cannot know the old tags.
    ChangedElsewhere,
}

/// Who writes, and which index edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// tagcache through `path`; `read_through`: `get_or_compute` after a
    /// miss (its read, then a guarded store).
    Tagcache { path: WritePath, read_through: bool },
    /// `SET PX` + one `ZADD` per tag, plus (by hand) the `\0a` edge and
    /// the key's prefix edges when asked; `read_first`: a `GET` (the
    /// miss) before the store; `store`: how the entry is stored.
    Raw {
        all: bool,
        prefixes: bool,
        read_first: bool,
        store: RawStore,
    },
}

/// How a raw baseline stores an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawStore {
    /// One pipeline of `SET PX` and the `ZADD`s.
    Pipeline,
    /// One call of `fenced_store.lua` (checks the fence, then writes).
    Fenced,
    /// One call of `exact_rewrite.lua` (reads the old tags, writes, and
    /// removes the edges of the tags the entry lost).
    ExactRewrite,
}

/// One way of writing a data set.
#[derive(Debug, Clone, Copy)]
struct Case {
    id: &'static str,
    label: &'static str,
    keys: Keys,
    tags: usize,
    writer: Writer,
    before: Before,
}

const RAW: Writer = Writer::Raw {
    all: false,
    prefixes: false,
    read_first: false,
    store: RawStore::Pipeline,
};
const TX: Writer = Writer::Tagcache {
    path: WritePath::Transaction,
    read_through: false,
};
const SCRIPT: Writer = Writer::Tagcache {
    path: WritePath::Script,
    read_through: false,
};

const fn case(
    id: &'static str,
    label: &'static str,
    keys: Keys,
    tags: usize,
    writer: Writer,
    before: Before,
) -> Case {
    Case {
        id,
        label,
        keys,
        tags,
        writer,
        before,
    }
}

/// In the order run: baselines and tagcache alternate.
const CASES: [Case; 23] = [
    case("raw_set", "raw SET PX", Keys::Flat, 0, RAW, Before::New),
    case(
        "tc_flat_0",
        "tagcache tx, flat key, 0 tags (\\0a edge)",
        Keys::Flat,
        0,
        TX,
        Before::New,
    ),
    case(
        "raw_1",
        "raw SET PX + 1 ZADD",
        Keys::Flat,
        1,
        RAW,
        Before::New,
    ),
    case(
        "tc_flat_1",
        "tagcache tx, flat key, 1 tag",
        Keys::Flat,
        1,
        TX,
        Before::New,
    ),
    case(
        "raw_2",
        "raw SET PX + 2 ZADD",
        Keys::Flat,
        2,
        RAW,
        Before::New,
    ),
    case(
        "tc_flat_2",
        "tagcache tx, flat key, 2 tags",
        Keys::Flat,
        2,
        TX,
        Before::New,
    ),
    case(
        "sc_flat_2",
        "tagcache script, flat key, 2 tags",
        Keys::Flat,
        2,
        SCRIPT,
        Before::New,
    ),
    case(
        "raw_8",
        "raw SET PX + 8 ZADD",
        Keys::Flat,
        8,
        RAW,
        Before::New,
    ),
    case(
        "tc_flat_8",
        "tagcache tx, flat key, 8 tags",
        Keys::Flat,
        8,
        TX,
        Before::New,
    ),
    case(
        "sc_flat_8",
        "tagcache script, flat key, 8 tags",
        Keys::Flat,
        8,
        SCRIPT,
        Before::New,
    ),
    case(
        "raw_path_2",
        "raw SET PX + 4 ZADD (2 tags + 2 prefixes by hand)",
        Keys::Org,
        2,
        Writer::Raw {
            all: false,
            prefixes: true,
            read_first: false,
            store: RawStore::Pipeline,
        },
        Before::New,
    ),
    case(
        "tc_path_2",
        "tagcache tx, 3-part path key, 2 tags",
        Keys::Org,
        2,
        TX,
        Before::New,
    ),
    case(
        "raw_2_over",
        "raw SET PX + 2 ZADD, overwrite",
        Keys::Flat,
        2,
        RAW,
        Before::Same,
    ),
    case(
        "tc_keep_2",
        "tagcache tx, overwrite keeping 2 tags",
        Keys::Flat,
        2,
        TX,
        Before::Same,
    ),
    case(
        "sc_keep_2",
        "tagcache script, overwrite keeping 2 tags",
        Keys::Flat,
        2,
        SCRIPT,
        Before::Same,
    ),
    case(
        "raw_2_change",
        "raw SET PX + 2 ZADD + ZREM of the lost edge, overwrite",
        Keys::Flat,
        2,
        RAW,
        Before::Changed,
    ),
    case(
        "tc_change_2",
        "tagcache tx, overwrite changing 1 of 2 tags",
        Keys::Flat,
        2,
        TX,
        Before::Changed,
    ),
    case(
        "tc_change_else_2",
        "tagcache tx, overwrite changing 1 of 2 tags written by another process",
        Keys::Flat,
        2,
        TX,
        Before::ChangedElsewhere,
    ),
    case(
        "raw_2_change_exact",
        "raw, one script: old tags read, SET PX, 2 ZADD, ZREM of the lost edge",
        Keys::Flat,
        2,
        Writer::Raw {
            all: false,
            prefixes: false,
            read_first: false,
            store: RawStore::ExactRewrite,
        },
        Before::ChangedElsewhere,
    ),
    case(
        "sc_change_2",
        "tagcache script, overwrite changing 1 of 2 tags",
        Keys::Flat,
        2,
        SCRIPT,
        Before::Changed,
    ),
    case(
        "raw_rt_2",
        "raw GET (miss) + SET PX + 2 ZADD",
        Keys::Flat,
        2,
        Writer::Raw {
            all: false,
            prefixes: false,
            read_first: true,
            store: RawStore::Pipeline,
        },
        Before::New,
    ),
    case(
        "raw_rt_2_fenced",
        "raw GET (miss) + one script: fence ZMSCORE, SET PX, 2 ZADD",
        Keys::Flat,
        2,
        Writer::Raw {
            all: false,
            prefixes: false,
            read_first: true,
            store: RawStore::Fenced,
        },
        Before::New,
    ),
    case(
        "tc_rt_2",
        "tagcache get_or_compute after a miss, 2 tags (guarded store)",
        Keys::Flat,
        2,
        Writer::Tagcache {
            path: WritePath::Transaction,
            read_through: true,
        },
        Before::New,
    ),
];

/// tagcache case, baseline case.
const COMPARED: [(&str, &str); 16] = [
    ("tc_flat_0", "raw_set"),
    ("tc_flat_1", "raw_1"),
    ("tc_flat_2", "raw_2"),
    ("sc_flat_2", "raw_2"),
    ("tc_flat_8", "raw_8"),
    ("sc_flat_8", "raw_8"),
    ("tc_path_2", "raw_path_2"),
    ("tc_keep_2", "raw_2_over"),
    ("sc_keep_2", "raw_2_over"),
    ("tc_change_2", "raw_2_over"),
    ("tc_change_2", "raw_2_change"),
    ("tc_change_else_2", "raw_2_over"),
    ("tc_change_else_2", "raw_2_change_exact"),
    ("sc_change_2", "raw_2_over"),
    ("tc_rt_2", "raw_rt_2"),
    ("tc_rt_2", "raw_rt_2_fenced"),
];

/// Goal 1 of the write cost, checked one call in flight on the median of
/// round pairs: Redis time per write at most 2× a same-run baseline doing
/// the same work. (goal id, tagcache case, baseline case.) The plain
/// writes are held to raw `SET PX` + one `ZADD` per edge (and, for an
/// overwrite dropping a tag the writer knows it wrote, the `ZREM` of that
/// edge, without which the index would keep a stale member). The two writes
/// that need a server-side condition on Redis 7.0 are held to their
/// floors, the least a client keeping the same guarantee sends: an
/// overwrite dropping a tag another process wrote to one script that reads
/// the old tags, writes and removes the lost edge (raw `SET PX` + `ZADD`s
/// would leave the edge behind, and a later invalidation of that tag would
/// be inexact); `get_or_compute`'s store to `GET` + one fenced script (a
/// plain store could put back a value an invalidation that began during
/// the computation just dropped). Their ratios to raw `SET PX` + `ZADD`s
/// are reported too.
const GOALS: [(&str, &str, &str); 8] = [
    ("write_1_tag_vs_raw", "tc_flat_1", "raw_1"),
    ("write_2_tags_vs_raw", "tc_flat_2", "raw_2"),
    ("write_8_tags_vs_raw", "tc_flat_8", "raw_8"),
    ("write_path_key_vs_raw", "tc_path_2", "raw_path_2"),
    ("overwrite_keep_tags_vs_raw", "tc_keep_2", "raw_2_over"),
    (
        "overwrite_change_own_tag_vs_raw",
        "tc_change_2",
        "raw_2_change",
    ),
    (
        "overwrite_change_other_process_tag_vs_floor",
        "tc_change_else_2",
        "raw_2_change_exact",
    ),
    (
        "get_or_compute_store_vs_floor",
        "tc_rt_2",
        "raw_rt_2_fenced",
    ),
];
/// The bound of [`GOALS`]: tagcache / baseline.
const GOAL_RATIO: f64 = 2.0;

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
    /// Script calls per entry (`set.lua`, and `unlink.lua` after a
    /// transaction write that dropped a tag).
    pub scripts_per_op: f64,
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
    /// tagcache / baseline (Redis time: above 1 costs more), each side's
    /// lowest round.
    pub ratio: f64,
    /// The median over the rounds of tagcache / baseline within a round
    /// (the two ran moments apart, so a machine's drift between rounds
    /// hits both).
    pub paired_ratio: f64,
    /// The write-cost goal this comparison checks (one call in flight
    /// only), on `paired_ratio`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
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
    /// The write-cost goals (≤ 2×, one call in flight).
    pub goals: Vec<Goal>,
}

/// Runs both modes.
pub async fn run(b: &Bench<'_>) -> Result<EdgeReport> {
    let single = b.plan.entries.min(SINGLE_ENTRIES);
    let batched = b.plan.entries.min(BATCHED_ENTRIES);
    let modes = vec![
        run_mode(b, Mode::Single, single).await?,
        run_mode(b, Mode::Batched, batched).await?,
    ];
    let goals = modes
        .iter()
        .flat_map(|m| m.comparisons.iter().filter_map(|c| c.goal.clone()))
        .collect();
    Ok(EdgeReport {
        rounds: b.plan.rounds,
        value_size: b.plan.value_size,
        example_keys: [Keys::Flat.name(12_345), Keys::Org.name(12_345)],
        modes,
        goals,
    })
}

async fn run_mode(b: &Bench<'_>, mode: Mode, n: u64) -> Result<ModeReport> {
    let rounds = b.plan.rounds;
    let wl = Workload::new(n, TAGS, b.plan.value_size);
    let mut runs: Vec<Vec<Run>> = CASES.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (c, case) in CASES.iter().enumerate() {
            if mode == Mode::Batched && case.single_only() {
                continue;
            }
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
        .filter(|(_, runs)| !runs.is_empty())
        .map(|(case, runs)| summarize(case, &runs))
        .collect();
    let case = |id: &str| cases.iter().find(|c| c.id == id);
    let usec = |id: &str| case(id).map_or(f64::NAN, |c| c.server_usec_per_op);
    let rounds_of = |id: &str| case(id).map_or(&[][..], |c| c.rounds_server_usec_per_op.as_slice());
    let comparisons = COMPARED
        .iter()
        .filter(|(tc, base)| usec(tc).is_finite() && usec(base).is_finite())
        .map(|&(tc, base)| {
            let paired = paired_ratio(rounds_of(tc), rounds_of(base));
            EdgeComparison {
                tagcache: tc,
                baseline: base,
                tagcache_usec: usec(tc),
                baseline_usec: usec(base),
                ratio: usec(tc) / usec(base),
                paired_ratio: paired,
                goal: goal_of(mode, tc, base)
                    .map(|id| Goal::at_most(id, GOAL_RATIO, "x").check(paired)),
            }
        })
        .collect();
    let attributions = vec![
        Attribution {
            id: "tc_edge",
            label: "tagcache tx, one more tag: (8 tags − 1 tag) / 7",
            usec: (usec("tc_flat_8") - usec("tc_flat_1")) / 7.0,
        },
        Attribution {
            id: "sc_edge",
            label: "tagcache script, one more tag: (8 tags − 2 tags) / 6",
            usec: (usec("sc_flat_8") - usec("sc_flat_2")) / 6.0,
        },
        Attribution {
            id: "raw_edge",
            label: "raw, one more ZADD: (8 ZADD − 1 ZADD) / 7",
            usec: (usec("raw_8") - usec("raw_1")) / 7.0,
        },
        Attribution {
            id: "tc_drop_known",
            label: "tagcache tx, dropping a tag it wrote (ZREM inside): change − keep",
            usec: usec("tc_change_2") - usec("tc_keep_2"),
        },
        Attribution {
            id: "tc_unlink",
            label: "tagcache tx, dropping another process's tag (unlink.lua): change − keep",
            usec: usec("tc_change_else_2") - usec("tc_keep_2"),
        },
        Attribution {
            id: "tc_prefix_edges",
            label: "tagcache tx, 2 prefix edges: path 3 parts − flat (same 2 tags)",
            usec: usec("tc_path_2") - usec("tc_flat_2"),
        },
        Attribution {
            id: "script_minus_tx",
            label: "script − tx, flat key, 2 tags",
            usec: usec("sc_flat_2") - usec("tc_flat_2"),
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

/// The goal a comparison checks, if any (one call in flight only).
fn goal_of(mode: Mode, tagcache: &str, baseline: &str) -> Option<&'static str> {
    if mode != Mode::Single {
        return None;
    }
    GOALS
        .iter()
        .find(|(_, tc, base)| *tc == tagcache && *base == baseline)
        .map(|(id, _, _)| *id)
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
        scripts_per_op: best.cost.script_calls_per_op,
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
    let mut tags = wl.tag_set(n, None);
    if matches!(case.before, Before::Changed | Before::ChangedElsewhere) {
        tags.extend((0..n).map(old_tag));
    }
    let fp = Footprint {
        space,
        entries: n,
        keys: case.keys,
        tags,
    };
    b.janitor.track(&fp);
    let w = Writes { b, wl, case, n };
    let run = match case.writer {
        Writer::Tagcache { path, read_through } => {
            let cache = b.cache_with(fp.space.name(), path).await?;
            match case.before {
                Before::New => {}
                Before::ChangedElsewhere => {
                    let other = b.cache_with(fp.space.name(), path).await?;
                    w.fill(&other).await?;
                }
                _ => w.fill(&cache).await?,
            }
            // EXEC and EVALSHA include what they run. The read-through's
            // own GET and TIME are sent too; on the transaction path its
            // guard.lua runs inside EXEC (counted there), and that
            // script's TIME is counted once, inside it.
            let (sent, nested): (&[&str], &[(&str, &str)]) = match (read_through, path) {
                (true, WritePath::Transaction) => {
                    (&["multi", "exec", "get", "time"], &[("time", "evalsha")])
                }
                (true, _) => (
                    &["evalsha", "multi", "exec", "get", "time"],
                    &[("time", "evalsha")],
                ),
                _ => (&["evalsha", "multi", "exec"], &[]),
            };
            b.measure_nested(sent, nested, n, w.tagcache(&cache, mode, read_through))
                .await?
        }
        Writer::Raw {
            all,
            prefixes,
            read_first,
            store,
        } => {
            if case.before != Before::New {
                let cache = b.cache(fp.space.name()).await?;
                w.fill(&cache).await?;
            }
            match store {
                RawStore::Fenced => {
                    b.measure(&["get", "evalsha", "eval"], n, w.raw_fenced(&fp.space))
                        .await?
                }
                RawStore::ExactRewrite => {
                    b.measure(&["evalsha", "eval"], n, w.raw_exact_rewrite(&fp.space))
                        .await?
                }
                RawStore::Pipeline => {
                    b.measure(
                        &["set", "zadd", "zrem", "get"],
                        n,
                        w.raw(&fp.space, mode, all, prefixes, read_first),
                    )
                    .await?
                }
            }
        }
    };
    b.janitor.wipe(&b.raw, &fp).await?;
    Ok(run)
}

/// The tag an entry carried before a [`Before::Changed`] write, in place
/// of its `owner:<g>` tag.
fn old_tag(i: u64) -> String {
    format!("old:{}", i / super::workload::GROUP)
}

impl Case {
    /// Cases with no batched form (`get_or_compute` is one key; the
    /// script baselines write one entry a call).
    fn single_only(&self) -> bool {
        matches!(
            self.writer,
            Writer::Tagcache {
                read_through: true,
                ..
            } | Writer::Raw {
                read_first: true,
                ..
            } | Writer::Raw {
                store: RawStore::ExactRewrite,
                ..
            }
        )
    }
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

    /// What the keys hold before the measured writes (unmeasured).
    async fn fill(&self, cache: &Cache) -> Result<()> {
        let value = self.wl.value();
        let keys = self.case.keys;
        let changed = matches!(self.case.before, Before::Changed | Before::ChangedElsewhere);
        drive(
            batches(self.n, 100),
            BATCHES_IN_FLIGHT,
            |range| async move {
                let items = range.map(|i| {
                    let mut tags = self.tags(i);
                    if changed {
                        if let Some(t) = tags.first_mut() {
                            *t = old_tag(i);
                        }
                    }
                    (keys.name(i), value, SetOptions::new().ttl(TTL).tags(tags))
                });
                Ok(cache.set_many_bytes(items).await?)
            },
        )
        .await
    }

    fn per_call(&self, mode: Mode) -> (u64, usize) {
        match mode {
            Mode::Single => (1, 1),
            Mode::Batched => (self.b.plan.batch, BATCHES_IN_FLIGHT),
        }
    }

    async fn tagcache(&self, cache: &Cache, mode: Mode, read_through: bool) -> Result<()> {
        let (per_call, in_flight) = self.per_call(mode);
        let value = self.wl.value();
        let keys = self.case.keys;
        match mode {
            Mode::Single if read_through => {
                drive(0..self.n, in_flight, |i| async move {
                    let opts = SetOptions::new().ttl(TTL).tags(self.tags(i));
                    let loaded = cache
                        .get_or_compute(keys.name(i), &opts, || async {
                            Ok::<_, std::convert::Infallible>(value.to_vec())
                        })
                        .await;
                    loaded.map_err(|e| BenchError::error(format!("get_or_compute: {e}")))?;
                    Ok(())
                })
                .await
            }
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

    /// The fenced store baseline, one entry at a time: `GET`, then one
    /// call of `fenced_store.lua`.
    async fn raw_fenced(&self, space: &Space) -> Result<()> {
        let script = redis::Script::new(include_str!("fenced_store.lua"));
        let ttl = TTL.as_millis() as u64;
        let fence = space.fence();
        drive(0..self.n, 1, |i| {
            let (script, fence) = (&script, &fence);
            async move {
                let mut con = self.b.raw.clone();
                let key = self.case.keys.name(i);
                let entry = space.entry(&key);
                let since = now_ms();
                let _: Option<Vec<u8>> =
                    redis::cmd("GET").arg(&entry).query_async(&mut con).await?;
                let tags = self.tags(i);
                let mut call = script.key(fence);
                call.key(&entry);
                for t in &tags {
                    call.key(space.tag(t));
                }
                call.arg(since)
                    .arg(&key)
                    .arg(self.wl.value())
                    .arg(ttl)
                    .arg(now_ms() + ttl);
                for t in &tags {
                    call.arg(t);
                }
                let stored: i64 = call.invoke_async(&mut con).await?;
                if stored != 1 {
                    return Err(BenchError::error("the fenced baseline refused a store"));
                }
                Ok(())
            }
        })
        .await
    }

    /// The exact rewrite baseline, one entry at a time: one call of
    /// `exact_rewrite.lua`, told the old tag's index.
    async fn raw_exact_rewrite(&self, space: &Space) -> Result<()> {
        let script = redis::Script::new(include_str!("exact_rewrite.lua"));
        let ttl = TTL.as_millis() as u64;
        drive(0..self.n, 1, |i| {
            let script = &script;
            async move {
                let mut con = self.b.raw.clone();
                let key = self.case.keys.name(i);
                let new = self.tags(i);
                let mut names = new.clone();
                names.push(old_tag(i));
                let mut call = script.key(space.entry(&key));
                for t in &names {
                    call.key(space.tag(t));
                }
                call.arg(&key)
                    .arg(self.wl.value())
                    .arg(ttl)
                    .arg(now_ms() + ttl)
                    .arg(new.len());
                for t in &names {
                    call.arg(t);
                }
                let removed: i64 = call.invoke_async(&mut con).await?;
                if removed != 1 {
                    return Err(BenchError::error(
                        "the exact rewrite baseline found no stale edge to remove",
                    ));
                }
                Ok(())
            }
        })
        .await
    }

    async fn raw(
        &self,
        space: &Space,
        mode: Mode,
        all: bool,
        prefixes: bool,
        read_first: bool,
    ) -> Result<()> {
        let (per_call, in_flight) = self.per_call(mode);
        let ttl = TTL.as_millis() as u64;
        drive(batches(self.n, per_call), in_flight, |range| async move {
            if read_first {
                for i in range.clone() {
                    let key = space.entry(&self.case.keys.name(i));
                    let _: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(key)
                        .query_async(&mut self.b.raw.clone())
                        .await?;
                }
            }
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
                // A writer that knows the tag it wrote before removes
                // the edge the entry loses.
                if self.case.before == Before::Changed {
                    pipe.cmd("ZREM")
                        .arg(space.tag(&old_tag(i)))
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
            assert!(matches!(find(tc), Some(Writer::Tagcache { .. })), "{tc}");
            assert!(matches!(find(base), Some(Writer::Raw { .. })), "{base}");
        }
        let mut ids: Vec<&str> = CASES.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CASES.len(), "case ids are unique");
    }
}
