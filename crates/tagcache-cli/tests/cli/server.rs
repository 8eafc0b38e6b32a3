//! A private redis-server per test: temp dir, unix socket (no port races),
//! no persistence, killed on drop, its log printed when the test fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server; dropping it kills the server.
pub struct Redis {
    dir: tempfile::TempDir,
    child: Child,
}

impl Redis {
    /// A server with default settings.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra `--name value` arguments (`--requirepass`, ...).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tagcache-cli-test-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        let mut server = Self { dir, child };
        server.wait_ready(extra);
        server
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The server's unix socket.
    pub fn socket_path(&self) -> PathBuf {
        self.socket()
    }

    /// `unix://` URL of the server.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, extra: &[&str]) {
        let auth = extra
            .windows(2)
            .find(|w| w[0] == "--requirepass")
            .map(|w| format!("?pass={}", w[1]))
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("redis-server exited with {status}:\n{}", self.log());
            }
            let ping = redis::Client::open(format!("{}{auth}", self.url()))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if self.socket().exists() && ping.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- redis-server log ---\n{}", self.log());
        }
    }
}
