//! Redis killed, frozen, full or emptied under load: the fail-safe view
//! keeps answering within its timeout, and no acknowledged invalidation is
//! lost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagcache::{BypassReason, CircuitState, Lookup, Removal, SetOptions, Written};

use tagcache_testkit::RedisServer;

use crate::{fail_safe_cache, OP_TIMEOUT};

#[derive(Default)]
struct Load {
    calls: AtomicU64,
    errors: AtomicU64,
    bypassed: AtomicU64,
    longest_us: AtomicU64,
}

/// Readers and writers through the fail-safe view until `stop`.
fn start_load(
    cache: &tagcache::Cache,
    stop: &Arc<AtomicBool>,
    load: &Arc<Load>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4u64)
        .map(|w| {
            let (fs, stop, load) = (cache.fail_safe(), stop.clone(), load.clone());
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    i = (i * 7 + 3) % 100;
                    let started = Instant::now();
                    let key = format!("k{i}");
                    let bypassed = if i % 5 == 0 {
                        match fs
                            .set(&key, &i, &SetOptions::new().tag(format!("t{}", i % 10)))
                            .await
                        {
                            Ok(Written::Skipped(_)) => true,
                            Ok(_) => false,
                            Err(_) => {
                                load.errors.fetch_add(1, Ordering::Relaxed);
                                false
                            }
                        }
                    } else {
                        match fs.get::<u64>(&key).await {
                            Ok(Lookup::Bypassed(_)) => true,
                            Ok(_) => false,
                            Err(_) => {
                                load.errors.fetch_add(1, Ordering::Relaxed);
                                false
                            }
                        }
                    };
                    let us = started.elapsed().as_micros() as u64;
                    load.longest_us.fetch_max(us, Ordering::Relaxed);
                    load.calls.fetch_add(1, Ordering::Relaxed);
                    if bypassed {
                        load.bypassed.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect()
}

async fn wait_until_served(fs: &tagcache::FailSafeCache, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if !matches!(fs.get::<u64>("probe").await.unwrap(), Lookup::Bypassed(_)) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "service did not resume within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Stops the load, prints what it saw, and checks that no call failed and
/// none took much longer than the op timeout.
async fn stop_load(
    stop: &AtomicBool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    load: &Load,
    what: &str,
) {
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let longest = Duration::from_micros(load.longest_us.load(Ordering::Relaxed));
    eprintln!(
        "{what}: {} calls, {} failed, {} bypassed, longest {longest:?}",
        load.calls.load(Ordering::Relaxed),
        load.errors.load(Ordering::Relaxed),
        load.bypassed.load(Ordering::Relaxed),
    );
    assert_eq!(load.errors.load(Ordering::Relaxed), 0);
    assert!(
        longest < OP_TIMEOUT + Duration::from_millis(100),
        "{longest:?}"
    );
}

/// Writes k0..k99, tagged t0..t9 by their last digit.
async fn seed(fs: &tagcache::FailSafeCache) {
    for i in 0..100u64 {
        fs.set(
            format!("k{i}"),
            &i,
            &SetOptions::new().tag(format!("t{}", i % 10)),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_under_load_fails_no_call() {
    let mut server = RedisServer::start();
    let cache = fail_safe_cache(&server).await;
    let fs = cache.fail_safe();
    seed(&fs).await;
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let tasks = start_load(&cache, &stop, &load);
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fs.invalidate_tag("t3").await.unwrap(), Removal::Journaled);
    assert_eq!(cache.circuit_state(), CircuitState::Open);
    let open_started = Instant::now();
    let r = fs.get::<u64>("k3").await.unwrap();
    assert!(matches!(r, Lookup::Bypassed(_)), "{r:?}");
    assert!(
        open_started.elapsed() < Duration::from_millis(5),
        "an open circuit answers at once"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;

    server.restart();
    let resumed = wait_until_served(&fs, Duration::from_secs(3)).await;
    stop_load(
        &stop,
        tasks,
        &load,
        &format!("sigkill (resumed {resumed:?} after restart)"),
    )
    .await;
    assert!(resumed < Duration::from_millis(1500), "{resumed:?}");
    // The journal drains once Redis answers.
    let started = Instant::now();
    while fs.pending() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "journal not replayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The restarted server was empty: writing and invalidating work again
    // (scripts reloaded after NOSCRIPT), and the cache is consistent.
    fs.set("after", &1u64, &SetOptions::new().tag("t3"))
        .await
        .unwrap();
    assert_eq!(cache.invalidate_tag("t3").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_bounds_every_call_and_replays_the_invalidation() {
    let server = RedisServer::start();
    let cache = fail_safe_cache(&server).await;
    let fs = cache.fail_safe();
    seed(&fs).await;
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let tasks = start_load(&cache, &stop, &load);
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.pause();
    let acknowledged = fs.invalidate_tag("t3").await.unwrap();
    assert_eq!(acknowledged, Removal::Journaled);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // While the invalidation is pending, entries it covers are bypassed
    // even once Redis answers again.
    server.resume();
    let mut saw_pending_bypass = false;
    let started = Instant::now();
    loop {
        match fs.get::<u64>("k3").await.unwrap() {
            Lookup::Hit(v) => panic!("k3 = {v} served after its invalidation was acknowledged"),
            Lookup::Bypassed(BypassReason::PendingInvalidation) => saw_pending_bypass = true,
            Lookup::Bypassed(_) => {}
            Lookup::Miss => break,
            other => panic!("{other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "replay did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_load(
        &stop,
        tasks,
        &load,
        &format!("sigstop (pending-bypass seen: {saw_pending_bypass})"),
    )
    .await;
    assert_eq!(fs.pending(), 0);
    for i in (3..100).step_by(10) {
        assert_eq!(
            fs.get::<u64>(format!("k{i}")).await.unwrap(),
            Lookup::Miss,
            "k{i}"
        );
    }
}

#[tokio::test]
async fn out_of_memory_skips_writes_and_keeps_serving() {
    let server =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    // Timeouts are not the point here: generous ones, so a busy machine
    // cannot turn the OOM answer into a timeout.
    let cache = crate::cache(&server).await;
    let fs = cache.fail_safe();
    fs.set("small", &1u64, &SetOptions::new()).await.unwrap();
    let value: Vec<u8> = (0..64 * 1024u64)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut skipped = None;
    for i in 0..200 {
        match fs
            .set_bytes(format!("big{i}"), &value, &SetOptions::new())
            .await
            .unwrap()
        {
            Written::Stored => {}
            Written::Skipped(reason) => {
                skipped = Some(reason);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(skipped, Some(BypassReason::OutOfMemory));
    assert_eq!(fs.get::<u64>("small").await.unwrap(), Lookup::Hit(1));
    assert_eq!(
        cache.circuit_state(),
        CircuitState::Closed,
        "OOM is an answer, not an outage"
    );
}

#[tokio::test]
async fn journal_overflow_bypasses_every_read_until_acknowledged() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .journal_capacity(2)
        .op_timeout(OP_TIMEOUT)
        .response_timeout(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let fs = cache.fail_safe();
    fs.set("other", &1u64, &SetOptions::new().tag("x"))
        .await
        .unwrap();
    server.pause();
    for t in ["a", "b", "c"] {
        assert_eq!(fs.invalidate_tag(t).await.unwrap(), Removal::Journaled);
    }
    assert!(fs.journal_overflowed());
    server.resume();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fs.pending(), 0, "what fit was replayed");
    assert!(matches!(
        fs.get::<u64>("other").await.unwrap(),
        Lookup::Bypassed(BypassReason::PendingInvalidation)
    ));
    fs.acknowledge_journal_overflow();
    assert_eq!(fs.get::<u64>("other").await.unwrap(), Lookup::Hit(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazily_built_cache_starts_while_redis_is_down_and_joins_when_it_comes_up() {
    let mut server = RedisServer::start();
    server.kill();
    let cache = crate::builder(&server)
        .op_timeout(OP_TIMEOUT)
        .build_lazy()
        .unwrap();
    let fs = cache.fail_safe();
    assert_eq!(
        fs.get::<u64>("k").await.unwrap(),
        Lookup::Bypassed(BypassReason::Connection)
    );
    assert_eq!(
        fs.set("k", &1u64, &SetOptions::new()).await.unwrap(),
        Written::Skipped(BypassReason::Connection)
    );
    assert_eq!(fs.invalidate_tag("t").await.unwrap(), Removal::Journaled);
    server.restart();
    let resumed = wait_until_served(&fs, Duration::from_secs(5)).await;
    eprintln!("lazy: served {resumed:?} after redis came up");
    assert_eq!(
        fs.set("k", &1u64, &SetOptions::new().tag("t"))
            .await
            .unwrap(),
        Written::Stored
    );
    assert_eq!(
        cache.server_info().redis_version.split('.').next(),
        Some("7")
    );
}

#[tokio::test]
async fn a_lazily_built_cache_with_a_wrong_password_bypasses() {
    let server = RedisServer::start_with(&["--requirepass", "right"]);
    let url = format!("unix://{}?pass=wrong", server.socket().display());
    let cache = tagcache::Cache::builder(url)
        .op_timeout(OP_TIMEOUT)
        .build_lazy()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fs = cache.fail_safe();
    assert_eq!(
        fs.get::<u64>("k").await.unwrap(),
        Lookup::Bypassed(BypassReason::Connection)
    );
}

/// The response timeout is kept per connection (server/watchdog.rs), not
/// per call: with Redis frozen, every call waiting on it fails as a
/// timeout between 1 and 1.25 times the timeout after it was sent (plus
/// scheduling), and once Redis answers again the next call works, on a new
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_times_out_every_waiting_call_and_the_connection_recovers() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(200);
    let cache = crate::builder(&server)
        .response_timeout(timeout)
        .build()
        .await
        .unwrap();
    cache.set("k", &1u64, &SetOptions::new()).await.unwrap();
    server.pause();
    let started = Instant::now();
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move {
                // Staggered: calls sent later on the stuck connection fail
                // with the first (the connection is stopped as a whole).
                tokio::time::sleep(Duration::from_millis(i * 5)).await;
                let e = cache.get::<u64>("k").await.unwrap_err();
                (e.is_timeout(), e.to_string())
            })
        })
        .collect();
    for call in calls {
        let (timed_out, message) = call.await.unwrap();
        assert!(timed_out, "{message}");
    }
    let waited = started.elapsed();
    assert!(waited >= timeout, "failed after {waited:?}");
    // 1.25 × 200 ms, with a wide margin for a busy machine.
    assert!(
        waited < Duration::from_millis(1500),
        "failed after {waited:?}"
    );
    server.resume();
    // The failures opened the circuit: calls work again once a probe
    // (on a new connection) succeeds.
    let resumed = Instant::now();
    loop {
        match cache.get::<u64>("k").await {
            Ok(v) => break assert_eq!(v, Some(1)),
            Err(e) => assert!(
                resumed.elapsed() < Duration::from_secs(10),
                "still failing: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
