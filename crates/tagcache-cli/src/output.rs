//! Everything the CLI prints goes through here: results on stdout, the
//! one-line error on stderr.

use std::io::Write;

use crate::error::CliError;

/// Prints a block of text (a rendered table, a JSON document) on stdout.
#[allow(clippy::print_stdout)] // the CLI's one place that prints results
pub fn print(text: &str) {
    println!("{text}");
}

/// Prints the error as one line on stderr.
pub fn error_line(e: &CliError) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "tagcache: {e}");
}
