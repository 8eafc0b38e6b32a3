//! tagcache's integration tests: one binary, each test against its own
//! private redis-server (see `tests/support`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../support/mod.rs"]
mod support;

mod basics;
mod input;
mod layout;
mod props;
mod raw;
mod server;
mod tags;
mod tls;

use std::time::Duration;

use support::RedisServer;
use tagcache::Cache;

/// A cache on `server` with deterministic settings (no background sweep).
pub async fn cache(server: &RedisServer) -> Cache {
    builder(server).build().await.expect("build cache")
}

/// The builder `cache` uses, for tests that change a setting.
pub fn builder(server: &RedisServer) -> tagcache::CacheBuilder {
    Cache::builder(server.url())
        .namespace("test")
        .auto_sweep(None)
        .default_ttl(Duration::from_secs(600))
}
