//! The two write paths (`WritePath::Transaction`, the default, and
//! `WritePath::Script`): the same entries and edges whichever writes, in
//! the corners where the transaction differs (it learns the old tags from
//! `SET … GET` and unlinks lost tags in a second step; it falls back to
//! the script for what it cannot do).

use std::time::Duration;

use tagcache::{Cache, SetOptions, WritePath};

use crate::raw;
use tagcache_testkit::RedisServer;

const PATHS: [WritePath; 2] = [WritePath::Transaction, WritePath::Script];

fn names(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Every invariant of the layout holds for `keys` and `tags`.
async fn assert_quiescent(server: &RedisServer, keys: &[&str], tags: &[&str]) {
    let mut con = raw::connect(server).await;
    let state = raw::snapshot(&mut con, "test", 1, &names(keys), &names(tags)).await;
    if let Err(e) = state.check_quiescent() {
        panic!("{e}");
    }
}

async fn listed(cache: &Cache, tag: &str) -> Vec<String> {
    let mut keys: Vec<String> = cache
        .keys_with_tag(tag)
        .collect()
        .await
        .unwrap()
        .into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect();
    keys.sort();
    keys
}

/// Command counts since `before`.
fn calls_since(
    server: &RedisServer,
    before: &std::collections::HashMap<String, u64>,
) -> std::collections::HashMap<String, u64> {
    server
        .command_calls()
        .into_iter()
        .map(|(k, v)| {
            let was = before.get(&k).copied().unwrap_or(0);
            (k, v - was)
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

#[tokio::test]
async fn overwrites_with_fewer_more_and_different_tags_leave_exact_edges() {
    for path in PATHS {
        let server = RedisServer::start();
        let cache = crate::cache_on(&server, path).await;
        let all = ["a", "b", "c", "d", "e"];
        let steps: [&[&str]; 6] = [
            &["a", "b"],
            &["a"],
            &["a", "c", "d"],
            &["e"],
            &[],
            &["b", "a"],
        ];
        for tags in steps {
            let opts = SetOptions::new().tags(tags.iter().copied());
            cache.set_bytes("k", b"v", &opts).await.unwrap();
            // A second key keeps every index alive, so emptied-index
            // unfiling is seen on the keys that remain.
            cache
                .set_bytes("other", b"v", &SetOptions::new().tag("a"))
                .await
                .unwrap();
            assert_quiescent(&server, &["k", "other"], &all).await;
            for t in all {
                let expect_k = tags.contains(&t);
                let got = listed(&cache, t).await;
                assert_eq!(
                    got.contains(&"k".to_owned()),
                    expect_k,
                    "{path:?} {tags:?} {t}"
                );
            }
        }
        // Batched: one key twice in a batch, the later dropping a tag.
        cache
            .set_many_bytes([
                ("k", b"1".to_vec(), SetOptions::new().tags(["c", "d"])),
                ("k", b"2".to_vec(), SetOptions::new().tag("d")),
                ("j", b"3".to_vec(), SetOptions::new().tag("c")),
            ])
            .await
            .unwrap();
        assert_quiescent(&server, &["k", "j", "other"], &all).await;
        assert_eq!(listed(&cache, "c").await, ["j"]);
        assert_eq!(cache.get_bytes("k").await.unwrap(), Some(b"2".to_vec()));
    }
}

/// Regression: a batch writing one key twice, the first write keeping a
/// tag this handle knew the key had and the second dropping it, left that
/// edge behind (the transaction removed it, then the first write's ZADD
/// put it back, and the second step trusted the removal). Seen as a rare
/// stale edge in `concurrency::racing_writes_and_invalidations_stay_exact`:
/// `set_many` keeps one write per key, but the queue coalesces concurrent
/// single sets, and two of one key share a batch. (On this single-threaded
/// test runtime, sets joined together reach the queue before its task runs,
/// so they are one batch, in order.)
#[tokio::test]
async fn coalesced_sets_rewriting_a_known_tag_then_dropping_it_leave_no_stale_edge() {
    for path in PATHS {
        let server = RedisServer::start();
        let cache = crate::cache_on(&server, path).await;
        let all = ["x", "y"];
        let set = |v: &'static [u8], tags: &'static [&'static str]| {
            let cache = cache.clone();
            async move {
                cache
                    .set_bytes("k", v, &SetOptions::new().tags(tags.iter().copied()))
                    .await
            }
        };
        set(b"0", &["x"]).await.unwrap();
        let (a, b) = tokio::join!(set(b"1", &["x", "y"]), set(b"2", &[]));
        a.unwrap();
        b.unwrap();
        assert_eq!(cache.get_bytes("k").await.unwrap(), Some(b"2".to_vec()));
        assert_quiescent(&server, &["k"], &all).await;
        assert!(listed(&cache, "x").await.is_empty(), "{path:?}");
        assert!(listed(&cache, "y").await.is_empty(), "{path:?}");
        // Three writes: the tag comes back in the middle one only.
        let (a, b, c) = tokio::join!(set(b"3", &["y"]), set(b"4", &["x", "y"]), set(b"5", &["y"]));
        a.unwrap();
        b.unwrap();
        c.unwrap();
        assert_eq!(cache.get_bytes("k").await.unwrap(), Some(b"5".to_vec()));
        assert_quiescent(&server, &["k"], &all).await;
        assert!(listed(&cache, "x").await.is_empty(), "{path:?}");
        assert_eq!(listed(&cache, "y").await, ["k"], "{path:?}");
    }
}

/// What each path sends: a new key or a rewrite keeping its tags is one
/// MULTI/EXEC and no script; dropping a tag adds one `unlink.lua` call; the
/// script path is one EVALSHA a write; never KEYS or SCAN.
#[tokio::test]
async fn commandstats_show_the_command_mix_of_each_path() {
    let server = RedisServer::start();
    let tx = crate::cache_on(&server, WritePath::Transaction).await;
    let before = server.command_calls();
    for i in 0..10 {
        let opts = SetOptions::new().tags(["a", "b"]);
        tx.set_bytes(format!("k{i}"), b"v", &opts).await.unwrap();
    }
    let c = calls_since(&server, &before);
    assert_eq!(c.get("exec"), Some(&10), "{c:?}");
    assert_eq!(c.get("multi"), Some(&10), "{c:?}");
    assert_eq!(c.get("set"), Some(&10), "{c:?}");
    // Two tag indexes and the registry per write.
    assert_eq!(c.get("zadd"), Some(&30), "{c:?}");
    assert_eq!(c.get("evalsha"), None, "{c:?}");

    let before = server.command_calls();
    for i in 0..10 {
        let opts = SetOptions::new().tags(["a", "b"]);
        tx.set_bytes(format!("k{i}"), b"w", &opts).await.unwrap();
    }
    let c = calls_since(&server, &before);
    assert_eq!(c.get("evalsha"), None, "rewrites keeping tags: {c:?}");

    // Another handle (as another process) drops tag "b": it cannot know
    // the old tags, so the second step removes the edges.
    let other = crate::cache_on(&server, WritePath::Transaction).await;
    let before = server.command_calls();
    for i in 0..10 {
        let opts = SetOptions::new().tag("a");
        other.set_bytes(format!("k{i}"), b"w", &opts).await.unwrap();
    }
    let c = calls_since(&server, &before);
    assert_eq!(
        c.get("evalsha"),
        Some(&10),
        "one unlink per dropped tag set: {c:?}"
    );
    // One member per key, and the emptied index "b" out of the registry.
    assert_eq!(c.get("zrem"), Some(&11), "{c:?}");
    assert_eq!(tx.tag_len("b").await.unwrap(), 0);

    // The first handle wrote "a" and "b" last; its rewrites to "c" remove
    // both edges inside the transaction ("b" is already gone: a no-op).
    // Index "a" empties with the last key: one second step unfiles it.
    let before = server.command_calls();
    for i in 0..10 {
        let opts = SetOptions::new().tag("c");
        tx.set_bytes(format!("k{i}"), b"x", &opts).await.unwrap();
    }
    let c = calls_since(&server, &before);
    assert_eq!(c.get("evalsha"), Some(&1), "known lost tags: {c:?}");
    // (Commandstats count a script's inner commands too: unlink.lua's
    // EXISTS is the 21st.)
    assert_eq!(c.get("exists"), Some(&21), "{c:?}");
    assert_eq!(tx.tag_len("a").await.unwrap(), 0);
    let reg: Vec<String> = server.cmd(&[b"ZRANGE", b"{test.0}:reg", b"0", b"-1"]);
    assert_eq!(reg, ["c"]);

    let script = crate::cache_on(&server, WritePath::Script).await;
    let before = server.command_calls();
    for i in 0..10 {
        let opts = SetOptions::new().tags(["a", "b"]);
        script
            .set_bytes(format!("s{i}"), b"v", &opts)
            .await
            .unwrap();
    }
    let c = calls_since(&server, &before);
    assert_eq!(c.get("evalsha"), Some(&10), "{c:?}");
    assert_eq!(c.get("exec"), None, "{c:?}");

    let all = server.command_calls();
    assert!(!all.contains_key("keys"), "{all:?}");
    assert!(!all.contains_key("scan"), "{all:?}");
}

#[tokio::test]
async fn overwrite_of_a_malformed_entry_or_a_non_string_key() {
    for path in PATHS {
        let server = RedisServer::start();
        let cache = crate::cache_on(&server, path).await;
        server.cmd::<()>(&[b"SET", b"{test.0}:e:bad", b"\x07not an entry"]);
        server.cmd::<()>(&[b"HSET", b"{test.0}:e:hash", b"f", b"v"]);
        server.cmd::<()>(&[b"RPUSH", b"{test.0}:e:list", b"x"]);
        for key in ["bad", "hash", "list"] {
            let opts = SetOptions::new().tags(["a", "b"]);
            cache.set_bytes(key, b"v", &opts).await.unwrap();
            assert_eq!(cache.get_bytes(key).await.unwrap(), Some(b"v".to_vec()));
        }
        // Batched: a non-string key written twice between new keys.
        server.cmd::<()>(&[b"HSET", b"{test.0}:e:hash2", b"f", b"v"]);
        cache
            .set_many_bytes([
                ("new", b"1".to_vec(), SetOptions::new().tag("b")),
                ("hash2", b"2".to_vec(), SetOptions::new().tag("a")),
                ("new2", b"3".to_vec(), SetOptions::new().tag("b")),
            ])
            .await
            .unwrap();
        assert_eq!(cache.get_bytes("hash2").await.unwrap(), Some(b"2".to_vec()));
        let keys = ["bad", "hash", "list", "new", "hash2", "new2"];
        assert_quiescent(&server, &keys, &["a", "b"]).await;
        let a = listed(&cache, "a").await;
        assert_eq!(a, ["bad", "hash", "hash2", "list"], "{path:?}");
        let b = listed(&cache, "b").await;
        assert_eq!(b, ["bad", "hash", "list", "new", "new2"], "{path:?}");
    }
}

#[tokio::test]
async fn grace_entries_are_written_alike_on_both_paths() {
    for path in PATHS {
        let server = RedisServer::start();
        let cache = crate::cache_on(&server, path).await;
        let opts = SetOptions::new()
            .tag("a")
            .ttl(Duration::from_secs(10))
            .grace(Duration::from_secs(5));
        cache.set_bytes("g", b"v", &opts).await.unwrap();
        let mut con = raw::connect(&server).await;
        let state = raw::snapshot(&mut con, "test", 1, &names(&["g"]), &names(&["a"])).await;
        state.check_quiescent().unwrap();
        let e = state.entry(b"g").unwrap();
        let len = u32::from_be_bytes([e.bytes[2], e.bytes[3], e.bytes[4], e.bytes[5]]) as usize;
        let mut field = [0u8; 8];
        field.copy_from_slice(&e.bytes[6 + len..14 + len]);
        let fresh = u64::from_be_bytes(field) as i64;
        assert_eq!(
            e.expire_at - fresh,
            5000,
            "{path:?}: expiry = fresh-until + grace"
        );
        let left = e.expire_at - state.now_ms as i64;
        assert!(
            (14_000..=15_000).contains(&left),
            "{path:?}: {left} ms left"
        );
        assert_eq!(cache.get_bytes("g").await.unwrap(), Some(b"v".to_vec()));
    }
}

/// The transaction computes expiries from its estimate of Redis' clock:
/// never later than asked, and the index scores the same number.
#[tokio::test]
async fn transaction_expiry_is_never_later_than_asked() {
    let server = RedisServer::start();
    let cache = crate::cache_on(&server, WritePath::Transaction).await;
    // Many writes at varied sub-ms phases: the clock estimate used to be
    // up to 1 ms ahead (whole-ms readings), seen as a PTTL of 501 for a
    // 500 ms TTL in the Python suite.
    for i in 0..200 {
        let opts = SetOptions::new().tag("a").ttl(Duration::from_secs(10));
        cache.set_bytes(format!("k{i}"), b"v", &opts).await.unwrap();
        let pttl: i64 = server.cmd(&[b"PTTL", format!("{{test.0}}:e:k{i}").as_bytes()]);
        assert!((9_000..=10_000).contains(&pttl), "{pttl}");
        tokio::time::sleep(Duration::from_micros(300 * (i % 7))).await;
    }
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_quiescent(&server, &keys, &["a"]).await;
}

/// A large old value comes back whole from `SET … GET`: its tags are
/// still read exactly. (Large new values go through the script.)
#[tokio::test]
async fn overwrite_of_a_large_old_value_unlinks_its_lost_tags() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .compression(tagcache::Compression::none())
        .build()
        .await
        .unwrap();
    let big = vec![7u8; 1 << 20];
    let many: Vec<String> = (0..300).map(|i| format!("long-tag-name-{i:04}")).collect();
    cache
        .set_bytes("k", &big, &SetOptions::new().tags(&many))
        .await
        .unwrap();
    let before = server.command_calls();
    cache
        .set_bytes("k", b"small", &SetOptions::new().tag("long-tag-name-0001"))
        .await
        .unwrap();
    let c = calls_since(&server, &before);
    assert_eq!(c.get("exec"), Some(&1), "{c:?}");
    assert_eq!(c.get("evalsha"), Some(&1), "{c:?}");
    let tags: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_quiescent(&server, &["k"], &tags).await;
    assert_eq!(cache.tag_len("long-tag-name-0000").await.unwrap(), 0);
    assert_eq!(cache.tag_len("long-tag-name-0001").await.unwrap(), 1);
}

/// `unlink.lua` reads the entry header itself (it runs without lib.lua):
/// a rewrite by another handle that keeps a tag section longer than the
/// first 256 bytes it reads takes its second read, and removes exactly the
/// edges the rewrite dropped.
#[tokio::test]
async fn another_handles_rewrite_keeping_a_long_tag_section_unlinks_only_what_it_dropped() {
    let server = RedisServer::start();
    let first = crate::cache_on(&server, WritePath::Transaction).await;
    let other = crate::cache_on(&server, WritePath::Transaction).await;
    let many: Vec<String> = (0..60).map(|i| format!("long-tag-name-{i:04}")).collect();
    first
        .set_bytes("k", b"v", &SetOptions::new().tags(&many))
        .await
        .unwrap();
    let before = server.command_calls();
    other
        .set_bytes("k", b"w", &SetOptions::new().tags(&many[10..]))
        .await
        .unwrap();
    let c = calls_since(&server, &before);
    assert_eq!(c.get("evalsha"), Some(&1), "one unlink: {c:?}");
    assert_eq!(
        c.get("getrange"),
        Some(&2),
        "head, then the long section: {c:?}"
    );
    // Ten members, and the ten emptied indexes out of the registry.
    assert_eq!(c.get("zrem"), Some(&20), "{c:?}");
    let tags: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_quiescent(&server, &["k"], &tags).await;
    for (i, t) in many.iter().enumerate() {
        let expected = u64::from(i >= 10);
        assert_eq!(first.tag_len(t).await.unwrap(), expected, "{t}");
    }
}

#[tokio::test]
async fn thousands_of_tags_are_written_and_dropped_exactly() {
    for path in PATHS {
        let server = RedisServer::start();
        let cache = crate::cache_on(&server, path).await;
        let many: Vec<String> = (0..4000).map(|i| format!("t{i}")).collect();
        cache
            .set_bytes("k", b"v", &SetOptions::new().tags(&many))
            .await
            .unwrap();
        cache
            .set_bytes("j", b"v", &SetOptions::new().tags(&many[..10]))
            .await
            .unwrap();
        assert_eq!(cache.tags("k").await.unwrap().map(|t| t.len()), Some(4000));
        cache
            .set_bytes("k", b"w", &SetOptions::new().tags(&many[3990..]))
            .await
            .unwrap();
        let tags: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_quiescent(&server, &["k", "j"], &tags).await;
        assert_eq!(cache.tag_len("t5").await.unwrap(), 1, "{path:?}");
        assert_eq!(cache.tag_len("t100").await.unwrap(), 0, "{path:?}");
        assert_eq!(cache.tag_len("t3995").await.unwrap(), 1, "{path:?}");
        // Emptied indexes are unfiled: 10 tags of j + 10 of k remain.
        let reg: u64 = server.cmd(&[b"ZCARD", b"{test.0}:reg"]);
        assert_eq!(reg, 20, "{path:?}");
    }
}

/// The window between the transaction and its unlink (or a process killed
/// in it): the entry no longer carries a tag its old index still lists.
/// Invalidating that tag must not delete the entry; the next write of the
/// key, or its expiry, removes the stale member.
#[tokio::test]
async fn a_stale_edge_left_between_the_two_steps_never_deletes_the_entry() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache
        .set_bytes("k", b"v", &SetOptions::new().tags(["old", "keep"]))
        .await
        .unwrap();
    cache
        .set_bytes("model", b"w", &SetOptions::new().tag("keep"))
        .await
        .unwrap();
    // What the transaction leaves before unlink.lua runs: the entry's new
    // bytes (tag "keep" only), its member still in t:old.
    let bytes: Vec<u8> = server.cmd(&[b"GET", b"{test.0}:e:model"]);
    server.cmd::<()>(&[b"SET", b"{test.0}:e:k", &bytes, b"KEEPTTL"]);
    assert_eq!(cache.tag_len("old").await.unwrap(), 1);
    assert_eq!(cache.invalidate_tag("old").await.unwrap(), 0);
    assert_eq!(cache.get_bytes("k").await.unwrap(), Some(b"w".to_vec()));
    assert_eq!(cache.tag_len("old").await.unwrap(), 0);
    assert_quiescent(&server, &["k", "model"], &["old", "keep"]).await;
}

#[tokio::test]
async fn guarded_stores_are_transactions_and_a_trim_limit_runs_set_lua() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let before = server.command_calls();
    let got = cache
        .get_or_compute("rt", &SetOptions::new().tag("a"), || async {
            Ok::<_, std::convert::Infallible>(5u32)
        })
        .await
        .unwrap();
    assert_eq!(got.value, 5);
    let c = calls_since(&server, &before);
    // The store's fence check: guard.lua inside the transaction.
    assert_eq!(c.get("evalsha"), Some(&1), "{c:?}");
    assert_eq!(c.get("zmscore"), Some(&1), "{c:?}");
    assert_eq!(c.get("exec"), Some(&1), "{c:?}");
    let trimmed = crate::builder(&server).trim_limit(4).build().await.unwrap();
    let before = server.command_calls();
    trimmed
        .set_bytes("t", b"v", &SetOptions::new().tag("a"))
        .await
        .unwrap();
    let c = calls_since(&server, &before);
    assert_eq!(
        c.get("evalsha"),
        Some(&1),
        "a trim limit needs the script: {c:?}"
    );
    assert_quiescent(&server, &["rt", "t"], &["a"]).await;
}

/// At maxmemory Redis refuses the transaction as a whole (`EXECABORT`:
/// its `SET` was refused when queued): the script path then reports
/// `OutOfMemory`, and the old entry and its edges are untouched. (Writes
/// that keep their tags: one that drops a tag may succeed, as it always
/// did, because `set.lua` removes the old edge first and Redis lets a
/// script that already freed memory go on.)
#[tokio::test]
async fn a_full_redis_refuses_the_whole_transaction() {
    let server = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    let cache = crate::cache_on(&server, WritePath::Transaction).await;
    let value: Vec<u8> = (0..2000u64)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    for k in &keys {
        cache
            .set_bytes(k, &value, &SetOptions::new().tag("a"))
            .await
            .unwrap();
    }
    let info: String = server.cmd(&[b"INFO", b"memory"]);
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let limit = (used / 2).to_string();
    server.cmd::<()>(&[b"CONFIG", b"SET", b"maxmemory", limit.as_bytes()]);
    let e = cache
        .set_bytes("k1", b"new", &SetOptions::new().tag("a"))
        .await
        .unwrap_err();
    assert!(e.is_out_of_memory(), "{e:?}");
    let e = cache
        .set_many_bytes([
            ("k2", b"x".to_vec(), SetOptions::new().tag("a")),
            ("fresh", b"y".to_vec(), SetOptions::new().tag("b")),
        ])
        .await
        .unwrap_err();
    assert!(e.is_out_of_memory(), "{e:?}");
    assert_eq!(cache.get_bytes("k1").await.unwrap(), Some(value.clone()));
    assert_eq!(cache.tag_len("b").await.unwrap(), 0);
    let mut all: Vec<&str> = keys.iter().map(String::as_str).collect();
    all.push("fresh");
    assert_quiescent(&server, &all, &["a", "b"]).await;
}

/// On a cluster each bucket's transaction goes to its slot's node (redis-rs
/// routes a `MULTI`/`EXEC` pipeline by its first key): no write falls back
/// to the script, and the layout is exact.
#[tokio::test]
async fn on_a_cluster_writes_are_transactions_on_their_bucket_node() {
    let cluster = tagcache_testkit::RedisCluster::start(3, 0);
    let cache = Cache::builder("")
        .cluster(cluster.seeds())
        .namespace("test")
        .buckets(16)
        .auto_sweep(None)
        .default_ttl(Duration::from_secs(600))
        .response_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let before = cluster.command_calls();
    for i in 0..20 {
        let opts = SetOptions::new().tags(["a", "b"]);
        cache.set_bytes(format!("k{i}"), b"v", &opts).await.unwrap();
    }
    // 20 keys over 16 buckets in one batch: one transaction per bucket.
    let items = (20..60).map(|i| (format!("k{i}"), b"w".to_vec(), SetOptions::new().tag("a")));
    cache.set_many_bytes(items).await.unwrap();
    let after = cluster.command_calls();
    let delta = |c: &str| after.get(c).copied().unwrap_or(0) - before.get(c).copied().unwrap_or(0);
    assert_eq!(delta("set"), 60);
    assert_eq!(delta("evalsha"), 0, "no fallback to set.lua");
    assert!(delta("exec") > 20, "{}", delta("exec"));
    // Dropping a tag: the unlink script runs on the bucket's node.
    cache
        .set_bytes("k1", b"x", &SetOptions::new().tag("a"))
        .await
        .unwrap();
    assert_eq!(cache.tag_len("b").await.unwrap(), 19);
    assert_eq!(cache.tag_len("a").await.unwrap(), 60);
    assert_eq!(cache.invalidate_tag("b").await.unwrap(), 19);
    assert_eq!(cache.get_bytes("k1").await.unwrap(), Some(b"x".to_vec()));
    assert_eq!(cache.invalidate_tag("a").await.unwrap(), 41);
}

/// A guarded store refused after another writer rewrote the key during
/// the load: on the transaction path the store is written and undone in
/// one transaction (the other writer's value goes too: a miss), on the
/// script path it is never written. Either way no index keeps an edge of
/// the key, and no reader ever saw the refused value.
#[tokio::test]
async fn a_refused_store_over_a_value_written_during_the_load_leaves_exact_indexes() {
    for path in PATHS {
        let server = RedisServer::start();
        let cache = crate::cache_on(&server, path).await;
        let other = crate::cache_on(&server, path).await;
        let got = cache
            .get_or_compute("k", &SetOptions::new().tags(["y", "z"]), || async {
                other
                    .set_bytes("k", b"theirs", &SetOptions::new().tags(["old", "z"]))
                    .await?;
                other.invalidate_tag("y").await?;
                Ok::<_, tagcache::Error>(7u32)
            })
            .await
            .unwrap();
        assert_eq!(got.source, tagcache::Source::LoadedNotStored, "{path:?}");
        let left = cache.get_bytes("k").await.unwrap();
        match path {
            WritePath::Transaction => assert_eq!(left, None),
            _ => assert_eq!(left.as_deref(), Some(&b"theirs"[..]), "{path:?}"),
        }
        assert_quiescent(&server, &["k"], &["old", "y", "z"]).await;
        if left.is_none() {
            for tag in ["old", "y", "z"] {
                assert_eq!(cache.tag_len(tag).await.unwrap(), 0, "{tag} {path:?}");
            }
            let reg: u64 = server.cmd(&[b"ZCARD", b"{test.0}:reg"]);
            assert_eq!(reg, 0, "emptied indexes are unfiled");
        }
    }
}

/// Redis lost its scripts (`SCRIPT FLUSH`, a restart with persistence, a
/// failover): `guard.lua` fails inside the transaction with `NOSCRIPT`.
/// The store is then checked right after, by its own call, and a fenced
/// one is still removed.
#[tokio::test]
async fn a_guard_that_redis_lost_still_refuses_the_store() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let got = cache
        .get_or_compute("k", &SetOptions::new().tag("y"), || async {
            cache.invalidate_tag("y").await?;
            server.cmd::<()>(&[b"SCRIPT", b"FLUSH"]);
            Ok::<_, tagcache::Error>(7u32)
        })
        .await
        .unwrap();
    assert_eq!(got.source, tagcache::Source::LoadedNotStored);
    let errors: String = server.cmd(&[b"INFO", b"errorstats"]);
    assert!(errors.contains("errorstat_NOSCRIPT"), "{errors}");
    assert_eq!(cache.get_bytes("k").await.unwrap(), None);
    assert_eq!(cache.tag_len("y").await.unwrap(), 0);
    // And an unfenced store after the flush is kept.
    let got = cache
        .get_or_compute("j", &SetOptions::new().tag("y"), || async {
            server.cmd::<()>(&[b"SCRIPT", b"FLUSH"]);
            Ok::<_, tagcache::Error>(8u32)
        })
        .await
        .unwrap();
    assert_eq!(got.source, tagcache::Source::Loaded);
    assert_eq!(cache.get::<u32>("j").await.unwrap(), Some(8));
    assert_quiescent(&server, &["k", "j"], &["y"]).await;
}

/// Writes of one key queued together by concurrent calls apply in the
/// order they were queued (the last one wins, with exactly its edges),
/// however the write queue cuts them into batches and however many
/// batches it has in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_of_one_key_apply_in_queue_order_across_batches() {
    queued_writes_apply_in_order(WritePath::Transaction, 3000).await;
}

/// As above on the script path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_script_writes_of_one_key_stay_in_order_while_a_batch_retries() {
    queued_writes_apply_in_order(WritePath::Script, 1500).await;
}

/// A batch that holds a value too large for a transaction goes as a
/// transaction and then a script call; a later write of that key, cut
/// into the next batch, must not overtake it while both are in flight.
/// Each round queues, at once, seven small writes of other keys, key `r`
/// large, then key `r` small (on one thread, so the queue sees all nine
/// and cuts them 8 + 1): the small one must win.
#[tokio::test]
async fn a_write_queued_behind_a_two_step_batch_of_its_key_never_overtakes_it() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    // Incompressible, so it stays over the transaction's value limit.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let large: Vec<u8> = (0..70_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for r in 0..20 {
        let small = crate::second_write_won(&cache, r, &large, b"small").await;
        assert!(small, "key r{r}: the large write overtook the later one");
    }
}

async fn queued_writes_apply_in_order(path: WritePath, writes: usize) {
    let server = RedisServer::start();
    let cache = crate::cache_on(&server, path).await;
    let keys: Vec<String> = (0..12).map(|k| format!("k{k}")).collect();
    let tags = ["t0", "t1", "t2"];
    let value = |i: usize| i.to_string().into_bytes();
    let calls = (0..writes).map(|i| {
        let (cache, key) = (&cache, &keys[i % keys.len()]);
        let opts = SetOptions::new().tag(tags[(i / keys.len()) % tags.len()]);
        let v = value(i);
        async move { cache.set_bytes(key, v, &opts).await }
    });
    crate::queued_in_order(calls).await;
    for (k, key) in keys.iter().enumerate() {
        let last = writes - keys.len() + k;
        let got = cache.get_bytes(key).await.unwrap().unwrap();
        assert!(got == value(last), "{key}: not the last write {last}");
        let tag = tags[(last / keys.len()) % tags.len()];
        assert_eq!(
            cache.tags(key).await.unwrap(),
            Some(vec![tag.as_bytes().to_vec()]),
            "{key}"
        );
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_quiescent(&server, &key_refs, &tags).await;
}
