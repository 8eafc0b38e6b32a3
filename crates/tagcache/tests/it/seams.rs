//! Where the APIs meet: one key is one entry whichever API wrote it, every
//! listing answers for itself, and clears leave nothing of what they cover
//! (issue 9, findings 1 and 2), plus the namespace clear.

use std::time::Duration;

use tagcache::{Cache, KeyPath, SetOptions};

use tagcache_testkit::RedisServer;

async fn cache_with(server: &RedisServer, buckets: u16) -> Cache {
    crate::builder(server)
        .buckets(buckets)
        .build()
        .await
        .unwrap()
}

/// Finding 1: with 4 buckets a scoped entry was listed under its tag but
/// could not be read or deleted through `Cache`, and a scoped write and a
/// plain write of the same key held two live values.
#[tokio::test]
async fn one_key_two_places_with_more_than_one_bucket() {
    let server = RedisServer::start();
    for buckets in [1, 4, 16] {
        let _: () = server.cmd(&[b"FLUSHALL"]);
        let c = cache_with(&server, buckets).await;
        let t1 = SetOptions::new().tag("t1");
        for i in 0..8 {
            let scope = c.scope(["dsr", &format!("pr-{i}")]).unwrap();
            scope.set_bytes("a", b"scoped", &t1).await.unwrap();
        }
        for i in 0..4 {
            let path = KeyPath::from(["org", "7", "prj"]).push(i);
            c.set_path(&path, &"path", &t1).await.unwrap();
            c.set_bytes(format!("plain{i}"), b"plain", &t1)
                .await
                .unwrap();
        }
        let listed = c.keys_with_tag("t1").collect().await.unwrap();
        assert_eq!(listed.len(), 16, "{buckets} buckets");
        for key in &listed {
            assert!(c.exists(key).await.unwrap(), "{key:?} listed but absent");
            assert!(c.get_bytes(key).await.unwrap().is_some(), "{key:?}");
            assert!(c.ttl(key).await.unwrap().is_some(), "{key:?}");
            let tags = c.tags(key).await.unwrap().unwrap();
            assert!(tags.contains(&b"t1".to_vec()), "{key:?}: {tags:?}");
            assert!(c.has_tag(key, "t1").await.unwrap());
        }
        // One key, one entry: the last write wins whichever API made it.
        let scope = c.scope(["dsr", "pr-1"]).unwrap();
        c.set_bytes("dsr:pr-1:a", b"plain", &SetOptions::new())
            .await
            .unwrap();
        assert_eq!(scope.get_bytes("a").await.unwrap().unwrap(), b"plain");
        scope
            .set("a", &7u32, &SetOptions::new().ttl(Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(c.get::<u32>("dsr:pr-1:a").await.unwrap(), Some(7));
        assert_eq!(
            c.get_path::<u32>(&KeyPath::from(["dsr", "pr-1", "a"]))
                .await
                .unwrap(),
            Some(7)
        );
        // Deleting through one API removes it for all, listings included.
        for key in &listed {
            assert!(c.delete(key).await.unwrap(), "{key:?}");
        }
        assert!(c.keys_with_tag("t1").collect().await.unwrap().is_empty());
        assert!(!scope.contains("a").await.unwrap());
        assert_eq!(crate::keys_besides_fences(&server), 1, "only the meta key");
    }
}

/// Finding 2: `Scope::clear` left entries written with `set_path` under
/// the owner, and `invalidate_prefix` removed none of the scoped entries.
#[tokio::test]
async fn a_clear_that_leaves_data_behind() {
    let server = RedisServer::start();
    for buckets in [1, 16] {
        let _: () = server.cmd(&[b"FLUSHALL"]);
        let c = cache_with(&server, buckets).await;
        let scope = c.scope(["dsr", "pr-1"]).unwrap();
        let other = c.scope(["dsr", "pr-10"]).unwrap();
        let ttl = Duration::from_secs(60);
        for part in ["identity", "email", "retries"] {
            scope
                .set(part, &1u8, &SetOptions::new().ttl(ttl))
                .await
                .unwrap();
            other
                .set(part, &1u8, &SetOptions::new().ttl(ttl))
                .await
                .unwrap();
        }
        for i in 0..4 {
            let path = KeyPath::from(["dsr", "pr-1", "fields"]).push(i);
            c.set_path(&path, &i, &SetOptions::new()).await.unwrap();
        }
        c.set("dsr:pr-1:plain", &1u8, &SetOptions::new())
            .await
            .unwrap();
        c.set("dsr:pr-1", &1u8, &SetOptions::new()).await.unwrap();
        assert_eq!(scope.keys().collect().await.unwrap().len(), 8);
        // Everything under the owner, however written; not the owner's own
        // key, not pr-10.
        assert_eq!(scope.clear().await.unwrap(), 8, "{buckets} buckets");
        assert!(scope.keys().collect().await.unwrap().is_empty());
        assert!(c
            .paths_under(&KeyPath::from(["dsr", "pr-1", "fields"]))
            .collect()
            .await
            .unwrap()
            .is_empty());
        assert!(c.exists("dsr:pr-1").await.unwrap());
        assert_eq!(other.keys().collect().await.unwrap().len(), 3);
        // A prefix invalidation takes scoped entries and the prefix's own.
        assert_eq!(
            c.invalidate_prefix(&KeyPath::from(["dsr"])).await.unwrap(),
            4
        );
        assert!(other.keys().collect().await.unwrap().is_empty());
        assert!(!c.exists("dsr:pr-1").await.unwrap());
        c.prune().await.unwrap();
        assert_eq!(crate::keys_besides_fences(&server), 1, "only the meta key");
    }
}

#[tokio::test]
async fn paths_under_a_prefix_include_the_prefix_itself() {
    let server = RedisServer::start();
    let c = cache_with(&server, 4).await;
    let org = KeyPath::from(["org", "7"]);
    c.set_path(&org, &"org", &SetOptions::new()).await.unwrap();
    c.set_path(&org.clone().push("prj"), &"prj", &SetOptions::new())
        .await
        .unwrap();
    let mut under = c.paths_under(&org).collect().await.unwrap();
    under.sort_by_key(ToString::to_string);
    assert_eq!(under, vec![org.clone(), org.clone().push("prj")]);
    let exact = tagcache::PathPattern::new().part("org").part("7");
    let found: Vec<(KeyPath, String)> = c.query(&exact).collect().await.unwrap();
    assert_eq!(found, vec![(org.clone(), "org".to_owned())]);
    assert_eq!(c.invalidate_prefix(&org).await.unwrap(), 2);
}

#[tokio::test]
async fn keys_deeper_than_the_path_limit_are_refused() {
    let server = RedisServer::start();
    let c = crate::cache(&server).await;
    let deep = vec!["x"; tagcache::MAX_PATH_DEPTH + 1].join(":");
    let e = c.set(&deep, &1, &SetOptions::new()).await.unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    // Separators that do not make a path are plain bytes.
    for k in ["a::b", ":a", "a:", "a\\:b"] {
        c.set(k, &1, &SetOptions::new()).await.unwrap();
        assert_eq!(c.tags(k).await.unwrap(), Some(vec![]), "{k}");
    }
}

#[tokio::test]
async fn clear_deletes_every_entry_and_group_and_leaves_no_index() {
    let server = RedisServer::start();
    for buckets in [1, 16] {
        let _: () = server.cmd(&[b"FLUSHALL"]);
        let c = cache_with(&server, buckets).await;
        for i in 0..300 {
            let opts = SetOptions::new().tags([format!("t{}", i % 7)]);
            c.set(format!("plain{i}"), &i, &SetOptions::new())
                .await
                .unwrap();
            c.set(format!("tagged{i}"), &i, &opts).await.unwrap();
            c.set_path(&KeyPath::from(["org", "1"]).push(i), &i, &opts)
                .await
                .unwrap();
        }
        c.scope(["dsr", "pr-1"])
            .unwrap()
            .set("a", &1, &SetOptions::new().ttl(Duration::from_secs(60)))
            .await
            .unwrap();
        let g = c.group("branches", 1).unwrap().tag("t1");
        g.set("main", &true).await.unwrap();
        let mut reports = Vec::new();
        let deleted = c.clear_with_progress(|p| reports.push(p)).await.unwrap();
        assert_eq!(deleted, 902, "{buckets} buckets");
        let last = reports.last().unwrap();
        assert_eq!(last.deleted, 902);
        assert_eq!(last.indexes_done, last.indexes_total);
        assert!(last.indexes_total >= 10, "{last:?}");
        assert_eq!(last.buckets_done, buckets);
        assert!(reports.windows(2).all(|w| w[0].deleted <= w[1].deleted));
        assert_eq!(g.len().await.unwrap(), 0);
        assert!(c.get::<i32>("plain1").await.unwrap().is_none());
        assert_eq!(crate::keys_besides_fences(&server), 1, "only the meta key");
        // Writes after the clear are kept.
        c.set("after", &1, &SetOptions::new()).await.unwrap();
        assert_eq!(c.clear().await.unwrap(), 1);
    }
    let calls = server.command_calls();
    assert!(!calls.contains_key("scan") && !calls.contains_key("keys"));
}

#[tokio::test]
async fn an_interrupted_clear_is_finished_by_the_next_one() {
    let server = RedisServer::start();
    let c = crate::builder(&server)
        .chunk_size(10)
        .build()
        .await
        .unwrap();
    for i in 0..200 {
        c.set(format!("k{i}"), &i, &SetOptions::new())
            .await
            .unwrap();
    }
    // Stop the clear after its cut and a few chunks, as a crash would: the
    // third progress report wakes the other branch, which wins as soon as
    // the clear next waits for Redis.
    let chunks = std::sync::atomic::AtomicUsize::new(0);
    let stop = tokio::sync::Notify::new();
    let interrupted = tokio::time::timeout(Duration::from_secs(30), async {
        let clear = c.clear_with_progress(|_| {
            if chunks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 2 {
                stop.notify_one();
            }
        });
        tokio::select! {
            biased;
            () = stop.notified() => None,
            r = clear => Some(r),
        }
    })
    .await
    .unwrap();
    assert!(
        interrupted.is_none(),
        "the clear finished too fast to interrupt"
    );
    c.set("after", &1, &SetOptions::new()).await.unwrap();
    let left = c.clear().await.unwrap();
    assert!((1..200).contains(&left), "{left}");
    assert!(!c.exists("after").await.unwrap());
    assert_eq!(crate::keys_besides_fences(&server), 1);
}

#[tokio::test]
async fn reserved_indexes_are_not_listed_as_tags() {
    let server = RedisServer::start();
    let c = crate::cache(&server).await;
    c.set("org:1", &1, &SetOptions::new()).await.unwrap();
    for tag in [&b"\0a"[..], b"\0porg"] {
        let e = c.keys_with_tag(tag).collect().await.unwrap_err();
        assert!(e.is_invalid_input(), "{e}");
    }
}

#[tokio::test]
async fn a_legacy_value_replaces_a_malformed_entry_instead_of_being_dropped() {
    let server = RedisServer::start();
    let rules = tagcache::legacy::LegacyRules::new([tagcache::legacy::LegacyRule::new(
        "old-{id:[^-]}-{attr:[^-]}",
    )
    .scope(["o", "{id}"])
    .part("{attr}")])
    .unwrap();
    let c = crate::builder(&server)
        .legacy(rules, tagcache::legacy::LegacyMode::Migrate)
        .build()
        .await
        .unwrap();
    let _: () = server.cmd(&[b"SET", b"{test.0}:e:o:1:a", b"\x01\x00\x00\x00\x00\x01X"]);
    let _: () = server.cmd(&[b"SET", b"old-1-a", b"legacy", b"PX", b"60000"]);
    let scope = c.scope(["o", "1"]).unwrap();
    assert_eq!(scope.get_bytes("a").await.unwrap().unwrap(), b"legacy");
    assert_eq!(c.get_bytes("o:1:a").await.unwrap().unwrap(), b"legacy");
    assert_eq!(server.cmd::<u64>(&[b"EXISTS", b"old-1-a"]), 0);
}

#[tokio::test]
async fn the_sweep_finishes_an_abandoned_clear() {
    let server = RedisServer::start();
    let c = crate::cache(&server).await;
    for i in 0..50 {
        c.set(
            format!("k{i}"),
            &i,
            &SetOptions::new().tag(format!("t{}", i % 5)),
        )
        .await
        .unwrap();
    }
    // What a clear that crashed right after its cut leaves: the registry
    // renamed, the clear filed as in flight with an old heartbeat.
    server.cmd::<()>(&[b"RENAME", b"{test.0}:reg", b"{test.0}:creg"]);
    server.cmd::<()>(&[b"ZADD", b"{test.0}:inv", b"1", b"\x00c"]);
    let stats = c.stats().await.unwrap();
    assert!(stats
        .invalidations
        .iter()
        .any(|i| i.abandoned && i.remaining == 5));
    let report = c.prune().await.unwrap();
    assert_eq!(report.entries_removed, 50, "{report:?}");
    assert_eq!(crate::keys_besides_fences(&server), 1, "only the meta key");
}
