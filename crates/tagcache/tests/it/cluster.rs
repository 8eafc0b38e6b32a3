//! Redis Cluster: the same guarantees on 3 masters.

use std::collections::BTreeSet;
use std::time::Duration;

use tagcache::{Lookup, SetOptions};

use crate::support::cluster::RedisCluster;

async fn cluster_cache(cluster: &RedisCluster) -> tagcache::Cache {
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
    scope.set("a", &1, Duration::from_secs(60)).await.unwrap();
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
