//! The L1's staleness bound across OS processes: this test is the writer
//! and invalidator; it runs this very binary twice more as readers
//! (`reader_process`, ignored unless run that way), each reading in a tight
//! loop through its own L1. Every write's return time and every value a
//! reader saw (with the start of the last read that saw it) go to files;
//! a read is stale past the bound when the key had changed (been written
//! again, deleted or invalidated) more than the bound before that read
//! began. Faults during the run: one reader frozen (SIGSTOP) past many
//! announcements, then every subscription killed (`CLIENT KILL`). Run on
//! a single server and on a 3-master cluster (the readers' listeners then
//! shard-subscribe on every master).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tagcache::{Cache, L1Options, SetOptions};

use tagcache_testkit::{RedisCluster, RedisServer};

const KEYS: usize = 16;
const TAGS: usize = 4;
const CHECK_PERIOD: Duration = Duration::from_millis(100);
/// Two check periods (the L1 serves only that long after its last proof
/// of being in sequence) plus a round trip and this machine's scheduling
/// noise.
const BOUND_US: u64 = 300_000;

fn now_us() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

fn key(i: usize) -> String {
    format!("mp:{i}")
}

fn tag(i: usize) -> String {
    format!("g{}", i % TAGS)
}

async fn sleep_until_us(t: u64) {
    let now = now_us();
    if t > now {
        tokio::time::sleep(Duration::from_micros(t - now)).await;
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        0
    } else {
        sorted[(sorted.len() - 1) * p / 100]
    }
}

/// Where the processes meet.
enum Servers {
    One(RedisServer),
    Cluster(RedisCluster),
}

impl Servers {
    async fn writer(&self) -> Cache {
        match self {
            Self::One(server) => crate::cache(server).await,
            Self::Cluster(cluster) => crate::cluster::cluster_cache(cluster).await,
        }
    }

    /// Tells a reader process where to connect.
    fn point(&self, child: &mut Command) {
        match self {
            Self::One(server) => child.env("TAGCACHE_L1_CHILD_URL", server.url()),
            Self::Cluster(cluster) => {
                child.env("TAGCACHE_L1_CHILD_CLUSTER", cluster.seeds().join(","))
            }
        };
    }

    /// Kills every subscription connection; how many there were.
    fn kill_subscriptions(&self) -> u64 {
        let kill = |conn: &mut redis::Connection| -> u64 {
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("pubsub")
                .query(conn)
                .unwrap()
        };
        match self {
            Self::One(server) => server.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"]),
            Self::Cluster(cluster) => cluster
                .ports()
                .into_iter()
                .map(|port| {
                    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"));
                    kill(&mut client.unwrap().get_connection().unwrap())
                })
                .sum(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reader_processes_never_read_older_than_the_bound() {
    staleness_across_processes(Servers::One(RedisServer::start())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reader_processes_on_a_cluster_never_read_older_than_the_bound() {
    staleness_across_processes(Servers::Cluster(RedisCluster::start(3, 0))).await;
}

/// The test of the module docs, on `servers`.
async fn staleness_across_processes(servers: Servers) {
    let writer = servers.writer().await;
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let start = now_us() + 2_000_000;
    let end = start + 4_000_000;
    let mut children = Vec::new();
    for i in 0..2 {
        let out = dir.path().join(format!("reader-{i}"));
        let log = std::fs::File::create(dir.path().join(format!("reader-{i}.log"))).unwrap();
        let mut child = Command::new(&exe);
        servers.point(&mut child);
        let child = child
            .args([
                "--exact",
                "l1_multiprocess::reader_process",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("TAGCACHE_L1_CHILD_OUT", &out)
            .env("TAGCACHE_L1_CHILD_START", start.to_string())
            .env("TAGCACHE_L1_CHILD_END", end.to_string())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        children.push((child, out));
    }

    // Per key: (return time µs, value after: Some(version) or None = gone).
    let mut events: Vec<Vec<(u64, Option<u64>)>> = vec![Vec::new(); KEYS];
    for (i, e) in events.iter_mut().enumerate() {
        writer
            .set(key(i), &0u64, &SetOptions::new().tag(tag(i)))
            .await
            .unwrap();
        e.push((now_us(), Some(0)));
    }
    sleep_until_us(start).await;
    let (mut version, mut op) = (0u64, 0usize);
    let (mut frozen, mut killed) = (false, false);
    while now_us() < end {
        let t = now_us() - start;
        if !frozen && t > 1_200_000 {
            // A reader frozen for 600 ms: announcements queue up (or
            // are lost) while it cannot read either; after it thaws it
            // must not serve what changed meanwhile.
            frozen = true;
            let pid = children[0].0.id();
            signal(pid, "STOP");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(600)).await;
                signal(pid, "CONT");
            });
        }
        if !killed && t > 2_800_000 {
            killed = true;
            let n = servers.kill_subscriptions();
            match servers {
                Servers::One(_) => assert_eq!(n, 2, "both readers' subscriptions"),
                // (Each reader subscribes on every master; once one node's
                // kill is seen, a listener drops its whole connection.)
                Servers::Cluster(_) => assert!(n >= 2, "both readers' subscriptions: {n}"),
            }
        }
        op += 1;
        let i = op % KEYS;
        if op % 17 == 0 {
            let g = (op / 17) % TAGS;
            writer.invalidate_tag(format!("g{g}")).await.unwrap();
            let r = now_us();
            for (j, e) in events.iter_mut().enumerate() {
                if j % TAGS == g {
                    e.push((r, None));
                }
            }
        } else if op % 23 == 0 {
            writer.delete(key(i)).await.unwrap();
            events[i].push((now_us(), None));
        } else {
            version += 1;
            writer
                .set(key(i), &version, &SetOptions::new().tag(tag(i)))
                .await
                .unwrap();
            events[i].push((now_us(), Some(version)));
        }
    }

    let mut stale = Vec::new();
    let mut staleness = Vec::new();
    let mut report = String::new();
    for (mut child, out) in children {
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(out.with_extension("log")).unwrap_or_default();
        assert!(status.success(), "reader failed:\n{log}");
        let text = std::fs::read_to_string(&out).unwrap_or_else(|_| panic!("no output:\n{log}"));
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if f[0] == "stats" {
                report.push_str(line);
                report.push('\n');
                continue;
            }
            let (i, v, last): (usize, u64, u64) = (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            );
            let e = &events[i];
            // The write that produced v, then whatever came next.
            let Some(p) = e.iter().position(|(_, x)| *x == Some(v)) else {
                panic!("key {i}: value {v} was never written");
            };
            if let Some(&(next, _)) = e.get(p + 1) {
                if last > next {
                    staleness.push(last - next);
                    if last - next > BOUND_US {
                        stale.push((i, v, last - next));
                    }
                }
            }
        }
    }
    staleness.sort_unstable();
    let summary = format!(
        "ops {op}; reads served after a newer write had returned: {} (p50 {} µs, p99 {} µs, max {} µs); past the {BOUND_US} µs bound: {}\n{report}",
        staleness.len(),
        percentile(&staleness, 50),
        percentile(&staleness, 99),
        staleness.last().copied().unwrap_or(0),
        stale.len()
    );
    eprintln!("{summary}");
    if let Ok(path) = std::env::var("TAGCACHE_L1_REPORT") {
        std::fs::write(path, &summary).unwrap();
    }
    assert!(stale.is_empty(), "stale reads past the bound: {stale:?}");
    assert!(report.lines().count() == 2, "{report}");
}

/// One reader process (see the module docs); run by the tests above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of the two_reader_processes tests"]
async fn reader_process() {
    let var = |name: &str| std::env::var(name).expect("run by the multi-process test");
    let out = var("TAGCACHE_L1_CHILD_OUT");
    let start: u64 = var("TAGCACHE_L1_CHILD_START").parse().unwrap();
    let end: u64 = var("TAGCACHE_L1_CHILD_END").parse().unwrap();
    let builder = match std::env::var("TAGCACHE_L1_CHILD_CLUSTER") {
        Ok(seeds) => Cache::builder("").cluster(seeds.split(',').map(str::to_owned)),
        Err(_) => Cache::builder(var("TAGCACHE_L1_CHILD_URL")),
    };
    let cache = builder
        .namespace("test")
        .auto_sweep(None)
        .response_timeout(Duration::from_secs(5))
        .op_timeout(Duration::from_secs(5))
        .l1(L1Options::new().check_period(CHECK_PERIOD))
        .build()
        .await
        .unwrap();
    crate::l1::wait_synced(&cache).await;
    sleep_until_us(start).await;
    // (key, version) -> start of the last read that returned it.
    let mut seen: HashMap<(usize, u64), u64> = HashMap::new();
    let mut reads = 0u64;
    let began = Instant::now();
    while now_us() < end {
        for i in 0..KEYS {
            let t = now_us();
            if let Ok(Some(v)) = cache.get::<u64>(key(i)).await {
                seen.insert((i, v), t);
            }
            reads += 1;
        }
    }
    let s = cache.l1_stats().unwrap();
    let mut text = String::new();
    for ((i, v), t) in &seen {
        text.push_str(&format!("{i} {v} {t}\n"));
    }
    text.push_str(&format!(
        "stats reads {reads} in {:?} hits {} misses {} fills_refused {} announcements {} lag_p50_us {} lag_p99_us {} lag_max_us {} gap_drops {} disconnect_drops {}\n",
        began.elapsed(),
        s.hits,
        s.misses,
        s.fills_refused,
        s.announcements,
        s.lag_p50_us,
        s.lag_p99_us,
        s.lag_max_us,
        s.dropped_by_gap,
        s.dropped_by_disconnect
    ));
    std::fs::File::create(Path::new(&out))
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}
