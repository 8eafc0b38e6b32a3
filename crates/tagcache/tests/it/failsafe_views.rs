//! The fail-safe view of paths, scopes and groups: with Redis killed every
//! call answers fast with Bypassed / Skipped / Journaled; a journaled prefix
//! invalidation or scope clear is replayed when Redis answers, and reads of
//! every key it covers bypass the cache meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagcache::{BypassReason, Fetched, KeyPath, Lookup, Removal, SetOptions, Written};

use tagcache_testkit::RedisServer;

use crate::fail_safe_cache;

/// What one fail-safe call may take with Redis down (a busy machine).
const FAST: Duration = Duration::from_millis(250);

/// The longest call [`fast`] timed, in µs.
static LONGEST_US: AtomicU64 = AtomicU64::new(0);

/// Runs one call, asserting it answered within [`FAST`].
async fn fast<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    let took = started.elapsed();
    assert!(took < FAST, "{what} took {took:?}");
    LONGEST_US.fetch_max(took.as_micros() as u64, Ordering::Relaxed);
    out
}

async fn wait_for_replay(fs: &tagcache::FailSafeCache) {
    let started = Instant::now();
    while fs.pending() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "journal not replayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_safe_paths_scopes_and_groups_answer_fast_with_redis_killed() {
    let mut server = RedisServer::start();
    let cache = fail_safe_cache(&server).await;
    let fs = cache.fail_safe();
    let path = KeyPath::from(["org", "7", "prj", "3"]);
    let org = KeyPath::from(["org", "7"]);
    let scope = fs.scope(["dsr", "pr-1"]).unwrap();
    let group = fs.group("flags", 7).unwrap().tag("org:7");
    assert_eq!(
        fs.set_path(&path, &1u32, &SetOptions::new()).await.unwrap(),
        Written::Stored
    );
    assert_eq!(
        scope
            .set("a", &1u32, &SetOptions::new().ttl(Duration::from_secs(60)))
            .await
            .unwrap(),
        Written::Stored
    );
    assert_eq!(group.set("main", &true).await.unwrap(), Written::Stored);
    assert_eq!(fs.get_path::<u32>(&path).await.unwrap(), Lookup::Hit(1));
    assert_eq!(scope.get::<u32>("a").await.unwrap(), Lookup::Hit(1));
    assert_eq!(scope.contains("a").await.unwrap(), Lookup::Hit(()));
    assert_eq!(scope.contains("b").await.unwrap(), Lookup::Miss);
    assert_eq!(group.get::<bool>("main").await.unwrap(), Lookup::Hit(true));
    assert_eq!(
        fs.paths_under(&org).await.unwrap(),
        Lookup::Hit(vec![path.clone()])
    );

    server.kill();
    let bypassed = |l: &Lookup<u32>| matches!(l, Lookup::Bypassed(_));
    // Paths.
    let got = fast("get_path", fs.get_path::<u32>(&path)).await.unwrap();
    assert!(bypassed(&got), "{got:?}");
    assert!(matches!(
        fast("set_path", fs.set_path(&path, &2u32, &SetOptions::new()))
            .await
            .unwrap(),
        Written::Skipped(_)
    ));
    assert!(matches!(
        fast("paths_under", fs.paths_under(&org)).await.unwrap(),
        Lookup::Bypassed(_)
    ));
    assert_eq!(
        fast("delete_path", fs.delete_path(&path)).await.unwrap(),
        Removal::Journaled
    );
    assert_eq!(
        fast("invalidate_prefix", fs.invalidate_prefix(&org))
            .await
            .unwrap(),
        Removal::Journaled
    );
    // Scopes.
    let got = fast("scope get", scope.get::<u32>("a")).await.unwrap();
    assert!(bypassed(&got), "{got:?}");
    assert!(matches!(
        fast("scope get_bytes", scope.get_bytes("a")).await.unwrap(),
        Lookup::Bypassed(_)
    ));
    assert!(matches!(
        fast("scope contains", scope.contains("a")).await.unwrap(),
        Lookup::Bypassed(_)
    ));
    assert!(matches!(
        fast(
            "scope set",
            scope.set("a", &2u32, &SetOptions::new().ttl(Duration::from_secs(60)))
        )
        .await
        .unwrap(),
        Written::Skipped(_)
    ));
    assert!(matches!(
        fast(
            "scope set_bytes",
            scope.set_bytes("b", b"x", &SetOptions::new().ttl(Duration::from_secs(60)))
        )
        .await
        .unwrap(),
        Written::Skipped(_)
    ));
    assert_eq!(
        fast("scope delete", scope.delete("a")).await.unwrap(),
        Removal::Journaled
    );
    assert_eq!(
        fast("scope clear", scope.clear()).await.unwrap(),
        Removal::Journaled
    );
    // Groups: the loader's value, uncached.
    let runs = Arc::new(AtomicU64::new(0));
    let counted = runs.clone();
    let (value, how) = fast(
        "group fetch",
        group.fetch("main", || async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(false)
        }),
    )
    .await
    .unwrap()
    .into_parts();
    assert!(!value);
    assert!(matches!(how, Fetched::Bypassed(_)), "{how:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(matches!(
        fast("group get", group.get::<bool>("main")).await.unwrap(),
        Lookup::Bypassed(_)
    ));
    assert!(matches!(
        fast("group set", group.set("main", &false)).await.unwrap(),
        Written::Skipped(_)
    ));
    assert_eq!(
        fast("group clear", group.clear()).await.unwrap(),
        Removal::Journaled
    );
    // A loader error is still the caller's error, and invalid input an Err.
    assert!(group
        .fetch("x", || async { Err::<bool, _>("db down") })
        .await
        .is_err());
    assert!(fs.get_path::<u32>(&KeyPath::from([""])).await.is_err());
    assert!(fs.scope(KeyPath::from_parts(Vec::<&str>::new())).is_err());
    // (A prefix invalidation journals its index and its own entry.)
    assert_eq!(fs.pending(), 6);
    eprintln!(
        "redis killed: longest fail-safe path/scope/group call {:?}",
        Duration::from_micros(LONGEST_US.load(Ordering::Relaxed))
    );

    server.restart();
    wait_for_replay(&fs).await;
    assert_eq!(
        fs.set_path(&path, &3u32, &SetOptions::new()).await.unwrap(),
        Written::Stored
    );
    assert_eq!(fs.get_path::<u32>(&path).await.unwrap(), Lookup::Hit(3));
    let (value, how) = group
        .fetch("main", || async { Ok::<_, String>(true) })
        .await
        .unwrap()
        .into_parts();
    assert_eq!((value, how), (true, Fetched::Miss));
}

/// Makes every invalidation of `tag` (namespace `test`, one bucket) fail
/// with a Redis error until [`unblock`]: a wrong-typed key where its
/// snapshot goes. Holds a journaled invalidation pending while Redis
/// answers reads.
fn block_invalidation(server: &RedisServer, tag: &[u8]) -> Vec<u8> {
    let mut key = b"{test.0}:x:".to_vec();
    key.extend_from_slice(tag);
    let _: () = server.cmd(&[b"SET", &key, b"not a snapshot"]);
    key
}

fn unblock(server: &RedisServer, key: &[u8]) {
    let _: u64 = server.cmd(&[b"DEL", key]);
}

fn prefix_tag(path: &KeyPath) -> Vec<u8> {
    let mut t = b"\0p".to_vec();
    t.extend_from_slice(path.to_string().as_bytes());
    t
}

#[tokio::test]
async fn reads_under_a_journaled_prefix_invalidation_bypass_until_it_is_replayed() {
    let server = RedisServer::start();
    let cache = fail_safe_cache(&server).await;
    let fs = cache.fail_safe();
    let org = KeyPath::from(["org", "7"]);
    let deep = org.clone().push("prj").push(3);
    let sibling = KeyPath::from(["org", "70", "prj"]);
    let opts = SetOptions::new();
    fs.set_path(&deep, &1u32, &opts).await.unwrap();
    fs.set_path(&sibling, &2u32, &opts).await.unwrap();
    // A plain key under the prefix, untagged: covered by its key alone.
    fs.set("org:7:plain", &3u32, &opts).await.unwrap();

    let blocker = block_invalidation(&server, &prefix_tag(&org));
    assert_eq!(
        fs.invalidate_prefix(&org).await.unwrap(),
        Removal::Journaled
    );
    let pending = Lookup::Bypassed(BypassReason::PendingInvalidation);
    for _ in 0..3 {
        // Redis answers, the replay keeps failing: covered keys bypass.
        assert_eq!(fs.get_path::<u32>(&deep).await.unwrap(), pending);
        assert_eq!(fs.get::<u32>("org:7:plain").await.unwrap(), pending);
        // Nothing stored at the prefix itself: a miss serves nothing stale.
        assert_eq!(fs.get_path::<u32>(&org).await.unwrap(), Lookup::Miss);
        assert_eq!(
            fs.paths_under(&org).await.unwrap(),
            Lookup::Bypassed(BypassReason::PendingInvalidation)
        );
        // Whole parts only: org:70 is not under org:7.
        assert_eq!(fs.get_path::<u32>(&sibling).await.unwrap(), Lookup::Hit(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The prefix's index, and the entry at the prefix itself.
    assert_eq!(fs.pending(), 2);

    unblock(&server, &blocker);
    wait_for_replay(&fs).await;
    assert_eq!(fs.get_path::<u32>(&deep).await.unwrap(), Lookup::Miss);
    assert_eq!(cache.get_path::<u32>(&deep).await.unwrap(), None);
    assert_eq!(fs.get_path::<u32>(&sibling).await.unwrap(), Lookup::Hit(2));
}

#[tokio::test]
async fn a_journaled_scope_clear_bypasses_the_owner_and_is_replayed() {
    let server = RedisServer::start();
    let cache = fail_safe_cache(&server).await;
    let fs = cache.fail_safe();
    let owner = KeyPath::from(["dsr", "pr-1"]);
    let scope = fs.scope(owner.clone()).unwrap();
    let other = fs.scope(["dsr", "pr-10"]).unwrap();
    let ttl = Duration::from_secs(60);
    scope
        .set("a", &1u32, &SetOptions::new().ttl(ttl))
        .await
        .unwrap();
    scope
        .set("b", &2u32, &SetOptions::new().ttl(ttl).tag("user:9"))
        .await
        .unwrap();
    other
        .set("a", &10u32, &SetOptions::new().ttl(ttl))
        .await
        .unwrap();

    let blocker = block_invalidation(&server, &prefix_tag(&owner));
    assert_eq!(scope.clear().await.unwrap(), Removal::Journaled);
    let pending = Lookup::Bypassed(BypassReason::PendingInvalidation);
    for _ in 0..3 {
        assert_eq!(scope.get::<u32>("a").await.unwrap(), pending);
        assert_eq!(scope.get::<u32>("b").await.unwrap(), pending);
        assert_eq!(
            scope.get_bytes("b").await.unwrap(),
            Lookup::Bypassed(BypassReason::PendingInvalidation)
        );
        assert_eq!(
            scope.contains("a").await.unwrap(),
            Lookup::Bypassed(BypassReason::PendingInvalidation)
        );
        assert_eq!(other.get::<u32>("a").await.unwrap(), Lookup::Hit(10));
        assert_eq!(other.contains("a").await.unwrap(), Lookup::Hit(()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    unblock(&server, &blocker);
    wait_for_replay(&fs).await;
    assert_eq!(scope.get::<u32>("a").await.unwrap(), Lookup::Miss);
    assert_eq!(scope.contains("b").await.unwrap(), Lookup::Miss);
    assert_eq!(cache.tag_len("user:9").await.unwrap(), 0);
    assert_eq!(other.get::<u32>("a").await.unwrap(), Lookup::Hit(10));
}

#[tokio::test]
async fn a_journaled_group_tag_invalidation_makes_fetches_load_without_caching() {
    let server = RedisServer::start();
    let cache = fail_safe_cache(&server).await;
    let fs = cache.fail_safe();
    let group = fs.group("flags", 7).unwrap().tag("org:7");
    assert_eq!(
        group
            .fetch("main", || async { Ok::<_, String>(1u32) })
            .await
            .unwrap()
            .into_parts(),
        (1, Fetched::Miss)
    );
    let blocker = block_invalidation(&server, b"org:7");
    assert_eq!(
        fs.invalidate_tag("org:7").await.unwrap(),
        Removal::Journaled
    );
    let pending = BypassReason::PendingInvalidation;
    assert_eq!(
        group
            .fetch("main", || async { Ok::<_, String>(2u32) })
            .await
            .unwrap()
            .into_parts(),
        (2, Fetched::Bypassed(pending))
    );
    assert_eq!(
        group.get::<u32>("main").await.unwrap(),
        Lookup::Bypassed(pending)
    );
    unblock(&server, &blocker);
    wait_for_replay(&fs).await;
    assert_eq!(group.get::<u32>("main").await.unwrap(), Lookup::Miss);
    assert_eq!(
        group
            .fetch("main", || async { Ok::<_, String>(3u32) })
            .await
            .unwrap()
            .into_parts(),
        (3, Fetched::Miss)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_invalidation_and_scope_clear_journaled_while_redis_is_frozen_are_replayed_when_it_thaws(
) {
    let server = RedisServer::start();
    let cache = fail_safe_cache(&server).await;
    let fs = cache.fail_safe();
    let org = KeyPath::from(["org", "7"]);
    let deep = org.clone().push("prj").push(3);
    let kept = KeyPath::from(["org", "8"]);
    let opts = SetOptions::new();
    fs.set_path(&deep, &1u32, &opts).await.unwrap();
    fs.set_path(&kept, &2u32, &opts).await.unwrap();
    let scope = fs.scope(["dsr", "pr-1"]).unwrap();
    let ttl = Duration::from_secs(60);
    scope
        .set("a", &3u32, &SetOptions::new().ttl(ttl))
        .await
        .unwrap();

    server.pause();
    let started = Instant::now();
    assert_eq!(
        fs.invalidate_prefix(&org).await.unwrap(),
        Removal::Journaled
    );
    assert_eq!(scope.clear().await.unwrap(), Removal::Journaled);
    eprintln!("frozen: two journaled removals in {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.resume();

    // Until replayed, neither covered entry is ever served.
    let started = Instant::now();
    loop {
        let deep_read = fs.get_path::<u32>(&deep).await.unwrap();
        let scoped = scope.get::<u32>("a").await.unwrap();
        assert!(!matches!(deep_read, Lookup::Hit(_)), "{deep_read:?}");
        assert!(!matches!(scoped, Lookup::Hit(_)), "{scoped:?}");
        if fs.pending() == 0 && deep_read == Lookup::Miss && scoped == Lookup::Miss {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "replay did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(cache.get_path::<u32>(&deep).await.unwrap(), None);
    assert!(!scope.strict().contains("a").await.unwrap());
    assert_eq!(fs.get_path::<u32>(&kept).await.unwrap(), Lookup::Hit(2));
}

#[tokio::test]
async fn a_journaled_namespace_clear_bypasses_every_read_and_is_replayed() {
    let server = RedisServer::start();
    let cache = fail_safe_cache(&server).await;
    let fs = cache.fail_safe();
    let ttl = Duration::from_secs(60);
    fs.set("plain", &1u32, &SetOptions::new().ttl(ttl))
        .await
        .unwrap();
    fs.scope(["dsr", "pr-1"])
        .unwrap()
        .set("a", &2u32, &SetOptions::new().ttl(ttl))
        .await
        .unwrap();
    // A string where a clear's registry goes makes the clear fail.
    let blocker = b"{test.0}:creg".to_vec();
    let _: () = server.cmd(&[b"SET", &blocker, b"not a registry"]);
    assert_eq!(fs.clear().await.unwrap(), Removal::Journaled);
    let pending = Lookup::Bypassed(BypassReason::PendingInvalidation);
    assert_eq!(fs.get::<u32>("plain").await.unwrap(), pending);
    assert_eq!(fs.get::<u32>("dsr:pr-1:a").await.unwrap(), pending);
    unblock(&server, &blocker);
    wait_for_replay(&fs).await;
    assert_eq!(fs.get::<u32>("plain").await.unwrap(), Lookup::Miss);
    assert_eq!(fs.get::<u32>("dsr:pr-1:a").await.unwrap(), Lookup::Miss);
}

#[tokio::test]
async fn a_journaled_prefix_invalidation_also_deletes_the_entry_at_the_prefix() {
    let server = RedisServer::start();
    let cache = fail_safe_cache(&server).await;
    let fs = cache.fail_safe();
    let org = KeyPath::from(["org", "7"]);
    let opts = SetOptions::new().ttl(Duration::from_secs(60));
    fs.set_path(&org, &1u32, &opts).await.unwrap();
    fs.set_path(&org.clone().push("prj"), &2u32, &opts)
        .await
        .unwrap();
    let blocker = block_invalidation(&server, &prefix_tag(&org));
    assert_eq!(
        fs.invalidate_prefix(&org).await.unwrap(),
        Removal::Journaled
    );
    unblock(&server, &blocker);
    wait_for_replay(&fs).await;
    assert_eq!(fs.get_path::<u32>(&org).await.unwrap(), Lookup::Miss);
    assert_eq!(
        fs.get_path::<u32>(&org.clone().push("prj")).await.unwrap(),
        Lookup::Miss
    );
}
