//! `tagcache set KEY VALUE|- [--value-file PATH] [--ttl SECS] [--tag TAG]...`:
//! stores a value as raw bytes (any client can read them past the entry
//! header), with tags. The value is the argument's bytes, or with `-` all
//! of stdin, or the contents of `--value-file`: any bytes (NUL included),
//! any size up to the library's limit (64 MiB).

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{value_parser, ArgGroup, Args};
use tagcache::{EvictionCheck, SetOptions};

use crate::cmd::{arg_bytes, Context};
use crate::error::{CliError, Result};

/// Options of `tagcache set`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["value", "value_file"])))]
pub struct SetArgs {
    /// The entry's key (the argument's bytes).
    #[arg(value_parser = value_parser!(OsString))]
    pub key: OsString,

    /// The value, stored as the argument's bytes; `-` reads it from stdin
    /// (any bytes, any size). To store a literal `-`, pipe it in.
    #[arg(value_parser = value_parser!(OsString))]
    pub value: Option<OsString>,

    /// Read the value from this file (any bytes, any size).
    #[arg(long, value_name = "PATH", conflicts_with = "value")]
    pub value_file: Option<PathBuf>,

    /// Time to live in seconds, up to 7 days (default: 1 hour).
    #[arg(long, value_name = "SECS", value_parser = value_parser!(u64).range(1..=604_800))]
    pub ttl: Option<u64>,

    /// A tag of the entry (repeat for more).
    #[arg(long = "tag", value_name = "TAG", value_parser = value_parser!(OsString))]
    pub tags: Vec<OsString>,

    /// Buckets of the namespace when this write creates it (an existing
    /// namespace keeps the count it was created with). Default: 1 on a
    /// single server, 16 on a cluster.
    #[arg(long, value_name = "N", value_parser = value_parser!(u16).range(1..))]
    pub buckets: Option<u16>,
}

/// Stores the entry; prints nothing.
pub async fn run(args: SetArgs, ctx: &Context) -> Result<ExitCode> {
    // The value first: a file that cannot be read fails before connecting.
    let value = read_value(&args)?;
    let (_target, cache) = ctx
        .cache_for_writing(EvictionCheck::Refuse, args.buckets)
        .await?;
    let mut opts = SetOptions::new().tags(args.tags.iter().map(arg_bytes));
    if let Some(secs) = args.ttl {
        opts = opts.ttl(Duration::from_secs(secs));
    }
    cache.set_bytes(arg_bytes(&args.key), value, &opts).await?;
    Ok(ExitCode::SUCCESS)
}

/// The value's bytes: the argument, stdin (`-`) or the file.
fn read_value(args: &SetArgs) -> Result<Vec<u8>> {
    if let Some(path) = &args.value_file {
        return std::fs::read(path)
            .map_err(|e| CliError::error(format!("cannot read {}: {e}", path.display())));
    }
    match &args.value {
        Some(v) if v == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| CliError::error(format!("cannot read the value from stdin: {e}")))?;
            Ok(buf)
        }
        Some(v) => Ok(arg_bytes(v)),
        // clap requires one of the two.
        None => Err(CliError::error("no value: give VALUE, - or --value-file")),
    }
}
