//! Redis Cluster: the same guarantees on 3 masters.

use std::collections::BTreeSet;
use std::time::Duration;

use tagcache::{Lookup, SetOptions};

use tagcache_testkit::RedisCluster;

/// A cache on the cluster (no L1).
pub async fn cluster_cache(cluster: &RedisCluster) -> tagcache::Cache {
    tagcache::Cache::builder("")
        .cluster(cluster.seeds())
        .namespace("test")
        .auto_sweep(None)
        .default_ttl(Duration::from_secs(600))
        .response_timeout(Duration::from_secs(5))
        .build()
        .await
        .expect("build a cluster cache")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_spread_over_every_master_is_invalidated_exactly() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cluster_cache(&cluster).await;
    let n = 600;
    cache
        .set_many_bytes((0..n).map(|i| {
            let mut o = SetOptions::new().tag("all");
            if i % 3 == 0 {
                o = o.tag("third");
            }
            (format!("k{i}"), format!("v{i}").into_bytes(), o)
        }))
        .await
        .unwrap();
    let sizes = cluster.dbsizes();
    assert_eq!(sizes.len(), 3);
    assert!(
        sizes.iter().all(|s| *s > 50),
        "entries spread over every master: {sizes:?}"
    );
    // Multi-slot reads come back in order.
    let got = cache
        .get_many_bytes(["k5", "nope", "k599", "k0"])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(b"v5".to_vec()),
            None,
            Some(b"v599".to_vec()),
            Some(b"v0".to_vec())
        ]
    );
    assert_eq!(cache.tag_len("third").await.unwrap(), 200);
    let listed: BTreeSet<Vec<u8>> = cache
        .keys_with_tag("third")
        .page_size(50)
        .collect()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(listed.len(), 200);
    assert_eq!(cache.invalidate_tag("third").await.unwrap(), 200);
    assert_eq!(
        cache.tag_len("all").await.unwrap(),
        400,
        "the other tag lost exactly those edges"
    );
    assert_eq!(cache.invalidate_tags(["all", "third"]).await.unwrap(), 400);
    assert_eq!(
        cache.get_many_bytes(["k1", "k2"]).await.unwrap(),
        vec![None, None]
    );
    let report = cache.prune().await.unwrap();
    assert!(report.complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_through_groups_scopes_and_paths_work_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cluster_cache(&cluster).await;
    let c = cache
        .get_or_compute("rt", &SetOptions::new().tag("t"), || async {
            Ok::<_, String>(5)
        })
        .await
        .unwrap();
    assert_eq!(c.value, 5);
    let g = cache.group("branches", 1).unwrap().tag("t");
    g.fetch("main", || async { Ok::<_, String>(true) })
        .await
        .unwrap();
    let scope = cache.scope(["dsr", "pr-1"]).unwrap();
    scope
        .set("a", &1, &SetOptions::new().ttl(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(scope.keys().collect().await.unwrap().len(), 1);
    assert_eq!(scope.clear().await.unwrap(), 1);
    let p = tagcache::KeyPath::from(["org", "7", "prj", "3"]);
    cache.set_path(&p, &1, &SetOptions::new()).await.unwrap();
    assert_eq!(
        cache
            .invalidate_prefix(&tagcache::KeyPath::from(["org", "7"]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(cache.invalidate_tag("t").await.unwrap(), 2);
    assert_eq!(
        cache.fail_safe().get::<i32>("rt").await.unwrap(),
        Lookup::Miss
    );
    let stats = cache.stats().await.unwrap();
    assert_eq!(stats.buckets, 16);
}

/// Every live entry is listed under exactly its tags, and nothing else is.
async fn assert_indexes_exact(cache: &tagcache::Cache, keys: &[String], tags: &[&str]) {
    let mut expected: std::collections::BTreeMap<&str, BTreeSet<Vec<u8>>> =
        tags.iter().map(|t| (*t, BTreeSet::new())).collect();
    for k in keys {
        if let Some(ts) = cache.tags(k).await.unwrap() {
            for t in ts {
                let t = String::from_utf8(t).unwrap();
                expected
                    .get_mut(t.as_str())
                    .unwrap()
                    .insert(k.as_bytes().to_vec());
            }
        }
    }
    for (t, want) in expected {
        let listed: BTreeSet<Vec<u8>> = cache
            .keys_with_tag(t)
            .collect()
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(listed, want, "index of {t}");
        assert_eq!(
            cache.tag_len(t).await.unwrap(),
            want.len() as u64,
            "count of {t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_stays_exact_under_concurrent_writers_across_slots() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cluster_cache(&cluster).await;
    let old: Vec<String> = (0..300).map(|i| format!("old{i}")).collect();
    cache
        .set_many_bytes(old.iter().map(|k| {
            (
                k.clone(),
                b"v".to_vec(),
                SetOptions::new().tags(["hot", "all"]),
            )
        }))
        .await
        .unwrap();
    // Writers keep writing new keys (and rewriting some old ones without
    // the tag) while the invalidation runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (cache, stop) = (cache.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = format!("new{w}-{i}");
                cache
                    .set_bytes(&k, b"n", &SetOptions::new().tags(["hot", "all"]))
                    .await
                    .unwrap();
                written.push(k);
                if i % 7 == 0 {
                    let o = format!("old{}", (w * 71 + i) % 300);
                    cache
                        .set_bytes(&o, b"rewritten", &SetOptions::new().tag("all"))
                        .await
                        .unwrap();
                    written.push(o);
                }
                i += 1;
            }
            written
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    cache.invalidate_tag("hot").await.unwrap();
    let after_return = cache.clone();
    let late = "late".to_string();
    after_return
        .set_bytes(&late, b"l", &SetOptions::new().tag("hot"))
        .await
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut keys: Vec<String> = old.clone();
    for w in writers {
        keys.extend(w.await.unwrap());
    }
    keys.push(late.clone());
    // Old entries that were never rewritten are gone; rewritten ones were
    // written concurrently and may go either way, but stay exactly indexed.
    for k in &old {
        if let Some(v) = cache.get_bytes(k).await.unwrap() {
            assert_eq!(
                v, b"rewritten",
                "{k} survived the invalidation with its old value"
            );
        }
    }
    assert_eq!(
        cache.get_bytes(&late).await.unwrap(),
        Some(b"l".to_vec()),
        "written after it returned"
    );
    assert_indexes_exact(&cache, &keys, &["hot", "all"]).await;
}

fn node_id(port: u16) -> String {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("CLUSTER").arg("MYID").query(&mut c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_while_writing_and_invalidating_keeps_indexes_exact() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cluster_cache(&cluster).await;
    let keys: Vec<String> = (0..400).map(|i| format!("k{i}")).collect();
    cache
        .set_many_bytes(
            keys.iter()
                .map(|k| (k.clone(), b"v".to_vec(), SetOptions::new().tags(["a", "b"]))),
        )
        .await
        .unwrap();
    let masters = cluster.masters();
    let (from, to) = (node_id(masters[0]), node_id(masters[1]));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let (cache, stop, keys) = (cache.clone(), stop.clone(), keys.clone());
        tokio::spawn(async move {
            let mut i = 0usize;
            let mut errors = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = &keys[(i * 37) % keys.len()];
                let tags: &[&str] = if i.is_multiple_of(2) {
                    &["a"]
                } else {
                    &["a", "b"]
                };
                // Slots in migration answer TRYAGAIN/ASK for a moment; the
                // client retries, and a write that still fails is retried
                // here: what matters is the state afterwards.
                if cache
                    .set_bytes(k, b"w", &SetOptions::new().tags(tags))
                    .await
                    .is_err()
                {
                    errors += 1;
                }
                if i.is_multiple_of(50) && cache.invalidate_tag("b").await.is_err() {
                    errors += 1;
                }
                i += 1;
            }
            (i, errors)
        })
    };
    let port = masters[0];
    let reshard = tokio::task::spawn_blocking(move || {
        std::process::Command::new("redis-cli")
            .args(["--cluster", "reshard", &format!("127.0.0.1:{port}")])
            .args([
                "--cluster-from",
                &from,
                "--cluster-to",
                &to,
                "--cluster-slots",
                "3000",
                "--cluster-yes",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        reshard.status.success(),
        "{}",
        String::from_utf8_lossy(&reshard.stdout)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ops, errors) = worker.await.unwrap();
    eprintln!("reshard: {ops} operations during the reshard, {errors} failed and retried later");
    cluster.wait_ok(Duration::from_secs(10)).unwrap();
    // Finish any invalidation an error interrupted, then check.
    cache.invalidate_tag("b").await.unwrap();
    cache.prune().await.unwrap();
    assert_indexes_exact(&cache, &keys, &["a", "b"]).await;
    assert_eq!(cache.tag_len("b").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failover_is_served_fail_safe_and_leaves_nothing_orphaned() {
    let mut cluster = RedisCluster::start(3, 1);
    let cache = tagcache::Cache::builder("")
        .cluster(cluster.seeds())
        .namespace("test")
        .auto_sweep(None)
        .response_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .op_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let fs = cache.fail_safe();
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    for k in &keys {
        fs.set_bytes(k, b"v", &SetOptions::new().tag("t"))
            .await
            .unwrap();
    }
    let victim = cluster.masters()[0];
    let index = cluster.nodes.iter().position(|n| n.port == victim).unwrap();
    cluster.kill(index);
    // During the failover every call answers (hit, miss or bypass), none fails.
    let started = std::time::Instant::now();
    let (mut calls, mut bypassed) = (0, 0);
    let mut recovered = None;
    while started.elapsed() < Duration::from_secs(15) {
        for k in keys.iter().step_by(10) {
            calls += 1;
            if matches!(fs.get_bytes(k).await.unwrap(), Lookup::Bypassed(_)) {
                bypassed += 1;
            }
        }
        if recovered.is_none()
            && cluster.masters().len() == 3
            && cluster.wait_ok(Duration::from_millis(10)).is_ok()
        {
            recovered = Some(started.elapsed());
        }
        if let Some(at) = recovered {
            if started.elapsed() > at + Duration::from_secs(2) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("failover: {calls} reads, {bypassed} bypassed, cluster ok after {recovered:?}");
    assert!(recovered.is_some(), "no failover");
    // After the failover: writes and invalidation work, and the replica
    // kept entries and edges together.
    let mut ok = false;
    for _ in 0..50 {
        if cache
            .set_bytes("after", b"a", &SetOptions::new().tag("t"))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "writes did not resume");
    let mut all = keys.clone();
    all.push("after".into());
    let live = {
        let mut n = 0;
        for k in &all {
            if cache.exists(k).await.unwrap() {
                n += 1;
            }
        }
        n
    };
    assert_eq!(cache.invalidate_tag("t").await.unwrap(), live);
    assert_indexes_exact(&cache, &all, &["t"]).await;
}

/// Announcements on a cluster: every script that changes a bucket
/// `SPUBLISH`es on the shard channel `{<ns>.<b>}:l1`, which lives in the
/// bucket's slot, so Redis 7.0 accepts it inside the script (a publish to
/// another slot would fail the write). Every bucket's counter moved, and a
/// subscriber on the node owning bucket 0 receives its announcements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_announce_on_their_buckets_shard_channel() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cluster_cache(&cluster).await;
    let channel = "{test.0}:l1";
    let mut sub = cluster
        .nodes
        .iter()
        .find_map(|n| {
            let mut c = n.conn();
            redis::cmd("SSUBSCRIBE")
                .arg(channel)
                .query::<redis::Value>(&mut c)
                .ok()
                .map(|_| c)
        })
        .expect("one master owns the channel's slot");
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    cache
        .set_many_bytes(
            (0..200).map(|i| (format!("k{i}"), b"v".to_vec(), SetOptions::new().tag("t"))),
        )
        .await
        .unwrap();
    for b in 0..16 {
        let name = format!("{{test.{b}}}:l1");
        let counted = cluster.nodes.iter().find_map(|n| {
            redis::cmd("GET")
                .arg(&name)
                .query::<Option<u64>>(&mut n.conn())
                .ok()
                .flatten()
        });
        assert!(counted.is_some_and(|c| c >= 1), "bucket {b}: {counted:?}");
    }
    let msg = sub.recv_response().unwrap();
    let redis::Value::Array(parts) = msg else {
        panic!("{msg:?}")
    };
    let body = match parts.last() {
        Some(redis::Value::BulkString(b)) => b.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(body[0], b'k', "keys written");
    // An invalidation announces its tag in every bucket.
    assert_eq!(cache.invalidate_tag("t").await.unwrap(), 200);
    let mut saw_tag = false;
    while let Ok(redis::Value::Array(parts)) = sub.recv_response() {
        if let Some(redis::Value::BulkString(b)) = parts.last() {
            if b[0] == b't' {
                saw_tag = true;
                break;
            }
        }
    }
    assert!(saw_tag);
}

/// A cache on the cluster with an L1.
async fn cluster_l1_cache(cluster: &RedisCluster, opts: tagcache::L1Options) -> tagcache::Cache {
    let cache = tagcache::Cache::builder("")
        .cluster(cluster.seeds())
        .namespace("test")
        .auto_sweep(None)
        .default_ttl(Duration::from_secs(600))
        .response_timeout(Duration::from_secs(5))
        .l1(opts)
        .build()
        .await
        .expect("build a cluster cache with an L1");
    crate::l1::wait_synced(&cache).await;
    cache
}

/// Commands a read may send, summed over the nodes.
fn read_calls(cluster: &RedisCluster) -> u64 {
    let calls = cluster.command_calls();
    ["get", "pttl", "time", "hmget"]
        .iter()
        .map(|c| calls.get(*c).copied().unwrap_or(0))
        .sum()
}

/// A plain connection to one node.
fn node(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Polls until every key reads `want` through `cache`; the time it took.
async fn until_all(cache: &tagcache::Cache, keys: &[String], want: Option<i32>) -> Duration {
    let start = std::time::Instant::now();
    loop {
        let mut all = true;
        for k in keys {
            if cache.get::<i32>(k).await.unwrap() != want {
                all = false;
                break;
            }
        }
        if all {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still not {want:?} after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_stays_coherent_across_handles_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    // A long check period: hits must not depend on a check landing in the
    // window of the assertions below.
    let opts = tagcache::L1Options::new().check_period(Duration::from_secs(5));
    let reader = cluster_l1_cache(&cluster, opts).await;
    let writer = cluster_cache(&cluster).await;
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    for k in &keys {
        writer
            .set(k, &1, &SetOptions::new().tag("t"))
            .await
            .unwrap();
    }
    until_all(&reader, &keys, Some(1)).await;
    // Wait until the fills are served (a fill racing its own write's
    // announcement is refused once).
    let start = std::time::Instant::now();
    loop {
        let before = read_calls(&cluster);
        for k in &keys {
            assert_eq!(reader.get::<i32>(k).await.unwrap(), Some(1));
        }
        if read_calls(&cluster) == before {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "hits reach Redis");
    }
    let hits = reader.l1_stats().unwrap().hits;
    assert!(hits >= keys.len() as u64);

    // A write, a delete and an invalidation from the other handle reach
    // the reader's L1 through the announcements of every node.
    for k in &keys {
        writer
            .set(k, &2, &SetOptions::new().tag("t"))
            .await
            .unwrap();
    }
    let stale_for = until_all(&reader, &keys, Some(2)).await;
    assert!(stale_for < Duration::from_secs(1), "{stale_for:?}");
    writer.delete(&keys[0]).await.unwrap();
    let stale_for = until_all(&reader, &keys[..1], None).await;
    assert!(stale_for < Duration::from_secs(1), "{stale_for:?}");
    writer.invalidate_tag("t").await.unwrap();
    let stale_for = until_all(&reader, &keys, None).await;
    assert!(stale_for < Duration::from_secs(1), "{stale_for:?}");
    let s = reader.l1_stats().unwrap();
    eprintln!(
        "cluster L1: last change seen after {stale_for:?}; lag p50 {} µs, p99 {} µs, max {} µs; {s:?}",
        s.lag_p50_us, s.lag_p99_us, s.lag_max_us
    );
    assert!(
        s.synced && s.announcements >= 2 * keys.len() as u64,
        "{s:?}"
    );
    assert_eq!(s.dropped_by_gap, 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_on_a_cluster_drops_and_recovers_when_its_subscriptions_are_killed() {
    let cluster = RedisCluster::start(3, 0);
    let opts = tagcache::L1Options::new().check_period(Duration::from_millis(200));
    let reader = cluster_l1_cache(&cluster, opts).await;
    let writer = cluster_cache(&cluster).await;
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    for k in &keys {
        writer.set(k, &1, &SetOptions::new()).await.unwrap();
    }
    until_all(&reader, &keys, Some(1)).await;
    for round in 2..5 {
        // Every master holds a share of the subscriptions (16 buckets).
        for port in cluster.masters() {
            let mut conn = node(port);
            let listed: String = redis::cmd("CLIENT")
                .arg("LIST")
                .arg("TYPE")
                .arg("pubsub")
                .query(&mut conn)
                .unwrap();
            assert!(listed.contains("ssub="), "no subscription on {port}");
        }
        // (Once one node's kill is seen, the listener drops its whole
        // cluster connection: the later nodes may have none left.)
        let mut killed = 0;
        for port in cluster.ports() {
            killed += redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("pubsub")
                .query::<u64>(&mut node(port))
                .unwrap();
        }
        assert!(killed >= 1);
        for k in &keys {
            writer.set(k, &round, &SetOptions::new()).await.unwrap();
        }
        let stale_for = until_all(&reader, &keys, Some(round)).await;
        assert!(stale_for < Duration::from_secs(2), "{stale_for:?}");
        crate::l1::wait_synced(&reader).await;
        until_all(&reader, &keys, Some(round)).await;
    }
    let s = reader.l1_stats().unwrap();
    assert!(s.dropped_by_disconnect >= 3, "{s:?}");
    // Recovered: the L1 serves again.
    let before = s.hits;
    let start = std::time::Instant::now();
    while reader.l1_stats().unwrap().hits == before {
        assert!(start.elapsed() < Duration::from_secs(5), "L1 serves again");
        for k in &keys {
            reader.get::<i32>(k).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_buckets_announcements_reach_the_l1_whichever_node_owns_it() {
    let cluster = RedisCluster::start(3, 0);
    let opts = tagcache::L1Options::new().check_period(Duration::from_millis(100));
    let reader = cluster_l1_cache(&cluster, opts).await;
    let writer = cluster_cache(&cluster).await;
    let keys: Vec<String> = (0..200).map(|i| format!("spread{i}")).collect();
    writer
        .set_many_bytes(
            keys.iter()
                .map(|k| (k.clone(), b"x".to_vec(), SetOptions::new())),
        )
        .await
        .unwrap();
    assert!(
        cluster.dbsizes().iter().all(|&n| n > 0),
        "entries on every master"
    );
    // Every bucket's counter moves, one announcement per key.
    let announced_before = reader.l1_stats().unwrap().announcements;
    for k in &keys {
        writer.set(k, &7, &SetOptions::new()).await.unwrap();
    }
    until_all(&reader, &keys, Some(7)).await;
    let start = std::time::Instant::now();
    while reader.l1_stats().unwrap().announcements < announced_before + keys.len() as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "every announcement arrives"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Several checks pass on every node without a gap.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = reader.l1_stats().unwrap();
    assert!(s.synced, "{s:?}");
    assert_eq!(s.dropped_by_gap, 0, "{s:?}");
    assert_eq!(s.dropped_by_disconnect, 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_announcement_on_a_cluster_drops_its_bucket() {
    let cluster = RedisCluster::start(3, 0);
    let opts = tagcache::L1Options::new().check_period(Duration::from_millis(50));
    let reader = cluster_l1_cache(&cluster, opts).await;
    let writer = cluster_cache(&cluster).await;
    writer.set("k", &1, &SetOptions::new()).await.unwrap();
    until_all(&reader, &["k".to_owned()], Some(1)).await;
    // A change whose announcement never came, on every bucket (whichever
    // node owns it): the periodic check sees each.
    let client = redis::cluster::ClusterClient::new(cluster.seeds()).unwrap();
    let mut conn = client.get_connection().unwrap();
    for b in 0..16 {
        redis::cmd("INCR")
            .arg(format!("{{test.{b}}}:l1"))
            .query::<u64>(&mut conn)
            .unwrap();
    }
    let start = std::time::Instant::now();
    while reader.l1_stats().unwrap().dropped_by_gap < 16 {
        assert!(start.elapsed() < Duration::from_secs(5), "every gap seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = reader.l1_stats().unwrap();
    assert_eq!(s.dropped_by_disconnect, 0, "{s:?}");
    // Back in sequence: the L1 serves again.
    until_all(&reader, &["k".to_owned()], Some(1)).await;
    crate::l1::wait_synced(&reader).await;
}

/// A failed-over master (the node's `run_id` is gone with it): the L1
/// learns it from the lost connection, drops, and resyncs on the new
/// topology; writes after the failover reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_on_a_cluster_drops_on_a_master_failover_and_resyncs() {
    let mut cluster = RedisCluster::start(3, 1);
    let build = |l1: Option<tagcache::L1Options>| {
        let mut b = tagcache::Cache::builder("")
            .cluster(cluster.seeds())
            .namespace("test")
            .auto_sweep(None)
            .response_timeout(Duration::from_millis(300))
            .connect_timeout(Duration::from_millis(300));
        if let Some(o) = l1 {
            b = b.l1(o);
        }
        b.build()
    };
    let opts = tagcache::L1Options::new().check_period(Duration::from_millis(200));
    let reader = build(Some(opts)).await.unwrap();
    crate::l1::wait_synced(&reader).await;
    let writer = build(None).await.unwrap();
    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    for k in &keys {
        writer.set(k, &1, &SetOptions::new()).await.unwrap();
    }
    until_all(&reader, &keys, Some(1)).await;
    let victim = cluster.masters()[0];
    let index = cluster.nodes.iter().position(|n| n.port == victim).unwrap();
    cluster.kill(index);
    let started = std::time::Instant::now();
    while !(cluster.masters().len() == 3 && cluster.wait_ok(Duration::from_millis(10)).is_ok()) {
        assert!(started.elapsed() < Duration::from_secs(20), "no failover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reader.l1_stats().unwrap().dropped_by_disconnect >= 1);
    // Writes after the failover (retried while the clients catch up).
    for k in &keys {
        let started = std::time::Instant::now();
        while writer.set(k, &2, &SetOptions::new()).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "writes resume");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let started = std::time::Instant::now();
    loop {
        let mut all = true;
        for k in &keys {
            if reader.get::<i32>(k).await.ok().flatten() != Some(2) {
                all = false;
            }
        }
        if all {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the reader sees the writes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    crate::l1::wait_synced(&reader).await;
    let hits = reader.l1_stats().unwrap().hits;
    let started = std::time::Instant::now();
    while reader.l1_stats().unwrap().hits == hits {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the L1 serves again"
        );
        for k in &keys {
            assert_eq!(reader.get::<i32>(k).await.unwrap(), Some(2));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// On a cluster one queued batch is written bucket by bucket (one hash
/// slot a call); a later write of one of its keys, cut into the next
/// batch, must not overtake it while both are in flight. Each round
/// queues, at once, seven writes of keys in other slots, key `r`, then key
/// `r` again (on one thread, so the queue sees all nine and cuts them
/// 8 + 1): the second write of `r` must win.
#[tokio::test]
async fn a_later_write_never_overtakes_a_batch_written_slot_by_slot() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cluster_cache(&cluster).await;
    for r in 0..30 {
        let second = crate::second_write_won(&cache, r, b"first", b"second").await;
        assert!(second, "key r{r}: the first write overtook the second");
    }
}
