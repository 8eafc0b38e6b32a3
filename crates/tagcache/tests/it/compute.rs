use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use tagcache::{Cache, ComputeError, Computed, SetOptions, Source, WritePath};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use tagcache_testkit::RedisServer;

/// A `get_or_compute` of `key` in a task, whose loader returns `value`
/// once the returned sender fires: the test acts while the load is held.
fn held_compute<T>(
    cache: &Cache,
    key: &'static str,
    opts: SetOptions,
    value: T,
) -> (oneshot::Sender<()>, JoinHandle<Computed<T>>)
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let (release, wait) = oneshot::channel::<()>();
    let cache = cache.clone();
    let loading = tokio::spawn(async move {
        cache
            .get_or_compute(key, &opts, || async {
                let _ = wait.await;
                Ok::<_, String>(value)
            })
            .await
            .unwrap()
    });
    (release, loading)
}

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
    let (release, loading) = held_compute(
        &cache,
        "page",
        SetOptions::new().tags(["product:1", "c"]),
        "old render".to_string(),
    );
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
    let (release, loading) = held_compute(&cache, "k", SetOptions::new(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!cache.delete("k").await.unwrap());
    release.send(()).unwrap();
    assert_eq!(loading.await.unwrap().source, Source::LoadedNotStored);
    assert!(!cache.exists("k").await.unwrap());
}

/// A loader slower than the fence window: an invalidation of its tag
/// during the load, whose fence the sweep then trimmed, must still refuse
/// the store. The transaction path sees it through the fence's trim mark
/// (without it, the trimmed fence would be invisible and the stale value
/// stored); the script path refuses any read older than the window.
#[tokio::test]
async fn a_loader_slower_than_the_fence_window_does_not_store() {
    for path in [WritePath::Transaction, WritePath::Script] {
        let server = RedisServer::start();
        let cache = crate::builder(&server)
            .fence_window(Duration::from_millis(100))
            .write_path(path)
            .build()
            .await
            .unwrap();
        let opts = SetOptions::new().tag("t");
        let c = cache
            .get_or_compute("k", &opts, || async {
                cache.invalidate_tag("t").await.map_err(|e| e.to_string())?;
                tokio::time::sleep(Duration::from_millis(250)).await;
                let report = cache.prune().await.map_err(|e| e.to_string())?;
                assert_eq!(report.fences_removed, 1, "{report:?}");
                Ok::<_, String>(1)
            })
            .await
            .unwrap();
        assert_eq!(c.source, Source::LoadedNotStored, "{path:?}");
        assert_eq!(cache.get::<u32>("k").await.unwrap(), None, "{path:?}");
        // A load as slow with no invalidation: the fence has nothing newer
        // than the read, so the transaction path stores it; the script
        // path refuses every read older than the window.
        let c = cache
            .get_or_compute("j", &opts, || async {
                tokio::time::sleep(Duration::from_millis(250)).await;
                Ok::<_, String>(2)
            })
            .await
            .unwrap();
        let want = match path {
            WritePath::Transaction => Source::Loaded,
            _ => Source::LoadedNotStored,
        };
        assert_eq!(c.source, want, "{path:?}");
        // What stays of the bookkeeping: the meta key, the bucket's
        // announcement counter, the fence with only its trim mark (and the
        // stored entry with its index and registry on the transaction path).
        let fence: Vec<String> = server.cmd(&[b"ZRANGE", b"{test.0}:fence", b"0", b"-1"]);
        assert_eq!(fence, ["~"], "{path:?}");
    }
}

/// Regression: a caller that joined a load after an invalidation returned
/// got the leader's value, which was read before that invalidation (and
/// which the fence had refused to store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_joining_after_an_invalidation_does_not_get_the_refused_value() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let opts = SetOptions::new().tag("product:1");
    let (release, leader) =
        held_compute(&cache, "page", opts.clone(), "rendered before".to_string());
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
