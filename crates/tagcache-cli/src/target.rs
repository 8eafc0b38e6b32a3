//! Which Redis a command talks to: the one the user named (`--url` /
//! `REDIS_URL`), or a private server started for this run.

use crate::error::{CliError, Result};
use crate::private_redis::PrivateRedis;

/// A Redis to talk to, and the private server behind it if we started one
/// (stopped when the target is dropped).
#[derive(Debug)]
pub struct Target {
    url: String,
    private: Option<PrivateRedis>,
}

impl Target {
    /// Uses `url` when given, else starts a private redis-server.
    ///
    /// # Errors
    /// See [`crate::private_redis::start`].
    pub async fn given_or_private(url: Option<&str>) -> Result<Self> {
        match url {
            Some(url) if !url.trim().is_empty() => Ok(Self {
                url: normalize_url(url.trim()),
                private: None,
            }),
            _ => {
                let server = crate::private_redis::start().await?;
                Ok(Self {
                    url: server.url(),
                    private: Some(server),
                })
            }
        }
    }

    /// Uses `url`; without one, fails with a message saying how to give
    /// one (commands that inspect or change a cache never guess a server).
    ///
    /// # Errors
    /// No URL given.
    pub fn given(url: Option<&str>) -> Result<Self> {
        match url {
            Some(url) if !url.trim().is_empty() => Ok(Self {
                url: normalize_url(url.trim()),
                private: None,
            }),
            _ => Err(CliError::error(
                "no Redis to talk to: pass --url URL or set REDIS_URL (e.g. redis://127.0.0.1:6379)",
            )),
        }
    }

    /// Explains why a cache on this target could not be built.
    pub fn cannot_connect(&self, e: tagcache::Error) -> CliError {
        let tls = self.url.starts_with("rediss://")
            || self.url.starts_with("rediss+cluster://")
            || self.url.contains("tls=");
        CliError::connecting(e, tls)
    }

    /// Whether the URL names a Redis Cluster (`redis+cluster://`).
    pub fn is_cluster(&self) -> bool {
        self.url.starts_with("redis+cluster://")
    }

    /// A redis-rs client for raw commands on one node: the server, or the
    /// first seed of a `redis+cluster://h1:p1,h2:p2` URL.
    ///
    /// # Errors
    /// An invalid URL.
    pub fn node_client(&self) -> Result<redis::Client> {
        let Some(rest) = self.url.strip_prefix("redis+cluster://") else {
            return self.client();
        };
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((auth, hosts)) => (format!("{auth}@"), hosts),
            None => (String::new(), rest),
        };
        let first = hosts.split(',').next().unwrap_or("").trim_end_matches('/');
        redis::Client::open(format!("redis://{auth}{first}"))
            .map_err(|e| CliError::error(format!("invalid redis url {}: {e}", self.shown())))
    }

    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is a private server we started (and may reconfigure).
    pub fn is_private(&self) -> bool {
        self.private.is_some()
    }

    /// The URL without its password, for messages.
    pub fn shown(&self) -> String {
        if self.is_private() {
            "private redis-server".to_owned()
        } else {
            redact_url(&self.url)
        }
    }

    /// A redis-rs client for raw commands.
    ///
    /// # Errors
    /// An invalid URL.
    pub fn client(&self) -> Result<redis::Client> {
        redis::Client::open(self.url.as_str())
            .map_err(|e| CliError::error(format!("invalid redis url {}: {e}", self.shown())))
    }
}

/// A bare socket path becomes a `unix://` URL (as tagcache accepts it).
fn normalize_url(url: &str) -> String {
    if url.starts_with('/') {
        format!("unix://{url}")
    } else {
        url.to_owned()
    }
}

/// Hides the password of `scheme://user:password@host`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = url[scheme + 3..at].split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized_and_redacted() {
        assert_eq!(normalize_url("/tmp/r.sock"), "unix:///tmp/r.sock");
        assert_eq!(normalize_url("redis://h:1"), "redis://h:1");
        assert_eq!(redact_url("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn a_cluster_url_is_probed_through_its_first_seed() {
        let t = Target::given(Some("redis+cluster://u:p@h1:7000,h2:7001/")).unwrap();
        assert!(t.is_cluster());
        let info = t.node_client().unwrap().get_connection_info().clone();
        assert_eq!(info.addr().to_string(), "h1:7000");
        assert!(Target::given(None).is_err());
        assert!(Target::given(Some("  ")).is_err());
    }
}
