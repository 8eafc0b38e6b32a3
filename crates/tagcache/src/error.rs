//! One error type for the whole library, with a kind to match on.

use std::fmt;

/// Everything that can go wrong in tagcache.
///
/// Match on [`Error::kind`] (or use the `is_*` classifiers), never on the
/// message text. Messages never contain cached values.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct Error {
    kind: ErrorKind,
    detail: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller passed a value tagcache refuses (see [`InvalidInput`]).
    InvalidInput,
    /// Redis did not answer within the response or connect timeout.
    Timeout,
    /// The connection to Redis failed, was refused or dropped.
    Connection,
    /// Authentication failed or the user lacks a permission (ACL).
    Auth,
    /// Redis refused a write because `maxmemory` was reached.
    OutOfMemory,
    /// A tagcache script failed on the server.
    Script,
    /// Redis answered something tagcache did not expect.
    Protocol,
    /// Any other error reply from Redis.
    Server,
    /// A value could not be encoded or decoded.
    Codec,
    /// The namespace was written by an incompatible layout or configuration.
    Layout,
    /// The namespace does not exist (nothing has been written to it), and
    /// the cache was built to open an existing one only
    /// ([`crate::CacheBuilder::existing_namespace`]).
    NamespaceNotFound,
    /// Redis' `maxmemory-policy` could evict index keys while their entries
    /// live, so invalidations could miss entries.
    UnsafeEvictionPolicy,
    /// A key kept changing under a multi-step operation; try again.
    Contended,
    /// The client configuration is invalid (bad URL, bad option).
    Config,
    /// The circuit breaker is open: Redis failed repeatedly and is not
    /// being called until a probe succeeds.
    CircuitOpen,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::InvalidInput => "invalid input",
            Self::Timeout => "timeout",
            Self::Connection => "connection error",
            Self::Auth => "authentication or permission error",
            Self::OutOfMemory => "redis out of memory",
            Self::Script => "script error",
            Self::Protocol => "unexpected reply",
            Self::Server => "redis error",
            Self::Codec => "codec error",
            Self::Layout => "layout mismatch",
            Self::NamespaceNotFound => "namespace not found",
            Self::UnsafeEvictionPolicy => "unsafe eviction policy",
            Self::Contended => "contended",
            Self::Config => "configuration error",
            Self::CircuitOpen => "circuit open",
        };
        f.write_str(s)
    }
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// Keys must not be empty.
    #[error("key is empty")]
    EmptyKey,
    /// Keys are limited to [`crate::MAX_KEY_LEN`] bytes.
    #[error("key is {0} bytes, the limit is {1}")]
    KeyTooLong(usize, usize),
    /// Tags must not be empty.
    #[error("tag is empty")]
    EmptyTag,
    /// Tags are limited to [`crate::MAX_TAG_LEN`] bytes.
    #[error("tag is {0} bytes, the limit is {1}")]
    TagTooLong(usize, usize),
    /// An entry carries more tags than the configured limit.
    #[error("entry has {0} tags, the limit is {1}")]
    TooManyTags(usize, usize),
    /// A value is larger than the configured limit.
    #[error("value is {0} bytes, the limit is {1}")]
    ValueTooLarge(usize, usize),
    /// A TTL must be at least one millisecond.
    #[error("ttl must be at least 1 ms")]
    TtlTooShort,
    /// A TTL above the namespace's maximum TTL.
    #[error("ttl of {0} ms is above the maximum ttl of {1} ms")]
    TtlAboveMax(u128, u128),
    /// Namespaces are 1 to 64 characters of `[A-Za-z0-9_-]`.
    #[error("namespace {0:?} must be 1 to 64 characters of [A-Za-z0-9_-]")]
    Namespace(String),
    /// Keys starting with byte 0 are reserved for tagcache (hash groups).
    #[error("keys starting with byte 0 are reserved")]
    ReservedKey,
    /// Tags starting with byte 0 are reserved for tagcache's own indexes.
    #[error("tags starting with byte 0 are reserved")]
    ReservedTag,
    /// Key paths need at least one part, and no empty part.
    #[error("a key path needs at least one part, and no empty part")]
    EmptyPart,
    /// A key that decodes as a path of more than [`crate::MAX_PATH_DEPTH`]
    /// parts (each level is an index edge).
    #[error("key has {0} path parts, the limit is {1}")]
    PathTooDeep(usize, usize),
    /// A path query must start with at least one exact part (the index it
    /// reads).
    #[error("a path pattern must start with an exact part")]
    PatternNeedsPrefix,
    /// The bucket count must be between 1 and 65535.
    #[error("bucket count must be between 1 and 65535")]
    Buckets,
    /// A legacy-key rule is malformed (syntax, captures, scope, part, tags,
    /// or the rules file).
    #[error("legacy rules: {0}")]
    LegacyRule(String),
    /// Two legacy-key rules can match one legacy key, or map to one new key.
    #[error("legacy rules {first} and {second} overlap: both can take {example}")]
    OverlappingLegacyRules {
        /// The rule loaded first.
        first: String,
        /// The rule loaded second.
        second: String,
        /// A legacy key (or new key) both can take.
        example: String,
    },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        detail: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            detail: detail.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A copy without the source, for handing one failure to many callers.
    pub(crate) fn duplicate(&self) -> Self {
        Self::new(self.kind, self.detail.clone())
    }

    /// The message without the kind (for wrapping in another message).
    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether Redis did not answer in time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// Whether the connection failed (refused, dropped, unreachable).
    pub fn is_connection(&self) -> bool {
        self.kind == ErrorKind::Connection
    }

    /// Whether Redis refused a write for lack of memory.
    pub fn is_out_of_memory(&self) -> bool {
        self.kind == ErrorKind::OutOfMemory
    }

    /// Whether the caller's input was refused.
    pub fn is_invalid_input(&self) -> bool {
        self.kind == ErrorKind::InvalidInput
    }

    /// Whether Redis being slow or unreachable caused this error (the errors
    /// a fail-safe caller would rather bypass than surface).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Timeout | ErrorKind::Connection | ErrorKind::CircuitOpen
        )
    }
}

impl ErrorKind {
    /// A short stable name, for metric labels and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Auth => "auth",
            Self::OutOfMemory => "out_of_memory",
            Self::Script => "script",
            Self::Protocol => "protocol",
            Self::Server => "server",
            Self::Codec => "codec",
            Self::Layout => "layout",
            Self::NamespaceNotFound => "namespace_not_found",
            Self::UnsafeEvictionPolicy => "unsafe_eviction_policy",
            Self::Contended => "contended",
            Self::Config => "config",
            Self::CircuitOpen => "circuit_open",
        }
    }
}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Self {
        Self::with_source(ErrorKind::InvalidInput, e.to_string(), e)
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        if let Some(denied) = permission_denied(&e, None) {
            return denied;
        }
        let kind = classify(&e);
        Self::with_source(kind, e.to_string(), e)
    }
}

fn classify(e: &redis::RedisError) -> ErrorKind {
    use redis::{ErrorKind as K, ServerErrorKind as S};
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    if e.code() == Some("OOM") {
        return ErrorKind::OutOfMemory;
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        return ErrorKind::Connection;
    }
    match e.kind() {
        K::AuthenticationFailed => ErrorKind::Auth,
        K::Server(S::NoPerm) => ErrorKind::Auth,
        K::Server(S::NoScript) => ErrorKind::Script,
        K::Parse | K::UnexpectedReturnType => ErrorKind::Protocol,
        K::InvalidClientConfig => ErrorKind::Config,
        K::Io | K::ClusterConnectionNotFound => ErrorKind::Connection,
        _ => match e.code() {
            Some("NOAUTH" | "WRONGPASS" | "NOPERM") => ErrorKind::Auth,
            Some("BUSY") => ErrorKind::Timeout,
            // Another type where an entry string belongs: not an entry.
            Some("WRONGTYPE") => ErrorKind::Codec,
            _ => ErrorKind::Server,
        },
    }
}

/// What Redis 7.0 answers when a script calls a command its user may not
/// run (`ERR The user executing the script can't run this command or
/// subcommand script: <sha>, on @user_script:<line>.`): no error code of
/// its own, and the command only findable through the line.
const SCRIPT_ACL_REFUSAL: &str = "user executing the script can't run this command";

/// A command refused by the user's ACL, as an [`ErrorKind::Auth`] error
/// naming the command: a `NOPERM` reply (`... no permissions to run the
/// 'zadd' command`), or a script's refused call, whose command is read
/// off the script line Redis names (`script` = name and source as sent).
/// `None` for any other error.
pub(crate) fn permission_denied(
    e: &redis::RedisError,
    script: Option<(&str, &str)>,
) -> Option<Error> {
    let detail = e.detail().unwrap_or_default();
    let nopermission = e.code() == Some("NOPERM")
        || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm);
    if !nopermission && !detail.contains(SCRIPT_ACL_REFUSAL) {
        return None;
    }
    let named = quoted_command(detail).or_else(|| {
        let (_, source) = script?;
        let line = detail.rsplit("@user_script:").next()?;
        let line: usize = line.trim_end_matches('.').trim().parse().ok()?;
        called_command(source.lines().nth(line.checked_sub(1)?)?)
    });
    let command = named.map_or_else(|| "a command".to_owned(), |c| c.to_uppercase());
    let within = script.map_or_else(String::new, |(name, _)| format!(" in script {name}"));
    Some(Error::with_source(
        ErrorKind::Auth,
        format!(
            "permission denied: the Redis user may not run {command}{within} (grant it in the user's ACL, or use a user who may)"
        ),
        e.clone(),
    ))
}

/// `zadd` in `... to run the 'zadd' command`.
fn quoted_command(detail: &str) -> Option<&str> {
    let rest = detail.split("to run the '").nth(1)?;
    rest.split('\'').next().filter(|c| !c.is_empty())
}

/// `ZADD` in a Lua line `redis.call('ZADD', key, ...)`.
fn called_command(line: &str) -> Option<&str> {
    let at = line
        .find("redis.call(")
        .or_else(|| line.find("redis.pcall("))?;
    let rest = line[at..].split_once('(')?.1.trim_start();
    let quote = rest.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    rest[1..].split(quote).next().filter(|c| !c.is_empty())
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_commands_are_named() {
        assert_eq!(
            quoted_command("this user has no permissions to run the 'zadd' command"),
            Some("zadd")
        );
        assert_eq!(
            called_command("  redis.call('ZADD', KEYS[1], 1, m)"),
            Some("ZADD")
        );
        assert_eq!(
            called_command("local r = redis.pcall(\"SET\", k)"),
            Some("SET")
        );
        assert_eq!(called_command("redis.call(cmd, k)"), None);
        assert_eq!(called_command("return 1"), None);
    }

    #[test]
    fn invalid_input_is_classified() {
        let e: Error = InvalidInput::EmptyKey.into();
        assert!(e.is_invalid_input());
        assert_eq!(e.to_string(), "invalid input: key is empty");
    }
}
