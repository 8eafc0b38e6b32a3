//! Hash groups: one hash per owner, capped, TTL fixed at creation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tagcache::{Fetched, SetOptions};
use tokio::sync::oneshot;

use tagcache_testkit::RedisServer;

async fn yes() -> Result<bool, String> {
    Ok(true)
}

#[tokio::test]
async fn fetch_reads_through_and_counts() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("protected_branches", 42).unwrap();
    assert_eq!(
        g.fetch("main", yes).await.unwrap().into_parts(),
        (true, Fetched::Miss)
    );
    assert_eq!(
        g.fetch("main", || async { Ok::<_, String>(false) })
            .await
            .unwrap()
            .into_parts(),
        (true, Fetched::Hit)
    );
    assert_eq!(g.len().await.unwrap(), 1);
    // A bool costs one byte; field names are fixed-width hashes.
    let key = b"{test.0}:e:\x00gprotected_branches:42";
    let values: Vec<Vec<u8>> = server.cmd(&[b"HVALS", key]);
    assert!(values.iter().any(|v| v.len() == 1), "{values:?}");
    let fields: Vec<Vec<u8>> = server.cmd(&[b"HKEYS", key]);
    assert!(
        fields.iter().all(|f| f.len() == 16 || f == b"\x00tags"),
        "{fields:?}"
    );
    // Another owner is another hash.
    let other = cache.group("protected_branches", 420).unwrap();
    assert_eq!(
        other
            .fetch("main", || async { Ok::<_, String>(false) })
            .await
            .unwrap()
            .into_parts(),
        (false, Fetched::Miss)
    );
}

#[tokio::test]
async fn later_writes_never_extend_the_ttl() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache
        .group("g", "p")
        .unwrap()
        .default_ttl(Duration::from_secs(30));
    g.set("a", &true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    g.set("b", &true).await.unwrap();
    // A long TTL, so a loaded machine's stall never lets the hash expire
    // between the two writes (a 2 s TTL once did, in a full-suite run).
    let ttl = g.ttl().await.unwrap().unwrap();
    assert!(ttl <= Duration::from_millis(29_650), "{ttl:?}");
}

#[tokio::test]
async fn a_full_group_is_dropped_and_recomputed() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap().cap(3);
    for f in ["a", "b", "c"] {
        g.fetch(f, yes).await.unwrap().into_parts();
    }
    assert_eq!(g.len().await.unwrap(), 3);
    g.fetch("a", yes).await.unwrap().into_parts();
    assert_eq!(
        g.len().await.unwrap(),
        3,
        "rewriting a field does not count"
    );
    assert_eq!(
        g.fetch("d", yes).await.unwrap().into_parts().1,
        Fetched::Miss
    );
    assert_eq!(g.len().await.unwrap(), 1, "dropped whole at the cap");
    assert_eq!(
        g.fetch("a", yes).await.unwrap().into_parts().1,
        Fetched::Miss
    );
}

#[tokio::test]
async fn clear_and_tags_drop_the_group() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap().tag("project:42");
    g.fetch("a", yes).await.unwrap().into_parts();
    assert!(g.clear().await.unwrap());
    assert_eq!(g.len().await.unwrap(), 0);
    assert_eq!(
        cache.tag_len("project:42").await.unwrap(),
        0,
        "clear removes its edges"
    );
    g.fetch("a", yes).await.unwrap().into_parts();
    cache
        .set("page", &1, &SetOptions::new().tag("project:42"))
        .await
        .unwrap();
    assert_eq!(cache.tag_len("project:42").await.unwrap(), 2);
    assert_eq!(cache.invalidate_tag("project:42").await.unwrap(), 2);
    assert_eq!(g.len().await.unwrap(), 0);
    assert_eq!(
        g.fetch("a", yes).await.unwrap().into_parts().1,
        Fetched::Miss
    );
}

#[tokio::test]
async fn dry_run_returns_the_computed_value_and_reports_mismatches() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap();
    g.set("a", &true).await.unwrap();
    let dry = g.clone().dry_run(true);
    assert_eq!(
        dry.fetch("a", yes).await.unwrap().into_parts(),
        (true, Fetched::DryRun)
    );
    assert_eq!(
        dry.fetch("a", || async { Ok::<_, String>(false) })
            .await
            .unwrap()
            .into_parts(),
        (false, Fetched::Mismatch)
    );
    assert_eq!(
        dry.fetch("new", yes).await.unwrap().into_parts(),
        (true, Fetched::Miss)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_fetches_of_one_field_run_the_loader_once() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap().tag("project:1");
    let runs = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (g, runs) = (g.clone(), runs.clone());
            tokio::spawn(async move {
                g.fetch("main", || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Long enough for every task to read the miss first,
                    // even on a busy machine.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Ok::<_, String>(7u32)
                })
                .await
                .unwrap()
                .into_parts()
            })
        })
        .collect();
    let mut how = Vec::new();
    for t in tasks {
        let (v, h) = t.await.unwrap();
        assert_eq!(v, 7);
        how.push(h);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(how.iter().filter(|h| **h == Fetched::Miss).count(), 1);
    assert!(
        how.iter()
            .all(|h| matches!(h, Fetched::Miss | Fetched::Shared | Fetched::Hit)),
        "{how:?}"
    );
    assert_eq!(g.len().await.unwrap(), 1);
}

const OLD: u32 = 1;
const NEW: u32 = 2;

/// Starts a fetch of field `a` whose loader waits for the returned sender;
/// the loader's value is `OLD`.
fn fetch_held(
    g: &tagcache::Group,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<(u32, Fetched)>) {
    let (release, wait) = oneshot::channel::<()>();
    let g = g.clone();
    let task = tokio::spawn(async move {
        g.fetch("a", || async {
            let _ = wait.await;
            Ok::<_, String>(OLD)
        })
        .await
        .unwrap()
        .into_parts()
    });
    (release, task)
}

/// Regression: a refresh racing a fetch let the fetch store the value its
/// loader read before the refresh.
#[tokio::test]
async fn group_clear_racing_a_fetch_does_not_restore_the_stale_value() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap();
    g.set("b", &"kept until the refresh").await.unwrap();
    let (release, fetching) = fetch_held(&g);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(g.clear().await.unwrap());
    release.send(()).unwrap();
    assert_eq!(fetching.await.unwrap(), (OLD, Fetched::NotStored));
    assert_eq!(
        g.len().await.unwrap(),
        0,
        "nothing stored after the refresh"
    );
    // The next fetch calls the loader again, and stores.
    let next = g
        .fetch("a", || async { Ok::<_, String>(NEW) })
        .await
        .unwrap()
        .into_parts();
    assert_eq!(next, (NEW, Fetched::Miss));
    assert_eq!(
        g.fetch("a", || async { Ok::<_, String>(0u32) })
            .await
            .unwrap()
            .into_parts(),
        (NEW, Fetched::Hit)
    );
}

#[tokio::test]
async fn a_refresh_of_a_missing_group_still_fences_a_racing_fetch() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap();
    let (release, fetching) = fetch_held(&g);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!g.clear().await.unwrap());
    release.send(()).unwrap();
    assert_eq!(fetching.await.unwrap(), (OLD, Fetched::NotStored));
    assert_eq!(g.len().await.unwrap(), 0);
}

#[tokio::test]
async fn a_tag_invalidation_racing_a_group_fetch_keeps_the_value_out() {
    let server = RedisServer::start();
    // Many buckets: the group's fences live in its own bucket.
    let cache = crate::builder(&server)
        .namespace("test16")
        .buckets(16)
        .build()
        .await
        .unwrap();
    let g = cache.group("g", "p").unwrap().tag("project:1");
    let (release, fetching) = fetch_held(&g);
    tokio::time::sleep(Duration::from_millis(50)).await;
    cache.invalidate_tag("project:1").await.unwrap();
    release.send(()).unwrap();
    assert_eq!(fetching.await.unwrap(), (OLD, Fetched::NotStored));
    assert_eq!(g.len().await.unwrap(), 0);
    assert_eq!(cache.tag_len("project:1").await.unwrap(), 0);
    // An unrelated tag's invalidation does not refuse the store.
    let (release, fetching) = fetch_held(&g);
    tokio::time::sleep(Duration::from_millis(50)).await;
    cache.invalidate_tag("other").await.unwrap();
    release.send(()).unwrap();
    assert_eq!(fetching.await.unwrap(), (OLD, Fetched::Miss));
}

#[tokio::test]
async fn a_refused_store_is_not_shared_with_fetches_that_joined_after_the_refresh() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap();
    let (release, leading) = fetch_held(&g);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!g.clear().await.unwrap());
    // Joins the in-flight load after the refresh returned.
    let follower = {
        let g = g.clone();
        tokio::spawn(async move {
            g.fetch("a", || async { Ok::<_, String>(NEW) })
                .await
                .unwrap()
                .into_parts()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).unwrap();
    assert_eq!(leading.await.unwrap(), (OLD, Fetched::NotStored));
    assert_eq!(follower.await.unwrap(), (NEW, Fetched::Miss));
}
