//! `tagcache keys --tag TAG`: the live keys carrying a tag, streamed page
//! by page, so a tag of millions of entries is listed in bounded memory
//! and without blocking Redis.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{value_parser, Args};
use tagcache::{EvictionCheck, TagKind};

use crate::cmd::{arg_bytes, Context, JsonFlag};
use crate::error::Result;
use crate::output::Stdout;

/// Keys read per round trip.
const PAGE: usize = 1000;

/// Options of `tagcache keys`.
#[derive(Debug, Clone, Args)]
pub struct KeysArgs {
    /// The tag to list (the argument's bytes).
    #[arg(long, value_name = "TAG", value_parser = value_parser!(OsString))]
    pub tag: OsString,

    #[command(flatten)]
    pub out: JsonFlag,
}

/// Prints one key per line (a JSON array of strings), each page as it
/// arrives.
pub async fn run(args: KeysArgs, ctx: &Context) -> Result<ExitCode> {
    let (_target, cache) = ctx.cache(EvictionCheck::Warn).await?;
    let json = ctx.json(args.out);
    let mut pages = cache.keys_with_tag(arg_bytes(&args.tag)).page_size(PAGE);
    let mut out = Stdout::lock();
    let mut first = true;
    if json {
        out.bytes(b"[")?;
    }
    while let Some(page) = pages.next_page().await? {
        for key in page {
            // A hash group is listed by its reserved name (`\0g...`):
            // shown as `group:<name:owner>`, like in `tags`.
            let key = TagKind::parse(&key).to_string();
            if json {
                let sep = if first { "" } else { "," };
                out.bytes(format!("{sep}{}", serde_json::Value::from(key)).as_bytes())?;
            } else {
                out.line(&key)?;
            }
            first = false;
        }
        out.flush()?;
    }
    if json {
        out.bytes(b"]\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
