//! Namespaces the CLI did not create: opened with the bucket count their
//! meta key records, never created (nor pinned) by a command that only
//! reads or removes.

use serde_json::Value;
use tagcache::SetOptions;

use crate::{fails, json, lib_builder, ok, redis_cmd, run, with_built, RedisServer};

/// Runs `f` on a library handle of namespace `ns` with `buckets` buckets.
fn with_buckets<T>(
    url: &str,
    ns: &str,
    buckets: u16,
    f: impl AsyncFnOnce(tagcache::Cache) -> T,
) -> T {
    with_built(lib_builder(url, ns).buckets(buckets), f)
}

/// Issue 9, finding 5: the CLI could not open a namespace created with
/// another bucket count ("layout mismatch"), and a read-only `stats` on an
/// unused namespace wrote its meta with 1 bucket, so the application's
/// `buckets(4)` build then failed.
#[test]
fn finding_5_cli_opens_any_bucket_count_and_never_pins_a_new_namespace() {
    let redis = RedisServer::start();
    let url = redis.url();
    let ns = ["--namespace", "app"];
    for args in [
        &["get", "k"][..],
        &["tags", "k"],
        &["keys", "--tag", "t"],
        &["stats"],
        &["stats", "--json"],
        &["del", "k"],
        &["invalidate", "--tag", "t"],
        &["prune"],
    ] {
        let line = fails(&run(&url, ns.iter().chain(args)), 1);
        assert!(
            line.contains("namespace app does not exist"),
            "{args:?}: {line}"
        );
    }
    let doctor = ok(&run(&url, ns.iter().chain(&["doctor"])));
    assert!(doctor.contains("does not exist yet"), "{doctor}");
    assert_eq!(redis_cmd::<u64>(&url, &["DBSIZE"]), 0, "a read wrote");

    // The application creates it with 4 buckets: the build succeeds.
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    with_buckets(&url, "app", 4, async |c| {
        for k in &keys {
            c.set_bytes(k, k.as_bytes(), &SetOptions::new().tag("t"))
                .await
                .unwrap();
        }
    });
    // Every command works on it, with its 4 buckets.
    let stats = json(&run(&url, ns.iter().chain(&["stats", "--json"])));
    assert_eq!(stats["buckets"], 4, "{stats}");
    assert_eq!(stats["members"], 12, "{stats}");
    assert_eq!(ok(&run(&url, ns.iter().chain(&["get", "k7"]))), "k7");
    assert_eq!(ok(&run(&url, ns.iter().chain(&["tags", "k7"]))), "t\n");
    let mut listed: Vec<String> = ok(&run(&url, ns.iter().chain(&["keys", "--tag", "t"])))
        .lines()
        .map(str::to_owned)
        .collect();
    listed.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(listed, expected);
    ok(&run(
        &url,
        ns.iter().chain(&["set", "new", "v", "--tag", "t"]),
    ));
    let read = with_buckets(&url, "app", 4, async |c| c.get_bytes("new").await.unwrap());
    assert_eq!(read.as_deref(), Some(&b"v"[..]));
    assert_eq!(ok(&run(&url, ns.iter().chain(&["del", "k0", "k1"]))), "2\n");
    assert_eq!(
        ok(&run(&url, ns.iter().chain(&["invalidate", "--tag", "t"]))),
        "11\n"
    );
    ok(&run(&url, ns.iter().chain(&["prune"])));
    let doctor = ok(&run(&url, ns.iter().chain(&["doctor", "--json"])));
    let doctor: Value = serde_json::from_str(&doctor).unwrap();
    assert_eq!(doctor["ok"], true, "{doctor}");

    // `set` creates a new namespace, with --buckets (default 1).
    let fresh = ["--namespace", "fresh"];
    ok(&run(
        &url,
        fresh.iter().chain(&["set", "--buckets", "8", "k", "v"]),
    ));
    let read = with_buckets(&url, "fresh", 8, async |c| c.get_bytes("k").await.unwrap());
    assert_eq!(read.as_deref(), Some(&b"v"[..]));
    // An existing namespace keeps its count, whatever --buckets says.
    ok(&run(
        &url,
        fresh.iter().chain(&["set", "--buckets", "2", "k2", "v"]),
    ));
    assert_eq!(
        json(&run(&url, fresh.iter().chain(&["stats", "--json"])))["buckets"],
        8
    );
    ok(&run(&url, ["--namespace", "one", "set", "k", "v"]));
    assert_eq!(
        json(&run(&url, ["--namespace", "one", "stats", "--json"]))["buckets"],
        1
    );
}
