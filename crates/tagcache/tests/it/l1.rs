//! The L1 tier: announcements from the scripts keep it coherent across
//! cache handles (each with its own connections, as separate processes
//! have), lost announcements drop it, and it never serves past its bounds.
//! The multi-process test (`l1_multiprocess`) re-runs this binary.

use std::time::{Duration, Instant};

use tagcache::{Cache, Compression, L1Options, Lookup, SetOptions};

use tagcache_testkit::RedisServer;

/// Check periods for tests that count hits: long, so a listener delayed
/// by a loaded machine stays within its proof window (two periods).
fn steady() -> L1Options {
    L1Options::new().check_period(Duration::from_secs(5))
}

pub async fn l1_cache(server: &RedisServer, opts: L1Options) -> Cache {
    let cache = crate::builder(server).l1(opts).build().await.unwrap();
    wait_synced(&cache).await;
    cache
}

pub async fn wait_synced(cache: &Cache) {
    let start = Instant::now();
    while !cache.l1_stats().unwrap().synced {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "L1 subscribed in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `read` until it gives `want`; the time it took.
async fn until<F, Fut, T>(want: T, mut read: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
    T: PartialEq + std::fmt::Debug,
{
    let start = Instant::now();
    loop {
        let got = read().await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn gets(server: &RedisServer) -> u64 {
    server.command_calls().get("get").copied().unwrap_or(0)
}

/// Raw reads through the L1 — `get_bytes`, and `get_bytes_shared`, which
/// hands out the L1's own bytes — return what they return without it, for
/// plain, compressed, absent and stale entries, on a miss and on a hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_reads_through_the_l1_return_what_reads_without_it_return() {
    let server = RedisServer::start();
    let compress = Compression::lz4_above(1024);
    let plain = crate::builder(&server)
        .compression(compress)
        .build()
        .await
        .unwrap();
    let cached = crate::builder(&server)
        .compression(compress)
        .l1(steady())
        .build()
        .await
        .unwrap();
    wait_synced(&cached).await;
    let small = b"payload".to_vec();
    let big = "abc".repeat(10_000).into_bytes();
    let graced = SetOptions::new()
        .ttl(Duration::from_millis(300))
        .grace(Duration::from_secs(30));
    plain
        .set_bytes("small", &small, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    plain
        .set_bytes("big", &big, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    plain.set_bytes("graced", b"old", &graced).await.unwrap();
    // (A fill racing a write's announcement is refused: wait for them.)
    until(true, || async {
        cached.l1_stats().unwrap().announcements >= 3
    })
    .await;
    let shared = |c: &Cache, k: &'static str| {
        let c = c.clone();
        async move { c.get_bytes_shared(k).await.unwrap().map(Vec::from) }
    };
    for round in 0..3 {
        for (key, want) in [("small", Some(&small)), ("big", Some(&big)), ("none", None)] {
            let want = want.cloned();
            assert_eq!(shared(&plain, key).await, want, "{key} without the L1");
            assert_eq!(
                cached.get_bytes(key).await.unwrap(),
                want,
                "{key}, round {round}"
            );
            assert_eq!(shared(&cached, key).await, want, "{key}, round {round}");
        }
    }
    let s = cached.l1_stats().unwrap();
    assert!(
        s.hits >= 8,
        "small and big are hits after their fill: {s:?}"
    );
    assert_eq!(shared(&cached, "graced").await, Some(b"old".to_vec()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        shared(&cached, "graced").await,
        None,
        "stale: gone for plain reads"
    );
    assert_eq!(cached.get_bytes("graced").await.unwrap(), None);
    assert_eq!(shared(&plain, "graced").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_are_served_in_process_and_another_handles_write_reaches_them() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, steady()).await;
    let writer = crate::cache(&server).await;
    writer
        .set("k", &1, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    // (A fill that begins before the write's announcement arrives is
    // refused when it does: fenced fills cannot tell a change just before
    // the read from one just after.)
    until(true, || async {
        reader.l1_stats().unwrap().announcements >= 1
    })
    .await;
    assert_eq!(reader.get::<i32>("k").await.unwrap(), Some(1));
    let before = gets(&server);
    for _ in 0..100 {
        assert_eq!(reader.get::<i32>("k").await.unwrap(), Some(1));
        assert!(reader.get_bytes("k").await.unwrap().is_some());
    }
    assert_eq!(gets(&server), before, "hits never reach Redis");
    let s = reader.l1_stats().unwrap();
    assert!(s.hits >= 200, "{s:?}");

    writer
        .set("k", &2, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    until(Some(2), || async { reader.get::<i32>("k").await.unwrap() }).await;
    let s = reader.l1_stats().unwrap();
    assert!(s.announcements >= 1 && s.lag_max_us > 0, "{s:?}");
    // Its own writes drop its own L1 entry at once.
    reader
        .set("k", &3, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    assert_eq!(reader.get::<i32>("k").await.unwrap(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_drops_exactly_the_entries_of_its_tag() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, steady()).await;
    let writer = crate::cache(&server).await;
    for (k, t) in [("a", "x"), ("b", "y"), ("c", "x")] {
        writer.set(k, &k, &SetOptions::new().tag(t)).await.unwrap();
    }
    until(true, || async {
        reader.l1_stats().unwrap().announcements >= 3
    })
    .await;
    for k in ["a", "b", "c"] {
        assert!(reader.get::<String>(k).await.unwrap().is_some());
    }
    let announcements = reader.l1_stats().unwrap().announcements;
    assert_eq!(writer.invalidate_tag("x").await.unwrap(), 2);
    until(true, || async {
        reader.l1_stats().unwrap().announcements > announcements
    })
    .await;
    let before = gets(&server);
    let hits = reader.l1_stats().unwrap().hits;
    assert_eq!(
        reader.get::<String>("b").await.unwrap().as_deref(),
        Some("b")
    );
    assert_eq!(gets(&server), before, "b is still served from the L1");
    assert_eq!(reader.l1_stats().unwrap().hits, hits + 1);
    assert_eq!(reader.get::<String>("a").await.unwrap(), None);
    assert_eq!(reader.get::<String>("c").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_prefix_invalidations_and_clears_reach_other_l1s() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, L1Options::new()).await;
    let writer = crate::cache(&server).await;
    let fill = |keys: &'static [&'static str]| {
        let (reader, writer) = (reader.clone(), writer.clone());
        async move {
            for k in keys {
                writer.set(*k, k, &SetOptions::new()).await.unwrap();
                assert!(reader.get::<String>(*k).await.unwrap().is_some());
            }
        }
    };
    fill(&["d", "org:7:a", "org:8:a"]).await;
    assert!(writer.delete("d").await.unwrap());
    until(None, || async { reader.get::<String>("d").await.unwrap() }).await;
    writer
        .invalidate_prefix(&tagcache::KeyPath::from(["org", "7"]))
        .await
        .unwrap();
    until(None, || async {
        reader.get::<String>("org:7:a").await.unwrap()
    })
    .await;
    assert!(reader.get::<String>("org:8:a").await.unwrap().is_some());
    fill(&["e", "f"]).await;
    writer.clear().await.unwrap();
    for k in ["e", "f", "org:8:a"] {
        until(None, || async { reader.get::<String>(k).await.unwrap() }).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_entries_never_outlive_their_redis_expiry_nor_the_l1_ttl() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, L1Options::new().ttl(Duration::from_millis(300))).await;
    let writer = crate::cache(&server).await;
    writer
        .set(
            "short",
            &1,
            &SetOptions::new().ttl(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    writer.set("long", &1, &SetOptions::new()).await.unwrap();
    assert!(reader.get::<i32>("short").await.unwrap().is_some());
    assert!(reader.get::<i32>("long").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(reader.get::<i32>("short").await.unwrap(), None);
    // A raw change tagcache cannot see: the L1 keeps the old value for
    // at most its ttl.
    server.cmd::<()>(&[b"DEL", b"{test.0}:e:long"]);
    let start = Instant::now();
    until(None, || async { reader.get::<i32>("long").await.unwrap() }).await;
    assert!(
        start.elapsed() < Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_announcement_drops_its_bucket() {
    let server = RedisServer::start();
    let opts = L1Options::new().check_period(Duration::from_millis(50));
    let reader = l1_cache(&server, opts).await;
    let writer = crate::cache(&server).await;
    writer.set("k", &1, &SetOptions::new()).await.unwrap();
    assert!(reader.get::<i32>("k").await.unwrap().is_some());
    // A change whose announcement never came (counter moved, nothing
    // published): the periodic check sees it.
    server.cmd::<()>(&[b"INCR", b"{test.0}:l1"]);
    until(true, || async {
        reader.l1_stats().unwrap().dropped_by_gap >= 1
    })
    .await;
    let before = gets(&server);
    assert!(reader.get::<i32>("k").await.unwrap().is_some());
    // A miss: the counter and the entry.
    assert_eq!(gets(&server), before + 2, "the bucket was dropped: a miss");
    // A sequence number that skips one is seen at once.
    server.cmd::<()>(&[b"INCR", b"{test.0}:l1"]);
    writer.set("other", &1, &SetOptions::new()).await.unwrap();
    until(true, || async {
        reader.l1_stats().unwrap().dropped_by_gap >= 2
    })
    .await;
}

/// Fault: the subscription connection is killed, then a write lands while
/// the reader is not subscribed: no stale read once the write returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscription_never_serves_a_missed_write() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, L1Options::new()).await;
    let writer = crate::cache(&server).await;
    writer.set("k", &1, &SetOptions::new()).await.unwrap();
    assert_eq!(reader.get::<i32>("k").await.unwrap(), Some(1));
    for round in 2..7 {
        let killed: u64 = server.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"]);
        assert_eq!(killed, 1);
        writer.set("k", &round, &SetOptions::new()).await.unwrap();
        // The reader notices the closed socket at once (the bound here).
        let stale_for = until(Some(round), || async {
            reader.get::<i32>("k").await.unwrap()
        })
        .await;
        assert!(stale_for < Duration::from_secs(1), "{stale_for:?}");
        wait_synced(&reader).await;
        assert_eq!(reader.get::<i32>("k").await.unwrap(), Some(round));
    }
    assert!(reader.l1_stats().unwrap().dropped_by_disconnect >= 5);
}

/// Fault: announcements dropped by the server (the pub/sub output buffer
/// limit disconnects the reader mid-burst).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_dropped_by_the_output_buffer_limit_are_never_missed() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, L1Options::new()).await;
    let writer = crate::cache(&server).await;
    server.cmd::<()>(&[
        b"CONFIG",
        b"SET",
        b"client-output-buffer-limit",
        b"pubsub 1 1 0",
    ]);
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    for k in &keys {
        writer.set(k, &0, &SetOptions::new()).await.unwrap();
        reader.get::<i32>(k).await.unwrap();
    }
    // A burst of large announcements (one write of 50 long keys, many
    // times) overflows the reader's buffer: Redis drops it.
    let long: Vec<String> = (0..50)
        .map(|i| format!("{i}:{}", "x".repeat(2000)))
        .collect();
    for v in 1..20 {
        writer
            .set_many(long.iter().map(|k| (k.clone(), v, SetOptions::new())))
            .await
            .unwrap();
        writer
            .set_many(keys.iter().map(|k| (k.clone(), v, SetOptions::new())))
            .await
            .unwrap();
        for k in &keys {
            assert_eq!(reader.get::<i32>(k).await.unwrap(), Some(v), "{k}");
        }
    }
    assert!(
        reader.l1_stats().unwrap().dropped_by_disconnect >= 1,
        "the limit did cut the reader off"
    );
}

/// Fault: Redis restarted empty. Nothing the L1 held before is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_empty_redis_empties_the_l1() {
    let mut server = RedisServer::start();
    let reader = l1_cache(&server, L1Options::new()).await;
    reader.set("k", &1, &SetOptions::new()).await.unwrap();
    assert_eq!(reader.get::<i32>("k").await.unwrap(), Some(1));
    server.restart();
    // Until the reader has seen its connections close (the bound here),
    // it may still answer from the L1; never after.
    let start = Instant::now();
    loop {
        match reader.get::<i32>("k").await {
            Ok(None) => break,
            Ok(Some(_)) => assert!(start.elapsed() < Duration::from_secs(1)),
            Err(_) => assert!(start.elapsed() < Duration::from_secs(10)),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(reader.l1_stats().unwrap().dropped_by_disconnect >= 1);
    // Tags and meta are gone too; the namespace is recreated by the next
    // cache built on it, and the L1 resyncs.
    wait_synced(&reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_the_l1_serves_only_when_asked_and_only_for_its_ttl() {
    let server = RedisServer::start();
    let quick = |opts| async {
        let c = crate::builder(&server)
            .response_timeout(Duration::from_millis(300))
            .op_timeout(Duration::from_millis(300))
            .l1(opts)
            .build()
            .await
            .unwrap();
        wait_synced(&c).await;
        c
    };
    let strict = quick(steady()).await;
    let lenient = quick(steady().serve_while_down(true).ttl(Duration::from_secs(6))).await;
    strict
        .set("k", &1, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    strict.set("j", &1, &SetOptions::new()).await.unwrap();
    for c in [&strict, &lenient] {
        assert_eq!(c.get::<i32>("k").await.unwrap(), Some(1));
        assert_eq!(c.get::<i32>("j").await.unwrap(), Some(1));
    }
    let filled = Instant::now();
    server.pause();
    // Open both circuits (their reads of an uncached key time out).
    for c in [&strict, &lenient] {
        let fs = c.fail_safe();
        let start = Instant::now();
        while c.circuit_state() == tagcache::CircuitState::Closed {
            let _ = fs.get::<i32>("uncached").await;
            assert!(start.elapsed() < Duration::from_secs(30), "circuit opens");
        }
    }
    assert!(matches!(
        strict.fail_safe().get::<i32>("k").await.unwrap(),
        Lookup::Bypassed(_)
    ));
    assert_eq!(strict.l1_stats().unwrap().dropped_by_circuit, 1);
    if filled.elapsed() < Duration::from_millis(5500) {
        assert_eq!(
            lenient.fail_safe().get::<i32>("k").await.unwrap(),
            Lookup::Hit(1)
        );
        // A journaled invalidation applies to the L1 at once.
        let fs = lenient.fail_safe();
        assert_eq!(
            fs.invalidate_tag("t").await.unwrap(),
            tagcache::Removal::Journaled
        );
        assert!(!matches!(fs.get::<i32>("k").await.unwrap(), Lookup::Hit(_)));
    }
    // Never past the L1 ttl.
    tokio::time::sleep(Duration::from_millis(6100).saturating_sub(filled.elapsed())).await;
    assert!(!matches!(
        lenient.fail_safe().get::<i32>("j").await.unwrap(),
        Lookup::Hit(_)
    ));
    server.resume();
}

/// Redis 7 gives new ACL users no pub/sub channels (`acl-pubsub-default
/// resetchannels`): the announcement's SPUBLISH is refused inside the write
/// script. Writes must still work, and a reader must see the missing
/// message as a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_work_for_a_user_without_channel_permissions() {
    let server = RedisServer::start();
    let reader = l1_cache(
        &server,
        L1Options::new().check_period(Duration::from_millis(50)),
    )
    .await;
    let _: () = server.cmd(&[
        b"ACL", b"SETUSER", b"nochan", b"on", b">pw", b"~*", b"+@all",
    ]);
    let sock = server.socket().display().to_string();
    let writer = Cache::builder(format!("unix://{sock}?user=nochan&pass=pw"))
        .namespace("test")
        .auto_sweep(None)
        .response_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    writer
        .set("k", &1, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    assert_eq!(reader.get::<i32>("k").await.unwrap(), Some(1));
    writer
        .set("k", &2, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    until(Some(2), || async { reader.get::<i32>("k").await.unwrap() }).await;
    assert!(reader.l1_stats().unwrap().dropped_by_gap >= 1);
    assert_eq!(writer.invalidate_tag("t").await.unwrap(), 1);
    until(None, || async { reader.get::<i32>("k").await.unwrap() }).await;
}

/// Both write paths announce: the transaction (`MULTI`, the default) with
/// an unnumbered message beside its `INCR`, the script (`set.lua`) with a
/// numbered one; mixed, their numbers stay in sequence (no gap drops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_write_paths_reach_the_l1_in_sequence() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, steady()).await;
    let tx = crate::cache(&server).await;
    let script = crate::cache_on(&server, tagcache::WritePath::Script).await;
    for v in 0..20 {
        let writer = if v % 2 == 0 { &tx } else { &script };
        writer
            .set("k", &v, &SetOptions::new().tag("t"))
            .await
            .unwrap();
        until(Some(v), || async { reader.get::<i32>("k").await.unwrap() }).await;
    }
    let s = reader.l1_stats().unwrap();
    assert_eq!(s.dropped_by_gap, 0, "{s:?}");
    assert!(s.announcements >= 20, "{s:?}");
}

/// Several buckets: one channel and one counter each; a gap in one bucket
/// drops that bucket only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bucket_is_announced_and_checked_on_its_own() {
    let server = RedisServer::start();
    let writer = crate::builder(&server).buckets(4).build().await.unwrap();
    let reader = crate::builder(&server)
        .adopt_buckets()
        .l1(L1Options::new().check_period(Duration::from_millis(50)))
        .build()
        .await
        .unwrap();
    wait_synced(&reader).await;
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    for k in &keys {
        writer
            .set(k, &1, &SetOptions::new().tag("t"))
            .await
            .unwrap();
    }
    until(true, || async {
        reader.l1_stats().unwrap().announcements >= 4
    })
    .await;
    for k in &keys {
        assert_eq!(reader.get::<i32>(k).await.unwrap(), Some(1));
    }
    let counters: Vec<u64> = (0..4)
        .map(|b| {
            server
                .cmd::<Option<u64>>(&[b"GET", format!("{{test.{b}}}:l1").as_bytes()])
                .unwrap_or(0)
        })
        .collect();
    assert!(
        counters.iter().all(|c| *c >= 1),
        "every bucket announced: {counters:?}"
    );
    // A silent loss in bucket 2 drops bucket 2 only.
    server.cmd::<()>(&[b"INCR", b"{test.2}:l1"]);
    until(true, || async {
        reader.l1_stats().unwrap().dropped_by_gap >= 1
    })
    .await;
    let hits = reader.l1_stats().unwrap().hits;
    for k in &keys {
        assert_eq!(reader.get::<i32>(k).await.unwrap(), Some(1));
    }
    let s = reader.l1_stats().unwrap();
    assert_eq!(s.dropped_by_gap, 1, "{s:?}");
    assert!(s.hits - hits >= 20 && s.hits - hits < 40, "{s:?}");
    // An invalidation reaches every bucket.
    assert_eq!(writer.invalidate_tag("t").await.unwrap(), 40);
    for k in &keys {
        until(None, || async { reader.get::<i32>(k).await.unwrap() }).await;
    }
}
