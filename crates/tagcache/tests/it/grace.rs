//! Grace periods: stale values kept after their TTL, served only when the
//! loader fails or is slow.

use std::time::{Duration, Instant};

use tagcache::{ComputeError, Lookup, SetOptions, Source};

use tagcache_testkit::RedisServer;

fn graced() -> SetOptions {
    SetOptions::new()
        .ttl(Duration::from_millis(100))
        .grace(Duration::from_secs(30))
        .tag("t")
}

#[tokio::test]
async fn a_stale_value_is_a_miss_for_plain_reads_but_still_indexed() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache.set("k", &1, &graced()).await.unwrap();
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cache.get::<i32>("k").await.unwrap(), None);
    assert_eq!(cache.get_many::<i32, _>(["k"]).await.unwrap(), vec![None]);
    assert_eq!(
        cache.fail_safe().get::<i32>("k").await.unwrap(),
        Lookup::Miss
    );
    assert!(
        cache.exists("k").await.unwrap(),
        "kept for its grace period"
    );
    // Invalidation still finds it.
    assert_eq!(cache.invalidate_tag("t").await.unwrap(), 1);
    assert!(!cache.exists("k").await.unwrap());
}

#[tokio::test]
async fn a_failing_loader_falls_back_to_the_stale_value() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache.set("k", &1, &graced()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let c = cache
        .get_or_compute("k", &graced(), || async { Err::<i32, _>("db down") })
        .await
        .unwrap();
    assert_eq!((c.value, c.source), (1, Source::Stale));
    let c = cache
        .fail_safe()
        .get_or_compute("k", &graced(), || async { Err::<i32, _>("db down") })
        .await
        .unwrap();
    assert_eq!((c.value, c.source), (1, Source::Stale));
    let c = cache
        .get_or_compute("k", &graced(), || async { Ok::<_, String>(2) })
        .await
        .unwrap();
    assert_eq!((c.value, c.source), (2, Source::Loaded));
    // Without a stale value the loader's error is the answer.
    let e = cache
        .get_or_compute("none", &graced(), || async { Err::<i32, _>("db down") })
        .await
        .unwrap_err();
    assert!(matches!(e, ComputeError::Loader("db down")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loader_serves_stale_at_the_soft_timeout_and_refreshes_in_the_background() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let fs = cache.fail_safe().with_timeout(Duration::from_secs(1));
    cache.set("k", &1, &graced()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let c = fs
        .get_or_refresh(
            "k",
            &SetOptions::new().tag("t"),
            Duration::from_millis(50),
            || async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                Ok::<_, String>(2)
            },
        )
        .await
        .unwrap();
    assert_eq!((c.value, c.source), (1, Source::Stale));
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        cache.get::<i32>("k").await.unwrap(),
        Some(2),
        "refreshed in the background"
    );
}

#[tokio::test]
async fn ttl_plus_grace_must_fit_the_maximum_ttl() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .default_ttl(Duration::from_secs(30))
        .max_ttl(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let opts = SetOptions::new()
        .ttl(Duration::from_secs(50))
        .grace(Duration::from_secs(20));
    let e = cache.set("k", &1, &opts).await.unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
}
