//! `tagcache get KEY [--raw]`: the entry's value on stdout: raw bytes as
//! stored, a typed (MessagePack) value as JSON.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{value_parser, Args};
use tagcache::{Encoding, EvictionCheck};

use crate::cmd::{arg_bytes, Context};
use crate::error::{CliError, Result};
use crate::output::{self, Stdout};

/// Options of `tagcache get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// The entry's key (the argument's bytes).
    #[arg(value_parser = value_parser!(OsString))]
    pub key: OsString,

    /// Print the payload bytes unchanged, even for a typed (MessagePack)
    /// value.
    #[arg(long)]
    pub raw: bool,
}

/// Prints the raw value (no newline added), or a typed value as one line
/// of JSON; exit 1 when there is none.
pub async fn run(args: GetArgs, ctx: &Context) -> Result<ExitCode> {
    let (_target, cache) = ctx.cache(EvictionCheck::Warn).await?;
    let key = arg_bytes(&args.key);
    let Some(payload) = cache.get_payload(&key).await? else {
        return Err(CliError::not_found(format!(
            "no entry under key {:?}",
            output::lossy(&key)
        )));
    };
    let mut out = Stdout::lock();
    if payload.encoding == Encoding::MsgPack && !args.raw {
        let value: serde_json::Value = payload.decode().map_err(|e| {
            CliError::error(format!(
                "cannot show the typed value as JSON ({e}); use --raw for its MessagePack bytes"
            ))
        })?;
        out.line(&value.to_string())?;
    } else {
        out.bytes(&payload.bytes)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
