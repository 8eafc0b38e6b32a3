//! Command-line grammar (clap derive): global options and subcommands.
//! Each subcommand's own options live beside its implementation in `cmd/`.

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::cmd::bench::BenchArgs;
use crate::cmd::{
    clear, del, demo, doctor, get, invalidate, keys, migrate, prune, set, stats, tags,
};

/// Operator CLI and benchmark for tagcache, a Redis cache with tags.
#[derive(Debug, Parser)]
#[command(name = "tagcache", version, about, max_term_width = 100)]
#[command(after_help = "Exit codes: 0 ok, 1 not found, 2 error.")]
pub struct Cli {
    /// Options every subcommand understands.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Redis URL (redis://, rediss://, unix://, a socket path, or
    /// redis+cluster://h1:p1,h2:p2). The demo and the benchmark start a
    /// private redis-server when none is given.
    #[arg(long, env = "REDIS_URL", global = true, value_name = "URL")]
    pub url: Option<String>,

    /// Namespace the cache's keys live under.
    #[arg(
        long,
        env = "TAGCACHE_NAMESPACE",
        default_value = "tagcache",
        global = true,
        value_name = "NS"
    )]
    pub namespace: String,

    /// Print results as JSON on stdout instead of text (before the
    /// subcommand; after it, each subcommand's own `--json` does the same,
    /// and `bench --json [FILE]` is the benchmark's form).
    #[arg(long)]
    pub json: bool,

    /// More logging on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr, no progress display.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a value (argument, - for stdin, or --value-file) under KEY as raw bytes, with tags.
    Set(set::SetArgs),
    /// Print the value of KEY: raw bytes, or a typed value as JSON (exit 1 when missing).
    Get(get::GetArgs),
    /// Delete entries; print how many existed.
    Del(del::DelArgs),
    /// Print the tags of KEY, one per line (exit 1 when missing).
    Tags(tags::TagsArgs),
    /// Print the live keys carrying a tag, one per line, page by page.
    Keys(keys::KeysArgs),
    /// Delete every entry carrying any of the tags; print how many.
    Invalidate(invalidate::InvalidateArgs),
    /// Sweep expired index members and empty indexes; print what went.
    Prune(prune::PruneArgs),
    /// Delete every entry and group of the namespace (needs --yes); print how many.
    Clear(clear::ClearArgs),
    /// Move legacy keys to scoped entries per a rules file (SCAN, resumable).
    Migrate(migrate::MigrateArgs),
    /// Show the namespace's indexes and the server's relevant settings.
    Stats(stats::StatsArgs),
    /// Check that the server suits tagcache (exit 2 on a failed check).
    Doctor(doctor::DoctorArgs),
    /// Run a catalogue app on the cache for 20 s and check its guarantees.
    Demo(demo::DemoArgs),
    /// Measure tagcache against raw Redis commands on the same server.
    Bench(BenchArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_json_takes_an_optional_file() {
        let cli = Cli::try_parse_from(["tagcache", "bench", "--json"]).unwrap();
        let Command::Bench(b) = cli.command else {
            panic!("not bench")
        };
        assert_eq!(b.json.as_deref(), Some(std::path::Path::new("-")));
        let cli = Cli::try_parse_from(["tagcache", "bench", "--json", "out.json", "-q"]).unwrap();
        let Command::Bench(b) = cli.command else {
            panic!("not bench")
        };
        assert_eq!(b.json.as_deref(), Some(std::path::Path::new("out.json")));
        assert!(cli.global.quiet);
        let cli = Cli::try_parse_from(["tagcache", "--json", "bench"]).unwrap();
        assert!(cli.global.json);
    }

    #[test]
    fn migrate_needs_rules_and_has_defaults() {
        assert!(Cli::try_parse_from(["tagcache", "migrate"]).is_err());
        let cli = Cli::try_parse_from(["tagcache", "migrate", "--rules", "r.toml"]).unwrap();
        let Command::Migrate(m) = cli.command else {
            panic!("not migrate")
        };
        assert_eq!(
            (m.rate, m.batch, m.dry_run, m.restart),
            (0, 1000, false, false)
        );
        let cli = Cli::try_parse_from([
            "tagcache",
            "migrate",
            "--rules",
            "r.toml",
            "--dry-run",
            "--rate",
            "50",
            "--batch",
            "10",
            "--restart",
            "--json",
        ])
        .unwrap();
        let Command::Migrate(m) = cli.command else {
            panic!("not migrate")
        };
        assert_eq!(
            (m.rate, m.batch, m.dry_run, m.restart),
            (50, 10, true, true)
        );
        assert!(m.out.json);
    }
}
