//! One module per subcommand; each turns its arguments into library calls
//! and hands results to the output layer.

pub mod bench;

use std::process::ExitCode;

use crate::cli::{Command, GlobalArgs};
use crate::error::Result;
use crate::interrupt::Interrupt;

/// What every subcommand gets besides its own arguments.
#[derive(Debug)]
pub struct Context {
    /// The global options.
    pub global: GlobalArgs,
    /// Ctrl-C, for commands that clean up before they stop.
    pub interrupt: Interrupt,
}

/// Runs one subcommand.
pub async fn run(command: Command, ctx: &Context) -> Result<ExitCode> {
    match command {
        Command::Bench(args) => bench::run(args, ctx).await,
    }
}
