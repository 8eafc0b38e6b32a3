//! Hash groups: one hash per owner, capped, TTL fixed at creation.

use std::time::Duration;

use tagcache::{Fetched, SetOptions};

use crate::support::RedisServer;

async fn yes() -> Result<bool, String> {
    Ok(true)
}

#[tokio::test]
async fn fetch_reads_through_and_counts() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("protected_branches", 42).unwrap();
    assert_eq!(g.fetch("main", yes).await.unwrap(), (true, Fetched::Miss));
    assert_eq!(
        g.fetch("main", || async { Ok::<_, String>(false) })
            .await
            .unwrap(),
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
            .unwrap(),
        (false, Fetched::Miss)
    );
}

#[tokio::test]
async fn later_writes_never_extend_the_ttl() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap().ttl(Duration::from_secs(2));
    g.set("a", &true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    g.set("b", &true).await.unwrap();
    let ttl = g.remaining_ttl().await.unwrap().unwrap();
    assert!(ttl <= Duration::from_millis(1650), "{ttl:?}");
}

#[tokio::test]
async fn a_full_group_is_dropped_and_recomputed() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap().cap(3);
    for f in ["a", "b", "c"] {
        g.fetch(f, yes).await.unwrap();
    }
    assert_eq!(g.len().await.unwrap(), 3);
    g.fetch("a", yes).await.unwrap();
    assert_eq!(
        g.len().await.unwrap(),
        3,
        "rewriting a field does not count"
    );
    assert_eq!(g.fetch("d", yes).await.unwrap().1, Fetched::Miss);
    assert_eq!(g.len().await.unwrap(), 1, "dropped whole at the cap");
    assert_eq!(g.fetch("a", yes).await.unwrap().1, Fetched::Miss);
}

#[tokio::test]
async fn refresh_and_tags_drop_the_group() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap().tag("project:42");
    g.fetch("a", yes).await.unwrap();
    assert!(g.refresh().await.unwrap());
    assert_eq!(g.len().await.unwrap(), 0);
    assert_eq!(
        cache.tag_len("project:42").await.unwrap(),
        0,
        "refresh removes its edges"
    );
    g.fetch("a", yes).await.unwrap();
    cache
        .set("page", &1, &SetOptions::new().tag("project:42"))
        .await
        .unwrap();
    assert_eq!(cache.tag_len("project:42").await.unwrap(), 2);
    assert_eq!(cache.invalidate_tag("project:42").await.unwrap(), 2);
    assert_eq!(g.len().await.unwrap(), 0);
    assert_eq!(g.fetch("a", yes).await.unwrap().1, Fetched::Miss);
}

#[tokio::test]
async fn dry_run_returns_the_computed_value_and_reports_mismatches() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let g = cache.group("g", "p").unwrap();
    g.set("a", &true).await.unwrap();
    let dry = g.clone().dry_run(true);
    assert_eq!(dry.fetch("a", yes).await.unwrap(), (true, Fetched::DryRun));
    assert_eq!(
        dry.fetch("a", || async { Ok::<_, String>(false) })
            .await
            .unwrap(),
        (false, Fetched::Mismatch)
    );
    assert_eq!(dry.fetch("new", yes).await.unwrap(), (true, Fetched::Miss));
}
