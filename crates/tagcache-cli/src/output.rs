//! Everything the CLI prints goes through here: results on stdout, the
//! one-line error on stderr.

use std::io::Write;

use crate::error::{CliError, Result};

/// Prints a block of text (a rendered table, a JSON document) on stdout.
/// A closed pipe is not an error here (nothing is left to print).
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::error!("cannot write to stdout: {e}");
        }
    }
}

/// Prints one compact JSON document on a line of its own.
pub fn json(value: &serde_json::Value) {
    print(&value.to_string());
}

/// Prints the error as one line on stderr (nothing for a silent one).
pub fn error_line(e: &CliError) {
    if e.is_silent() {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "tagcache: {e}");
}

/// Results written piece by piece (raw bytes, one line per key, a JSON
/// array built as pages arrive), buffered; a reader that goes away ends
/// the command quietly ([`CliError::closed_pipe`]).
pub struct Stdout {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
}

impl Stdout {
    /// Takes stdout for the rest of the command.
    pub fn lock() -> Self {
        Self {
            out: std::io::BufWriter::new(std::io::stdout().lock()),
        }
    }

    /// Writes bytes as they are.
    ///
    /// # Errors
    /// A closed pipe (silent), or another write error.
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(write_error)
    }

    /// Writes a line.
    ///
    /// # Errors
    /// As [`Stdout::bytes`].
    pub fn line(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}").map_err(write_error)
    }

    /// Hands what is buffered to the reader (after each page).
    ///
    /// # Errors
    /// As [`Stdout::bytes`].
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(write_error)
    }
}

fn write_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::closed_pipe()
    } else {
        CliError::error(format!("cannot write to stdout: {e}"))
    }
}

/// A borderless table (`comfy_table::presets::NOTHING`) as aligned text
/// without the cells' outer padding or trailing blanks.
pub fn plain_table(table: &comfy_table::Table) -> String {
    table
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Bytes (a key, a tag) as text: invalid UTF-8 becomes U+FFFD.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Replaces the `previous` lines last drawn on the terminal (stdout) by
/// `text`; returns how many lines `text` took. For live displays.
///
/// # Errors
/// As [`Stdout::bytes`].
pub fn redraw(previous: usize, text: &str) -> Result<usize> {
    let mut out = Stdout::lock();
    if previous > 0 {
        // Up to the first line drawn, then clear to the end of the screen.
        out.bytes(format!("\x1b[{previous}F\x1b[J").as_bytes())?;
    }
    if !text.is_empty() {
        out.line(text)?;
    }
    out.flush()?;
    Ok(if text.is_empty() {
        0
    } else {
        text.lines().count()
    })
}

/// One line of progress on stderr (for runs whose stdout is not a
/// terminal).
pub fn progress_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}
