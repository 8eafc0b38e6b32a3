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

    /// Whoever read stdout went away (`tagcache keys --tag t | head`):
    /// stop quietly, as a successful run.
    pub fn closed_pipe() -> Self {
        Self {
            code: 0,
            message: String::new(),
        }
    }

    /// Whether there is nothing to tell the user.
    pub fn is_silent(&self) -> bool {
        self.message.is_empty()
    }

    /// A command line clap refused, as one line: the first lines of clap's
    /// message (without its usage block and hints) and where to read more.
    pub fn usage(e: &clap::Error) -> Self {
        if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            return Self::error("missing subcommand (see tagcache --help)");
        }
        let text = e.render().to_string();
        let said: Vec<&str> = text
            .lines()
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let said = said.join(" ");
        let said = said.strip_prefix("error: ").unwrap_or(&said);
        Self::error(format!("{said} (see tagcache --help)"))
    }

    /// A cache that could not be built, with what to check for its kind;
    /// `tls` when the URL asked for TLS (a failed handshake is reported as
    /// a connection error).
    pub fn connecting(e: tagcache::Error, tls: bool) -> Self {
        use tagcache::ErrorKind as K;
        let hint = match e.kind() {
            K::Connection if tls => {
                " (TLS: does the server speak TLS on that port, with a certificate this machine trusts?)"
            }
            K::Connection => " (is Redis running there? check --url or REDIS_URL)",
            K::Timeout => " (check --url, the network and the server's load)",
            K::Auth => " (check the user and password in the URL, and the user's ACL)",
            K::Config => {
                " (URLs: redis://[user:pass@]host:port/db, rediss://..., unix:///path/redis.sock, redis+cluster://h1:p1,h2:p2)"
            }
            K::Layout => " (pass the namespace's own --namespace, or use a new one)",
            _ => "",
        };
        Self::error(format!("{e}{hint}"))
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

impl From<tagcache_testkit::StartError> for CliError {
    fn from(e: tagcache_testkit::StartError) -> Self {
        match e {
            tagcache_testkit::StartError::NotInstalled("redis-server") => Self::error(
                "redis-server not found on PATH: install it (apt-get install redis-server) or pass --url",
            ),
            other => Self::error(other.to_string()),
        }
    }
}

impl From<tagcache_testkit::ProbeError> for CliError {
    fn from(e: tagcache_testkit::ProbeError) -> Self {
        Self::error(e.to_string())
    }
}

/// The CLI's result type.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
