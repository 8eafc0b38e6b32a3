//! Test support for tagcache, shared by the library's tests and examples,
//! the CLI's tests, the demo and the bench (not published):
//!
//! - [`server`]: a private `redis-server` ([`PrivateRedis`], fallible) and
//!   the test fixture on it ([`RedisServer`]: panics on failure, prints
//!   the log of a failing test, checks on drop that nothing ran KEYS or an
//!   unallowed SCAN);
//! - [`cluster`]: a local Redis Cluster ([`RedisCluster`]);
//! - [`probe`]: the PING stall probe ([`StallProbe`]);
//! - [`fixtures`]: files several test suites read.

pub mod cluster;
pub mod fixtures;
pub mod probe;
pub mod server;

pub use cluster::{ClusterLaunch, RedisCluster};
pub use probe::{Observed, ProbeError, StallProbe, Stalls};
pub use server::{
    redis_url_or_private, run_example, Launch, PrivateRedis, RedisServer, StartError,
};
