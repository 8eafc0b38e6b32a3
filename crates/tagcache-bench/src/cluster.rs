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

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde::Serialize;
use tagcache::{Cache, SetOptions};
use tagcache_testkit::{ClusterLaunch, RedisCluster};

use super::layout::item_key;
use super::probe::Probe;
use super::report::{Comparison, Run};
use super::server::{self, Cost};
use super::writes::{self, load};
use super::{drive, Bench, TTL};
use crate::error::{BenchError, Result};

/// Masters of the local cluster.
pub const MASTERS: usize = 3;
/// The tag every entry of the invalidation carries.
const INVALIDATED: &str = "inv:all";

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
    let launch = ClusterLaunch {
        masters: MASTERS,
        replicas: 0,
        node_timeout_ms: 5000,
        own_process_group: true,
        test_checks: false,
    };
    let cluster = tokio::task::spawn_blocking(move || RedisCluster::try_start(&launch, 3))
        .await
        .map_err(|e| BenchError::error(format!("cluster start panicked: {e}")))??;
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
    // tagcache's write transaction (EXEC includes what it runs) or script.
    let sent_w: &[&str] = &["evalsha", "eval", "multi", "exec"];
    let (mut set_many, mut get) = (None, None);
    for round in 0..rounds {
        b.progress.set(format!(
            "cluster: set_many_bytes, get_bytes (round {}/{rounds})",
            round + 1
        ));
        let cache = build(b.plan.namespace(&format!("cl-w{round}"))).await?;
        let cache = &cache;
        let run = nodes.measure(sent_w, n, writes::set_many(b, cache)).await?;
        set_many = Some(Run::faster(set_many, run));
        let run = nodes
            .measure(
                &["get"],
                n,
                drive(0..n, b.plan.concurrency, |i| async move {
                    match cache.get_bytes(item_key(i)).await? {
                        Some(_) => Ok(()),
                        None => Err(BenchError::error(format!(
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
                    .and_then(|c| Probe::start(&c))
                    .map_err(BenchError::from)
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
        return Err(BenchError::error(format!(
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
