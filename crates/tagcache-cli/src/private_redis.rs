//! A private `redis-server` for commands that need a Redis of their own
//! (the demo, the bench): the test kit's [`PrivateRedis`], started in a
//! process group of its own (a terminal's Ctrl-C reaches only us, and the
//! server is killed when the handle drops: at the end of the command, on
//! an error, or when Ctrl-C / SIGTERM makes `main` drop the command).

use tagcache_testkit::Launch;
pub use tagcache_testkit::PrivateRedis;

use crate::error::Result;

/// Starts `redis-server` (from `PATH`, in a temp dir, reachable only
/// through a unix socket, without persistence) and waits until it answers
/// PING.
///
/// # Errors
/// No `redis-server` on `PATH` (the message says how to install it), a
/// server that exits early or does not answer in time.
pub async fn start() -> Result<PrivateRedis> {
    let server = PrivateRedis::start_async(Launch::detached()).await?;
    tracing::info!(socket = %server.socket().display(), "private redis-server started");
    Ok(server)
}
