//! Command-line grammar (clap derive): global options and subcommands.
//! Each subcommand's own options live beside its implementation in `cmd/`.

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::cmd::bench::BenchArgs;

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
    /// Redis URL (redis://, rediss://, unix:// or a socket path). The
    /// benchmark starts a private redis-server when none is given.
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

    /// Print results as JSON on stdout instead of tables (give it before
    /// the subcommand; `bench --json [FILE]` is the benchmark's own form).
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
        let Command::Bench(b) = cli.command;
        assert_eq!(b.json.as_deref(), Some(std::path::Path::new("-")));
        let cli = Cli::try_parse_from(["tagcache", "bench", "--json", "out.json", "-q"]).unwrap();
        let Command::Bench(b) = cli.command;
        assert_eq!(b.json.as_deref(), Some(std::path::Path::new("out.json")));
        assert!(cli.global.quiet);
        let cli = Cli::try_parse_from(["tagcache", "--json", "bench"]).unwrap();
        assert!(cli.global.json);
    }
}
