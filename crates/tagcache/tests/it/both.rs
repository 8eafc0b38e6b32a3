//! The core behaviours, run against a single redis-server AND a 3-master
//! Redis Cluster: each scenario is written once and instantiated for both.

use std::collections::BTreeSet;
use std::time::Duration;

use tagcache::{Cache, KeyPath, PathPattern, SetOptions, Source};

use tagcache_testkit::RedisCluster;
use tagcache_testkit::RedisServer;

/// A server or a cluster, kept alive for the test.
enum Env {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Env {
    async fn cache(&self) -> Cache {
        let b = match self {
            Env::Single(s) => crate::builder(s),
            Env::Cluster(c) => Cache::builder("")
                .cluster(c.seeds())
                .namespace("test")
                .auto_sweep(None)
                .default_ttl(Duration::from_secs(600))
                .response_timeout(Duration::from_secs(5))
                .op_timeout(Duration::from_secs(5)),
        };
        b.build().await.expect("build the cache")
    }
}

macro_rules! on_both {
    ($($name:ident => $body:ident;)*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn standalone() {
                let env = super::Env::Single(tagcache_testkit::RedisServer::start());
                super::$body(env.cache().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                let env = super::Env::Cluster(tagcache_testkit::RedisCluster::start(3, 0));
                super::$body(env.cache().await).await;
            }
        }
    )*};
}

on_both! {
    entries_round_trip => entries_round_trip;
    overwrite_and_delete_leave_no_stale_edge => overwrite_and_delete_leave_no_stale_edge;
    union_invalidation_counts_each_entry_once => union_invalidation_counts_each_entry_once;
    listing_pages_return_each_key_once => listing_pages_return_each_key_once;
    expired_members_are_pruned => expired_members_are_pruned;
    read_through_is_fenced_by_invalidation => read_through_is_fenced_by_invalidation;
    paths_scopes_and_groups => paths_scopes_and_groups;
    concurrent_writes_keep_each_keys_order => concurrent_writes_keep_each_keys_order;
}

async fn entries_round_trip(cache: Cache) {
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    cache
        .set_many(
            keys.iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), i, SetOptions::new().tag("t"))),
        )
        .await
        .unwrap();
    let got: Vec<Option<usize>> = cache.get_many(keys.iter().rev()).await.unwrap();
    assert_eq!(got, (0..100).rev().map(Some).collect::<Vec<_>>());
    assert!(cache.exists("k3").await.unwrap());
    assert!(cache.ttl("k3").await.unwrap().unwrap() > Duration::from_secs(500));
    assert_eq!(cache.delete_many(["k1", "k2", "missing"]).await.unwrap(), 2);
    assert_eq!(cache.tag_len("t").await.unwrap(), 98);
}

async fn overwrite_and_delete_leave_no_stale_edge(cache: Cache) {
    for i in 0..50 {
        cache
            .set(format!("p{i}"), &i, &SetOptions::new().tags(["a", "b"]))
            .await
            .unwrap();
        cache
            .set(format!("p{i}"), &i, &SetOptions::new().tags(["b", "c"]))
            .await
            .unwrap();
    }
    assert_eq!(cache.tag_len("a").await.unwrap(), 0);
    assert_eq!(cache.invalidate_tag("a").await.unwrap(), 0);
    assert_eq!(cache.tag_len("c").await.unwrap(), 50);
    for i in 0..25 {
        assert!(cache.delete(format!("p{i}")).await.unwrap());
    }
    assert_eq!(cache.tag_len("b").await.unwrap(), 25);
    assert_eq!(cache.invalidate_tag("c").await.unwrap(), 25);
    assert_eq!(cache.tag_len("b").await.unwrap(), 0);
}

/// Many concurrent `set`s of keys spread over buckets (hash slots on the
/// cluster, where one queued batch is written bucket by bucket), each key
/// rewritten with changing tags: the write queue has several batches in
/// flight, yet each key ends with its last write and exactly its tags,
/// and each tag's index holds exactly the keys whose last write carried it.
async fn concurrent_writes_keep_each_keys_order(cache: Cache) {
    let keys: Vec<String> = (0..40).map(|k| format!("order-{k}")).collect();
    let tags = ["ta", "tb", "tc"];
    let writes = 1200;
    let tag_of = |i: usize| tags[(i / keys.len() + i % 3) % tags.len()];
    let calls = (0..writes).map(|i| {
        let (cache, key) = (&cache, &keys[i % keys.len()]);
        let opts = SetOptions::new().tag(tag_of(i));
        async move { cache.set(key, &i, &opts).await }
    });
    crate::queued_in_order(calls).await;
    let mut expected: std::collections::BTreeMap<&str, BTreeSet<String>> = Default::default();
    for (k, key) in keys.iter().enumerate() {
        let last = writes - keys.len() + k;
        assert_eq!(cache.get::<usize>(key).await.unwrap(), Some(last), "{key}");
        let tag = tag_of(last);
        assert_eq!(
            cache.tags(key).await.unwrap(),
            Some(vec![tag.as_bytes().to_vec()]),
            "{key}"
        );
        expected.entry(tag).or_default().insert(key.clone());
    }
    for tag in tags {
        let want = expected.remove(tag).unwrap_or_default();
        assert_eq!(
            cache.tag_len(tag).await.unwrap(),
            want.len() as u64,
            "{tag}"
        );
        assert_eq!(
            cache.invalidate_tag(tag).await.unwrap(),
            want.len() as u64,
            "{tag}"
        );
    }
}

async fn union_invalidation_counts_each_entry_once(cache: Cache) {
    for i in 0..60 {
        let mut o = SetOptions::new().tag("x");
        if i % 2 == 0 {
            o = o.tag("y");
        }
        cache.set(format!("u{i}"), &i, &o).await.unwrap();
    }
    cache
        .set("other", &0, &SetOptions::new().tag("z"))
        .await
        .unwrap();
    assert_eq!(cache.invalidate_tags(["y", "x", "y"]).await.unwrap(), 60);
    assert_eq!(cache.get::<i32>("other").await.unwrap(), Some(0));
}

async fn listing_pages_return_each_key_once(cache: Cache) {
    let n = 500;
    cache
        .set_many_bytes(
            (0..n).map(|i| (format!("l{i}"), b"v".to_vec(), SetOptions::new().tag("t"))),
        )
        .await
        .unwrap();
    let mut pages = cache.keys_with_tag("t").page_size(37);
    let mut seen = BTreeSet::new();
    let mut count = 0;
    while let Some(page) = pages.next_page().await.unwrap() {
        count += page.len();
        seen.extend(page);
    }
    assert_eq!((count, seen.len()), (n, n));
}

async fn expired_members_are_pruned(cache: Cache) {
    for i in 0..40 {
        cache
            .set(
                format!("e{i}"),
                &i,
                &SetOptions::new()
                    .ttl(Duration::from_millis(30))
                    .tags(["t", "u"]),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(cache.tag_len("t").await.unwrap(), 0);
    let report = cache.prune().await.unwrap();
    // t and u per entry (writes no longer trim: all are left to the sweep).
    assert_eq!(report.members_removed, 80, "{report:?}");
    let stats = cache.stats().await.unwrap();
    assert_eq!((stats.indexes, stats.members), (0, 0));
}

async fn read_through_is_fenced_by_invalidation(cache: Cache) {
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let loading = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("page", &SetOptions::new().tag("product:1"), || async {
                    let _ = wait.await;
                    Ok::<_, String>(1)
                })
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    cache.invalidate_tag("product:1").await.unwrap();
    release.send(()).unwrap();
    assert_eq!(loading.await.unwrap().source, Source::LoadedNotStored);
    assert!(!cache.exists("page").await.unwrap());
}

async fn paths_scopes_and_groups(cache: Cache) {
    for prj in 0..5 {
        for pl in 0..5 {
            let p = KeyPath::from_parts(["org"])
                .push(7)
                .push("prj")
                .push(prj)
                .push("pl")
                .push(pl);
            cache
                .set_path(&p, &(prj * 10 + pl), &SetOptions::new())
                .await
                .unwrap();
        }
    }
    let q = PathPattern::new()
        .part("org")
        .part(7)
        .part("prj")
        .any()
        .part("pl")
        .part(3);
    let hits: Vec<(KeyPath, u32)> = cache.query(&q).collect().await.unwrap();
    assert_eq!(hits.len(), 5);
    assert_eq!(
        crate::invalidate_under(&cache, ["org", "7", "prj", "2"]).await,
        5
    );
    assert_eq!(crate::paths_under(&cache, ["org", "7"]).await.len(), 20);
    let (a, b) = (
        cache.scope(["dsr", "pr-1"]).unwrap(),
        cache.scope(["dsr", "pr-10"]).unwrap(),
    );
    a.set("x", &1, &SetOptions::new().ttl(Duration::from_secs(60)))
        .await
        .unwrap();
    b.set("x", &2, &SetOptions::new().ttl(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(a.clear().await.unwrap(), 1);
    assert_eq!(b.get::<i32>("x").await.unwrap(), Some(2));
    let g = cache.group("g", 1).unwrap().cap(2).tag("gt");
    for f in ["a", "b", "c"] {
        g.fetch(f, || async { Ok::<_, String>(true) })
            .await
            .unwrap();
    }
    assert_eq!(g.len().await.unwrap(), 1);
    assert_eq!(cache.invalidate_tag("gt").await.unwrap(), 1);
}
