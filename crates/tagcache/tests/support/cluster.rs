//! A private Redis Cluster per test: N masters (and optional replicas) from
//! redis-server processes on loopback ports, created with
//! `redis-cli --cluster create`, torn down on drop, its logs printed when
//! the test fails, and its command statistics checked on every node (no
//! KEYS, no SCAN).

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node of the cluster.
pub struct Node {
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

/// A cluster owned by one test.
pub struct RedisCluster {
    _dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
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
    /// Starts `masters` masters with `replicas` replicas each.
    pub fn start(masters: usize, replicas: usize) -> Self {
        for attempt in 0..5 {
            match Self::try_start(masters, replicas) {
                Ok(c) => return c,
                Err(e) if attempt < 4 => eprintln!("cluster start failed, retrying: {e}"),
                Err(e) => panic!("cannot start a redis cluster: {e}"),
            }
        }
        unreachable!()
    }

    fn try_start(masters: usize, replicas: usize) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("tagcache-cluster-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut nodes = Vec::new();
        for i in 0..masters * (1 + replicas) {
            let port = free_port_pair();
            let ndir = dir.path().join(format!("node-{i}"));
            std::fs::create_dir_all(&ndir).map_err(|e| e.to_string())?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
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
                .spawn()
                .map_err(|e| {
                    format!(
                        "cannot start redis-server ({e}); install it: apt-get install redis-server"
                    )
                })?;
            nodes.push(Node {
                port,
                dir: ndir,
                child: Some(child),
            });
        }
        let mut cluster = Self { _dir: dir, nodes };
        for n in &mut cluster.nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(Ok(Some(status))) = n.child.as_mut().map(Child::try_wait) {
                    return Err(format!(
                        "node {} exited with {status}:\n{}",
                        n.port,
                        n.log()
                    ));
                }
                let ok = redis::Client::open(format!("redis://127.0.0.1:{}", n.port))
                    .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                    .is_ok();
                if ok {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("node {} did not start:\n{}", n.port, n.log()));
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
            .map_err(|e| {
                format!("cannot run redis-cli ({e}); install it: apt-get install redis-tools")
            })?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        cluster.wait_ok(Duration::from_secs(20))?;
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
            for l in info.lines().filter_map(|l| l.strip_prefix("cmdstat_")) {
                if let Some((name, rest)) = l.split_once(':') {
                    if let Some(c) = rest.split(',').find_map(|f| f.strip_prefix("calls=")) {
                        *total.entry(name.to_owned()).or_insert(0) += c.parse::<u64>().unwrap_or(0);
                    }
                }
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
        if std::thread::panicking() {
            for n in &self.nodes {
                eprintln!("--- node {} log ---\n{}", n.port, n.log());
            }
        } else {
            let calls = self.command_calls();
            assert!(!calls.contains_key("keys"), "KEYS was called: {calls:?}");
            assert!(!calls.contains_key("scan"), "SCAN was called: {calls:?}");
        }
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
