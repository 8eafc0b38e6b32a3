//! Talking to Redis: the connection and script calls (`conn`), the
//! single-server connection that replaces itself when it breaks
//! (`reconnect`), the circuit breaker (`breaker`), the eviction-policy
//! check (`policy`) and Redis' clock as seen from this process (`clock`).

pub(crate) mod breaker;
pub(crate) mod clock;
pub(crate) mod conn;
pub(crate) mod policy;
pub(crate) mod reconnect;

/// Facts read from the server at connect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerInfo {
    /// `redis_version` from `INFO server`.
    pub redis_version: String,
    /// `maxmemory-policy`, empty when `CONFIG GET` is not allowed.
    pub eviction_policy: String,
}
