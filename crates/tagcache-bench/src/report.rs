//! The bench's results: figures, goals, the JSON document (serde) and the
//! tables (comfy-table).

use std::time::Duration;

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use serde::Serialize;

use super::clear::ClearReport;
use super::cluster::ClusterReport;
use super::edges::EdgeReport;
use super::failsafe::OpenLatency;
use super::invalidate::InvalidationReport;
use super::keyspace::KeyspaceReport;
use super::memory::MemoryReport;
use super::probe::Stalls;
use super::server::Cost;
use super::sweep::SweepReport;

/// One timed run of `ops` logical operations.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Run {
    /// Logical operations (entries written or read).
    pub ops: u64,
    /// Wall time.
    pub seconds: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// What the server spent on it.
    #[serde(flatten)]
    pub cost: Cost,
}

impl Run {
    /// A run of `ops` operations that took `elapsed`.
    pub fn new(ops: u64, elapsed: Duration, cost: Cost) -> Self {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Self {
            ops,
            seconds,
            ops_per_sec: ops as f64 / seconds,
            cost,
        }
    }

    /// The faster of a previous best and a new run.
    pub fn faster(best: Option<Run>, run: Run) -> Run {
        match best {
            Some(b) if b.ops_per_sec >= run.ops_per_sec => b,
            _ => run,
        }
    }
}

/// A target a figure should meet.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// Stable name.
    pub id: &'static str,
    /// `>=` or `<=`.
    pub op: &'static str,
    /// The bound.
    pub target: f64,
    /// Unit of value and target (empty for ratios).
    pub unit: &'static str,
    /// The measured value (absent until checked).
    pub value: Option<f64>,
    /// Whether the value meets the target (false for a value that is not
    /// a number).
    pub pass: bool,
}

impl Goal {
    /// value >= target.
    pub fn at_least(id: &'static str, target: f64, unit: &'static str) -> Self {
        Self {
            id,
            op: ">=",
            target,
            unit,
            value: None,
            pass: false,
        }
    }

    /// value <= target.
    pub fn at_most(id: &'static str, target: f64, unit: &'static str) -> Self {
        Self {
            id,
            op: "<=",
            target,
            unit,
            value: None,
            pass: false,
        }
    }

    /// Records the measured value.
    pub fn check(mut self, value: f64) -> Self {
        self.pass = match self.op {
            ">=" => value >= self.target,
            _ => value <= self.target,
        };
        self.value = value.is_finite().then_some(value);
        self
    }

    /// `>= 0.80 pass` for the tables.
    fn cell(&self) -> String {
        let op = if self.op == ">=" { "≥" } else { "≤" };
        let mark = if self.pass { "pass" } else { "MISS" };
        format!("{op} {}{} {mark}", self.target, self.unit)
    }
}

/// tagcache and its baseline doing the same thing.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Stable name.
    pub id: &'static str,
    /// What tagcache did.
    pub operation: String,
    /// tagcache's best run.
    pub tagcache: Run,
    /// What the baseline did.
    pub baseline_name: String,
    /// The baseline's best run.
    pub baseline: Run,
    /// tagcache ops/s over baseline ops/s.
    pub ratio: f64,
    /// The goal for the ratio, if any.
    pub goal: Option<Goal>,
    /// How the ratio was taken when it is not best run over best run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_method: Option<String>,
}

impl Comparison {
    /// Compares two runs.
    pub fn new(
        id: &'static str,
        operation: String,
        tagcache: Run,
        baseline_name: String,
        baseline: Run,
        goal: Option<Goal>,
    ) -> Self {
        let ratio = tagcache.ops_per_sec / baseline.ops_per_sec;
        Self {
            id,
            operation,
            tagcache,
            baseline_name,
            baseline,
            ratio,
            goal: goal.map(|g| g.check(ratio)),
            ratio_method: None,
        }
    }

    /// Replaces the ratio by one measured otherwise (e.g. the median of
    /// paired rounds), checked against `goal`.
    pub fn with_ratio(mut self, ratio: f64, method: String, goal: Goal) -> Self {
        self.ratio = ratio;
        self.goal = Some(goal.check(ratio));
        self.ratio_method = Some(method);
        self
    }
}

/// How the run was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// The machine's load average (1, 5, 15 min) when the bench began.
    pub load_average: Option<[f64; 3]>,
    /// What the PING probe saw in 0.5 s of an idle server before the
    /// first phase (the machine's noise).
    pub idle_stalls: Stalls,
    /// The server's version.
    pub redis_version: String,
    /// Which server (password hidden).
    pub server: String,
    /// Entries per throughput run and memory measurement.
    pub entries: u64,
    /// Tags per entry.
    pub tags: usize,
    /// Value bytes.
    pub value_size: usize,
    /// Entries under the invalidated tag.
    pub invalidate_entries: u64,
    /// Entries of the namespace clear.
    pub clear_entries: u64,
    /// The phases run.
    pub phases: Vec<String>,
    /// Rounds per measurement.
    pub rounds: u32,
    /// Single calls in flight.
    pub concurrency: usize,
    /// How tagcache wrote (`transaction` or `script`; the edges phase
    /// measures both).
    pub write_path: String,
    /// Entries per batched write.
    pub batch: u64,
    /// Batched calls in flight.
    pub batches_in_flight: usize,
    /// Keys per MGET.
    pub mget_keys: u64,
    /// A key as written.
    pub example_key: String,
    /// Its tags.
    pub example_tags: Vec<String>,
}

/// Everything the bench found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How it ran.
    pub setup: Setup,
    /// The results of the phases run, at the top level of the JSON.
    #[serde(flatten)]
    pub sections: Sections,
    /// Every goal with its outcome.
    pub goals: Vec<Goal>,
    /// Goals met.
    pub goals_passed: usize,
    /// Goals missed.
    pub goals_missed: usize,
}

/// The results of the phases run.
#[derive(Debug, Clone, Serialize)]
pub struct Sections {
    /// Writes and reads (empty when not run).
    pub throughput: Vec<Comparison>,
    /// Invalidating a tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalidation: Option<InvalidationReport>,
    /// Index memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryReport>,
    /// Fail-safe reads with the breaker open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_safe_open: Option<OpenLatency>,
    /// Redis time per write of the reserved edges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edges: Option<EdgeReport>,
    /// Clearing a namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clear: Option<ClearReport>,
    /// The sweep's stall bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    /// `--cluster`: tagcache on a local cluster vs standalone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
    /// Hierarchical keys (private server only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyspaces: Option<KeyspaceReport>,
}

impl Report {
    /// Collects the goals of every part.
    pub fn new(setup: Setup, sections: Sections) -> Self {
        let goals: Vec<Goal> = sections
            .throughput
            .iter()
            .filter_map(|c| c.goal.clone())
            .chain(
                sections
                    .invalidation
                    .iter()
                    .flat_map(|i| i.goals.iter().cloned()),
            )
            .chain(sections.memory.iter().flat_map(|m| m.goals.iter().cloned()))
            .chain(
                sections
                    .fail_safe_open
                    .iter()
                    .flat_map(|o| o.goals.iter().cloned()),
            )
            .chain(sections.sweep.iter().flat_map(|s| s.goals.iter().cloned()))
            .chain(sections.edges.iter().flat_map(|e| e.goals.iter().cloned()))
            .collect();
        let goals_passed = goals.iter().filter(|g| g.pass).count();
        Self {
            goals_missed: goals.len() - goals_passed,
            goals_passed,
            setup,
            sections,
            goals,
        }
    }

    /// The tables, as printed.
    pub fn render(&self) -> String {
        let s = &self.setup;
        let mut out = format!(
            "tagcache bench: Redis {} ({}), {} entries, {} tags/entry, {} B values, write path {}
",
            s.redis_version, s.server, s.entries, s.tags, s.value_size, s.write_path
        );
        let load = s.load_average.map_or_else(
            || "load average unknown".to_owned(),
            |[a, b, c]| format!("load average {a:.2} {b:.2} {c:.2}"),
        );
        out += &format!(
            "machine at the start: {load}; idle server, PING every 1 ms: longest {} ms, p99 {} ms\n\n",
            num(s.idle_stalls.longest_ms),
            num(s.idle_stalls.p99_ms)
        );
        if !self.sections.throughput.is_empty() {
            out += &format!(
                "Throughput (best of {} round(s); ratio = tagcache / baseline, same server, same run)\n",
                s.rounds
            );
            out += &comparison_table(&self.sections.throughput).to_string();
            for c in self
                .sections
                .throughput
                .iter()
                .filter(|c| c.ratio_method.is_some())
            {
                out += &format!(
                    "\n  {}: ratio = {}",
                    c.id,
                    c.ratio_method.as_deref().unwrap_or("")
                );
            }
        }
        if let Some(o) = &self.sections.fail_safe_open {
            out += &format!(
                "\n\nFail-safe get_bytes with the breaker open (server killed; open after {} calls, {} ms): \
                 {} calls, {} bypassed, p50 {} µs, p99 {} µs, max {} µs  {}",
                o.calls_to_open,
                num(o.ms_to_open),
                o.calls,
                o.bypassed,
                num(o.p50_us),
                num(o.p99_us),
                num(o.max_us),
                o.goals.iter().map(Goal::cell).collect::<Vec<_>>().join(" ")
            );
        }
        if let Some(inv) = &self.sections.invalidation {
            out += &format!(
                "\n\nInvalidating a tag of {} entries (fresh entries per strategy, median of {} round(s); \
                 a probe PINGs every 1 ms on its own connection; idle longest {} ms)\n",
                s.invalidate_entries,
                s.rounds,
                num(inv.idle_stalls.longest_ms)
            );
            out += &invalidation_table(inv).to_string();
            out += &inv.summary();
        }
        if let Some(m) = &self.sections.memory {
            out += "\n\nIndex memory\n";
            out += &memory_table(m).to_string();
        }
        out += &self.edges_section();
        out += &self.clear_section();
        if let Some(s) = &self.sections.sweep {
            out += &s.render();
        }
        out += &self.cluster_section();
        out += &self.keyspace_section();
        out += &format!(
            "\n\ngoals: {} passed, {} missed",
            self.goals_passed, self.goals_missed
        );
        // Sections not run leave blank lines behind.
        while out.contains("\n\n\n") {
            out = out.replace("\n\n\n", "\n\n");
        }
        out
    }

    fn keyspace_section(&self) -> String {
        let Some(k) = &self.sections.keyspaces else {
            return String::new();
        };
        let mut out = format!(
            "\n\nHierarchical keys and groups (best of {} round(s); ratio = tagcache / baseline)\n{}",
            self.setup.rounds,
            comparison_table(
                &k.writes
                    .iter()
                    .chain([&k.group_fetch, &k.migration])
                    .cloned()
                    .collect::<Vec<_>>()
            )
        );
        if let Some(q) = &k.prefix_query {
            out += &format!(
                "\nprefix query {} ({} matches with values): tagcache query {} ms vs SCAN MATCH + MGET \
                 {} ms ({} SCAN calls over {} keys): SCAN takes × {:.1}",
                q.pattern,
                q.tagcache_matches,
                num(q.tagcache_ms),
                num(q.scan_ms),
                q.scan_calls,
                thousands(q.dbsize as f64),
                q.speedup
            );
        }
        out
    }

    fn cluster_section(&self) -> String {
        let Some(c) = &self.sections.cluster else {
            return String::new();
        };
        let i = &c.invalidation;
        format!(
            "\n\nRedis Cluster: {} local masters, buckets {} (best of {} round(s); \
             baseline = tagcache on the standalone server of this run; \
             cluster costs summed over every node)\n{}\n\
             invalidate a tag of {} entries: cluster {} ms (longest PING stall over the masters {} ms, \
             {} commands sent) vs standalone {} ms (longest stall {} ms): × {:.2}\n\
             note: {}",
            c.masters,
            c.buckets,
            self.setup.rounds,
            comparison_table(&c.comparisons),
            i.entries,
            num(i.wall_ms),
            num(i.longest_stall_ms),
            thousands(i.commands_sent),
            num(i.standalone_wall_ms),
            num(i.standalone_longest_stall_ms),
            i.wall_ratio,
            c.note
        )
    }
}

/// The throughput table alone (`tagcache bench --only`).
pub fn render_throughput(rows: &[Comparison], rounds: u32) -> String {
    let mut out = format!(
        "Throughput (best of {rounds} round(s); ratio = tagcache / baseline, same server, same run)\n{}",
        comparison_table(rows)
    );
    for c in rows.iter().filter(|c| c.ratio_method.is_some()) {
        out += &format!(
            "\n  {}: ratio = {}",
            c.id,
            c.ratio_method.as_deref().unwrap_or("")
        );
    }
    out
}

fn comparison_table(rows: &[Comparison]) -> Table {
    {
        let mut t = table(&[
            "tagcache",
            "ops/s",
            "baseline",
            "ops/s",
            "ratio",
            "goal",
            "server µs/op\ntagcache / base",
            "cmds sent/op\ntagcache / base",
        ]);
        for c in rows {
            t.add_row(vec![
                c.operation.clone(),
                thousands(c.tagcache.ops_per_sec),
                c.baseline_name.clone(),
                thousands(c.baseline.ops_per_sec),
                format!("{:.2}", c.ratio),
                c.goal.as_ref().map_or_else(|| "-".to_owned(), Goal::cell),
                format!(
                    "{} / {}",
                    num(c.tagcache.cost.server_usec_per_op),
                    num(c.baseline.cost.server_usec_per_op)
                ),
                format!(
                    "{} / {}",
                    num(c.tagcache.cost.commands_sent_per_op),
                    num(c.baseline.cost.commands_sent_per_op)
                ),
            ]);
        }
        right_align(&mut t, &[1, 3, 4]);
        t
    }
}

impl Report {
    fn edges_section(&self) -> String {
        let Some(e) = &self.sections.edges else {
            return String::new();
        };
        let mut out = format!(
            "\n\nRedis time per write (INFO commandstats: usec of the commands sent, EXEC and \
             EVALSHA including what they run; lowest of {} round(s); {} B values; flat key {}, \
             path key {}; tx = WritePath::Transaction, script = WritePath::Script)",
            e.rounds, e.value_size, e.example_keys[0], e.example_keys[1]
        );
        for m in &e.modes {
            out += &format!(
                "\n{}: {} entries per case, {} per call, {} in flight\n",
                match m.mode {
                    super::edges::Mode::Single => "One call in flight",
                    super::edges::Mode::Batched => "Batched",
                },
                m.entries,
                m.per_call,
                m.in_flight
            );
            let mut t = table(&[
                "case",
                "Redis µs/op",
                "rounds µs/op",
                "cmds sent/op",
                "cmds run/op",
                "scripts/op",
                "ops/s",
            ]);
            for c in &m.cases {
                t.add_row(vec![
                    c.label.to_owned(),
                    num(c.server_usec_per_op),
                    c.rounds_server_usec_per_op
                        .iter()
                        .map(|u| num(*u))
                        .collect::<Vec<_>>()
                        .join(" / "),
                    num(c.commands_sent_per_op),
                    num(c.commands_executed_per_op),
                    num(c.scripts_per_op),
                    thousands(c.ops_per_sec),
                ]);
            }
            right_align(&mut t, &[1, 2, 3, 4, 5, 6]);
            out += &t.to_string();
            let label = |id: &'static str| -> &'static str {
                m.cases.iter().find(|c| c.id == id).map_or(id, |c| c.label)
            };
            let mut t = table(&[
                "tagcache",
                "µs/op",
                "baseline",
                "µs/op",
                "tagcache / baseline",
                "median of round pairs",
                "goal",
            ]);
            for c in &m.comparisons {
                t.add_row(vec![
                    label(c.tagcache).to_owned(),
                    num(c.tagcache_usec),
                    label(c.baseline).to_owned(),
                    num(c.baseline_usec),
                    format!("{:.2}", c.ratio),
                    format!("{:.2}", c.paired_ratio),
                    c.goal.as_ref().map_or_else(|| "-".to_owned(), Goal::cell),
                ]);
            }
            right_align(&mut t, &[1, 3, 4, 5]);
            out += "\n";
            out += &t.to_string();
            let mut t = table(&["extra Redis time per write", "µs"]);
            for a in &m.attributions {
                t.add_row(vec![a.label.to_owned(), num(a.usec)]);
            }
            right_align(&mut t, &[1]);
            out += "\n";
            out += &t.to_string();
        }
        out
    }

    fn clear_section(&self) -> String {
        let Some(c) = &self.sections.clear else {
            return String::new();
        };
        let mut t = table(&[
            "strategy",
            "keys\nbefore / after",
            "deleted",
            "wall ms",
            "entries/s",
            "Redis µs\nper entry",
            "cmds sent",
            "longest stall ms\n(worst round)",
            "p99 stall ms",
            "longest cmd ms\n(slow log)",
        ]);
        for r in &c.runs {
            t.add_row(vec![
                r.label.to_owned(),
                format!(
                    "{} / {}",
                    thousands(r.keys_before as f64),
                    thousands(r.keys_after as f64)
                ),
                thousands(r.deleted as f64),
                num(r.wall_ms),
                thousands(r.entries_per_sec),
                num(r.server_usec_per_entry),
                thousands(r.commands_sent),
                format!(
                    "{} ({})",
                    num(r.stalls.longest_ms),
                    num(r.worst_round_longest_stall_ms)
                ),
                num(r.stalls.p99_ms),
                r.server_longest_command_ms
                    .map_or_else(|| "n/a".to_owned(), num),
            ]);
        }
        right_align(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let census = c.census.map_or_else(String::new, |k| {
            format!(
                "\ntagcache's clear of {} entries under MONITOR (untimed; MONITOR slows the server, \
                 so its chunks are smaller than timed): {} commands sent, {} run inside scripts",
                k.entries,
                thousands(k.census.sent as f64),
                thousands(k.census.in_scripts as f64)
            )
        });
        format!(
            "\n\nClearing a namespace of {} entries (fresh entries per strategy, median of {} round(s); \
             PING probe every 1 ms)\n{}{census}",
            c.entries, c.rounds, t
        )
    }
}

fn invalidation_table(inv: &InvalidationReport) -> Table {
    {
        let mut t = table(&[
            "strategy",
            "wall ms",
            "× Lua",
            "longest stall ms\n(worst round)",
            "p99 stall ms",
            "longest cmd ms\n(slow log)",
            "server µs\nper entry",
            "cmds sent",
            "goal",
        ]);
        let lua = inv
            .runs
            .iter()
            .find(|r| r.strategy == "lua")
            .map(|r| r.wall_ms);
        for r in &inv.runs {
            // The slowed server's goals on its own row.
            let slowed = r.strategy == "tagcache_slowed";
            let goal = if r.strategy == "tagcache" || slowed {
                inv.goals
                    .iter()
                    .filter(|g| g.id.contains("slowed") == slowed)
                    .map(Goal::cell)
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                "-".to_owned()
            };
            t.add_row(vec![
                r.label.to_owned(),
                num(r.wall_ms),
                lua.map_or_else(|| "-".to_owned(), |l| format!("{:.2}", r.wall_ms / l)),
                if r.rounds_wall_ms.len() > 1 {
                    format!(
                        "{} ({})",
                        num(r.stalls.longest_ms),
                        num(r.worst_round_longest_stall_ms)
                    )
                } else {
                    num(r.stalls.longest_ms)
                },
                num(r.stalls.p99_ms),
                r.server_longest_command_ms
                    .map_or_else(|| "n/a".to_owned(), num),
                num(r.cost_per_entry.server_usec_per_op),
                thousands(r.commands_sent),
                goal,
            ]);
        }
        right_align(&mut t, &[1, 2, 3, 4, 5, 6, 7]);
        t
    }
}

fn memory_table(m: &MemoryReport) -> Table {
    {
        let e = &m.after_expiry;
        let goal = |id: &str| {
            m.goals
                .iter()
                .find(|g| g.id == id)
                .map_or_else(|| "-".to_owned(), Goal::cell)
        };
        let mut t = table(&["measure", "value", "goal"]);
        t.add_row(vec![
            format!(
                "index bytes per entry per tag (used_memory delta, {} entries × {} tags, median of {})",
                m.entries,
                m.tags,
                m.index_bytes_per_entry_tag_rounds.len()
            ),
            num(m.index_bytes_per_entry_tag),
            goal("index_bytes_per_entry_tag"),
        ]);
        t.add_row(vec![
            "index bytes per entry per tag (MEMORY USAGE of index keys + registry)".to_owned(),
            num(m.memory_usage_per_entry_tag),
            "-".to_owned(),
        ]);
        t.add_row(vec![
            format!(
                "index bytes when every entry expired, before prune ({} keys)",
                e.index_keys_before_prune
            ),
            thousands(e.index_bytes_before_prune as f64),
            "-".to_owned(),
        ]);
        t.add_row(vec![
            format!(
                "prune: {} members, {} indexes removed in {} ms (longest stall {} ms)",
                e.members_removed,
                e.indexes_removed,
                num(e.prune_ms),
                num(e.prune_stalls.longest_ms)
            ),
            "".to_owned(),
            "-".to_owned(),
        ]);
        t.add_row(vec![
            format!("index bytes left after prune ({} keys)", e.index_keys_left),
            thousands(e.index_bytes_left as f64),
            goal("index_bytes_after_expiry_and_prune"),
        ]);
        right_align(&mut t, &[1]);
        t
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

fn right_align(t: &mut Table, columns: &[usize]) {
    for &c in columns {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// 3 significant digits, without exponent.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// An integer with thin separators: 123 456.
fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_check_both_ways() {
        assert!(Goal::at_least("a", 0.8, "").check(0.81).pass);
        assert!(!Goal::at_least("a", 0.8, "").check(0.79).pass);
        assert!(Goal::at_most("b", 0.0, "B").check(0.0).pass);
        assert!(!Goal::at_most("b", 10.0, "ms").check(f64::NAN).pass);
        assert_eq!(Goal::at_least("a", 0.8, "").check(0.9).cell(), "≥ 0.8 pass");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567.4), "1 234 567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(num(0.0123), "0.012");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1234.5), "1234");
    }
}
