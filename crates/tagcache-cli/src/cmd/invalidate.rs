//! `tagcache invalidate --tag TAG...`: deletes every entry carrying any of
//! the tags, in bounded chunks (Redis is never blocked for long).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{value_parser, Args};
use serde_json::json;
use tagcache::EvictionCheck;

use crate::cmd::{arg_bytes, Context, JsonFlag};
use crate::error::Result;
use crate::output;
use crate::progress;

/// Options of `tagcache invalidate`.
#[derive(Debug, Clone, Args)]
pub struct InvalidateArgs {
    /// A tag to invalidate (repeat for more; entries are counted once).
    #[arg(long = "tag", value_name = "TAG", required = true,
          value_parser = value_parser!(OsString))]
    pub tags: Vec<OsString>,

    #[command(flatten)]
    pub out: JsonFlag,
}

/// Prints how many entries were removed (`{"removed": n}`). Interrupted
/// with Ctrl-C, the invalidation stops between chunks; the next
/// invalidation of the tag, or the sweep, finishes it.
pub async fn run(args: InvalidateArgs, ctx: &Context) -> Result<ExitCode> {
    let (_target, cache) = ctx.cache(EvictionCheck::Warn).await?;
    let tags: Vec<Vec<u8>> = args.tags.iter().map(arg_bytes).collect();
    let message = match tags.as_slice() {
        [one] => format!("invalidating {}", output::lossy(one)),
        many => format!("invalidating {} tags", many.len()),
    };
    // The library reports no progress inside one invalidation: a spinner
    // with the elapsed time says it is still working.
    let removed = progress::spin_while(ctx.quiet(), &message, cache.invalidate_tags(&tags)).await?;
    if ctx.json(args.out) {
        output::json(&json!({ "removed": removed }));
    } else {
        output::print(&removed.to_string());
    }
    Ok(ExitCode::SUCCESS)
}
