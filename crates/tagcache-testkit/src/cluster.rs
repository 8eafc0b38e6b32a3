//! A private Redis Cluster per test: N masters (and optional replicas) from
//! redis-server processes on loopback ports, created with
//! `redis-cli --cluster create`, torn down on drop, its logs printed when
//! the test fails, and its command statistics checked on every node (no
//! KEYS, no SCAN). The bench's `--cluster` runs on the same fixture
//! ([`RedisCluster::try_start`]), without the checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::StartError;

/// How a cluster is started.
#[derive(Debug, Clone)]
pub struct ClusterLaunch {
    /// Masters (each gets a share of the 16384 slots).
    pub masters: usize,
    /// Replicas per master.
    pub replicas: usize,
    /// `cluster-node-timeout` in milliseconds.
    pub node_timeout_ms: u64,
    /// Nodes in process groups of their own (Ctrl-C reaches only the owner).
    pub own_process_group: bool,
    /// On drop, print the logs of a failing test and check that no node
    /// ran KEYS or SCAN (tests); off for the bench.
    pub test_checks: bool,
}

impl ClusterLaunch {
    /// A test cluster: quick failover (1 s node timeout), checks on drop.
    pub fn test(masters: usize, replicas: usize) -> Self {
        Self {
            masters,
            replicas,
            node_timeout_ms: 1000,
            own_process_group: false,
            test_checks: true,
        }
    }
}

/// One node of the cluster.
pub struct Node {
    /// Its loopback port (the cluster bus is port + 10000).
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// A synchronous connection to this node.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}", self.port))
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }
}

/// A cluster owned by one test (or by the bench).
pub struct RedisCluster {
    dir: tempfile::TempDir,
    /// Every node, masters first as `redis-cli --cluster create` assigns them.
    pub nodes: Vec<Node>,
    test_checks: bool,
}

/// A port P with P and P + 10000 (the cluster bus) free right now.
fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port > 55000 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each; panics (fails
    /// the test) when no cluster can be started after 5 attempts.
    pub fn start(masters: usize, replicas: usize) -> Self {
        match Self::try_start(&ClusterLaunch::test(masters, replicas), 5) {
            Ok(c) => c,
            Err(e) => panic!("cannot start a redis cluster: {e}"),
        }
    }

    /// Starts a cluster (blocking: run it off an async runtime), making up
    /// to `attempts` tries (ports can be raced).
    ///
    /// # Errors
    /// `redis-server` or `redis-cli` missing, or no try succeeded.
    pub fn try_start(launch: &ClusterLaunch, attempts: usize) -> Result<Self, StartError> {
        let mut last = StartError::Failed("no attempt made".into());
        for _ in 0..attempts.max(1) {
            match Self::start_once(launch) {
                Ok(c) => return Ok(c),
                Err(e @ StartError::NotInstalled(_)) => return Err(e),
                Err(e) => {
                    eprintln!("cluster start failed, retrying: {e}");
                    last = e;
                }
            }
        }
        Err(last)
    }

    fn start_once(launch: &ClusterLaunch) -> Result<Self, StartError> {
        let (masters, replicas) = (launch.masters, launch.replicas);
        let failed = |e: std::io::Error| StartError::Failed(e.to_string());
        let dir = tempfile::Builder::new()
            .prefix("tagcache-cluster-")
            .tempdir()
            .map_err(failed)?;
        let mut nodes = Vec::new();
        for i in 0..masters * (1 + replicas) {
            let port = free_port_pair();
            let ndir = dir.path().join(format!("node-{i}"));
            std::fs::create_dir_all(&ndir).map_err(failed)?;
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout"])
                .arg(launch.node_timeout_ms.to_string())
                // A replica may always take over (the test kills masters).
                .args(["--cluster-replica-validity-factor", "0"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&ndir)
                .arg("--logfile")
                .arg(ndir.join("redis.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if launch.own_process_group {
                cmd.process_group(0);
            }
            let child = cmd.spawn().map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => StartError::NotInstalled("redis-server"),
                _ => StartError::Failed(format!("cannot start redis-server: {e}")),
            })?;
            nodes.push(Node {
                port,
                dir: ndir,
                child: Some(child),
            });
        }
        let mut cluster = Self {
            dir,
            nodes,
            test_checks: launch.test_checks,
        };
        for n in &mut cluster.nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(Ok(Some(status))) = n.child.as_mut().map(Child::try_wait) {
                    return Err(StartError::Failed(format!(
                        "node {} exited with {status}:\n{}",
                        n.port,
                        n.log()
                    )));
                }
                let ok = redis::Client::open(format!("redis://127.0.0.1:{}", n.port))
                    .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                    .is_ok();
                if ok {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(StartError::Failed(format!(
                        "node {} did not start:\n{}",
                        n.port,
                        n.log()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => StartError::NotInstalled("redis-cli"),
                _ => StartError::Failed(format!("cannot run redis-cli: {e}")),
            })?;
        if !out.status.success() {
            return Err(StartError::Failed(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        cluster
            .wait_ok(Duration::from_secs(30))
            .map_err(StartError::Failed)?;
        Ok(cluster)
    }

    /// Waits until every live node reports `cluster_state:ok`.
    pub fn wait_ok(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let all_ok = self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                redis::Client::open(format!("redis://127.0.0.1:{}", n.port))
                    .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
                    .map(|info| {
                        info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
                    })
                    .unwrap_or(false)
            });
            if all_ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("cluster did not reach cluster_state:ok".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Seed URLs for the cluster client.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// Every node's port.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Where the nodes keep their directories and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The masters' ports.
    pub fn masters(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .filter(|n| {
                redis::cmd("ROLE")
                    .query::<Vec<redis::Value>>(&mut n.conn())
                    .ok()
                    .and_then(|r| r.into_iter().next())
                    .is_some_and(|v| v == redis::Value::BulkString(b"master".to_vec()))
            })
            .map(|n| n.port)
            .collect()
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `INFO commandstats` summed over the live nodes: command -> calls.
    pub fn command_calls(&self) -> HashMap<String, u64> {
        let mut total = HashMap::new();
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query(&mut n.conn())
                .unwrap();
            for (name, calls) in crate::server::command_calls(&info) {
                *total.entry(name).or_insert(0) += calls;
            }
        }
        total
    }

    /// Keys per live master (`DBSIZE`), to see data spread.
    pub fn dbsizes(&self) -> Vec<u64> {
        self.masters()
            .iter()
            .map(|p| {
                let n = self.nodes.iter().find(|n| n.port == *p).unwrap();
                redis::cmd("DBSIZE").query(&mut n.conn()).unwrap()
            })
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        if self.test_checks && std::thread::panicking() {
            for n in &self.nodes {
                eprintln!("--- node {} log ---\n{}", n.port, n.log());
            }
        } else if self.test_checks {
            let calls = self.command_calls();
            assert!(!calls.contains_key("keys"), "KEYS was called: {calls:?}");
            assert!(!calls.contains_key("scan"), "SCAN was called: {calls:?}");
        }
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
