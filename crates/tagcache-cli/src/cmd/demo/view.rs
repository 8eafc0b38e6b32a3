//! What the demo shows: a live table redrawn once a second when stdout is
//! a terminal (a plain line per second on stderr otherwise), and the
//! summary at the end.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{CellAlignment, Table};
use serde_json::json;

use super::meter::{Counts, Latency};
use super::peer::{PeerReport, BOUND};
use crate::cmd::stats::bytes;
use crate::error::Result;
use crate::output;

/// The L1s' counters at one moment (`--l1`).
#[derive(Debug, Clone, Default)]
pub struct L1Tick {
    /// This process' L1.
    pub own: tagcache::L1Stats,
    /// The peer's latest report.
    pub peer: PeerReport,
}

/// The L1s at the end of the run (`--l1`).
#[derive(Debug, Clone)]
pub struct L1Summary {
    /// This process' L1.
    pub own: tagcache::L1Stats,
    /// The peer's last report.
    pub peer: PeerReport,
}

fn ratio(hits: u64, misses: u64) -> f64 {
    if hits + misses == 0 {
        0.0
    } else {
        hits as f64 / (hits + misses) as f64
    }
}

fn us(n: u64) -> String {
    format!("{:.2} ms", n as f64 / 1000.0)
}

/// One second of the run.
#[derive(Debug, Clone)]
pub struct Tick {
    /// Time since the start.
    pub at: Duration,
    /// Length of the run.
    pub of: Duration,
    /// Length of this window.
    pub window: Duration,
    /// What happened in the window.
    pub delta: Counts,
    /// Read latency in the window.
    pub latency: Latency,
    /// Everything so far.
    pub total: Counts,
    /// Longest PING wait in the window, and overall.
    pub stall: (Duration, Duration),
    /// With `--l1`: the L1s a second ago and now.
    pub l1: Option<(L1Tick, L1Tick)>,
}

/// Where the live view goes.
#[derive(Debug)]
pub enum Live {
    /// A table redrawn in place on stdout; how many lines it took.
    Table(usize),
    /// A line per second on stderr.
    Lines,
    /// Nothing (`-q`).
    Off,
}

impl Live {
    /// A table on a terminal, lines otherwise; nothing when quiet. JSON
    /// output keeps stdout for the JSON document.
    pub fn choose(quiet: bool, json: bool) -> Self {
        if quiet {
            Self::Off
        } else if !json && std::io::stdout().is_terminal() {
            Self::Table(0)
        } else {
            Self::Lines
        }
    }

    /// Shows one second.
    ///
    /// # Errors
    /// stdout closed or unwritable.
    pub fn show(&mut self, t: &Tick, title: &str) -> Result<()> {
        match self {
            Self::Table(drawn) => {
                let text = format!(
                    "{title} · {:.0} / {} s\n{}",
                    t.at.as_secs_f64(),
                    t.of.as_secs(),
                    table(t)
                );
                *drawn = output::redraw(*drawn, &text)?;
            }
            Self::Lines => output::progress_line(&line(t)),
            Self::Off => {}
        }
        Ok(())
    }

    /// Removes the table (the summary follows).
    ///
    /// # Errors
    /// stdout closed or unwritable.
    pub fn clear(&mut self) -> Result<()> {
        if let Self::Table(drawn) = self {
            *drawn = output::redraw(*drawn, "")?;
        }
        Ok(())
    }
}

fn per_sec(n: u64, over: Duration) -> String {
    let secs = over.as_secs_f64();
    if secs <= 0.0 {
        return "-".to_owned();
    }
    format!("{:.0}", n as f64 / secs)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn percent(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
}

fn ops(c: &Counts) -> u64 {
    c.reads + c.invalidations
}

fn table(t: &Tick) -> String {
    let (d, all) = (&t.delta, &t.total);
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(vec!["", "last second", "total"]);
    let rows: [(&str, String, String); 10] = [
        ("ops/s", per_sec(ops(d), t.window), per_sec(ops(all), t.at)),
        (
            "hit ratio",
            percent(d.hit_ratio()),
            percent(all.hit_ratio()),
        ),
        ("read p50", ms(t.latency.p50), String::new()),
        ("read p99", ms(t.latency.p99), String::new()),
        ("entries", all.entries.to_string(), String::new()),
        ("indexes", all.indexes.to_string(), bytes(all.index_memory)),
        (
            "invalidations",
            d.invalidations.to_string(),
            all.invalidations.to_string(),
        ),
        (
            "entries removed",
            d.removed.to_string(),
            all.removed.to_string(),
        ),
        (
            "stores refused",
            d.not_stored.to_string(),
            all.not_stored.to_string(),
        ),
        ("longest redis stall", ms(t.stall.0), ms(t.stall.1)),
    ];
    for (name, now, total) in rows {
        table.add_row(vec![name.to_owned(), now, total]);
    }
    table.add_row(vec![
        "stale pages served".to_owned(),
        d.stale.to_string(),
        all.stale.to_string(),
    ]);
    if let Some((was, now)) = &t.l1 {
        for (name, last, total) in l1_rows(was, now, t.window) {
            table.add_row(vec![name, last, total]);
        }
    }
    for i in 1..3 {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.to_string()
}

/// The `--l1` rows: both L1s' hit ratios, the announcement lag, the
/// peer's reads and its stale reads within and past the bound.
fn l1_rows(was: &L1Tick, now: &L1Tick, window: Duration) -> Vec<(String, String, String)> {
    let (o, p, po) = (&now.own, &now.peer, &was.peer);
    vec![
        (
            "L1 hit ratio".to_owned(),
            percent(ratio(o.hits - was.own.hits, o.misses - was.own.misses)),
            percent(ratio(o.hits, o.misses)),
        ),
        (
            "L1 announcement lag".to_owned(),
            format!("p50 {}, p99 {}", us(o.lag_p50_us), us(o.lag_p99_us)),
            format!("max {}", us(o.lag_max_us)),
        ),
        (
            "peer reads/s".to_owned(),
            per_sec(p.reads.saturating_sub(po.reads), window),
            p.reads.to_string(),
        ),
        (
            "peer L1 hit ratio".to_owned(),
            percent(ratio(
                p.l1_hits.saturating_sub(po.l1_hits),
                p.l1_misses.saturating_sub(po.l1_misses),
            )),
            percent(p.l1_hit_ratio()),
        ),
        (
            "peer announcement lag".to_owned(),
            format!("p50 {}, p99 {}", us(p.lag_p50_us), us(p.lag_p99_us)),
            format!("max {}", us(p.lag_max_us)),
        ),
        (
            format!("peer stale ≤ {} ms", BOUND.as_millis()),
            p.stale_within_bound
                .saturating_sub(po.stale_within_bound)
                .to_string(),
            format!("{} (max {} ms)", p.stale_within_bound, p.stale_max_ms),
        ),
        (
            format!("peer stale > {} ms", BOUND.as_millis()),
            p.stale_past_bound
                .saturating_sub(po.stale_past_bound)
                .to_string(),
            p.stale_past_bound.to_string(),
        ),
    ]
}

fn line(t: &Tick) -> String {
    let (d, all) = (&t.delta, &t.total);
    let l1 = match &t.l1 {
        Some((_, now)) => format!(
            "  L1 hits {}  peer reads {}  peer L1 hits {}  lag p99 {}  peer stale {} / past bound {}",
            percent(ratio(now.own.hits, now.own.misses)),
            now.peer.reads,
            percent(now.peer.l1_hit_ratio()),
            us(now.peer.lag_p99_us),
            now.peer.stale_within_bound,
            now.peer.stale_past_bound,
        ),
        None => String::new(),
    };
    format!(
        "{:>3} s  ops/s {}  hits {}  p50 {}  p99 {}  entries {}  indexes {}  invalidations {} ({} removed)  stall {}  stale {}{l1}",
        t.at.as_secs(),
        per_sec(ops(d), t.window),
        percent(d.hit_ratio()),
        ms(t.latency.p50),
        ms(t.latency.p99),
        all.entries,
        all.indexes,
        all.invalidations,
        all.removed,
        ms(t.stall.0),
        all.stale,
    )
}

/// Everything the run measured.
#[derive(Debug)]
pub struct Summary {
    /// How long the traffic ran.
    pub ran: Duration,
    /// Whether Ctrl-C ended it early.
    pub interrupted: bool,
    /// Readers and writers.
    pub readers: u32,
    /// Writers.
    pub writers: u32,
    /// The server, as shown to the user.
    pub server: String,
    /// The demo's namespace.
    pub namespace: String,
    /// Final counters (with a last sample of the namespace).
    pub counts: Counts,
    /// Read latency over the run.
    pub latency: Latency,
    /// The probe's PINGs and longest wait.
    pub pings: u64,
    /// Longest PING wait.
    pub stall: Duration,
    /// KEYS and SCAN calls the server counted during the run.
    pub keys_calls: u64,
    /// SCAN calls.
    pub scan_calls: u64,
    /// The first stale page served, described.
    pub first_stale: Option<String>,
    /// With `--l1`: both L1s.
    pub l1: Option<L1Summary>,
}

impl Summary {
    /// The invariants that broke, as sentences.
    pub fn broken(&self) -> Vec<String> {
        let mut broken = Vec::new();
        if self.counts.stale > 0 {
            broken.push(format!(
                "{} stale page(s) served after their invalidation returned; first: {}",
                self.counts.stale,
                self.first_stale.as_deref().unwrap_or("?")
            ));
        }
        if let Some(l1) = self.l1.as_ref().filter(|l| l.peer.stale_past_bound > 0) {
            broken.push(format!(
                "the peer process served {} page(s) more than {} ms after their invalidation returned (max {} ms)",
                l1.peer.stale_past_bound,
                BOUND.as_millis(),
                l1.peer.stale_max_ms
            ));
        }
        if self.keys_calls + self.scan_calls > 0 {
            broken.push(format!(
                "the server counted {} KEYS and {} SCAN calls",
                self.keys_calls, self.scan_calls
            ));
        }
        broken
    }

    /// The summary as text.
    pub fn text(&self) -> String {
        let c = &self.counts;
        let mut table = Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        let rows = [
            (
                "reads",
                c.reads.to_string(),
                format!(
                    "{}/s, {} hits, p50 {}, p99 {}, max {}",
                    per_sec(c.reads, self.ran),
                    percent(c.hit_ratio()),
                    ms(self.latency.p50),
                    ms(self.latency.p99),
                    ms(self.latency.max)
                ),
            ),
            (
                "renders",
                (c.loaded + c.not_stored).to_string(),
                format!(
                    "{} stored, {} refused (an invalidation ran meanwhile, or Redis was slow), {} shared",
                    c.loaded, c.not_stored, c.shared
                ),
            ),
            (
                "invalidations",
                c.invalidations.to_string(),
                format!("{} entries removed, {} journaled", c.removed, c.journaled),
            ),
            (
                "entries",
                c.entries.to_string(),
                format!("{} indexes, {} of index memory", c.indexes, bytes(c.index_memory)),
            ),
            (
                "longest stall",
                ms(self.stall),
                format!("{} PINGs, one per ms, on their own connection", self.pings),
            ),
            (
                "KEYS / SCAN",
                format!("{} / {}", self.keys_calls, self.scan_calls),
                "calls counted by the server (INFO commandstats)".to_owned(),
            ),
        ];
        for (name, value, note) in rows {
            table.add_row(vec![format!(" {name}"), value, note]);
        }
        if let Some(l1) = &self.l1 {
            let (o, p) = (&l1.own, &l1.peer);
            table.add_row(vec![
                " L1 (this process)".to_owned(),
                percent(ratio(o.hits, o.misses)),
                format!(
                    "hits; {} announcements, lag p50 {}, p99 {}, max {}; {} fills refused",
                    o.announcements,
                    us(o.lag_p50_us),
                    us(o.lag_p99_us),
                    us(o.lag_max_us),
                    o.fills_refused
                ),
            ]);
            table.add_row(vec![
                " L1 (peer process)".to_owned(),
                percent(p.l1_hit_ratio()),
                format!(
                    "hits of {} reads; {} announcements, lag p50 {}, p99 {}, max {}",
                    p.reads,
                    p.announcements,
                    us(p.lag_p50_us),
                    us(p.lag_p99_us),
                    us(p.lag_max_us)
                ),
            ]);
        }
        if let Some(col) = table.column_mut(1) {
            col.set_cell_alignment(CellAlignment::Right);
        }
        let ended = if self.interrupted {
            ", stopped by Ctrl-C"
        } else {
            ""
        };
        let mut text = format!(
            "tagcache demo: {:.1} s{ended}, {} readers, {} writers, {}, namespace {}\n{}\ninvariants\n",
            self.ran.as_secs_f64(),
            self.readers,
            self.writers,
            self.server,
            self.namespace,
            output::plain_table(&table)
        );
        let verdict = |ok: bool| if ok { "ok  " } else { "FAIL" };
        text.push_str(&format!(
            "  {} no stale page served after its invalidation returned ({} of {} reads)\n",
            verdict(c.stale == 0),
            c.stale,
            c.reads
        ));
        if let Some(l1) = &self.l1 {
            let p = &l1.peer;
            text.push_str(&format!(
                "  {} no page served by the peer's L1 more than {} ms after its invalidation returned ({} past, {} within, max {} ms, of {} reads)\n",
                verdict(p.stale_past_bound == 0),
                BOUND.as_millis(),
                p.stale_past_bound,
                p.stale_within_bound,
                p.stale_max_ms,
                p.reads
            ));
        }
        text.push_str(&format!(
            "  {} no KEYS or SCAN calls ({})",
            verdict(self.keys_calls + self.scan_calls == 0),
            self.keys_calls + self.scan_calls
        ));
        text
    }

    /// The summary as JSON.
    pub fn json(&self) -> serde_json::Value {
        let c = &self.counts;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let l1 = self.l1.as_ref().map(|l1| {
            let o = &l1.own;
            json!({
                "bound_ms": BOUND.as_millis() as u64,
                "hits": o.hits,
                "misses": o.misses,
                "hit_ratio": ratio(o.hits, o.misses),
                "fills_refused": o.fills_refused,
                "announcements": o.announcements,
                "lag_us": { "p50": o.lag_p50_us, "p99": o.lag_p99_us, "max": o.lag_max_us },
                "peer": l1.peer,
            })
        });
        json!({
            "seconds": self.ran.as_secs_f64(),
            "interrupted": self.interrupted,
            "readers": self.readers,
            "writers": self.writers,
            "server": self.server,
            "namespace": self.namespace,
            "reads": c.reads,
            "hits": c.hits,
            "hit_ratio": c.hit_ratio(),
            "latency_ms": { "p50": ms(self.latency.p50), "p99": ms(self.latency.p99), "max": ms(self.latency.max) },
            "renders": { "stored": c.loaded, "not_stored": c.not_stored, "shared": c.shared },
            "invalidations": c.invalidations,
            "entries_removed": c.removed,
            "journaled": c.journaled,
            "entries": c.entries,
            "indexes": c.indexes,
            "index_memory_bytes": c.index_memory,
            "stall_ms": ms(self.stall),
            "pings": self.pings,
            "keys_calls": self.keys_calls,
            "scan_calls": self.scan_calls,
            "stale_pages_served": c.stale,
            "l1": l1,
            "invariants_hold": self.broken().is_empty(),
        })
    }
}
