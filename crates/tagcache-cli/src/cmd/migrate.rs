//! `tagcache migrate --rules FILE`: moves the legacy keys a rules file
//! describes to their scoped entries, in one resumable `SCAN` pass
//! (`Cache::legacy_migration`, one step per `SCAN` call).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{value_parser, Args};
use comfy_table::Table;
use serde_json::json;
use tagcache::legacy::{
    LegacyRules, MigrateOptions, Migration, MigrationReport, MoveAction, PlannedMove,
};
use tagcache::EvictionCheck;

use crate::cmd::{Context, JsonFlag};
use crate::error::{CliError, Result};
use crate::output::{self, Stdout};
use crate::progress::Progress;

/// The rules file's format, shown after the options in `--help` (clap
/// turns a literal `{n}` into a line break, so no capture here is `n`).
const RULES_HELP: &str = r#"Rules file (TOML):

  default_ttl_secs = 86400      # TTL of migrated keys that had none
                                # (default: the cache's, 1 h; at most 7 days)
  [[rule]]
  name = "identity"             # in errors and dry runs (default: the pattern)
  pattern = "id-{id}-identity-{attr}"
  scope = ["dsr", "{id}"]       # the owner: cache.scope(["dsr", id])
  part = "identity:{attr}"      # the part within the owner's scope
  tags = ["identity"]           # optional, besides the owner's index

  [[rule]]
  name = "identity-encoded"
  pattern = "EN_id-{id}-identity-{attr}"
  scope = ["dsr", "{id}"]
  part = "encoded:identity:{attr}"

  [[rule]]
  name = "retry"
  pattern = "dsr__{id:[^_]}__retry__{num:digits}"
  scope = ["dsr", "{id}"]
  part = "retry:{num}"
  tags = ["retries", "dsr:{id}"]

  `{name}` captures one or more bytes; `{name:class}` only bytes of a class:
  digits, alnum, word (alnum and _), hex, or a set such as [a-z0-9_] or [^_].
  Scope, part and tags use the captures; each capture must appear in the
  scope or the part. `{{` and `}}` are literal braces. Rules are checked when
  the file is read: two rules that can match one key, or map two keys to one
  new key, are refused, naming both. A key a pattern matches in two ways is
  ambiguous and left alone.

The new key is the scope's parts and the part joined by ':' (':' and '\' in
a part escaped by '\'): id-pr-1-identity-email -> dsr:pr-1:identity\:email.
Each move is atomic: the value (as raw bytes) and the legacy key's remaining
TTL (at most 7 days) go to the new key, indexed under the owner (and the
rule's tags), and the legacy key is deleted.

Actions: migrate; skip (the new key exists: the legacy key is a stale twin,
deleted); vanished (gone before its move); not_string (left alone).

Prints the counts: scanned, migrated, skipped, unmatched (no rule matches),
ambiguous, vanished, not string, dry run, resumed. --json: an object with
those fields (a dry run's also has "moves": [{legacy_key, new_key, action,
rule}]). Progress (keys scanned, counts, ETA) shows on stderr when it is a
terminal, unless -q.

The cursor and counts are saved in Redis after each SCAN: after a crash or
Ctrl-C, the same command resumes there (--restart starts over). A completed
pass marks the namespace as migrated (listings stop scanning for legacy
keys); running it again moves nothing. Not on Redis Cluster yet."#;

/// Options of `tagcache migrate`.
#[derive(Debug, Clone, Args)]
#[command(after_help = RULES_HELP)]
pub struct MigrateArgs {
    /// The rules file: legacy key patterns and their new keys (TOML,
    /// below).
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,

    /// Change nothing: print each move the pass would make
    /// (`legacy key -> new key, action`), then the counts.
    #[arg(long)]
    pub dry_run: bool,

    /// At most N legacy keys handled per second (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub rate: u32,

    /// Keys each SCAN looks at (its COUNT): the unit of work, progress and
    /// resumption.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = value_parser!(u32).range(1..=100_000))]
    pub batch: u32,

    /// Ignore a saved cursor: start a new pass from the beginning.
    #[arg(long)]
    pub restart: bool,

    #[command(flatten)]
    pub out: JsonFlag,
}

/// Runs the pass; prints the dry run's moves as they are found, then the
/// counts. The first Ctrl-C stops it (the step under way is dropped, which
/// is safe: the saved cursor is the last completed step's).
pub async fn run(args: MigrateArgs, ctx: &Context) -> Result<ExitCode> {
    let rules = read_rules(&args.rules)?;
    let (_target, cache) = ctx
        .until_interrupted(ctx.cache_for_writing(EvictionCheck::Refuse, None))
        .await?;
    let opts = MigrateOptions::new()
        .dry_run(args.dry_run)
        .rate_per_sec(args.rate)
        .batch(usize::try_from(args.batch).unwrap_or(usize::MAX))
        .restart(args.restart);
    let mut migration = ctx
        .until_interrupted(async { Ok(cache.legacy_migration(&rules, opts).await?) })
        .await?;
    if migration.resumed() {
        tracing::info!(
            scanned = migration.totals().scanned,
            "resuming a stopped migration"
        );
    }
    let json = ctx.json(args.out);
    let mut out = Stdout::lock();
    if args.dry_run && json {
        out.bytes(br#"{"moves":["#)?;
    }
    let progress = Progress::bar(ctx.quiet(), migration.keyspace_estimate());
    show(&progress, &migration);
    let mut listed = 0u64;
    loop {
        // Dropping a step mid-way is safe; `migration` is free again after.
        let step = tokio::select! {
            step = migration.step() => Some(step),
            () = ctx.interrupt.requested() => None,
        };
        let step = match step {
            Some(Ok(step)) => step,
            Some(Err(e)) => {
                let e = CliError::from(e);
                return Err(CliError::error(format!(
                    "{e} ({})",
                    stopped(&migration, args.dry_run)
                )));
            }
            None => {
                return Err(CliError::error(format!(
                    "interrupted ({})",
                    stopped(&migration, args.dry_run)
                )))
            }
        };
        if args.dry_run {
            progress.suspend(|| {
                for mv in &step.moves {
                    if json {
                        let sep = if listed == 0 { "" } else { "," };
                        out.bytes(format!("{sep}{}", move_json(mv)).as_bytes())?;
                    } else {
                        out.line(&move_line(mv))?;
                    }
                    listed += 1;
                }
                out.flush()
            })?;
        } else {
            for mv in &step.moves {
                tracing::debug!(
                    legacy_key = %output::lossy(&mv.legacy_key),
                    new_key = %mv.new_key,
                    action = action_name(mv.action),
                    "legacy key handled"
                );
            }
        }
        progress.tick();
        show(&progress, &migration);
        if step.done {
            break;
        }
    }
    progress.finish();
    report(&mut out, &migration, args.dry_run, json)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the counts (a dry run's JSON closes its moves array first).
fn report(out: &mut Stdout, migration: &Migration, dry_run: bool, json: bool) -> Result<()> {
    let totals = migration.totals();
    if json {
        let mut doc = serde_json::Map::new();
        for (name, n) in rows(&totals) {
            doc.insert(name.to_owned(), json!(n));
        }
        doc.insert("dry_run".to_owned(), json!(dry_run));
        doc.insert("resumed".to_owned(), json!(migration.resumed()));
        let doc = serde_json::Value::Object(doc).to_string();
        if dry_run {
            // Close the moves array and go on with the counts' fields.
            out.line(&format!("],{}", doc.strip_prefix('{').unwrap_or(&doc)))?;
        } else {
            out.line(&doc)?;
        }
    } else {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
        let mut table = Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        for (name, n) in rows(&totals) {
            table.add_row(vec![name.replace('_', " "), n.to_string()]);
        }
        table.add_row(vec!["dry run".to_owned(), yes_no(dry_run)]);
        table.add_row(vec!["resumed".to_owned(), yes_no(migration.resumed())]);
        out.line(&output::plain_table(&table))?;
    }
    out.flush()
}

/// Reads and checks the rules file.
fn read_rules(path: &Path) -> Result<LegacyRules> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::error(format!("cannot read rules file {shown}: {e}")))?;
    let rules = LegacyRules::from_toml(&text).map_err(|e| {
        // TOML syntax errors span lines (a snippet and a caret): one line.
        let said = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        CliError::error(format!("rules file {shown}: {said}"))
    })?;
    if rules.is_empty() {
        return Err(CliError::error(format!(
            "rules file {shown}: no [[rule]] table (see tagcache migrate --help)"
        )));
    }
    Ok(rules)
}

/// The counts of a pass, in report order.
fn rows(r: &MigrationReport) -> [(&'static str, u64); 7] {
    [
        ("scanned", r.scanned),
        ("migrated", r.migrated),
        ("skipped", r.skipped),
        ("unmatched", r.unmatched),
        ("ambiguous", r.ambiguous),
        ("vanished", r.vanished),
        ("not_string", r.not_string),
    ]
}

fn action_name(action: MoveAction) -> &'static str {
    match action {
        MoveAction::Migrate => "migrate",
        MoveAction::SkipExisting => "skip",
        MoveAction::Vanished => "vanished",
        MoveAction::NotString => "not_string",
        // A newer library's action: named, not hidden.
        _ => "other",
    }
}

/// A dry run's line: `legacy key -> new key, action (rule name)`.
fn move_line(mv: &PlannedMove) -> String {
    format!(
        "{} -> {}, {} (rule {})",
        output::lossy(&mv.legacy_key),
        mv.new_key,
        action_name(mv.action),
        mv.rule
    )
}

fn move_json(mv: &PlannedMove) -> serde_json::Value {
    json!({
        "legacy_key": output::lossy(&mv.legacy_key),
        "new_key": mv.new_key.to_string(),
        "action": action_name(mv.action),
        "rule": mv.rule,
    })
}

/// The progress display: keys scanned of the keyspace, counts, ETA.
fn show(progress: &Progress, migration: &Migration) {
    let t = migration.totals();
    progress.position(t.scanned);
    let eta = migration
        .eta()
        .map(|d| format!(", eta {}", indicatif::HumanDuration(d)))
        .unwrap_or_default();
    progress.message(format!(
        "scanned, {} migrated, {} skipped, {} unmatched{eta}",
        t.migrated, t.skipped, t.unmatched
    ));
}

/// How far a stopped pass got, and what to do next.
fn stopped(migration: &Migration, dry_run: bool) -> String {
    let t = migration.totals();
    if dry_run {
        return format!(
            "dry run stopped after {} keys scanned; nothing was changed",
            t.scanned
        );
    }
    format!(
        "stopped after {} keys scanned, {} migrated, {} skipped; \
         the same command resumes from the saved cursor",
        t.scanned, t.migrated, t.skipped
    )
}
