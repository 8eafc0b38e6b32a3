//! `tagcache del KEY...`: deletes entries with all their index edges.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{value_parser, Args};
use serde_json::json;
use tagcache::EvictionCheck;

use crate::cmd::{arg_bytes, Context, JsonFlag};
use crate::error::Result;
use crate::output;

/// Options of `tagcache del`.
#[derive(Debug, Clone, Args)]
pub struct DelArgs {
    /// Keys to delete (the arguments' bytes).
    #[arg(required = true, value_parser = value_parser!(OsString))]
    pub keys: Vec<OsString>,

    #[command(flatten)]
    pub out: JsonFlag,
}

/// Prints how many of the keys existed (`{"deleted": n}`).
pub async fn run(args: DelArgs, ctx: &Context) -> Result<ExitCode> {
    let (_target, cache) = ctx.cache(EvictionCheck::Warn).await?;
    let deleted = cache.delete_many(args.keys.iter().map(arg_bytes)).await?;
    if ctx.json(args.out) {
        output::json(&json!({ "deleted": deleted }));
    } else {
        output::print(&deleted.to_string());
    }
    Ok(ExitCode::SUCCESS)
}
