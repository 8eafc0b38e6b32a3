//! What the `*_cost` examples share: a cache and a bare connection to one
//! server (a private redis-server unless `REDIS_URL` is set).

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tagcache::Cache;
use tagcache_testkit::RedisServer;

/// Response and operation timeout of the cache (valgrind is slow; equal,
/// as in the defaults, so the fail-safe view adds no timer of its own).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The server, a cache on it in namespace `<name>-<pid>` (no sweep), and
/// a bare multiplexed connection without response timeout (what the raw
/// modes use).
pub struct Setup {
    /// Kept alive until the example ends (`None` with `REDIS_URL`).
    pub _server: Option<RedisServer>,
    /// The server's URL.
    pub url: String,
    /// The cache's namespace.
    pub ns: String,
    /// The cache.
    pub cache: Cache,
    /// The bare connection.
    pub raw: MultiplexedConnection,
}

/// Connects both.
pub async fn setup(name: &str) -> Setup {
    let (server, url) = tagcache_testkit::redis_url_or_private(false);
    let ns = format!("{name}-{}", std::process::id());
    let cache = Cache::builder(url.as_str())
        .namespace(ns.as_str())
        .auto_sweep(None)
        .response_timeout(TIMEOUT)
        .op_timeout(TIMEOUT)
        .build()
        .await
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let raw = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    Setup {
        _server: server,
        url,
        ns,
        cache,
        raw,
    }
}
