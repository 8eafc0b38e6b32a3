//! The bench's error: one line for the user; the CLI maps it to exit 2.

use std::fmt;

/// What went wrong, as the user will read it.
#[derive(Debug)]
pub struct BenchError {
    message: String,
    interrupted: bool,
}

impl BenchError {
    /// The bench could not do its job.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            interrupted: false,
        }
    }

    /// The user pressed Ctrl-C (or the process got SIGTERM).
    pub fn interrupted() -> Self {
        Self {
            message: "interrupted".into(),
            interrupted: true,
        }
    }

    /// Whether the bench stopped because it was asked to.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted
    }

    /// Adds what was being done in front of the message.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self {
            message: format!("{what}: {}", self.message),
            interrupted: self.interrupted,
        }
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the source said.
        f.write_str(&self.message.replace('\n', " "))
    }
}

impl std::error::Error for BenchError {}

impl From<tagcache::Error> for BenchError {
    fn from(e: tagcache::Error) -> Self {
        Self::error(e.to_string())
    }
}

impl From<redis::RedisError> for BenchError {
    fn from(e: redis::RedisError) -> Self {
        Self::error(format!("redis: {e}"))
    }
}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        Self::error(e.to_string())
    }
}

impl From<tagcache_testkit::StartError> for BenchError {
    fn from(e: tagcache_testkit::StartError) -> Self {
        Self::error(e.to_string())
    }
}

impl From<tagcache_testkit::ProbeError> for BenchError {
    fn from(e: tagcache_testkit::ProbeError) -> Self {
        Self::error(e.to_string())
    }
}

/// The bench's result type.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
