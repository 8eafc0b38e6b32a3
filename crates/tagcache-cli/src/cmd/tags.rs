//! `tagcache tags KEY`: the tags of an entry, in the order written;
//! tagcache's own (reserved) tags shown readably: `prefix:<path>`,
//! `group:<name:owner>` (the all-entries tag, an untagged flat key's one
//! edge, is left out).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{value_parser, Args};
use tagcache::{EvictionCheck, TagKind};

use crate::cmd::{arg_bytes, Context, JsonFlag};
use crate::error::{CliError, Result};
use crate::output::{self, Stdout};

/// Options of `tagcache tags`.
#[derive(Debug, Clone, Args)]
pub struct TagsArgs {
    /// The entry's key (the argument's bytes).
    #[arg(value_parser = value_parser!(OsString))]
    pub key: OsString,

    #[command(flatten)]
    pub out: JsonFlag,
}

/// Prints one tag per line (a JSON array of strings); exit 1 when the
/// entry does not exist, 2 when it is not in tagcache format.
pub async fn run(args: TagsArgs, ctx: &Context) -> Result<ExitCode> {
    let (_target, cache) = ctx.cache(EvictionCheck::Warn).await?;
    let key = arg_bytes(&args.key);
    let Some(tags) = cache.tags(&key).await? else {
        return Err(CliError::not_found(format!(
            "no entry under key {:?}",
            output::lossy(&key)
        )));
    };
    let tags: Vec<String> = tags
        .iter()
        .map(|t| TagKind::parse(t))
        .filter(|kind| *kind != TagKind::All)
        .map(|kind| kind.to_string())
        .collect();
    if ctx.json(args.out) {
        output::json(&serde_json::Value::from(tags));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Stdout::lock();
    for tag in &tags {
        out.line(tag)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
