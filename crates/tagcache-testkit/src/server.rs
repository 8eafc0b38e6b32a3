//! A private `redis-server`: temp dir, no persistence, unix socket (no
//! port races), killed on drop.
//!
//! [`PrivateRedis`] is the fallible core (the CLI's demo and the bench run
//! on it); [`RedisServer`] is the test fixture on top: it panics (fails
//! the test) when no server starts, prints the server's log when the test
//! fails, can be killed, paused and restarted for fault tests, and on drop
//! checks Redis' own command statistics: no KEYS, and no SCAN unless the
//! test allowed it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first PING.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a private server could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The program (`redis-server`, `redis-cli`, `openssl`) is not on `PATH`.
    NotInstalled(&'static str),
    /// It started but exited, did not answer in time, or the temp dir
    /// could not be made.
    Failed(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotInstalled(program) => write!(
                f,
                "{program} not found on PATH: install it (apt-get install {})",
                match *program {
                    "redis-cli" => "redis-tools",
                    other => other,
                }
            ),
            Self::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StartError {}

/// How a private server is started.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Extra `--name value` arguments.
    pub extra: Vec<String>,
    /// In a process group of its own: a terminal's Ctrl-C reaches only the
    /// owner, which stops the server once it has cleaned up.
    pub own_process_group: bool,
    /// Let the server's stderr through (tests) or not (the CLI).
    pub inherit_stderr: bool,
}

impl Launch {
    /// For a command that owns the server (the CLI's demo and bench): its
    /// own process group, stderr silenced.
    pub fn detached() -> Self {
        Self {
            own_process_group: true,
            ..Self::default()
        }
    }
}

/// A running private redis-server; dropping it kills the server and
/// removes its directory.
#[derive(Debug)]
pub struct PrivateRedis {
    dir: tempfile::TempDir,
    child: Option<Child>,
    launch: Launch,
}

impl PrivateRedis {
    /// Starts `redis-server` and waits (blocking, up to [`READY_TIMEOUT`])
    /// until it answers PING.
    ///
    /// # Errors
    /// No `redis-server` on `PATH`, a server that exits early or does not
    /// answer in time.
    pub fn start(launch: Launch) -> Result<Self, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("tagcache-redis-")
            .tempdir()
            .map_err(|e| StartError::Failed(format!("cannot create a temp dir: {e}")))?;
        let mut s = Self {
            dir,
            child: None,
            launch,
        };
        s.launch()?;
        Ok(s)
    }

    /// As [`PrivateRedis::start`], waiting on a blocking thread (for async
    /// callers).
    ///
    /// # Errors
    /// As [`PrivateRedis::start`].
    pub async fn start_async(launch: Launch) -> Result<Self, StartError> {
        tokio::task::spawn_blocking(move || Self::start(launch))
            .await
            .map_err(|e| StartError::Failed(format!("starting redis-server: {e}")))?
    }

    fn launch(&mut self) -> Result<(), StartError> {
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
            .args(&self.launch.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if self.launch.inherit_stderr {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        if self.launch.own_process_group {
            cmd.process_group(0);
        }
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StartError::NotInstalled("redis-server"),
            _ => StartError::Failed(format!("cannot start redis-server: {e}")),
        })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(StartError::Failed(format!(
                        "redis-server exited with {status}:\n{}",
                        self.log()
                    )));
                }
            }
            if self.socket().exists() {
                if let Ok(mut c) = self.sync_conn() {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(StartError::Failed(format!(
                    "redis-server did not answer within {READY_TIMEOUT:?}:\n{}",
                    self.log()
                )));
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
        let extra = &self.launch.extra;
        let pass = extra
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| extra.get(i + 1));
        match pass {
            Some(p) => format!("unix://{}?pass={p}", self.socket().display()),
            None => format!("unix://{}", self.socket().display()),
        }
    }

    /// The temp dir (for fixtures that need files beside the server).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is running (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// A plain synchronous connection (2 s connect timeout).
    ///
    /// # Errors
    /// The server does not accept the connection.
    pub fn sync_conn(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(self.url())?;
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// SIGKILLs the server (it stays down until [`PrivateRedis::restart`]).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same socket (empty: no persistence).
    ///
    /// # Errors
    /// As [`PrivateRedis::start`].
    pub fn restart(&mut self) -> Result<(), StartError> {
        self.kill();
        self.launch()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // SIGKILL: nothing of it is worth saving, and it must not linger.
        self.kill();
    }
}

/// A redis-server owned by one test.
pub struct RedisServer {
    server: PrivateRedis,
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

/// For examples' `main`: runs the scenario `run` against
/// [`redis_url_or_private`]'s Redis; on an error prints it, stops the
/// private server (exiting skips destructors) and exits with status 1.
pub async fn run_example(allow_scan: bool, run: impl AsyncFnOnce(&str) -> Result<(), String>) {
    let (server, url) = redis_url_or_private(allow_scan);
    if let Err(e) = run(&url).await {
        eprintln!("{e}");
        drop(server);
        std::process::exit(1);
    }
}

impl RedisServer {
    /// Starts a server; panics (fails the test) when none can be started.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `--name value` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let launch = Launch {
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            own_process_group: false,
            inherit_stderr: true,
        };
        match PrivateRedis::start(launch) {
            Ok(server) => Self {
                server,
                allow_scan: false,
                tls_port: None,
            },
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts a server that also serves TLS on a loopback TCP port, with a
    /// throwaway CA made by `openssl`; see `tls_url` and `ca_pem`.
    pub fn start_tls() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tagcache-redis-")
            .tempdir()
            .expect("temp dir");
        let mut s = Self {
            server: PrivateRedis {
                dir,
                child: None,
                launch: Launch {
                    inherit_stderr: true,
                    ..Launch::default()
                },
            },
            allow_scan: false,
            tls_port: None,
        };
        make_certificates(s.server.dir());
        let d = s.server.dir().to_owned();
        for _ in 0..20 {
            // Redis cannot pick a free port itself: take one the kernel
            // just handed out, and try another if someone raced us to it.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            s.server.launch.extra = vec![
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
            if s.server.launch().is_ok() {
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
        std::fs::read(self.dir().join("ca.crt")).expect("ca.crt")
    }

    /// The unix socket path.
    pub fn socket(&self) -> PathBuf {
        self.server.socket()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// A URL for tagcache and redis-rs (with the `--requirepass` password
    /// when the server was started with one).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The temp dir (for fixtures that need files beside the server).
    pub fn dir(&self) -> &Path {
        self.server.dir()
    }

    /// A plain synchronous connection for checks.
    pub fn conn(&self) -> redis::Connection {
        self.server
            .sync_conn()
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
        command_calls(&info)
    }

    /// Lets this test's workload use SCAN (legacy paths only).
    pub fn allow_scan(&mut self) {
        self.allow_scan = true;
    }

    /// SIGKILLs the server (it stays down until `restart`).
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts the server again on the same socket (empty: no persistence).
    pub fn restart(&mut self) {
        if let Err(e) = self.server.restart() {
            panic!("{e}");
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.server.pid() {
            let ok = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
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

/// `INFO commandstats` text as command -> calls.
pub fn command_calls(info: &str) -> HashMap<String, u64> {
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
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
                self.dir().display(),
                self.log()
            );
        } else if self.server.is_running() {
            self.check_command_stats();
        }
        self.kill();
    }
}
