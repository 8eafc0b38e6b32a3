//! The `tagcache` command: operator CLI, demo and benchmark.
//!
//! `main` only parses arguments, sets up logging and the runtime, runs one
//! subcommand and turns its outcome into an exit code:
//!
//! | code | meaning                                          |
//! |------|--------------------------------------------------|
//! | 0    | success                                          |
//! | 1    | not found / false (for lookups)                  |
//! | 2    | error: one line on stderr says what went wrong   |

mod cli;
mod cmd;
mod error;
mod interrupt;
mod output;
mod private_redis;
mod progress;
mod target;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::error::CliError;
use crate::interrupt::Interrupt;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: clap's own text, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let e = CliError::usage(&e);
            output::error_line(&e);
            return e.exit_code();
        }
    };
    init_logging(cli.global.verbose, cli.global.quiet);
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::error(format!("cannot start the async runtime: {e}")))
        .and_then(|rt| rt.block_on(run(cli)));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            output::error_line(&e);
            e.exit_code()
        }
    }
}

/// Runs the subcommand; a second Ctrl-C (or a first one the command does
/// not answer in time) drops it, which stops any private redis-server.
async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let interrupt = Interrupt::install();
    let ctx = cmd::Context {
        global: cli.global,
        interrupt: interrupt.clone(),
    };
    tokio::select! {
        outcome = cmd::run(cli.command, &ctx) => outcome,
        () = interrupt.forced() => Err(CliError::interrupted()),
    }
}

/// Logs go to stderr: warnings by default, `-v` info, `-vv` debug,
/// `-vvv` trace, `-q` errors only; `RUST_LOG` overrides.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
