//! Talking to Redis: the connection and script calls (`conn`), the
//! single-server connection that replaces itself when it breaks
//! (`reconnect`), the circuit breaker (`breaker`), the eviction-policy
//! check (`policy`), Redis' clock as seen from this process (`clock`) and
//! the connection's response timeout (`watchdog`); here, what `build`
//! reads and checks of the server at startup.

pub(crate) mod breaker;
pub(crate) mod clock;
pub(crate) mod conn;
pub(crate) mod policy;
pub(crate) mod reconnect;
pub(crate) mod watchdog;

use crate::error::{Error, ErrorKind, Result};

/// Facts read from the server at connect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerInfo {
    /// `redis_version` from `INFO server`.
    pub redis_version: String,
    /// `maxmemory-policy`, empty when `CONFIG GET` is not allowed.
    pub eviction_policy: String,
}

impl ServerInfo {
    /// Reads the server's version (`INFO server`) and eviction policy
    /// (`CONFIG GET`; empty when it is renamed or forbidden).
    pub(crate) async fn read(conn: &conn::Conn) -> Result<Self> {
        let text: String = conn
            .query_one_node(redis::cmd("INFO").arg("server"))
            .await?;
        let redis_version = text
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("")
            .trim()
            .to_owned();
        // CONFIG may be renamed or forbidden (managed Redis): then unknown.
        let eviction_policy = conn
            .query_one_node::<Vec<String>>(redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy"))
            .await
            .ok()
            .and_then(|v| v.into_iter().nth(1))
            .unwrap_or_default();
        Ok(Self {
            redis_version,
            eviction_policy,
        })
    }
}

/// Refuses a server older than Redis 7.0.
pub(crate) fn check_version(version: &str) -> Result<()> {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    if major >= 7 {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Config,
            format!("Redis 7.0 or newer is required, the server runs {version:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_floor_is_seven() {
        assert!(check_version("7.0.15").is_ok());
        assert!(check_version("8.2.1").is_ok());
        assert!(check_version("6.2.14").is_err());
        assert!(check_version("").is_err());
    }
}
