//! The server the bench runs on, as the command line resolved it.

use crate::error::{BenchError, Result};

/// The server under test: its URL, how to show it, and whether it is the
/// bench's private server (whose configuration the bench may change).
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    shown: String,
    private: bool,
}

impl Target {
    /// `url` for tagcache and redis-rs, `shown` for the report (without a
    /// password), `private` when the server is the bench's own.
    pub fn new(url: impl Into<String>, shown: impl Into<String>, private: bool) -> Self {
        Self {
            url: url.into(),
            shown: shown.into(),
            private,
        }
    }

    /// The URL (may carry a password: never print it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is the bench's private server.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The server as the report shows it.
    pub fn shown(&self) -> String {
        self.shown.clone()
    }

    /// A redis-rs client for raw commands.
    ///
    /// # Errors
    /// A URL redis-rs does not accept.
    pub fn client(&self) -> Result<redis::Client> {
        redis::Client::open(self.url.as_str())
            .map_err(|e| BenchError::error(format!("{}: {e}", self.shown)))
    }
}
