//! The operations that restore health always work: a malformed entry never
//! blocks its tags, its key or the sweep (issue 9, finding 4), and a full
//! Redis still lets everyone build, read, delete, invalidate and prune
//! (finding 3).

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::time::Duration;

use tagcache::{BypassReason, ErrorKind, SetOptions, Written};

use tagcache_testkit::RedisServer;

/// The bytes of the reproduction: a tag section of length 1 (a
/// u16 length needs 2).
const ODD: &[u8] = b"\x01\x00\x00\x00\x00\x01X";

fn entry_key(key: &str) -> Vec<u8> {
    format!("{{test.0}}:e:{key}").into_bytes()
}

#[tokio::test]
async fn malformed_entry_does_not_block_its_tag() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let f = SetOptions::new().tag("F");
    cache.set_bytes("odd", b"v", &f).await.unwrap();
    for i in 0..5 {
        cache
            .set_bytes(
                format!("good{i}"),
                b"v",
                &SetOptions::new().tag("F").tag("G"),
            )
            .await
            .unwrap();
    }
    server.cmd::<()>(&[b"SET", &entry_key("odd"), ODD]);

    // Reads and `tags` report the same codec error.
    let read = cache.get_bytes("odd").await.unwrap_err();
    assert_eq!(read.kind(), ErrorKind::Codec, "{read:?}");
    let tags = cache.tags("odd").await.unwrap_err();
    assert_eq!(tags.kind(), ErrorKind::Codec, "{tags:?}");

    // The invalidation deletes every entry of the tag, the malformed one
    // included, and leaves no snapshot behind.
    assert_eq!(cache.invalidate_tag("F").await.unwrap(), 6);
    assert_eq!(cache.get_bytes("odd").await.unwrap(), None);
    for i in 0..5 {
        assert_eq!(cache.get_bytes(format!("good{i}")).await.unwrap(), None);
    }
    assert_eq!(cache.tag_len("G").await.unwrap(), 0);
    assert!(cache.prune().await.unwrap().complete);
    assert_eq!(crate::keys_besides_fences(&server), 1, "only the meta key");

    // Later writes under the tag are invalidated as usual.
    cache.set_bytes("later", b"v", &f).await.unwrap();
    assert_eq!(cache.invalidate_tag("F").await.unwrap(), 1);
}

#[tokio::test]
async fn malformed_entries_can_be_deleted_overwritten_and_pruned() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let t = SetOptions::new().tag("T").tag("U");
    for k in ["short", "hash", "version", "over"] {
        cache.set_bytes(k, b"v", &t).await.unwrap();
    }
    server.cmd::<()>(&[b"SET", &entry_key("short"), b"\x01\x00"]);
    server.cmd::<()>(&[b"DEL", &entry_key("hash")]);
    server.cmd::<()>(&[b"HSET", &entry_key("hash"), b"f", b"v"]);
    server.cmd::<()>(&[b"SET", &entry_key("version"), b"\x07\x00\x00\x00\x00\x00v"]);
    server.cmd::<()>(&[b"SET", &entry_key("over"), ODD]);

    for k in ["short", "hash", "version", "over"] {
        let e = cache.get_bytes(k).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Codec, "get {k}: {e:?}");
        let e = cache.tags(k).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Codec, "tags {k}: {e:?}");
    }
    // A write over a malformed entry works (its old tags count as none).
    cache
        .set_bytes("over", b"new", &SetOptions::new().tag("V"))
        .await
        .unwrap();
    assert_eq!(
        cache.get_bytes("over").await.unwrap(),
        Some(b"new".to_vec())
    );
    assert_eq!(cache.tags("over").await.unwrap(), Some(vec![b"V".to_vec()]));

    assert!(cache.delete("short").await.unwrap());
    assert!(cache.delete("hash").await.unwrap());
    assert!(!cache.delete("hash").await.unwrap());
    assert_eq!(cache.invalidate_tags(["T", "U"]).await.unwrap(), 1);
    assert_eq!(cache.get_bytes("version").await.unwrap(), None);
    // `over` is live with tag V only: its stale edges in T and U went with
    // the invalidation (they were in the snapshot), the entry stays.
    assert_eq!(
        cache.get_bytes("over").await.unwrap(),
        Some(b"new".to_vec())
    );
    cache.prune().await.unwrap();
    assert_eq!(
        cache.keys_with_tag("V").collect().await.unwrap(),
        vec![b"over".to_vec()]
    );
    assert_eq!(cache.tag_len("T").await.unwrap(), 0);
    assert_eq!(cache.tag_len("U").await.unwrap(), 0);
}

#[tokio::test]
async fn a_malformed_group_does_not_block_its_tag() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    for (owner, tag) in [("1", "G"), ("2", "G"), ("3", "G")] {
        let g = cache.group("branches", owner).unwrap().tag(tag);
        g.set("main", &true).await.unwrap();
    }
    let key = |owner: &str| format!("{{test.0}}:e:\x00gbranches:{owner}").into_bytes();
    // A tag section a u16 length runs past; a hash without one; a string
    // where the hash belongs.
    server.cmd::<()>(&[b"HSET", &key("1"), b"\x00tags", b"\x00\x09G"]);
    server.cmd::<()>(&[b"HDEL", &key("2"), b"\x00tags"]);
    server.cmd::<()>(&[b"DEL", &key("3")]);
    server.cmd::<()>(&[b"SET", &key("3"), b"x"]);
    assert_eq!(cache.invalidate_tag("G").await.unwrap(), 3);
    for owner in ["1", "2", "3"] {
        assert_eq!(server.cmd::<u64>(&[b"EXISTS", &key(owner)]), 0);
    }
    assert!(cache.prune().await.unwrap().complete);
    assert_eq!(crate::keys_besides_fences(&server), 1, "only the meta key");
}

/// Bytes stored raw under an entry key: anything, or a plausible header
/// (version 1, any flags, a section length near the real size) followed by
/// anything, which reaches the deeper checks.
fn stored_bytes() -> impl Strategy<Value = Vec<u8>> {
    let headed = (any::<u8>(), 0u32..24, vec(any::<u8>(), 0..24)).prop_map(|(flags, len, rest)| {
        let mut b = vec![1, flags & 0x3f];
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&rest);
        b
    });
    prop_oneof![vec(any::<u8>(), 0..16), headed]
}

/// Per key: its tags (a subset of a, b, c) and, optionally, raw bytes
/// written over its entry afterwards.
fn fuzz_case() -> impl Strategy<Value = Vec<(u8, Option<Vec<u8>>)>> {
    vec((1u8..8, proptest::option::of(stored_bytes())), 1..8)
}

async fn run_fuzz_case(
    server: &RedisServer,
    case: &[(u8, Option<Vec<u8>>)],
) -> Result<(), TestCaseError> {
    server.cmd::<()>(&[b"FLUSHALL"]);
    let cache = crate::cache(server).await;
    let names = ["a", "b", "c"];
    for (i, (mask, _)) in case.iter().enumerate() {
        let mut opts = SetOptions::new();
        for (bit, name) in names.iter().enumerate() {
            if mask & (1 << bit) != 0 {
                opts = opts.tag(*name);
            }
        }
        cache.set_bytes(format!("k{i}"), b"v", &opts).await.unwrap();
    }
    for (i, (_, bytes)) in case.iter().enumerate() {
        if let Some(b) = bytes {
            server.cmd::<()>(&[b"SET", &entry_key(&format!("k{i}")), b]);
        }
    }
    let fail = |what: &str, e: tagcache::Error| TestCaseError::fail(format!("{what}: {e:?}"));
    // Every operation that removes succeeds, whatever the bytes.
    cache.delete("k0").await.map_err(|e| fail("delete", e))?;
    cache
        .invalidate_tag("a")
        .await
        .map_err(|e| fail("invalidate a", e))?;
    cache.prune().await.map_err(|e| fail("prune", e))?;
    cache
        .invalidate_tags(["b", "c"])
        .await
        .map_err(|e| fail("invalidate b, c", e))?;
    cache.prune().await.map_err(|e| fail("prune", e))?;
    // Every key was tagged, so every malformed one went; what is left was
    // fuzzed into a valid entry (with other tags).
    let keys: Vec<String> = (0..case.len()).map(|i| format!("k{i}")).collect();
    for k in &keys {
        cache
            .tags(k)
            .await
            .map_err(|e| fail(&format!("{k} survived"), e))?;
    }
    cache
        .delete_many(&keys)
        .await
        .map_err(|e| fail("delete_many", e))?;
    cache.prune().await.map_err(|e| fail("prune", e))?;
    prop_assert_eq!(crate::keys_besides_fences(server), 1, "only the meta key");
    Ok(())
}

#[test]
fn fuzzed_entry_bytes_never_make_removal_fail() {
    let mut config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 48;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&fuzz_case(), |case| {
        rt.block_on(run_fuzz_case(&server, &case))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// `used_memory` from `INFO memory`.
fn used_memory(server: &RedisServer) -> u64 {
    let info: String = server.cmd(&[b"INFO", b"memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory")
}

/// Makes Redis full: `maxmemory` well below what it uses now.
fn fill_up(server: &RedisServer) {
    let limit = (used_memory(server) / 2).to_string();
    server.cmd::<()>(&[b"CONFIG", b"SET", b"maxmemory", limit.as_bytes()]);
}

#[tokio::test]
async fn full_redis_does_not_lock_everyone_out() {
    let server = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    let cache = crate::cache(&server).await;
    // Incompressible, so the entries hold real memory.
    let value: Vec<u8> = (0..2000u64)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for i in 0..200 {
        let opts = SetOptions::new().tag(format!("t{}", i % 4)).tag("all");
        cache
            .set_bytes(format!("k{i}"), &value, &opts)
            .await
            .unwrap();
    }
    // An index due in the registry whose trim removes nothing (its
    // earliest member was deleted): re-filing it is the sweep script's
    // first write.
    let short = SetOptions::new().tag("due").ttl(Duration::from_millis(100));
    cache.set_bytes("short", b"v", &short).await.unwrap();
    cache
        .set_bytes("long", b"v", &SetOptions::new().tag("due"))
        .await
        .unwrap();
    // (On a slow machine it may have expired already: the same for the
    // registry.)
    cache.delete("short").await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;

    fill_up(&server);
    let before = used_memory(&server);

    // Only memory-growing writes fail.
    let e = cache
        .set_bytes("more", &value, &SetOptions::new().tag("t0"))
        .await
        .unwrap_err();
    assert!(e.is_out_of_memory(), "{e:?}");
    assert_eq!(
        cache
            .fail_safe()
            .set_bytes("more", &value, &SetOptions::new())
            .await
            .unwrap(),
        Written::Skipped(BypassReason::OutOfMemory)
    );

    // A process starting now can build, read, delete, invalidate, prune.
    let fresh = crate::cache(&server).await;
    assert_eq!(fresh.get_bytes("k1").await.unwrap(), Some(value.clone()));
    assert_eq!(fresh.tags("k1").await.unwrap().map(|t| t.len()), Some(2));
    assert_eq!(fresh.tag_len("t1").await.unwrap(), 50);
    assert_eq!(fresh.keys_with_tag("t2").collect().await.unwrap().len(), 50);
    assert!(fresh.delete("k1").await.unwrap());
    assert!(!fresh.delete("absent").await.unwrap());
    assert_eq!(fresh.invalidate_tag("t1").await.unwrap(), 49);
    let report = fresh.prune().await.unwrap();
    assert!(report.complete, "{report:?}");
    assert!(report.indexes_visited >= 1, "{report:?}");
    assert_eq!(fresh.invalidate_tags(["t0", "t2"]).await.unwrap(), 100);
    let after = used_memory(&server);
    assert!(after < before, "removing freed memory: {before} -> {after}");
    assert_eq!(fresh.get_bytes("k3").await.unwrap(), Some(value.clone()));
    assert_eq!(fresh.get_bytes("k0").await.unwrap(), None);
}

#[tokio::test]
async fn volatile_eviction_storm_leaves_no_dead_members_after_prune() {
    let server =
        RedisServer::start_with(&["--maxmemory", "4mb", "--maxmemory-policy", "volatile-lru"]);
    let cache = crate::cache(&server).await;
    let value = vec![1u8; 300];
    let n = 20_000;
    let mut refused = 0;
    for start in (0..n).step_by(200) {
        let batch = (start..start + 200).map(|i| {
            (
                format!("k{i}"),
                value.clone(),
                SetOptions::new().tags(["a", "b"]),
            )
        });
        if let Err(e) = cache.set_many_bytes(batch).await {
            assert!(e.is_out_of_memory(), "{e:?}");
            refused += 1;
        }
    }
    let evicted = {
        let info: String = server.cmd(&[b"INFO", b"stats"]);
        info.lines()
            .find_map(|l| l.strip_prefix("evicted_keys:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap()
    };
    let members =
        |tag: &str| -> u64 { server.cmd(&[b"ZCARD", format!("{{test.0}}:t:{tag}").as_bytes()]) };
    let live = || -> u64 {
        let mut c = server.conn();
        let mut pipe = redis::pipe();
        for i in 0..n {
            pipe.exists(format!("{{test.0}}:e:k{i}"));
        }
        let present: Vec<bool> = pipe.query(&mut c).unwrap();
        present.into_iter().filter(|p| *p).count() as u64
    };
    let dead_before = members("a") - live();
    eprintln!(
        "{n} writes: {evicted} evictions, {refused} batches refused, {} live, {dead_before} dead members per index",
        live()
    );
    assert!(
        evicted > 0 && dead_before > 1000,
        "the storm left dead members"
    );

    assert!(
        refused > 0,
        "the storm filled Redis with dead index members"
    );
    // A process starting now can build and prune.
    let cache = crate::cache(&server).await;
    let report = cache.prune().await.unwrap();
    eprintln!("prune: {report:?}");
    assert!(report.complete, "{report:?}");
    let live = live();
    assert_eq!(members("a"), live, "index a holds exactly the live entries");
    assert_eq!(members("b"), live, "index b holds exactly the live entries");
    assert!(report.gone_members_removed >= 2 * dead_before, "{report:?}");
    // Memory is back: writes work again.
    cache
        .set_bytes("after", &value, &SetOptions::new().tag("a"))
        .await
        .unwrap();
}

/// Everything a namespace can hold: tagged, untagged, path, scoped and
/// group entries, with 1 and 16 buckets.
async fn fill_namespace(cache: &tagcache::Cache, value: &[u8]) -> u64 {
    for i in 0..60 {
        let opts = SetOptions::new().tag(format!("t{}", i % 3));
        cache
            .set_bytes(format!("tagged{i}"), value, &opts)
            .await
            .unwrap();
        cache
            .set_bytes(format!("flat{i}"), value, &SetOptions::new())
            .await
            .unwrap();
        cache
            .set_bytes(format!("org:{}:p{i}", i % 4), value, &SetOptions::new())
            .await
            .unwrap();
    }
    // (Scoped writes are the same entries as these: one key, one entry.)
    for i in 0..10 {
        cache
            .set_bytes(format!("dsr:pr-1:s{i}"), value, &SetOptions::new())
            .await
            .unwrap();
    }
    let group = cache.group("branches", 7).unwrap();
    group.set("main", &true).await.unwrap();
    3 * 60 + 10 + 1
}

#[tokio::test]
async fn clear_works_at_maxmemory_and_frees_it() {
    for buckets in [1u16, 16] {
        let server = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
        let cache = crate::cache_with_buckets(&server, buckets).await;
        let value: Vec<u8> = (0..2000u64)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        // Once filled and cleared first, so the scripts are loaded (their
        // cache and Lua's memory count in `used_memory`).
        fill_namespace(&cache, &value).await;
        cache.clear().await.unwrap();
        let empty = used_memory(&server);
        let n = fill_namespace(&cache, &value).await;
        // Full, but by half of what the entries hold, so clearing them
        // makes room again.
        let limit = (empty + (used_memory(&server) - empty) / 2).to_string();
        server.cmd::<()>(&[b"CONFIG", b"SET", b"maxmemory", limit.as_bytes()]);
        let e = cache
            .set_bytes("more", &value, &SetOptions::new().tag("t0"))
            .await
            .unwrap_err();
        assert!(e.is_out_of_memory(), "{e:?}");
        let before = used_memory(&server);

        // A process starting now clears the full namespace.
        let fresh = crate::cache_with_buckets(&server, buckets).await;
        assert_eq!(fresh.clear().await.unwrap(), n, "{buckets} buckets");
        assert!(used_memory(&server) < before, "{buckets} buckets");
        assert_eq!(fresh.get_bytes("tagged1").await.unwrap(), None);
        assert_eq!(fresh.get_bytes("org:1:p1").await.unwrap(), None);
        assert_eq!(crate::keys_besides_fences(&server), 1, "only the meta key");
        // The freed memory takes writes again.
        fresh
            .set_bytes("more", &value, &SetOptions::new().tag("t0"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn clear_removes_malformed_entries_and_groups() {
    for buckets in [1u16, 16] {
        let server = RedisServer::start();
        let cache = crate::cache_with_buckets(&server, buckets).await;
        let n = fill_namespace(&cache, b"v").await;
        // Four kinds of damage, under each kind of index (a tag, the
        // all-entries edge, a path prefix, a group's): bytes that are no
        // entry, another type at an entry key, garbage, a group hash
        // without its tag section.
        let bucket_of = |key: &str| {
            // The bucket is CRC16 of the key bytes mod B (layout doc): find
            // the entry key among the buckets rather than recompute it.
            (0..buckets)
                .map(|b| format!("{{test.{b}}}:e:{key}").into_bytes())
                .find(|k| server.cmd::<u64>(&[b"EXISTS", k]) == 1)
                .unwrap_or_else(|| panic!("no entry key for {key}"))
        };
        let tagged = bucket_of("tagged1");
        server.cmd::<()>(&[b"SET", &tagged, ODD]);
        let flat = bucket_of("flat2");
        server.cmd::<()>(&[b"DEL", &flat]);
        server.cmd::<()>(&[b"RPUSH", &flat, b"x"]);
        let path = bucket_of("org:3:p3");
        server.cmd::<()>(&[b"SET", &path, b"garbage"]);
        let group = bucket_of("\x00gbranches:7");
        server.cmd::<()>(&[b"HDEL", &group, b"\x00tags"]);

        assert_eq!(cache.clear().await.unwrap(), n, "{buckets} buckets");
        for key in ["tagged1", "flat2", "org:3:p3", "tagged2", "dsr:pr-1:s1"] {
            assert!(
                !cache.exists(key).await.unwrap(),
                "{key}, {buckets} buckets"
            );
        }
        assert!(cache.prune().await.unwrap().complete);
        assert_eq!(crate::keys_besides_fences(&server), 1, "only the meta key");
    }
}
