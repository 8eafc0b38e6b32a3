//! The CLI's error: a one-line message and the exit code it maps to.

use std::fmt;
use std::process::ExitCode;

/// What went wrong, as the user will read it on stderr.
#[derive(Debug)]
pub struct CliError {
    code: u8,
    message: String,
}

impl CliError {
    /// Exit code 2: the command could not do its job.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Exit code 1: what was asked for does not exist.
    #[allow(dead_code)] // for the lookup subcommands (get, tags, ...)
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// The user pressed Ctrl-C.
    pub fn interrupted() -> Self {
        Self::error("interrupted")
    }

    /// Adds what was being done in front of the message.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self {
            code: self.code,
            message: format!("{what}: {}", self.message),
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the source said.
        f.write_str(&self.message.replace('\n', " "))
    }
}

impl From<tagcache::Error> for CliError {
    fn from(e: tagcache::Error) -> Self {
        Self::error(e.to_string())
    }
}

impl From<redis::RedisError> for CliError {
    fn from(e: redis::RedisError) -> Self {
        Self::error(format!("redis: {e}"))
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::error(e.to_string())
    }
}

/// The CLI's result type.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
