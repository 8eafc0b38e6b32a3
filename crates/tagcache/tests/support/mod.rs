//! A private `redis-server` per test: temp dir, no persistence, unix
//! socket (no port races), killed on drop, its log printed when the test
//! fails. It can be killed, paused and restarted for fault tests, and on
//! drop it checks Redis' own command statistics: no KEYS, and no SCAN
//! unless the test allowed it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server owned by one test.
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
    allow_scan: bool,
    tls_port: Option<u16>,
}

/// For examples: the Redis at `REDIS_URL`, or a private server (kept
/// alive by the returned handle; `allow_scan` for examples whose point
/// includes SCAN, e.g. legacy-key migration).
pub fn redis_url_or_private(allow_scan: bool) -> (Option<RedisServer>, String) {
    match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let mut s = RedisServer::start();
            if allow_scan {
                s.allow_scan();
            }
            let url = s.url();
            (Some(s), url)
        }
    }
}

impl RedisServer {
    /// Starts a server; panics (fails the test) when none can be started.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `--name value` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tagcache-redis-")
            .tempdir()
            .expect("temp dir");
        let mut s = Self {
            dir,
            child: None,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            allow_scan: false,
            tls_port: None,
        };
        s.spawn();
        s
    }

    /// Starts a server that also serves TLS on a loopback TCP port, with a
    /// throwaway CA made by `openssl`; see `tls_url` and `ca_pem`.
    pub fn start_tls() -> Self {
        let mut s = Self {
            dir: tempfile::Builder::new()
                .prefix("tagcache-redis-")
                .tempdir()
                .expect("temp dir"),
            child: None,
            extra: Vec::new(),
            allow_scan: false,
            tls_port: None,
        };
        make_certificates(s.dir.path());
        let d = s.dir.path().to_owned();
        for _ in 0..20 {
            // Redis cannot pick a free port itself: take one the kernel
            // just handed out, and try another if someone raced us to it.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            s.extra = vec![
                "--tls-port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--tls-cert-file".into(),
                d.join("server.crt").display().to_string(),
                "--tls-key-file".into(),
                d.join("server.key").display().to_string(),
                "--tls-ca-cert-file".into(),
                d.join("ca.crt").display().to_string(),
                "--tls-auth-clients".into(),
                "no".into(),
            ];
            s.tls_port = Some(port);
            if s.try_spawn() {
                return s;
            }
        }
        panic!("could not start a TLS redis-server:\n{}", s.log());
    }

    /// `rediss://` URL of a server started with `start_tls`.
    pub fn tls_url(&self) -> String {
        format!(
            "rediss://localhost:{}",
            self.tls_port.expect("a TLS server")
        )
    }

    /// The test CA's certificate (PEM).
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.crt")).expect("ca.crt")
    }

    /// Spawns and waits; false when the server exited (port taken).
    fn try_spawn(&mut self) -> bool {
        self.launch().is_ok()
    }

    fn spawn(&mut self) {
        if let Err(e) = self.launch() {
            panic!("{e}");
        }
    }

    fn launch(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let _ = std::fs::remove_file(self.socket());
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(self.log_path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); install it: apt-get install redis-server")
        });
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "redis-server exited with {status}:\n{}",
                        self.log()
                    ));
                }
            }
            if self.socket().exists() {
                if let Ok(mut c) = self.sync_conn_once() {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server did not become ready:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The unix socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A URL for tagcache and redis-rs (with the `--requirepass` password
    /// when the server was started with one).
    pub fn url(&self) -> String {
        let pass = self
            .extra
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| self.extra.get(i + 1));
        match pass {
            Some(p) => format!("unix://{}?pass={p}", self.socket().display()),
            None => format!("unix://{}", self.socket().display()),
        }
    }

    /// The temp dir (for fixtures that need files beside the server).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn sync_conn_once(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(self.url())?;
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// A plain synchronous connection for checks.
    pub fn conn(&self) -> redis::Connection {
        self.sync_conn_once()
            .expect("connect to the test redis-server")
    }

    /// Runs one raw command and returns its reply.
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&[u8]]) -> T {
        let mut c = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(&mut self.conn()).expect("raw command")
    }

    /// `INFO commandstats` as command -> calls.
    pub fn command_calls(&self) -> HashMap<String, u64> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.conn())
            .unwrap();
        info.lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter_map(|l| {
                let (name, rest) = l.split_once(':')?;
                let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?;
                Some((name.to_owned(), calls.parse().ok()?))
            })
            .collect()
    }

    /// Lets this test's workload use SCAN (legacy paths only).
    pub fn allow_scan(&mut self) {
        self.allow_scan = true;
    }

    /// SIGKILLs the server (it stays down until `restart`).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same socket (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = self.child.as_ref() {
            let ok = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(child.id().to_string())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "kill -{sig} failed");
        }
    }

    /// Freezes the server (SIGSTOP).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaws the server (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn check_command_stats(&self) {
        let calls = self.command_calls();
        assert!(!calls.contains_key("keys"), "KEYS was called: {calls:?}");
        if !self.allow_scan {
            assert!(!calls.contains_key("scan"), "SCAN was called: {calls:?}");
        }
    }
}

/// A CA and a server certificate for localhost / 127.0.0.1.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run openssl ({e}); install it: apt-get install openssl")
            })
            .success();
        assert!(ok, "openssl {args:?} failed");
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=tagcache-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- redis-server log ({}) ---\n{}",
                self.dir.path().display(),
                self.log()
            );
        } else if self.child.is_some() {
            self.check_command_stats();
        }
        self.kill();
    }
}
