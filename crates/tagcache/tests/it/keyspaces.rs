//! Hierarchical keys and owner scopes.

use std::collections::BTreeSet;
use std::time::Duration;

use tagcache::{ErrorKind, KeyPath, PathPattern, SetOptions};

use tagcache_testkit::RedisServer;

// The pipeline_metadata example has the same helper: an example stays one
// self-contained file, so neither borrows the other's.
fn pl(org: u32, prj: u32, pl: u32) -> KeyPath {
    KeyPath::from_parts(["org"])
        .push(org)
        .push("prj")
        .push(prj)
        .push("pl")
        .push(pl)
}

/// The string stored at `path`, if any.
async fn text_at(cache: &tagcache::Cache, path: &KeyPath) -> Option<String> {
    cache.get_path(path).await.unwrap()
}

fn strings(paths: Vec<KeyPath>) -> BTreeSet<String> {
    paths.iter().map(ToString::to_string).collect()
}

async fn seed(cache: &tagcache::Cache) {
    for org in [7, 70] {
        cache
            .set_path(
                &KeyPath::from_parts(["org"]).push(org),
                &format!("org {org}"),
                &SetOptions::new(),
            )
            .await
            .unwrap();
        for prj in [3, 4] {
            for p in [9, 10] {
                cache
                    .set_path(
                        &pl(org, prj, p),
                        &format!("{org}/{prj}/{p}"),
                        &SetOptions::new(),
                    )
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn paths_are_listed_and_invalidated_at_any_level() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    seed(&cache).await;
    assert_eq!(
        text_at(&cache, &pl(7, 3, 9)).await.as_deref(),
        Some("7/3/9")
    );
    // The plain joined key reads the same entry (one key, one entry).
    assert_eq!(
        cache
            .get::<String>("org:7:prj:3:pl:9")
            .await
            .unwrap()
            .as_deref(),
        Some("7/3/9")
    );

    let under7 = crate::paths_under(&cache, ["org", "7"]).await;
    assert_eq!(
        under7.len(),
        5,
        "org:7 itself and its 4 pipelines, never org:70"
    );
    assert!(strings(under7)
        .iter()
        .all(|s| s == "org:7" || s.starts_with("org:7:")));

    // One pipeline, one project, one org.
    assert_eq!(cache.invalidate_prefix(&pl(7, 3, 9)).await.unwrap(), 1);
    assert_eq!(
        crate::invalidate_under(&cache, ["org", "7", "prj", "3"]).await,
        1
    );
    assert_eq!(
        text_at(&cache, &pl(7, 4, 9)).await.as_deref(),
        Some("7/4/9")
    );
    assert_eq!(crate::invalidate_under(&cache, ["org", "7"]).await, 3);
    assert_eq!(crate::paths_under(&cache, ["org", "7"]).await, vec![]);
    assert_eq!(crate::paths_under(&cache, ["org", "70"]).await.len(), 5);
    // No index is left behind for the org that is gone.
    assert_eq!(
        server.cmd::<u64>(&[
            b"EXISTS",
            b"{test.0}:t:\x00porg:7",
            b"{test.0}:t:\x00porg:7:prj:3"
        ]),
        0
    );
}

#[tokio::test]
async fn wildcard_queries_read_the_longest_exact_prefix() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    seed(&cache).await;
    let all_pl9 = PathPattern::new()
        .part("org")
        .part(7)
        .any()
        .any()
        .part("pl")
        .part(9);
    let got: Vec<(KeyPath, String)> = cache.query(&all_pl9).collect().await.unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    // A pattern of another length never matches.
    let short = PathPattern::new().part("org").part(7).any();
    assert_eq!(
        cache.query::<String>(&short).collect().await.unwrap().len(),
        0
    );
    let pattern = PathPattern::new()
        .part("org")
        .part(7)
        .part("prj")
        .any()
        .part("pl")
        .any();
    let got: Vec<(KeyPath, String)> = cache.query(&pattern).page_size(2).collect().await.unwrap();
    let values: BTreeSet<String> = got.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        ["7/3/10", "7/3/9", "7/4/10", "7/4/9"]
            .map(String::from)
            .into()
    );
    // A value that expired after being indexed is skipped.
    cache
        .set_path(
            &pl(7, 5, 1),
            &"short",
            &SetOptions::new().ttl(Duration::from_millis(30)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let got: Vec<(KeyPath, String)> = cache.query(&pattern).collect().await.unwrap();
    assert_eq!(got.len(), 4);
    let e = cache
        .query::<String>(&PathPattern::new().any().part("x"))
        .collect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn scope_clear_removes_exactly_its_owner() {
    let server = RedisServer::start();
    let cache = crate::builder(&server).buckets(4).build().await.unwrap();
    let ttl = Duration::from_secs(600);
    let (pr1, pr10) = (
        cache.scope(["dsr", "pr-1"]).unwrap(),
        cache.scope(["dsr", "pr-10"]).unwrap(),
    );
    for part in ["identity:email", "identity:name", "retries", "mask"] {
        pr1.set(part, &format!("1/{part}"), &SetOptions::new().ttl(ttl))
            .await
            .unwrap();
        pr10.set(part, &format!("10/{part}"), &SetOptions::new().ttl(ttl))
            .await
            .unwrap();
    }
    // A plain key that merely contains the id is not the owner's.
    cache
        .set("dsr:pr-1-copy", &0, &SetOptions::new())
        .await
        .unwrap();
    assert!(pr1.contains("retries").await.unwrap());
    assert!(!pr1.contains("other").await.unwrap());
    let keys = strings(pr1.keys().collect().await.unwrap());
    assert_eq!(keys.len(), 4);
    assert!(keys.iter().all(|k| k.starts_with("dsr:pr-1:")), "{keys:?}");
    assert_eq!(
        pr1.get::<String>("identity:email")
            .await
            .unwrap()
            .as_deref(),
        Some("1/identity:email")
    );
    assert!(pr1.delete("mask").await.unwrap());
    assert!(!pr1.contains("mask").await.unwrap());
    assert_eq!(pr1.clear().await.unwrap(), 3);
    assert_eq!(pr1.keys().collect().await.unwrap(), vec![]);
    assert_eq!(pr10.keys().collect().await.unwrap().len(), 4);
    assert_eq!(
        pr10.get::<String>("retries").await.unwrap().as_deref(),
        Some("10/retries")
    );
    assert!(cache.exists("dsr:pr-1-copy").await.unwrap());
}

#[tokio::test]
async fn a_scope_index_never_outlives_its_entries() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let scope = cache.scope(["dsr", "pr-2"]).unwrap();
    scope
        .set("a", &1, &SetOptions::new().ttl(Duration::from_millis(40)))
        .await
        .unwrap();
    scope
        .set("b", &2, &SetOptions::new().ttl(Duration::from_millis(40)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        scope.keys().collect().await.unwrap(),
        vec![],
        "expired keys are not listed"
    );
    let report = cache.prune().await.unwrap();
    // Each entry: the prefix indexes `dsr` and `dsr:pr-2`.
    assert_eq!(
        (report.members_removed, report.indexes_removed),
        (4, 2),
        "{report:?}"
    );
    assert_eq!(
        server.cmd::<u64>(&[b"EXISTS", b"{test.0}:t:\x00pdsr:pr-2", b"{test.0}:reg"]),
        0,
        "no index or registry entry is left"
    );
}

#[tokio::test]
async fn reserved_tags_and_empty_parts_are_refused() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let e = cache
        .set("k", &1, &SetOptions::new().tag(b"\x00porg"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(cache
        .invalidate_tag(b"\x00porg")
        .await
        .unwrap_err()
        .is_invalid_input());
    assert!(cache
        .set_path(&KeyPath::from(["org", ""]), &1, &SetOptions::new())
        .await
        .unwrap_err()
        .is_invalid_input());
    assert!(cache.scope(KeyPath::default()).is_err());
    // A separator inside a part stays inside it.
    cache
        .set_path(&KeyPath::from(["a:b", "c"]), &1, &SetOptions::new())
        .await
        .unwrap();
    assert_eq!(crate::paths_under(&cache, ["a"]).await, vec![]);
    assert_eq!(
        crate::paths_under(&cache, ["a:b"]).await,
        vec![KeyPath::from(["a:b", "c"])]
    );
}
