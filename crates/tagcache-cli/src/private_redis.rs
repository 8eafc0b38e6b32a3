//! A private `redis-server` for commands that need a Redis of their own
//! (the benchmark, the demo): started from `PATH` in a temp dir, reachable
//! only through a unix socket, without persistence, and killed when the
//! handle is dropped (at the end of the command, on an error, or when
//! Ctrl-C makes `main` drop the command).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{CliError, Result};

/// How long the server may take to answer its first PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running private redis-server; dropping it kills the server and
/// removes its directory.
#[derive(Debug)]
pub struct PrivateRedis {
    child: Child,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Starts `redis-server` and waits until it answers PING.
    ///
    /// # Errors
    /// No `redis-server` on `PATH` (the message says how to install it),
    /// a server that exits early or does not answer in time.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tagcache-redis-")
            .tempdir()
            .map_err(|e| CliError::error(format!("cannot create a temp dir: {e}")))?;
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a terminal's Ctrl-C reaches only us,
            // and we stop the server once we have cleaned up.
            .process_group(0)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => CliError::error(
                    "redis-server not found on PATH: install it (apt-get install redis-server) or pass --url",
                ),
                _ => CliError::error(format!("cannot start redis-server: {e}")),
            })?;
        let mut server = Self { child, dir };
        server.wait_ready().await?;
        tracing::info!(socket = %server.socket().display(), "private redis-server started");
        Ok(server)
    }

    /// The server's unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// A URL for tagcache and redis-rs.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        log.lines().last().unwrap_or("no log").to_owned()
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(CliError::error(format!(
                    "redis-server exited with {status}: {}",
                    self.log_tail()
                )));
            }
            if self.socket().exists() && self.ping().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CliError::error(format!(
                    "redis-server did not answer within {READY_TIMEOUT:?}: {}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn ping(&self) -> redis::RedisResult<()> {
        let client = redis::Client::open(self.url())?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("PING").query_async::<()>(&mut conn).await
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // SIGKILL: nothing of it is worth saving, and it must not linger.
        let _ = self.child.kill();
        let _ = self.child.wait();
        tracing::debug!("private redis-server stopped");
    }
}
