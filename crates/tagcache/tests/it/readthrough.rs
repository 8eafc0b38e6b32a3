//! Read-through features: adaptive caching (the loader's context), eager
//! refresh and its race with invalidations, and the load lease (single
//! flight across processes, with child processes of this test binary).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagcache::{ComputeError, ErrorKind, SetOptions, Source};
use tokio::sync::oneshot;

use tagcache_testkit::RedisServer;

/// Polls `check` every 20 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// Polls `key` every 20 ms, for up to 2 s, until it holds `want`.
async fn holds(cache: &tagcache::Cache, key: &str, want: u32) -> bool {
    for _ in 0..100 {
        if cache.get::<u32>(key).await.unwrap() == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn the_loader_sets_ttl_and_tags_from_what_it_loaded() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let opts = SetOptions::new()
        .ttl(Duration::from_secs(600))
        .tag("product:1");
    let c = cache
        .get_or_compute_with("price:1", &opts, |ctx| async move {
            assert_eq!(ctx.key(), b"price:1");
            assert!(!ctx.is_eager_refresh() && !ctx.has_stale());
            ctx.set_ttl(Duration::from_secs(30));
            ctx.add_tag("sale");
            Ok::<_, String>(999)
        })
        .await
        .unwrap();
    assert_eq!((c.value, c.source), (999, Source::Loaded));
    let ttl = cache.ttl("price:1").await.unwrap().unwrap();
    assert!(ttl <= Duration::from_secs(30), "{ttl:?}");
    assert!(cache.has_tag("price:1", "sale").await.unwrap());
    assert!(cache.has_tag("price:1", "product:1").await.unwrap());
    // Tags set by the loader are fenced like the call's: invalidating one
    // removes the entry.
    assert_eq!(cache.invalidate_tag("sale").await.unwrap(), 1);

    // set_tags replaces them.
    cache
        .get_or_compute_with("price:2", &opts, |ctx| async move {
            ctx.set_tags(["only"]);
            Ok::<_, String>(1)
        })
        .await
        .unwrap();
    assert!(cache.has_tag("price:2", "only").await.unwrap());
    assert!(!cache.has_tag("price:2", "product:1").await.unwrap());
}

#[tokio::test]
async fn a_loader_that_says_dont_cache_stores_nothing() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let runs = AtomicU32::new(0);
    for _ in 0..2 {
        let runs = &runs;
        let c = cache
            .get_or_compute_with("search:empty", &SetOptions::new(), |ctx| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                ctx.dont_cache();
                Ok::<_, String>(Vec::<u32>::new())
            })
            .await
            .unwrap();
        assert_eq!(c.source, Source::Uncached);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(!cache.exists("search:empty").await.unwrap());
    // The fail-safe view says the same.
    let c = cache
        .fail_safe()
        .get_or_compute_with("search:empty", &SetOptions::new(), |ctx| async move {
            ctx.dont_cache();
            Ok::<_, String>(1)
        })
        .await
        .unwrap();
    assert_eq!(c.source, Source::Uncached);
    assert!(!cache.exists("search:empty").await.unwrap());
}

#[tokio::test]
async fn an_invalid_ttl_from_the_loader_is_a_typed_error() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let e = cache
        .get_or_compute_with("k", &SetOptions::new(), |ctx| async move {
            ctx.set_ttl(Duration::from_secs(365 * 24 * 3600));
            Ok::<_, String>(1)
        })
        .await
        .unwrap_err();
    match e {
        ComputeError::Cache(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        other => panic!("{other:?}"),
    }
    assert!(!cache.exists("k").await.unwrap());
}

#[tokio::test]
async fn a_hit_past_the_refresh_fraction_refreshes_in_the_background() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    // The call says 600 s; the loader sets 3 s, which the entry carries in
    // its header: the refresh is due after 1.5 s, not 300 s.
    let opts = SetOptions::new()
        .ttl(Duration::from_secs(600))
        .eager_refresh(0.5);
    let runs = Arc::new(AtomicU32::new(0));
    let opts = &opts;
    let get = |cache: tagcache::Cache, runs: Arc<AtomicU32>| async move {
        cache
            .get_or_refresh_with("hot", opts, move |ctx| async move {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                assert_eq!(ctx.is_eager_refresh(), n > 0);
                ctx.set_ttl(Duration::from_secs(3));
                Ok::<_, String>(n)
            })
            .await
            .unwrap()
    };
    let first = get(cache.clone(), runs.clone()).await;
    assert_eq!((first.value, first.source), (0, Source::Loaded));
    // Before the fraction: a plain hit.
    let hit = get(cache.clone(), runs.clone()).await;
    assert_eq!((hit.value, hit.source), (0, Source::Hit));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    tokio::time::sleep(Duration::from_millis(1600)).await;
    // Past it: the cached value now, the new one stored in the background.
    let hit = get(cache.clone(), runs.clone()).await;
    assert_eq!((hit.value, hit.source), (0, Source::Hit));
    let refreshed = holds(&cache, "hot", 1).await;
    assert!(refreshed, "the eager refresh stored its value");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let ttl = cache.ttl("hot").await.unwrap().unwrap();
    assert!(ttl > Duration::from_millis(1600), "a fresh TTL: {ttl:?}");
}

/// Entries with both a grace period (fresh-until field) and eager refresh
/// (TTL field), written by either write path, read back and refresh.
#[tokio::test]
async fn eager_refresh_with_grace_on_both_write_paths() {
    let server = RedisServer::start();
    for path in [
        tagcache::WritePath::Transaction,
        tagcache::WritePath::Script,
    ] {
        let cache = crate::builder(&server)
            .write_path(path)
            .build()
            .await
            .unwrap();
        let key = format!("{path:?}");
        let opts = SetOptions::new()
            .ttl(Duration::from_secs(10))
            .grace(Duration::from_secs(60))
            .tag("t")
            .eager_refresh(0.05);
        cache.set(&key, &1_u32, &opts).await.unwrap();
        assert_eq!(cache.get::<u32>(&key).await.unwrap(), Some(1));
        assert_eq!(cache.tags(&key).await.unwrap(), Some(vec![b"t".to_vec()]));
        tokio::time::sleep(Duration::from_millis(600)).await;
        let hit = cache
            .get_or_refresh(&key, &opts, || async { Ok::<_, String>(2_u32) })
            .await
            .unwrap();
        assert_eq!((hit.value, hit.source), (1, Source::Hit));
        let refreshed = holds(&cache, &key, 2).await;
        assert!(refreshed, "{path:?}");
        // The rewrite kept the entry's one tag edge.
        assert_eq!(cache.invalidate_tag("t").await.unwrap(), 1, "{path:?}");
    }
}

#[tokio::test]
async fn one_eager_refresh_per_key_at_a_time() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .eager_refresh(0.01)
        .build()
        .await
        .unwrap();
    let opts = SetOptions::new().ttl(Duration::from_secs(60));
    cache.set("hot", &0_u32, &opts).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let runs = Arc::new(AtomicU32::new(0));
    let (release, wait) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (cache, runs, opts, mut wait) =
            (cache.clone(), runs.clone(), opts.clone(), wait.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_refresh("hot", &opts, move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let _ = wait.wait_for(|go| *go).await;
                    Ok::<_, String>(1_u32)
                })
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        let c = t.await.unwrap();
        assert_eq!((c.value, c.source), (0, Source::Hit));
    }
    release.send(true).unwrap();
    let stored = holds(&cache, "hot", 1).await;
    assert!(stored);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one refresh in flight");
}

/// The race FusionCache users reported (an eager refresh racing a tag
/// invalidation): the refresh read old data before the invalidation
/// returned, so its store must be refused, and a miss that joins it must
/// not get its value.
#[tokio::test]
async fn an_invalidation_during_an_eager_refresh_keeps_the_old_value_out() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let opts = SetOptions::new()
        .ttl(Duration::from_secs(10))
        .tag("product:1")
        .eager_refresh(0.05);
    cache.set("page", &"v1", &opts).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;

    let (started_tx, started) = oneshot::channel::<()>();
    let (release, wait) = oneshot::channel::<()>();
    let hit = cache
        .get_or_refresh_with("page", &opts, move |ctx| async move {
            assert!(ctx.is_eager_refresh());
            let _ = started_tx.send(());
            // Reads the database before the invalidation...
            let old = "v1 (re-read before the update)".to_string();
            let _ = wait.await;
            // ... and returns after it.
            Ok::<_, String>(old)
        })
        .await
        .unwrap();
    assert_eq!((hit.value.as_str(), hit.source), ("v1", Source::Hit));
    started.await.unwrap();
    assert_eq!(cache.invalidate_tag("product:1").await.unwrap(), 1);

    // A miss now joins the refresh in flight (one loader per key and
    // process); the refresh's store is refused, so the miss loads itself.
    let miss = {
        let cache = cache.clone();
        let opts = opts.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("page", &opts, || async {
                    Ok::<_, String>("v2".to_string())
                })
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).unwrap();
    let miss = miss.await.unwrap();
    assert_eq!((miss.value.as_str(), miss.source), ("v2", Source::Loaded));
    assert_eq!(
        cache.get::<String>("page").await.unwrap().as_deref(),
        Some("v2")
    );
}

#[tokio::test]
async fn the_fail_safe_view_refreshes_eagerly_too() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let fs = cache.fail_safe();
    let opts = SetOptions::new()
        .ttl(Duration::from_secs(10))
        .eager_refresh(0.05);
    let soft = Duration::from_secs(5);
    let c = fs
        .get_or_refresh("k", &opts, soft, || async { Ok::<_, String>(1) })
        .await
        .unwrap();
    assert_eq!(c.source, Source::Loaded);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let c = fs
        .get_or_refresh("k", &opts, soft, || async { Ok::<_, String>(2) })
        .await
        .unwrap();
    assert_eq!((c.value, c.source), (1, Source::Hit));
    let refreshed = holds(&cache, "k", 2).await;
    assert!(refreshed);
}

/// A cache whose read-throughs take a load lease of `lease`, waiting up
/// to `max_wait` for another holder.
async fn leased(server: &RedisServer, lease: Duration, max_wait: Duration) -> tagcache::Cache {
    crate::builder(server)
        .load_lease(lease, max_wait)
        .build()
        .await
        .unwrap()
}

fn lease_key(key: &str) -> String {
    format!("{{test.0}}:l:{key}")
}

#[tokio::test]
async fn a_lease_is_held_during_the_load_and_released_after() {
    let server = RedisServer::start();
    let cache = leased(&server, Duration::from_secs(5), Duration::from_secs(5)).await;
    let name = lease_key("k");
    let c = cache
        .get_or_compute("k", &SetOptions::new(), || async {
            let held: u64 = server.cmd(&[b"EXISTS", name.as_bytes()]);
            let pttl: i64 = server.cmd(&[b"PTTL", name.as_bytes()]);
            assert_eq!(held, 1);
            assert!(pttl > 0 && pttl <= 5000, "{pttl}");
            Ok::<_, String>(7)
        })
        .await
        .unwrap();
    assert_eq!((c.value, c.source), (7, Source::Loaded));
    assert_eq!(server.cmd::<u64>(&[b"EXISTS", name.as_bytes()]), 0);
    // A call can turn it off.
    cache
        .get_or_compute("k2", &SetOptions::new().lease(false), || async {
            let held: u64 = server.cmd(&[b"EXISTS", lease_key("k2").as_bytes()]);
            assert_eq!(held, 0);
            Ok::<_, String>(7)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_waiter_gets_the_lease_holders_value() {
    let server = RedisServer::start();
    let cache = leased(&server, Duration::from_secs(10), Duration::from_secs(10)).await;
    let name = lease_key("k");
    // Another process holds the lease.
    server.cmd::<()>(&[b"SET", name.as_bytes(), b"other", b"PX", b"10000"]);
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("k", &SetOptions::new(), || async {
                    Ok::<_, String>("mine".to_string())
                })
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    cache.set("k", &"theirs", &SetOptions::new()).await.unwrap();
    server.cmd::<()>(&[b"DEL", name.as_bytes()]);
    let c = waiter.await.unwrap();
    assert_eq!((c.value.as_str(), c.source), ("theirs", Source::Waited));
}

#[tokio::test]
async fn a_waiter_takes_over_when_the_holder_gives_up() {
    let server = RedisServer::start();
    let cache = leased(&server, Duration::from_secs(10), Duration::from_secs(10)).await;
    let name = lease_key("k");
    // A holder whose lease expires (it died) without storing anything.
    server.cmd::<()>(&[b"SET", name.as_bytes(), b"dead", b"PX", b"200"]);
    let c = cache
        .get_or_compute("k", &SetOptions::new(), || async { Ok::<_, String>(1) })
        .await
        .unwrap();
    assert_eq!((c.value, c.source), (1, Source::Loaded));
    assert_eq!(server.cmd::<u64>(&[b"EXISTS", name.as_bytes()]), 0);
}

#[tokio::test]
async fn a_waiter_past_its_bound_loads_itself() {
    let server = RedisServer::start();
    let cache = leased(&server, Duration::from_secs(30), Duration::from_millis(150)).await;
    let name = lease_key("k");
    server.cmd::<()>(&[b"SET", name.as_bytes(), b"slow", b"PX", b"30000"]);
    let c = cache
        .get_or_compute("k", &SetOptions::new(), || async { Ok::<_, String>(1) })
        .await
        .unwrap();
    assert_eq!((c.value, c.source), (1, Source::Loaded));
    // The holder's lease is not ours to release.
    let holder: String = server.cmd(&[b"GET", name.as_bytes()]);
    assert_eq!(holder, "slow");
}

#[tokio::test]
async fn a_cancelled_lease_holder_releases_its_lease() {
    let server = RedisServer::start();
    let cache = leased(&server, Duration::from_secs(30), Duration::from_secs(30)).await;
    let name = lease_key("k");
    let task = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("k", &SetOptions::new(), || async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok::<_, String>(1)
                })
                .await
        })
    };
    let held = eventually(Duration::from_secs(10), || {
        server.cmd::<u64>(&[b"EXISTS", name.as_bytes()]) == 1
    })
    .await;
    assert!(held);
    task.abort();
    let released = eventually(Duration::from_secs(10), || {
        server.cmd::<u64>(&[b"EXISTS", name.as_bytes()]) == 0
    })
    .await;
    assert!(released, "released long before its 30 s expiry");
}

/// Two caches have separate in-process flights: they stand for two
/// processes. The holder's store is refused by an invalidation; the
/// waiter must then load data read after it, not get the holder's.
#[tokio::test]
async fn a_waiter_loads_after_the_holders_store_is_refused() {
    let server = RedisServer::start();
    let lease = Duration::from_secs(30);
    let (one, two) = (
        leased(&server, lease, lease).await,
        leased(&server, lease, lease).await,
    );
    let opts = SetOptions::new().tag("product:1");
    let (release, wait) = oneshot::channel::<()>();
    let holder = {
        let (one, opts) = (one.clone(), opts.clone());
        tokio::spawn(async move {
            one.get_or_compute("page", &opts, || async {
                let _ = wait.await;
                Ok::<_, String>("old".to_string())
            })
            .await
            .unwrap()
        })
    };
    let name = lease_key("page");
    assert!(
        eventually(Duration::from_secs(10), || {
            server.cmd::<u64>(&[b"EXISTS", name.as_bytes()]) == 1
        })
        .await
    );
    let waiter = {
        let (two, opts) = (two.clone(), opts.clone());
        tokio::spawn(async move {
            two.get_or_compute("page", &opts, || async {
                Ok::<_, String>("new".to_string())
            })
            .await
            .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    one.invalidate_tag("product:1").await.unwrap();
    release.send(()).unwrap();
    let held = holder.await.unwrap();
    assert_eq!(
        (held.value.as_str(), held.source),
        ("old", Source::LoadedNotStored)
    );
    let waited = waiter.await.unwrap();
    assert_eq!(
        (waited.value.as_str(), waited.source),
        ("new", Source::Loaded)
    );
    assert_eq!(
        one.get::<String>("page").await.unwrap().as_deref(),
        Some("new")
    );
}

// ---- across processes: this binary re-spawned as children ----

const CHILD_ENV: &str = "TAGCACHE_LEASE_CHILD";

fn spawn_child(url: &str, keys: &str, start_at_ms: u128, mode: &str, lease_ms: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "readthrough::lease_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env("LEASE_URL", url)
        .env("LEASE_KEYS", keys)
        .env("LEASE_START_AT", start_at_ms.to_string())
        .env("LEASE_MODE", mode)
        .env("LEASE_MS", lease_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Waits for a child (up to `limit`) and returns its stdout.
fn finish(mut child: Child, limit: Duration) -> String {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                status.success(),
                "child failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return stdout;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("child did not finish in {limit:?} (deadlock?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The child's side: loads each of `LEASE_KEYS` at `LEASE_START_AT`
/// through a cache with a load lease; every loader run counts itself in
/// Redis (`INCR runs:<key>`). Mode `hang`: the loader never returns (the
/// parent kills the process). Runs only as a child (it is ignored in a
/// normal run).
#[tokio::test]
#[ignore = "run by the cross-process lease tests as a child process"]
async fn lease_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let var = |n: &str| std::env::var(n).unwrap();
    let url = var("LEASE_URL");
    let lease = Duration::from_millis(var("LEASE_MS").parse().unwrap());
    let cache = tagcache::Cache::builder(url.as_str())
        .namespace("test")
        .auto_sweep(None)
        .response_timeout(Duration::from_secs(5))
        .load_lease(lease, Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let hang = var("LEASE_MODE") == "hang";
    let start_at: u128 = var("LEASE_START_AT").parse().unwrap();
    let wait = start_at.saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap())).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut tasks = Vec::new();
    for key in var("LEASE_KEYS").split(',') {
        let (cache, client, key) = (cache.clone(), client.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let c = cache
                .get_or_compute(&key, &SetOptions::new(), || async {
                    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                    let _: u64 = redis::cmd("INCR")
                        .arg(format!("runs:{key}"))
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    if hang {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, String>(format!("value of {key}"))
                })
                .await
                .unwrap();
            assert_eq!(c.value, format!("value of {key}"));
            println!("SOURCE {key} {:?}", c.source);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn one_loader_per_key_across_processes() {
    let server = RedisServer::start();
    // The namespace exists before the children start.
    let _cache = crate::cache(&server).await;
    let keys = ["a", "b", "c"];
    let start_at = now_ms() + 1500;
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_child(&server.url(), &keys.join(","), start_at, "load", 5000))
        .collect();
    let mut sources = Vec::new();
    for child in children {
        let out = finish(child, Duration::from_secs(60));
        sources.extend(
            out.lines()
                .filter_map(|l| l.split("SOURCE ").nth(1))
                .map(str::to_owned),
        );
    }
    assert_eq!(sources.len(), 12, "{sources:?}");
    for key in keys {
        let runs: u64 = server.cmd(&[b"GET", format!("runs:{key}").as_bytes()]);
        assert_eq!(runs, 1, "loader runs of {key} across 4 processes");
        let loaded = sources
            .iter()
            .filter(|s| s.starts_with(&format!("{key} ")) && s.ends_with("Loaded"))
            .count();
        assert_eq!(loaded, 1, "{sources:?}");
        assert_eq!(
            server.cmd::<u64>(&[b"EXISTS", lease_key(key).as_bytes()]),
            0
        );
    }
    assert!(sources.iter().any(|s| s.ends_with("Waited")), "{sources:?}");
}

#[tokio::test]
async fn a_killed_lease_holder_does_not_deadlock_the_waiters() {
    let server = RedisServer::start();
    let _cache = crate::cache(&server).await;
    let lease_ms = 2000;
    let mut holder = spawn_child(&server.url(), "k", now_ms(), "hang", lease_ms);
    let name = lease_key("k");
    let held = eventually(Duration::from_secs(30), || {
        server.cmd::<u64>(&[b"EXISTS", name.as_bytes()]) == 1
    })
    .await;
    assert!(held, "the first child took the lease");
    let waiters: Vec<Child> = (0..2)
        .map(|_| spawn_child(&server.url(), "k", now_ms(), "load", lease_ms))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SIGKILL: no release, no cleanup; the lease must expire.
    holder.kill().unwrap();
    let _ = holder.wait();
    let mut sources = Vec::new();
    for child in waiters {
        let out = finish(child, Duration::from_secs(30));
        sources.extend(
            out.lines()
                .filter_map(|l| l.split("SOURCE ").nth(1))
                .map(str::to_owned),
        );
    }
    assert_eq!(sources.len(), 2, "{sources:?}");
    let runs: u64 = server.cmd(&[b"GET", b"runs:k"]);
    assert_eq!(runs, 2, "the killed holder's run and one waiter's");
    assert_eq!(
        sources.iter().filter(|s| s.ends_with("Loaded")).count(),
        1,
        "{sources:?}"
    );
}
