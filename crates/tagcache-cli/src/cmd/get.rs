//! `tagcache get KEY`: the entry's value bytes, as stored, on stdout.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{value_parser, Args};
use tagcache::EvictionCheck;

use crate::cmd::{arg_bytes, Context};
use crate::error::{CliError, Result};
use crate::output::{self, Stdout};

/// Options of `tagcache get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// The entry's key (the argument's bytes).
    #[arg(value_parser = value_parser!(OsString))]
    pub key: OsString,
}

/// Prints the raw value (no newline added); exit 1 when there is none.
pub async fn run(args: GetArgs, ctx: &Context) -> Result<ExitCode> {
    let (_target, cache) = ctx.cache(EvictionCheck::Warn).await?;
    let key = arg_bytes(&args.key);
    let Some(value) = cache.get_bytes(&key).await? else {
        return Err(CliError::not_found(format!(
            "no entry under key {:?}",
            output::lossy(&key)
        )));
    };
    let mut out = Stdout::lock();
    out.bytes(&value)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
