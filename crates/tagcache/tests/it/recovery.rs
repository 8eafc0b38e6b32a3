//! The operations that restore health always work: a malformed entry never
//! blocks its tags, its key or the sweep (issue 9, finding 4), and a full
//! Redis still lets everyone build, read, delete, invalidate and prune
//! (finding 3).

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tagcache::{ErrorKind, SetOptions};

use crate::support::RedisServer;

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
