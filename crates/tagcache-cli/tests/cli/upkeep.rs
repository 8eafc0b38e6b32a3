//! invalidate, prune, stats, doctor.

use std::time::Duration;

use serde_json::Value;
use tagcache::SetOptions;

use crate::{fails, json, ok, run, with_cache, Redis};

fn number(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn invalidate_counts_each_entry_once() {
    let redis = Redis::start();
    let url = redis.url();
    ok(&run(&url, ["set", "k1", "v", "--tag", "t", "--tag", "u"]));
    ok(&run(&url, ["set", "k2", "v", "--tag", "t"]));
    ok(&run(&url, ["set", "k3", "v", "--tag", "u"]));
    ok(&run(&url, ["set", "k4", "v", "--tag", "w"]));
    assert_eq!(
        ok(&run(&url, ["invalidate", "--tag", "t", "--tag", "u"])),
        "3\n"
    );
    let v = json(&run(&url, ["invalidate", "--json", "--tag", "t"]));
    assert_eq!(v, serde_json::json!({"removed": 0}));
    fails(&run(&url, ["get", "k1"]), 1);
    assert_eq!(ok(&run(&url, ["get", "k4"])), "v");
}

#[test]
fn prune_removes_expired_members_and_empty_indexes() {
    let redis = Redis::start();
    let url = redis.url();
    with_cache(&url, "tagcache", async |c| {
        let opts = SetOptions::new()
            .ttl(Duration::from_millis(50))
            .tags(["t1", "t2"]);
        let items = (0..30).map(|i| (format!("k{i}"), "v", opts.clone()));
        c.set_many_bytes(items).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
    });
    let v = json(&run(&url, ["prune", "--json"]));
    assert_eq!(number(&v, "members_removed"), 60, "{v}");
    assert_eq!(number(&v, "indexes_removed"), 2, "{v}");
    for key in [
        "indexes_visited",
        "invalidations_resumed",
        "entries_removed",
        "fences_removed",
    ] {
        number(&v, key);
    }
    assert_eq!(v["complete"], true);
    let text = ok(&run(&url, ["prune"]));
    assert!(text.contains("members removed"), "{text}");
    assert!(text.lines().all(|l| l == l.trim_end()), "{text:?}");
}

#[test]
fn stats_reports_indexes_and_the_server() {
    let redis = Redis::start();
    let url = redis.url();
    ok(&run(&url, ["set", "k1", "v", "--tag", "a", "--tag", "b"]));
    ok(&run(&url, ["set", "k2", "v", "--tag", "a"]));
    let v = json(&run(&url, ["stats", "--json"]));
    assert_eq!(number(&v, "indexes"), 2, "{v}");
    assert_eq!(number(&v, "members"), 3, "{v}");
    assert_eq!(number(&v, "stale_members"), 0, "{v}");
    assert!(number(&v, "index_memory_bytes") > 0, "{v}");
    assert_eq!(number(&v, "invalidations_in_flight"), 0, "{v}");
    assert_eq!(number(&v, "layout_version"), 1, "{v}");
    assert_eq!(number(&v, "buckets"), 1, "{v}");
    let version = v["redis_version"].as_str().unwrap();
    let major: u32 = version.split('.').next().unwrap().parse().unwrap();
    assert!(major >= 7, "{version}");
    assert_eq!(v["eviction_policy"], "noeviction");
    assert_eq!(v["circuit_state"], "closed");
    assert_eq!(v["namespace"], "tagcache");
    let text = ok(&run(&url, ["stats"]));
    for row in [
        "indexes",
        "stale members",
        "index memory",
        "eviction policy",
        "redis version",
    ] {
        assert!(text.contains(row), "{row} in {text}");
    }
}

#[test]
fn doctor_passes_on_a_sound_server() {
    let redis = Redis::start();
    let url = redis.url();
    let text = ok(&run(&url, ["doctor"]));
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.lines().all(|l| l.starts_with("ok")), "{text}");
    let v = json(&run(&url, ["doctor", "--json"]));
    assert_eq!(v["ok"], true);
    let checks: Vec<(&str, &str)> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("redis_version", "ok"),
            ("eviction_policy", "ok"),
            ("scripts", "ok"),
            ("layout", "ok"),
            ("latency", "ok"),
        ]
    );
}

#[test]
fn doctor_fails_an_evicting_policy_and_a_foreign_layout() {
    let redis = Redis::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let url = redis.url();
    let out = run(&url, ["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["checks"][1]["status"], "fail", "{v}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("eviction policy"), "{stderr}");

    // A namespace written by another layout version.
    let sound = Redis::start();
    let url = sound.url();
    crate::redis_cmd::<u64>(&url, &["HSET", "{old}:meta", "layout", "0", "buckets", "1"]);
    let out = run(&url, ["--namespace", "old", "doctor"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("fail") && l.contains("layout")),
        "{text}"
    );
    // The other commands refuse the namespace with one line.
    let line = fails(&run(&url, ["--namespace", "old", "stats"]), 2);
    assert!(line.contains("layout version 0"), "{line}");
}
