//! The demo: on a private server, on a given one (its own namespace,
//! cleaned up), and without redis-server.

use serde_json::Value;

use crate::{fails, ok, run, tagcache, with_cache, RedisServer};

#[test]
fn demo_runs_on_a_private_server_and_prints_its_summary() {
    let out = tagcache()
        .args(["demo", "--seconds", "3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("tagcache demo: "), "{stdout}");
    assert!(stdout.contains("private redis-server"), "{stdout}");
    assert!(stdout.contains("invariants"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // Not a terminal: a plain line per second on stderr.
    let ticks = stderr.lines().filter(|l| l.contains("ops/s")).count();
    assert!((2..=4).contains(&ticks), "{stderr}");
}

#[test]
fn demo_on_a_given_server_uses_its_own_namespace_and_cleans_up() {
    let redis = RedisServer::start();
    let url = redis.url();
    ok(&run(
        &url,
        ["set", "mine", "keep me", "--tag", "category:0"],
    ));
    let out = run(&url, ["demo", "--seconds", "2", "--json", "-q"]);
    let v: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["invariants_hold"], true, "{v}");
    assert_eq!(v["stale_pages_served"], 0, "{v}");
    assert_eq!(v["keys_calls"], 0, "{v}");
    assert_eq!(v["scan_calls"], 0, "{v}");
    assert!(v["reads"].as_u64().unwrap() > 100, "{v}");
    assert!(v["invalidations"].as_u64().unwrap() > 10, "{v}");
    assert!(v["pings"].as_u64().unwrap() > 100, "{v}");
    let ns = v["namespace"].as_str().unwrap();
    assert!(ns.starts_with("tagcache-demo-"), "{ns}");
    let stats = with_cache(&url, ns, async |c| c.stats().await.unwrap());
    assert_eq!((stats.indexes, stats.members), (0, 0), "{stats:?}");
    // What was there before is untouched.
    assert_eq!(ok(&run(&url, ["get", "mine"])), "keep me");
}

#[test]
fn demo_without_redis_server_says_how_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    let out = tagcache()
        .args(["demo", "--seconds", "1"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let line = fails(&out, 2);
    assert!(line.contains("apt-get install redis-server"), "{line}");
}

#[test]
fn demo_refuses_a_cluster_url() {
    let line = fails(&run("redis+cluster://127.0.0.1:1,127.0.0.1:2", ["demo"]), 2);
    assert!(line.contains("single server"), "{line}");
}

#[test]
fn demo_with_the_l1_runs_a_second_process_and_checks_the_staleness_bound() {
    let out = tagcache()
        .args(["demo", "--l1", "--seconds", "3", "--json", "-q"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["invariants_hold"], true, "{v}");
    assert_eq!(v["stale_pages_served"], 0, "{v}");
    let l1 = &v["l1"];
    assert!(l1["hits"].as_u64().unwrap() > 0, "{v}");
    assert!(l1["announcements"].as_u64().unwrap() > 10, "{v}");
    let peer = &l1["peer"];
    assert_eq!(peer["last"], true, "{v}");
    assert_eq!(peer["stale_past_bound"], 0, "{v}");
    assert!(peer["reads"].as_u64().unwrap() > 100, "{v}");
    assert!(peer["l1_hits"].as_u64().unwrap() > 0, "{v}");
    assert!(peer["announcements"].as_u64().unwrap() > 10, "{v}");
}
