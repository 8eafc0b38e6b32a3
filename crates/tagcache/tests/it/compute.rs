use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tagcache::{ComputeError, SetOptions, Source};
use tokio::sync::oneshot;

use tagcache_testkit::RedisServer;

#[tokio::test]
async fn a_miss_loads_and_stores_then_hits() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let opts = SetOptions::new().tag("t");
    let first = cache
        .get_or_compute("k", &opts, || async { Ok::<_, String>(41) })
        .await
        .unwrap();
    assert_eq!((first.value, first.source), (41, Source::Loaded));
    let second = cache
        .get_or_compute("k", &opts, || async { Ok::<_, String>(0) })
        .await
        .unwrap();
    assert_eq!((second.value, second.source), (41, Source::Hit));
    assert!(cache.has_tag("k", "t").await.unwrap());
}

#[tokio::test]
async fn loader_errors_are_returned_and_not_cached() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let e = cache
        .get_or_compute("k", &SetOptions::new(), || async {
            Err::<i32, _>("db down")
        })
        .await
        .unwrap_err();
    assert!(matches!(e, ComputeError::Loader("db down")), "{e:?}");
    assert!(!cache.exists("k").await.unwrap());
    let ok = cache
        .get_or_compute("k", &SetOptions::new(), || async { Ok::<_, String>(1) })
        .await
        .unwrap();
    assert_eq!(ok.source, Source::Loaded);
}

#[tokio::test]
async fn a_stampede_runs_the_loader_once() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let runs = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (cache, runs) = (cache.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_compute("cold", &SetOptions::new(), || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, String>("value".to_string())
                })
                .await
                .unwrap()
        }));
    }
    let mut sources = Vec::new();
    for t in tasks {
        let c = t.await.unwrap();
        assert_eq!(c.value, "value");
        sources.push(c.source);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(sources.iter().filter(|s| **s == Source::Loaded).count(), 1);
}

/// Regression for the cache-aside race: a loader that read old data
/// before an invalidation must not store it after the invalidation returned.
#[tokio::test]
async fn an_invalidation_during_the_load_keeps_the_stale_value_out() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let (release, wait) = oneshot::channel::<()>();
    let loading = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute(
                    "page",
                    &SetOptions::new().tags(["product:1", "c"]),
                    || async {
                        let _ = wait.await;
                        Ok::<_, String>("old render".to_string())
                    },
                )
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    cache.invalidate_tag("product:1").await.unwrap();
    release.send(()).unwrap();
    let c = loading.await.unwrap();
    assert_eq!(
        (c.value.as_str(), c.source),
        ("old render", Source::LoadedNotStored)
    );
    assert!(!cache.exists("page").await.unwrap());
    // A load that begins after the invalidation stores normally.
    let c = cache
        .get_or_compute("page", &SetOptions::new().tags(["product:1"]), || async {
            Ok::<_, String>("new".to_string())
        })
        .await
        .unwrap();
    assert_eq!(c.source, Source::Loaded);
}

#[tokio::test]
async fn a_delete_during_the_load_keeps_the_stale_value_out() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let (release, wait) = oneshot::channel::<()>();
    let loading = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("k", &SetOptions::new(), || async {
                    let _ = wait.await;
                    Ok::<_, String>(1)
                })
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!cache.delete("k").await.unwrap());
    release.send(()).unwrap();
    assert_eq!(loading.await.unwrap().source, Source::LoadedNotStored);
    assert!(!cache.exists("k").await.unwrap());
}

#[tokio::test]
async fn a_loader_slower_than_the_fence_window_does_not_store() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .fence_window(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let c = cache
        .get_or_compute("k", &SetOptions::new(), || async {
            tokio::time::sleep(Duration::from_millis(250)).await;
            Ok::<_, String>(1)
        })
        .await
        .unwrap();
    assert_eq!(c.source, Source::LoadedNotStored);
    // Fences older than the window are swept.
    cache.invalidate_tag("t").await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let report = cache.prune().await.unwrap();
    assert_eq!(report.fences_removed, 1, "{report:?}");
    // What stays: the namespace's meta key and the bucket's announcement
    // counter (the refused store was written and undone in one
    // transaction, which announces the key).
    assert_eq!(server.cmd::<u64>(&[b"DBSIZE"]), 2);
    assert_eq!(server.cmd::<u64>(&[b"EXISTS", b"{test.0}:l1"]), 1);
}

/// Regression: a caller that joined a load after an invalidation returned
/// got the leader's value, which was read before that invalidation (and
/// which the fence had refused to store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_joining_after_an_invalidation_does_not_get_the_refused_value() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let opts = SetOptions::new().tag("product:1");
    let (release, wait) = oneshot::channel::<()>();
    let leader = {
        let (cache, opts) = (cache.clone(), opts.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("page", &opts, || async {
                    let _ = wait.await;
                    Ok::<_, String>("rendered before".to_string())
                })
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    cache.invalidate_tag("product:1").await.unwrap();
    let follower = {
        let (cache, opts) = (cache.clone(), opts.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("page", &opts, || async {
                    Ok::<_, String>("rendered after".to_string())
                })
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).unwrap();
    assert_eq!(leader.await.unwrap().source, Source::LoadedNotStored);
    let f = follower.await.unwrap();
    assert_eq!(
        (f.value.as_str(), f.source),
        ("rendered after", Source::Loaded)
    );
}
