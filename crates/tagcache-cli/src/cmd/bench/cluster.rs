//! `--cluster`: a local 3-master Redis Cluster (redis-server processes on
//! loopback ports P and P + 10000, temp dirs, `redis-cli --cluster
//! create`), and tagcache through `Cache::builder("").cluster(seeds)` doing
//! what the standalone phases did: `set_many_bytes`, `get_bytes` and
//! invalidating one tag, compared with tagcache on the standalone server
//! of the same run. Raw pipelined baselines do not exist on a cluster (the
//! keys of a batch are cross-slot), so the figures are tagcache cluster
//! vs tagcache standalone and the commands (round trips) each operation
//! sends, summed over every node's `INFO commandstats`.
//!
//! All nodes run on the bench's machine: with 2 cores, 3 servers and the
//! client share the same CPUs, so absolute scaling cannot show here; the
//! commands per operation show how the work spreads.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde::Serialize;
use tagcache::{Cache, SetOptions};

use super::layout::item_key;
use super::probe::Probe;
use super::report::{Comparison, Run};
use super::server::{self, Cost};
use super::writes::load;
use super::{batches, drive, Bench, BATCHES_IN_FLIGHT, TTL};
use crate::error::{CliError, Result};

/// Masters of the local cluster.
pub const MASTERS: usize = 3;
/// The tag every entry of the invalidation carries.
const INVALIDATED: &str = "inv:all";

/// A local cluster; dropping it kills every node and removes its dirs.
#[derive(Debug)]
pub struct LocalCluster {
    dir: tempfile::TempDir,
    nodes: Vec<(u16, Child)>,
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
        tracing::debug!("local cluster stopped");
    }
}

/// A port P with P and P + 10000 (the cluster bus) free right now.
fn free_port_pair() -> Result<u16> {
    for _ in 0..1000 {
        let a = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| CliError::error(format!("cannot find a free port: {e}")))?;
        let port = a.local_addr().map(|a| a.port()).unwrap_or(0);
        if port == 0 || port > 55000 {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return Ok(port);
        }
    }
    Err(CliError::error("cannot find two free ports P and P+10000"))
}

impl LocalCluster {
    /// Starts the nodes, creates the cluster and waits for
    /// `cluster_state:ok` on every node (blocking; run it off the runtime).
    pub fn start() -> Result<Self> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!("cluster start failed, retrying: {e}");
                    last = e;
                }
            }
        }
        Err(CliError::error(format!(
            "cannot start a local redis cluster: {last}"
        )))
    }

    fn try_start() -> std::result::Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("tagcache-bench-cluster-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let mut cluster = Self {
            dir,
            nodes: Vec::new(),
        };
        for i in 0..MASTERS {
            let port = free_port_pair().map_err(|e| e.to_string())?;
            let ndir = cluster.dir.path().join(format!("node-{i}"));
            std::fs::create_dir_all(&ndir).map_err(|e| e.to_string())?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&ndir)
                .arg("--logfile")
                .arg(ndir.join("redis.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group: Ctrl-C reaches only us, and we
                // kill the nodes once we have stopped.
                .process_group(0)
                .spawn()
                .map_err(|e| {
                    format!("cannot start redis-server ({e}): install it (apt-get install redis-server)")
                })?;
            cluster.nodes.push((port, child));
        }
        for (port, child) in &mut cluster.nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("node {port} exited with {status}"));
                }
                if node_query::<String>(*port, &redis::cmd("PING")).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("node {port} did not answer PING"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for (port, _) in &cluster.nodes {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                format!("cannot run redis-cli ({e}): install it (apt-get install redis-tools)")
            })?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .last()
                    .unwrap_or("")
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.nodes.iter().all(|(port, _)| {
            node_query::<String>(*port, redis::cmd("CLUSTER").arg("INFO")).is_ok_and(|i| {
                i.contains("cluster_state:ok") && i.contains("cluster_slots_ok:16384")
            })
        }) {
            if Instant::now() > deadline {
                return Err("the cluster did not reach cluster_state:ok".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(cluster)
    }

    /// Seed URLs.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(p, _)| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The nodes' ports (every node is a master).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(p, _)| *p).collect()
    }

    /// Where the nodes keep their logs.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

fn node_query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_millis(500))?;
    cmd.query(&mut conn)
}

/// The invalidation on the cluster beside the standalone one.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterInvalidation {
    /// Entries under the tag.
    pub entries: u64,
    /// Entries `invalidate_tag` reported deleted.
    pub deleted: u64,
    /// Wall time on the cluster, milliseconds.
    pub wall_ms: f64,
    /// Longest PING wait of any master's probe, milliseconds.
    pub longest_stall_ms: f64,
    /// Commands sent in total, summed over the nodes.
    pub commands_sent: f64,
    /// The standalone tagcache invalidation of the same run.
    pub standalone_wall_ms: f64,
    /// Its longest stall.
    pub standalone_longest_stall_ms: f64,
    /// Wall time, cluster over standalone.
    pub wall_ratio: f64,
}

/// The `--cluster` results.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// Masters (one redis-server each, all on this machine).
    pub masters: usize,
    /// Index buckets of the cache (tagcache's cluster default).
    pub buckets: &'static str,
    /// Cluster vs standalone, per operation; `baseline` is tagcache on
    /// the standalone server of the same run, and the cost columns are
    /// summed over the cluster's nodes.
    pub comparisons: Vec<Comparison>,
    /// Invalidating one tag.
    pub invalidation: ClusterInvalidation,
    /// What these figures can and cannot say.
    pub note: &'static str,
}

/// What the standalone phases measured, for the comparison.
pub struct Standalone {
    pub set_many: Run,
    pub get: Run,
    pub invalidate_wall_ms: f64,
    pub invalidate_longest_stall_ms: f64,
}

const NOTE: &str = "all nodes share the bench machine's cores with the client: \
     absolute scaling with nodes cannot show here; ratios are tagcache cluster over \
     tagcache standalone of the same run";

/// Connections to every node for sampling.
struct Nodes {
    conns: Vec<MultiplexedConnection>,
}

impl Nodes {
    async fn connect(ports: &[u16]) -> Result<Self> {
        let mut conns = Vec::new();
        for p in ports {
            let client = redis::Client::open(format!("redis://127.0.0.1:{p}"))?;
            conns.push(client.get_multiplexed_async_connection().await?);
        }
        Ok(Self { conns })
    }

    async fn sample(&self) -> Result<Vec<server::Sample>> {
        let mut out = Vec::new();
        for c in &self.conns {
            out.push(server::sample(c).await?);
        }
        Ok(out)
    }

    /// Runs `work` and sums its cost over the nodes.
    async fn measure<F>(&self, sent: &[&str], ops: u64, work: F) -> Result<Run>
    where
        F: std::future::Future<Output = Result<()>>,
    {
        let before = self.sample().await?;
        let start = Instant::now();
        work.await?;
        let elapsed = start.elapsed();
        let after = self.sample().await?;
        let mut cost = Cost::default();
        for (b, a) in before.iter().zip(&after) {
            let c = b.cost_until(a, sent, ops);
            cost.server_usec_per_op += c.server_usec_per_op;
            cost.commands_sent_per_op += c.commands_sent_per_op;
            cost.commands_executed_per_op += c.commands_executed_per_op;
            cost.process_cpu_usec_per_op += c.process_cpu_usec_per_op;
        }
        Ok(Run::new(ops, elapsed, cost))
    }
}

/// Starts the cluster, measures, and kills it.
pub async fn run(b: &Bench<'_>, standalone: &Standalone) -> Result<ClusterReport> {
    b.progress
        .set(format!("cluster: starting {MASTERS} local masters"));
    let cluster = tokio::task::spawn_blocking(LocalCluster::start)
        .await
        .map_err(|e| CliError::error(format!("cluster start panicked: {e}")))??;
    tracing::info!(dir = %cluster.dir().display(), "local cluster started");
    let nodes = Nodes::connect(&cluster.ports()).await?;
    let build = |ns: String| {
        Cache::builder("")
            .cluster(cluster.seeds())
            .namespace(ns)
            .auto_sweep(None)
            .eviction_check(tagcache::EvictionCheck::Warn)
            .response_timeout(Duration::from_secs(30))
            .build()
    };
    let n = b.plan.entries;
    let rounds = b.plan.rounds;
    let wl = &b.plan.workload;
    let sent_w: &[&str] = &["evalsha", "eval"];
    let (mut set_many, mut get) = (None, None);
    for round in 0..rounds {
        b.progress.set(format!(
            "cluster: set_many_bytes, get_bytes (round {}/{rounds})",
            round + 1
        ));
        let cache = build(b.plan.namespace(&format!("cl-w{round}"))).await?;
        let cache = &cache;
        let run = nodes
            .measure(
                sent_w,
                n,
                drive(
                    batches(n, b.plan.batch),
                    BATCHES_IN_FLIGHT,
                    |range| async move {
                        let items = range.map(|i| {
                            let opts = SetOptions::new().ttl(TTL).tags(wl.tags_of(i, None));
                            (item_key(i), wl.value(), opts)
                        });
                        Ok(cache.set_many_bytes(items).await?)
                    },
                ),
            )
            .await?;
        set_many = Some(Run::faster(set_many, run));
        let run = nodes
            .measure(
                &["get"],
                n,
                drive(0..n, b.plan.concurrency, |i| async move {
                    match cache.get_bytes(item_key(i)).await? {
                        Some(_) => Ok(()),
                        None => Err(CliError::error(format!(
                            "cluster get_bytes found no value for {}",
                            item_key(i)
                        ))),
                    }
                }),
            )
            .await?;
        get = Some(Run::faster(get, run));
    }
    let k = wl.tag_count();
    let c = b.plan.concurrency;
    let bn = b.plan.batch;
    let comparisons = vec![
        Comparison::new(
            "cluster_set_many",
            format!("cluster set_many_bytes, {k} tags, {bn}/call"),
            set_many.unwrap_or_default(),
            "standalone set_many_bytes (same run)".to_owned(),
            standalone.set_many,
            None,
        ),
        Comparison::new(
            "cluster_get",
            format!("cluster get_bytes, {c} in flight"),
            get.unwrap_or_default(),
            "standalone get_bytes (same run)".to_owned(),
            standalone.get,
            None,
        ),
    ];

    // Invalidation: the median round, every master probed.
    let inv_n = b.plan.invalidate_entries;
    let iwl = &b.plan.inv_workload;
    let mut runs = Vec::new();
    for round in 0..rounds {
        b.progress.set(format!(
            "cluster: writing {inv_n} entries to invalidate (round {}/{rounds})",
            round + 1
        ));
        let cache = build(b.plan.namespace(&format!("cl-inv{round}"))).await?;
        load(&cache, inv_n, |i| {
            let tags = iwl.tags_of(i, Some(INVALIDATED));
            (iwl.value().to_vec(), SetOptions::new().ttl(TTL).tags(tags))
        })
        .await?;
        b.progress.set(format!(
            "cluster: invalidating a tag of {inv_n} entries (round {}/{rounds})",
            round + 1
        ));
        let probes = cluster
            .ports()
            .iter()
            .map(|p| {
                redis::Client::open(format!("redis://127.0.0.1:{p}"))
                    .map_err(CliError::from)
                    .and_then(|c| Probe::start(&c))
            })
            .collect::<Result<Vec<_>>>()?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut deleted = 0;
        let start = Instant::now();
        let run = nodes
            .measure(&["evalsha", "eval", "zrange"], 1, async {
                deleted = cache.invalidate_tag(INVALIDATED).await?;
                Ok(())
            })
            .await?;
        let wall_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut longest: f64 = 0.0;
        for p in probes {
            longest = longest.max(p.stop().await?.longest_ms);
        }
        runs.push((wall_ms, longest, run.cost.commands_sent_per_op, deleted));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (wall_ms, longest_stall_ms, commands_sent, deleted) =
        runs.get(runs.len() / 2).copied().unwrap_or_default();
    if deleted != inv_n {
        return Err(CliError::error(format!(
            "cluster invalidate_tag deleted {deleted} of {inv_n} entries"
        )));
    }
    drop(nodes);
    drop(cluster);
    Ok(ClusterReport {
        masters: MASTERS,
        buckets: "tagcache default (16)",
        comparisons,
        invalidation: ClusterInvalidation {
            entries: inv_n,
            deleted,
            wall_ms,
            longest_stall_ms,
            commands_sent,
            standalone_wall_ms: standalone.invalidate_wall_ms,
            standalone_longest_stall_ms: standalone.invalidate_longest_stall_ms,
            wall_ratio: wall_ms / standalone.invalidate_wall_ms,
        },
        note: NOTE,
    })
}
