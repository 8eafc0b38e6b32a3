//! `tagcache clear --yes`: deletes every entry and group of the namespace,
//! in bounded chunks, with a progress bar (no `SCAN`, no `KEYS`).

use std::process::ExitCode;

use clap::Args;
use serde_json::json;
use tagcache::EvictionCheck;

use crate::cmd::{Context, JsonFlag};
use crate::error::{CliError, Result};
use crate::output;
use crate::progress::Progress;

/// Options of `tagcache clear`.
#[derive(Debug, Clone, Args)]
pub struct ClearArgs {
    /// Confirms that every entry of the namespace is to be deleted
    /// (without it, nothing is done and the command fails).
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub out: JsonFlag,
}

/// Prints how many entries were deleted (`{"deleted": n}`). Interrupted
/// with Ctrl-C, the clear stops between chunks; the next clear, or the
/// sweep, finishes it.
pub async fn run(args: ClearArgs, ctx: &Context) -> Result<ExitCode> {
    if !args.yes {
        return Err(CliError::error(
            "clear deletes every entry of the namespace: add --yes to confirm",
        ));
    }
    let (_target, cache) = ctx.cache(EvictionCheck::Warn).await?;
    let progress = Progress::bar(ctx.quiet(), 0);
    progress.message("indexes cleared");
    let deleted = cache
        .clear_with_progress(|p| {
            progress.tick();
            progress.length(p.indexes_total);
            progress.position(p.indexes_done);
            progress.message(format!("indexes cleared, {} entries deleted", p.deleted));
        })
        .await?;
    progress.finish();
    if ctx.json(args.out) {
        output::json(&json!({ "deleted": deleted }));
    } else {
        output::print(&deleted.to_string());
    }
    Ok(ExitCode::SUCCESS)
}
