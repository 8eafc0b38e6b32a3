//! `Stats` describes in-flight and abandoned invalidations.

use std::time::Duration;

use tagcache::{InflightInvalidation, SetOptions};

use tagcache_testkit::RedisServer;

fn server_ms(server: &RedisServer) -> u64 {
    let (s, us): (u64, u64) = server.cmd(&[b"TIME"]);
    s * 1000 + us / 1000
}

/// Leaves the state an invalidation of `tag` interrupted before its first
/// chunk leaves in bucket `b` (docs/redis-layout.md, "Invalidate a tag"):
/// the index renamed to its snapshot and filed in `inv` with `heartbeat`.
/// Returns the snapshot's size.
fn interrupted_invalidation(server: &RedisServer, b: u16, tag: &str, heartbeat: u64) -> u64 {
    let (index, snapshot) = (
        format!("{{test.{b}}}:t:{tag}"),
        format!("{{test.{b}}}:x:{tag}"),
    );
    let _: () = server.cmd(&[b"RENAME", index.as_bytes(), snapshot.as_bytes()]);
    let inv = format!("{{test.{b}}}:inv");
    let _: u64 = server.cmd(&[
        b"ZADD",
        inv.as_bytes(),
        heartbeat.to_string().as_bytes(),
        tag.as_bytes(),
    ]);
    server.cmd(&[b"ZCARD", snapshot.as_bytes()])
}

/// The first bucket holding an index of `tag`.
fn a_bucket_of(server: &RedisServer, tag: &str) -> u16 {
    (0..4)
        .find(|b| server.cmd::<u64>(&[b"EXISTS", format!("{{test.{b}}}:t:{tag}").as_bytes()]) == 1)
        .expect("an index")
}

/// Issue 9, finding 9: `stats` did not show an invalidation abandoned by
/// a crash (its snapshot's size, when the sweep will finish it).
#[tokio::test]
async fn finding_9_stats_show_abandoned_invalidations_until_the_sweep_finishes_them() {
    let server = RedisServer::start();
    let cache = crate::builder(&server).buckets(4).build().await.unwrap();
    for i in 0..40 {
        let tag = if i % 2 == 0 { "T" } else { "U" };
        cache
            .set_bytes(format!("k{i}"), b"v", &SetOptions::new().tag(tag))
            .await
            .unwrap();
    }
    let stats = cache.stats().await.unwrap();
    assert_eq!(stats.invalidations_in_flight, 0);
    assert!(stats.invalidations.is_empty());

    let now = server_ms(&server);
    let (bt, bu) = (a_bucket_of(&server, "T"), a_bucket_of(&server, "U"));
    let crashed = interrupted_invalidation(&server, bt, "T", now - 60_000);
    let running = interrupted_invalidation(&server, bu, "U", now - 5_000);
    assert!(crashed > 0 && running > 0);

    let stats = cache.stats().await.unwrap();
    assert_eq!(stats.invalidations_in_flight, 2, "{stats:?}");
    let find = |tag: &[u8]| -> InflightInvalidation {
        stats
            .invalidations
            .iter()
            .find(|i| i.tag == tag)
            .cloned()
            .unwrap_or_else(|| panic!("{stats:?}"))
    };
    let t = find(b"T");
    assert_eq!((t.bucket, t.remaining), (bt, crashed), "{t:?}");
    assert!(t.abandoned, "{t:?}");
    assert!(t.heartbeat_age >= Duration::from_secs(60), "{t:?}");
    assert_eq!(t.sweep_after, Duration::ZERO);
    let u = find(b"U");
    assert_eq!((u.bucket, u.remaining), (bu, running), "{u:?}");
    assert!(!u.abandoned, "{u:?}");
    assert!(u.heartbeat_age >= Duration::from_secs(5), "{u:?}");
    let left = InflightInvalidation::SWEEP_LEASE - Duration::from_secs(5);
    assert!(
        u.sweep_after <= left && u.sweep_after > left - Duration::from_secs(5),
        "{u:?}"
    );

    // The sweep finishes the abandoned one only.
    let report = cache.prune().await.unwrap();
    assert_eq!(report.invalidations_resumed, 1, "{report:?}");
    assert_eq!(report.entries_removed, crashed, "{report:?}");
    let stats = cache.stats().await.unwrap();
    assert_eq!(stats.invalidations_in_flight, 1, "{stats:?}");
    assert_eq!(stats.invalidations[0].tag, b"U");
}
