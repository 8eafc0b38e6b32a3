//! `tagcache set KEY VALUE [--ttl SECS] [--tag TAG]...`: stores VALUE as
//! raw bytes (any client can read them past the entry header), with tags.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use clap::{value_parser, Args};
use tagcache::{EvictionCheck, SetOptions};

use crate::cmd::{arg_bytes, Context};
use crate::error::Result;

/// Options of `tagcache set`.
#[derive(Debug, Clone, Args)]
pub struct SetArgs {
    /// The entry's key (the argument's bytes).
    #[arg(value_parser = value_parser!(OsString))]
    pub key: OsString,

    /// The value, stored as the argument's bytes.
    #[arg(value_parser = value_parser!(OsString))]
    pub value: OsString,

    /// Time to live in seconds, up to 7 days (default: 1 hour).
    #[arg(long, value_name = "SECS", value_parser = value_parser!(u64).range(1..=604_800))]
    pub ttl: Option<u64>,

    /// A tag of the entry (repeat for more).
    #[arg(long = "tag", value_name = "TAG", value_parser = value_parser!(OsString))]
    pub tags: Vec<OsString>,
}

/// Stores the entry; prints nothing.
pub async fn run(args: SetArgs, ctx: &Context) -> Result<ExitCode> {
    let (_target, cache) = ctx.cache(EvictionCheck::Refuse).await?;
    let mut opts = SetOptions::new().tags(args.tags.iter().map(arg_bytes));
    if let Some(secs) = args.ttl {
        opts = opts.ttl(Duration::from_secs(secs));
    }
    cache
        .set_bytes(arg_bytes(&args.key), arg_bytes(&args.value), &opts)
        .await?;
    Ok(ExitCode::SUCCESS)
}
