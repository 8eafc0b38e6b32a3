//! `tagcache prune`: one full sweep — expired index members, empty
//! indexes, abandoned invalidations, old fences — in bounded steps.

use std::process::ExitCode;

use clap::Args;
use comfy_table::Table;
use serde_json::json;
use tagcache::{EvictionCheck, PruneReport};

use crate::cmd::{Context, JsonFlag};
use crate::error::Result;
use crate::output;
use crate::progress::Progress;

/// Members or indexes one step works on at most.
const STEP_BUDGET: u64 = 10_000;

/// Options of `tagcache prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub out: JsonFlag,
}

/// What the steps removed, summed.
#[derive(Debug, Default)]
struct Totals {
    indexes_visited: u64,
    members_removed: u64,
    indexes_removed: u64,
    invalidations_resumed: u64,
    entries_removed: u64,
    fences_removed: u64,
}

impl Totals {
    fn add(&mut self, r: &PruneReport) {
        self.indexes_visited += r.indexes_visited;
        self.members_removed += r.members_removed;
        self.indexes_removed += r.indexes_removed;
        self.invalidations_resumed += r.invalidations_resumed;
        self.entries_removed += r.entries_removed;
        self.fences_removed += r.fences_removed;
    }

    fn rows(&self) -> [(&'static str, u64); 6] {
        [
            ("indexes_visited", self.indexes_visited),
            ("members_removed", self.members_removed),
            ("indexes_removed", self.indexes_removed),
            ("invalidations_resumed", self.invalidations_resumed),
            ("entries_removed", self.entries_removed),
            ("fences_removed", self.fences_removed),
        ]
    }
}

/// Sweeps until nothing due is left; prints what was removed. Ctrl-C
/// stops between steps (what was removed stays removed).
pub async fn run(args: PruneArgs, ctx: &Context) -> Result<ExitCode> {
    let (_target, cache) = ctx.cache(EvictionCheck::Warn).await?;
    let progress = Progress::bar(ctx.quiet(), 0);
    progress.message("expired members removed");
    let mut totals = Totals::default();
    loop {
        let step = cache.prune_step(STEP_BUDGET).await?;
        totals.add(&step);
        if step.complete {
            break;
        }
        if progress.tick() {
            // Only a long sweep is shown, and only then is its size worth
            // a walk of the registries.
            let stats = cache.stats().await?;
            progress.length(totals.members_removed + stats.stale_members);
        }
        progress.position(totals.members_removed);
    }
    progress.finish();
    if ctx.json(args.out) {
        let mut doc = serde_json::Map::new();
        for (name, n) in totals.rows() {
            doc.insert(name.to_owned(), json!(n));
        }
        doc.insert("complete".to_owned(), json!(true));
        output::json(&serde_json::Value::Object(doc));
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    for (name, n) in totals.rows() {
        table.add_row(vec![name.replace('_', " "), n.to_string()]);
    }
    output::print(&output::plain_table(&table));
    Ok(ExitCode::SUCCESS)
}
