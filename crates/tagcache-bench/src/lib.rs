//! The benchmark run by `tagcache bench`: tagcache measured against the raw Redis commands that
//! do the same work, on the same server, in the same run, so the figures
//! are ratios to what the server can physically do rather than absolute
//! numbers of a noisy machine.
//!
//! Phases, each on fresh namespaces deleted afterwards (by name, never by
//! SCAN): writes ([`writes`]), reads ([`reads`]), invalidating one tag
//! ([`invalidate`], with a PING probe for stalls), index memory
//! ([`memory`]), what the reserved edges of layout version 2 cost per
//! write ([`edges`]), clearing a namespace ([`clear`]), hierarchical keys
//! ([`keyspace`]). `--only` picks phases. [`report`] compares them with
//! the goals and renders the tables and the JSON document.
//!
//! The `tagcache` command parses [`BenchArgs`], resolves the server
//! ([`Target`]) and calls [`run`].

mod census;
mod chart;
mod clear;
mod cluster;
mod edges;
pub mod error;
mod failsafe;
mod invalidate;
mod keyspace;
mod l1;
mod layout;
mod measure;
mod memory;
mod pin;
mod probe;
mod reads;
mod report;
mod server;
mod slow;
mod spread;
mod sweep;
pub mod target;
mod workload;
mod writes;

use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{value_parser, Args, ValueEnum};
use futures_util::{StreamExt, TryStreamExt};
use redis::aio::MultiplexedConnection;

pub use crate::error::{BenchError, Result};
pub use crate::target::Target;
use layout::Janitor;
use report::{Report, Run};
use server::SlowLog;
use workload::Workload;

/// Batched calls (pipelines, `set_many_bytes`, MGET) kept in flight.
const BATCHES_IN_FLIGHT: usize = 4;
/// Keys per MGET / `get_many_bytes` call.
const MGET_KEYS: u64 = 100;
/// TTL of the entries whose writes and reads are measured.
const TTL: Duration = Duration::from_secs(3600);

/// Options of `tagcache bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Entries written and read by each throughput measurement.
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = value_parser!(u64).range(1..=10_000_000))]
    pub entries: u64,

    /// Tags per entry.
    #[arg(long, value_name = "K", default_value_t = 2,
          value_parser = value_parser!(u16).range(1..=64))]
    pub tags: u16,

    /// Bytes per value.
    #[arg(long, value_name = "B", default_value_t = 256,
          value_parser = value_parser!(u32).range(0..=1_048_576))]
    pub value_size: u32,

    /// Write the results as JSON to FILE; without FILE (or with `-`), print
    /// JSON on stdout instead of the tables.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,

    /// Write report.md, report.json and one SVG chart per invalidation
    /// strategy (the stall probe's wait over time) into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,

    /// Also start a local 3-master Redis Cluster (redis-server and
    /// redis-cli from PATH, loopback ports) and measure tagcache on it
    /// beside the standalone figures; the nodes are killed at the end.
    #[arg(long)]
    pub cluster: bool,

    /// Invalidate a tag of 1,000,000 entries (as --invalidate-entries 1000000).
    #[arg(long, conflicts_with = "invalidate_entries")]
    pub big: bool,

    /// Entries under the invalidated tag (default: --entries).
    #[arg(long, value_name = "N", value_parser = value_parser!(u64).range(1..=10_000_000))]
    pub invalidate_entries: Option<u64>,

    /// Repeat each measurement: throughput keeps the fastest round,
    /// invalidation the round with the median wall time.
    #[arg(long, value_name = "R", default_value_t = 3,
          value_parser = value_parser!(u32).range(1..=20))]
    pub rounds: u32,

    /// Also run the invalidation with redis-server slowed: the private
    /// server and a CPU hog pinned (taskset) to one shared CPU, so Redis
    /// gets about half a core and is descheduled at any moment.
    #[arg(long)]
    pub slow_server: bool,

    /// How `--slow-server` slows the server: `hog` (a CPU hog on the
    /// server's CPU: half a core, and waits of a scheduler slice) or
    /// `quota` (a cgroup CPU quota of 1 ms every 2 ms: half a core, taken
    /// away in slices of at most 1 ms).
    #[arg(long, value_enum, default_value_t = SlowBy::Hog, requires = "slow_server")]
    pub slow_by: SlowBy,

    /// How tagcache's writes reach Redis in the throughput, fail-safe and
    /// other phases (the `edges` phase measures both either way).
    #[arg(long, value_name = "PATH", value_enum, default_value_t = BenchWritePath::Transaction)]
    pub write_path: BenchWritePath,

    /// Single calls in flight in the one-call-per-entry measurements.
    #[arg(long, value_name = "C", default_value_t = 64,
          value_parser = value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,

    /// Entries per batched call (`set_many_bytes`, raw pipelines).
    #[arg(long, value_name = "N", default_value_t = 128,
          value_parser = value_parser!(u32).range(1..=100_000))]
    pub batch: u32,

    /// Run only these phases (comma-separated; default: all).
    /// `throughput` is writes, reads and the fail-safe figures; `edges`
    /// the Redis time per write of the reserved `\0a` and prefix edges;
    /// `clear` a namespace clear of min(--entries, 20000) entries
    /// (--invalidate-entries or --big: that many); `sweep` a prune of as
    /// many expired entries and as many deleted behind tagcache's back.
    #[arg(long, value_name = "PHASE", value_delimiter = ',')]
    pub only: Vec<Phase>,

    /// Run only these throughput measurements (repeat or comma-separate)
    /// and print only their table: `reads` and `fail-safe` read a data set
    /// written first (once, unmeasured, unless `writes` is chosen too).
    #[arg(
        long,
        value_name = "PART",
        value_enum,
        value_delimiter = ',',
        conflicts_with = "only"
    )]
    pub throughput_only: Vec<ThroughputPart>,
}

/// A part of the bench that `--only` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// Writes, reads, fail-safe overhead.
    Throughput,
    /// Invalidating one tag.
    Invalidate,
    /// Index memory.
    Memory,
    /// Redis time per write of the reserved edges (`\0a`, prefixes).
    Edges,
    /// `Cache::clear()` against FLUSHDB and SCAN + UNLINK.
    Clear,
    /// `Cache::prune()` with every member due (expired, or entry gone):
    /// the sweep's stall bound.
    Sweep,
    /// Hierarchical keys and groups (private server only).
    Keyspaces,
}

/// `--slow-by`: how `--slow-server` slows the private server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SlowBy {
    /// A CPU hog pinned to the server's CPU.
    Hog,
    /// A cgroup CPU quota (1 ms every 2 ms).
    Quota,
}

/// A throughput measurement `--throughput-only` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThroughputPart {
    /// The write throughput rows.
    Writes,
    /// `get_bytes` vs `GET`, `get_many_bytes` vs `MGET`, L1 hits vs `GET`
    /// and the announcements' share of a write.
    Reads,
    /// The fail-safe view's overhead over the strict cache.
    FailSafe,
}

/// `--write-path`: [`tagcache::WritePath`] on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchWritePath {
    /// `MULTI`/`EXEC` (the library's default).
    Transaction,
    /// `set.lua` for every write.
    Script,
}

impl From<BenchWritePath> for tagcache::WritePath {
    fn from(p: BenchWritePath) -> Self {
        match p {
            BenchWritePath::Transaction => tagcache::WritePath::Transaction,
            BenchWritePath::Script => tagcache::WritePath::Script,
        }
    }
}

/// The run's parameters, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// How the bench's caches write (except in the `edges` phase).
    write_path: tagcache::WritePath,
    entries: u64,
    invalidate_entries: u64,
    /// Entries of the namespace-clear phase.
    clear_entries: u64,
    /// Phases to run (all when `--only` is not given).
    phases: Vec<Phase>,
    rounds: u32,
    concurrency: usize,
    batch: u64,
    cluster: bool,
    slow_server: bool,
    slow_by: SlowBy,
    value_size: usize,
    /// Prefix of every namespace the bench creates.
    base: String,
    /// The data of the throughput and memory phases.
    workload: Workload,
    /// The data of the invalidation phase (tags sized for its entries).
    inv_workload: Workload,
}

impl Plan {
    fn new(args: &BenchArgs, namespace: &str) -> Result<Self> {
        let invalidate_entries = match (args.big, args.invalidate_entries) {
            (true, _) => 1_000_000,
            (false, Some(n)) => n,
            (false, None) => args.entries,
        };
        let clear_entries = match (args.big, args.invalidate_entries) {
            (true, _) => 1_000_000,
            (false, Some(n)) => n,
            (false, None) => args.entries.min(clear::DEFAULT_ENTRIES),
        };
        let phases = if args.only.is_empty() {
            Phase::value_variants().to_vec()
        } else {
            args.only.clone()
        };
        if args.cluster
            && !(phases.contains(&Phase::Throughput) && phases.contains(&Phase::Invalidate))
        {
            return Err(BenchError::error(
                "--cluster compares with the throughput and invalidate phases: add them to --only",
            ));
        }
        let pid = format!("-bench-{}", std::process::id());
        // Namespaces are at most 64 characters; phases add up to 13.
        let keep = 51usize.saturating_sub(pid.len()).min(namespace.len());
        let prefix = namespace.get(..keep).unwrap_or("tagcache");
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            return Err(BenchError::error(format!(
                "namespace {namespace:?} must be 1 to 64 characters of [A-Za-z0-9_-]"
            )));
        }
        Ok(Self {
            write_path: args.write_path.into(),
            entries: args.entries,
            invalidate_entries,
            clear_entries,
            phases,
            rounds: args.rounds,
            cluster: args.cluster,
            slow_server: args.slow_server,
            slow_by: args.slow_by,
            concurrency: args.concurrency as usize,
            batch: u64::from(args.batch),
            value_size: args.value_size as usize,
            base: format!("{prefix}{pid}"),
            workload: Workload::new(
                args.entries,
                usize::from(args.tags),
                args.value_size as usize,
            ),
            inv_workload: Workload::new(
                invalidate_entries,
                usize::from(args.tags),
                args.value_size as usize,
            ),
        })
    }

    /// Whether `--only` selected `phase`.
    fn runs(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }

    /// The namespace of one phase.
    fn namespace(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.base)
    }
}

/// What `tagcache bench` gets from the command line around it.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `--namespace`: the base of the bench's namespaces.
    pub namespace: String,
    /// No progress spinner (`--quiet` or `--verbose`).
    pub quiet: bool,
    /// The global `--json`: JSON on stdout instead of the tables.
    pub json: bool,
}

/// Checks the options (before any server is started).
///
/// # Errors
/// Options that contradict each other, a namespace the bench cannot use.
pub fn check(args: &BenchArgs, env: &Env) -> Result<()> {
    Plan::new(args, &env.namespace).map(drop)
}

/// Runs the benchmark on `target` until done or until `interrupted`
/// resolves; returns what to print on stdout (tables or JSON; empty when
/// the JSON went to a file).
///
/// # Errors
/// Bad options, a server that fails, [`BenchError::interrupted`].
pub async fn run<F: Future<Output = ()>>(
    args: BenchArgs,
    env: &Env,
    target: &Target,
    interrupted: impl Fn() -> F,
) -> Result<String> {
    let plan = Plan::new(&args, &env.namespace)?;
    let bench = Bench::connect(&plan, target, env.quiet).await?;
    if !args.throughput_only.is_empty() {
        return only(&bench, target, &args, env, interrupted()).await;
    }
    let outcome = tokio::select! {
        r = phases(&bench) => r,
        () = interrupted() => Err(BenchError::interrupted()),
    };
    // A private server goes away with everything in it; a given one gets
    // back what the bench wrote.
    let cleaned = if target.is_private() {
        Ok(())
    } else {
        bench.progress.set("cleaning up");
        bench.janitor.wipe_all(&bench.raw).await
    };
    bench.progress.finish();
    let report = outcome?;
    cleaned.map_err(|e| e.context("cleaning up the bench namespaces"))?;
    emit(&report, &args, env.json)
}

/// `--only`: the chosen throughput phases, their table (or JSON) only.
async fn only(
    b: &Bench<'_>,
    target: &Target,
    args: &BenchArgs,
    env: &Env,
    interrupted: impl Future<Output = ()>,
) -> Result<String> {
    let outcome = tokio::select! {
        r = only_phases(b, &args.throughput_only) => r,
        () = interrupted => Err(BenchError::interrupted()),
    };
    let cleaned = if target.is_private() {
        Ok(())
    } else {
        b.progress.set("cleaning up");
        b.janitor.wipe_all(&b.raw).await
    };
    b.progress.finish();
    let rows = outcome?;
    cleaned.map_err(|e| e.context("cleaning up the bench namespaces"))?;
    if env.json || args.json.is_some() {
        let json = serde_json::to_string_pretty(&rows)
            .map_err(|e| BenchError::error(format!("cannot encode the results: {e}")))?;
        match args.json.as_deref() {
            Some(path) if path != std::path::Path::new("-") => {
                std::fs::write(path, json + "\n").map_err(|e| {
                    BenchError::error(format!("cannot write {}: {e}", path.display()))
                })?;
                Ok(String::new())
            }
            _ => Ok(json),
        }
    } else {
        Ok(report::render_throughput(&rows, b.plan.rounds))
    }
}

async fn only_phases(b: &Bench<'_>, phases: &[ThroughputPart]) -> Result<Vec<report::Comparison>> {
    let mut rows = Vec::new();
    let kept = if phases.contains(&ThroughputPart::Writes) {
        let (writes, kept) = writes::run(b).await?;
        rows.extend(writes);
        kept
    } else {
        writes::prefill(b).await?
    };
    if phases.contains(&ThroughputPart::Reads) {
        rows.extend(reads::run(b, &kept).await?);
        rows.extend(l1::run(b, &kept).await?);
    }
    if phases.contains(&ThroughputPart::FailSafe) {
        rows.extend(failsafe::run(b, &kept).await?);
    }
    b.janitor.wipe(&b.raw, &kept.tagcache).await?;
    b.janitor.wipe(&b.raw, &kept.raw).await?;
    Ok(rows)
}

async fn phases(b: &Bench<'_>) -> Result<Report> {
    let plan = b.plan;
    // What the machine was like before anything ran, printed at the top.
    let load_average = invalidate::load_average();
    b.progress.set("idle probe");
    let idle_stalls = invalidate::idle_probe(b).await?;
    let mut throughput = Vec::new();
    let mut fail_safe_open = None;
    if plan.runs(Phase::Throughput) {
        let (writes, kept) = writes::run(b).await?;
        throughput.extend(writes);
        throughput.extend(reads::run(b, &kept).await?);
        throughput.extend(l1::run(b, &kept).await?);
        throughput.extend(failsafe::run(b, &kept).await?);
        b.janitor.wipe(&b.raw, &kept.tagcache).await?;
        b.janitor.wipe(&b.raw, &kept.raw).await?;
    }
    let invalidation = if plan.runs(Phase::Invalidate) {
        Some(invalidate::run(b).await?)
    } else {
        None
    };
    let memory = if plan.runs(Phase::Memory) {
        Some(memory::run(b).await?)
    } else {
        None
    };
    let edges = if plan.runs(Phase::Edges) {
        Some(edges::run(b).await?)
    } else {
        None
    };
    let clear = if plan.runs(Phase::Clear) {
        Some(clear::run(b).await?)
    } else {
        None
    };
    let sweep = if plan.runs(Phase::Sweep) {
        Some(sweep::run(b).await?)
    } else {
        None
    };
    if plan.runs(Phase::Throughput) {
        fail_safe_open = Some(failsafe::open_latency(b).await?);
    }
    let cluster = match (&invalidation, plan.cluster) {
        (Some(invalidation), true) => {
            let tc = |id: &str| {
                throughput
                    .iter()
                    .find(|c| c.id == id)
                    .map(|c| c.tagcache)
                    .unwrap_or_default()
            };
            let inv = invalidation.runs.iter().find(|r| r.strategy == "tagcache");
            let standalone = cluster::Standalone {
                set_many: tc("set_many"),
                get: tc("get"),
                invalidate_wall_ms: inv.map_or(f64::NAN, |r| r.wall_ms),
                invalidate_longest_stall_ms: inv.map_or(f64::NAN, |r| r.stalls.longest_ms),
            };
            Some(cluster::run(b, &standalone).await?)
        }
        _ => None,
    };
    // Last: it empties the private server.
    let keyspaces = if plan.runs(Phase::Keyspaces) {
        keyspace::run(b).await?
    } else {
        None
    };
    Ok(Report::new(
        b.describe(load_average, idle_stalls).await?,
        report::Sections {
            throughput,
            invalidation,
            memory,
            fail_safe_open,
            cluster,
            keyspaces,
            edges,
            clear,
            sweep,
        },
    ))
}

fn emit(report: &Report, args: &BenchArgs, json_flag: bool) -> Result<String> {
    let to_stdout = json_flag || args.json.as_deref() == Some(std::path::Path::new("-"));
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| BenchError::error(format!("cannot encode the results: {e}")))?;
    if to_stdout {
        return Ok(json);
    }
    if let Some(dir) = &args.report {
        write_report(report, &json, dir)?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, json + "\n")
            .map_err(|e| BenchError::error(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(report.render())
}

/// `--report DIR`: the tables as Markdown, the JSON, and a chart per
/// invalidation strategy.
fn write_report(report: &Report, json: &str, dir: &std::path::Path) -> Result<()> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| BenchError::error(format!("cannot write {}: {e}", path.display())))
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| BenchError::error(format!("cannot create {}: {e}", dir.display())))?;
    let mut md = String::from("# tagcache bench report\n\n```text\n");
    md += &report.render();
    md += "```\n\n## Stalls during invalidation\n\n";
    for run in report.sections.invalidation.iter().flat_map(|i| &i.runs) {
        let file = format!("invalidation-{}.svg", run.strategy);
        write(&file, &chart::svg(run))?;
        md += &format!("### {}\n\n![{}]({file})\n\n", run.label, run.label);
    }
    write("report.md", &md)?;
    write("report.json", &format!("{json}\n"))
}

/// Shows which phase runs (on stderr, only on a terminal).
struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    fn new(hidden: bool) -> Self {
        let bar = if hidden {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        };
        Self { bar }
    }

    fn set(&self, phase: impl Into<String>) {
        let phase = phase.into();
        tracing::info!("{phase}");
        self.bar.set_message(phase);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Everything the phases share.
struct Bench<'a> {
    plan: &'a Plan,
    target: &'a Target,
    /// Raw commands and server sampling (no response timeout: baselines
    /// may block the server for seconds).
    raw: MultiplexedConnection,
    client: redis::Client,
    janitor: Janitor,
    /// Only on a private server (it changes the configuration).
    slowlog: Option<SlowLog>,
    progress: Progress,
}

impl<'a> Bench<'a> {
    async fn connect(plan: &'a Plan, target: &'a Target, quiet: bool) -> Result<Self> {
        let client = target.client()?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        let raw = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| BenchError::error(format!("cannot connect to {}: {e}", target.shown())))?;
        let slowlog = if target.is_private() {
            Some(SlowLog::enable(&raw).await?)
        } else {
            None
        };
        Ok(Self {
            plan,
            target,
            raw,
            client,
            janitor: Janitor::default(),
            slowlog,
            progress: Progress::new(quiet),
        })
    }

    /// A tagcache handle on one of the bench's namespaces.
    async fn cache(&self, namespace: &str) -> Result<tagcache::Cache> {
        self.cache_with(namespace, self.plan.write_path).await
    }

    /// [`Bench::cache`] writing through `path`.
    async fn cache_with(
        &self,
        namespace: &str,
        path: tagcache::WritePath,
    ) -> Result<tagcache::Cache> {
        Ok(tagcache::Cache::builder(self.target.url())
            .write_path(path)
            .namespace(namespace)
            .auto_sweep(None)
            // The bench deletes what it writes; a user's eviction policy
            // is reported, not a reason to refuse measuring.
            .eviction_check(tagcache::EvictionCheck::Warn)
            // Throughput is measured, not latency: a loaded machine (or a
            // baseline blocking the server) must not abort the run.
            .response_timeout(Duration::from_secs(30))
            // The fail-safe bound equal to the response timeout, as with
            // the defaults (100 ms each): no timer of its own per call.
            .op_timeout(Duration::from_secs(30))
            .build()
            .await?)
    }

    /// Runs `work` (`ops` logical operations, sending only the commands
    /// `sent`) and reads what it cost the server.
    async fn measure<F>(&self, sent: &[&str], ops: u64, work: F) -> Result<Run>
    where
        F: Future<Output = Result<()>>,
    {
        self.measure_nested(sent, &[], ops, work).await
    }

    /// As [`Bench::measure`], for work that times itself (calls driven on
    /// another runtime: [`spread::Spread::drive`]).
    async fn measure_timed<F>(&self, sent: &[&str], ops: u64, work: F) -> Result<Run>
    where
        F: Future<Output = Result<Duration>>,
    {
        let before = server::sample(&self.raw).await?;
        let elapsed = work.await?;
        let after = server::sample(&self.raw).await?;
        Ok(Run::new(
            ops,
            elapsed,
            before.cost_until_nested(&after, sent, &[], ops),
        ))
    }

    /// As [`Bench::measure`], with commands that also ran nested
    /// ([`server::Sample::cost_until_nested`]).
    async fn measure_nested<F>(
        &self,
        sent: &[&str],
        nested: &[(&str, &str)],
        ops: u64,
        work: F,
    ) -> Result<Run>
    where
        F: Future<Output = Result<()>>,
    {
        let before = server::sample(&self.raw).await?;
        let start = Instant::now();
        work.await?;
        let elapsed = start.elapsed();
        let after = server::sample(&self.raw).await?;
        Ok(Run::new(
            ops,
            elapsed,
            before.cost_until_nested(&after, sent, nested, ops),
        ))
    }

    async fn describe(
        &self,
        load_average: Option<[f64; 3]>,
        idle_stalls: probe::Stalls,
    ) -> Result<report::Setup> {
        let wl = &self.plan.workload;
        Ok(report::Setup {
            load_average,
            idle_stalls,
            redis_version: server::version(&self.raw).await?,
            server: self.target.shown(),
            entries: self.plan.entries,
            tags: wl.tag_count(),
            value_size: self.plan.value_size,
            invalidate_entries: self.plan.invalidate_entries,
            clear_entries: self.plan.clear_entries,
            phases: self
                .plan
                .phases
                .iter()
                .filter_map(|p| Some(p.to_possible_value()?.get_name().to_owned()))
                .collect(),
            rounds: self.plan.rounds,
            concurrency: self.plan.concurrency,
            write_path: match self.plan.write_path {
                tagcache::WritePath::Script => "script",
                _ => "transaction",
            }
            .to_owned(),
            batch: self.plan.batch,
            batches_in_flight: BATCHES_IN_FLIGHT,
            mget_keys: MGET_KEYS,
            example_key: layout::item_key(12_345),
            example_tags: wl.tags_of(12_345, None),
        })
    }
}

/// `0..n` cut into ranges of `size`.
fn batches(n: u64, size: u64) -> impl Iterator<Item = Range<u64>> {
    let size = size.max(1);
    (0..n.div_ceil(size)).map(move |b| b * size..((b + 1) * size).min(n))
}

/// Runs `f` on every item with at most `in_flight` futures pending.
async fn drive<T, I, F, Fut>(items: I, in_flight: usize, f: F) -> Result<()>
where
    I: IntoIterator<Item = T>,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    futures_util::stream::iter(items)
        .map(f)
        .buffer_unordered(in_flight.max(1))
        .try_for_each(|()| std::future::ready(Ok(())))
        .await
}

/// Milliseconds since the epoch (raw baselines score index members by it).
// The same as tagcache's internal clock, repeated on purpose: the raw
// baselines stand for an application written without the library.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_everything_once() {
        let all: Vec<Range<u64>> = batches(10, 4).collect();
        assert_eq!(all, vec![0..4, 4..8, 8..10]);
        assert_eq!(batches(0, 4).count(), 0);
    }

    #[test]
    fn namespaces_stay_short_and_valid() {
        let args = BenchArgs {
            entries: 10,
            tags: 2,
            value_size: 8,
            json: None,
            report: None,
            big: false,
            cluster: false,
            slow_server: false,
            slow_by: SlowBy::Hog,
            write_path: BenchWritePath::Transaction,
            invalidate_entries: None,
            rounds: 1,
            concurrency: 1,
            batch: 1,
            only: Vec::new(),
            throughput_only: Vec::new(),
        };
        let plan = Plan::new(&args, &"n".repeat(64)).unwrap();
        assert!(plan.namespace("inv-census").len() <= 64);
        assert!(plan.namespace("w-plain19").len() <= 64);
        assert_eq!(plan.invalidate_entries, 10);
        assert!(Plan::new(&args, "a.b").is_err());
        assert_eq!(plan.clear_entries, 10);
        assert_eq!(plan.phases.len(), Phase::value_variants().len());
        let only = BenchArgs {
            only: vec![Phase::Edges],
            cluster: true,
            ..args.clone()
        };
        assert!(Plan::new(&only, "n").is_err());
        let big = BenchArgs {
            entries: 100_000,
            ..args
        };
        assert_eq!(
            Plan::new(&big, "n").unwrap().clear_entries,
            clear::DEFAULT_ENTRIES
        );
    }
}
