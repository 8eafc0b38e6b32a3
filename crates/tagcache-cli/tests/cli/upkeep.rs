//! invalidate, prune, stats, doctor.

use std::time::Duration;

use serde_json::Value;
use tagcache::SetOptions;

use crate::{fails, json, ok, run, with_cache, RedisServer};

fn number(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn invalidate_counts_each_entry_once() {
    let redis = RedisServer::start();
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
fn clear_needs_yes_and_deletes_every_entry() {
    let redis = RedisServer::start();
    let url = redis.url();
    ok(&run(&url, ["set", "k1", "v", "--tag", "t"]));
    ok(&run(&url, ["set", "org:1:k2", "v"]));
    ok(&run(&url, ["set", "plain", "v"]));
    fails(&run(&url, ["clear"]), 2);
    assert_eq!(ok(&run(&url, ["get", "plain"])), "v");
    assert_eq!(ok(&run(&url, ["clear", "--yes"])), "3\n");
    fails(&run(&url, ["get", "plain"]), 1);
    fails(&run(&url, ["get", "org:1:k2"]), 1);
    let v = json(&run(&url, ["clear", "--yes", "--json"]));
    assert_eq!(v, serde_json::json!({"deleted": 0}));
}

#[test]
fn prune_removes_expired_members_and_empty_indexes() {
    let redis = RedisServer::start();
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
    let redis = RedisServer::start();
    let url = redis.url();
    ok(&run(&url, ["set", "k1", "v", "--tag", "a", "--tag", "b"]));
    ok(&run(&url, ["set", "k2", "v", "--tag", "a"]));
    let v = json(&run(&url, ["stats", "--json"]));
    assert_eq!(number(&v, "indexes"), 2, "{v}");
    assert_eq!(number(&v, "members"), 3, "{v}");
    assert_eq!(number(&v, "stale_members"), 0, "{v}");
    assert!(number(&v, "index_memory_bytes") > 0, "{v}");
    assert_eq!(number(&v, "invalidations_in_flight"), 0, "{v}");
    assert_eq!(
        number(&v, "layout_version"),
        u64::from(tagcache::LAYOUT_VERSION),
        "{v}"
    );
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
    let redis = RedisServer::start();
    let url = redis.url();
    let text = ok(&run(&url, ["doctor"]));
    assert_eq!(text.lines().count(), 6, "{text}");
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
            ("invalidations", "ok"),
        ]
    );
}

#[test]
fn doctor_fails_an_evicting_policy_and_a_foreign_layout() {
    let redis = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
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
    let sound = RedisServer::start();
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

/// Issue 9, finding 6: `doctor` built its cache with the 100 ms default
/// response timeout, so on a slow server (every call taking ~300 ms) it
/// exited with a bare "timeout" before its latency check.
#[test]
fn finding_6_doctor_reports_a_slow_server_with_its_latency() {
    let redis = RedisServer::start();
    ok(&run(&redis.url(), ["set", "k", "v"]));
    let slow = slow_proxy(&redis.socket(), Duration::from_millis(150));
    let out = run(&slow, ["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}\n{stderr}");
    let latency = text
        .lines()
        .find(|l| l.contains("round trip"))
        .unwrap_or_else(|| panic!("no latency check: {text}\n{stderr}"));
    assert!(latency.starts_with("fail"), "{latency}");
    let p50: f64 = latency
        .split("p50 ")
        .nth(1)
        .and_then(|r| r.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{latency}"));
    assert!(p50 >= 150.0, "{latency}");
    for check in [
        "redis version",
        "script loading",
        "layout",
        "eviction policy",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check}: {text}"
        );
    }
    assert!(stderr.contains("round trip"), "{stderr}");
    assert!(!stderr.contains("timeout"), "{stderr}");
}

/// A TCP proxy in front of the server's socket that holds every request
/// for `delay`: a server whose every answer takes that long. Returns its
/// `redis://` URL; it lives as long as the test process.
fn slow_proxy(socket: &std::path::Path, delay: Duration) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let socket = socket.to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::os::unix::net::UnixStream::connect(&socket) else {
                return;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = c_in.read(&mut buf) {
                    std::thread::sleep(delay);
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
            });
        }
    });
    format!("redis://127.0.0.1:{port}")
}

/// Issue 9, finding 9: `stats` and `doctor` did not show an invalidation
/// abandoned by a crash (its snapshot's size, when the sweep finishes it).
#[test]
fn finding_9_stats_and_doctor_show_an_abandoned_invalidation() {
    let redis = RedisServer::start();
    let url = redis.url();
    for i in 0..7 {
        ok(&run(&url, ["set", &format!("k{i}"), "v", "--tag", "T"]));
    }
    // What an invalidation interrupted before its first chunk leaves
    // (docs/redis-layout.md): the index renamed to its snapshot, filed in
    // `inv` with a heartbeat a minute old.
    let (secs, _): (u64, u64) = crate::redis_cmd(&url, &["TIME"]);
    let heartbeat = ((secs - 60) * 1000).to_string();
    crate::redis_cmd::<()>(&url, &["RENAME", "{tagcache.0}:t:T", "{tagcache.0}:x:T"]);
    crate::redis_cmd::<u64>(&url, &["ZADD", "{tagcache.0}:inv", &heartbeat, "T"]);

    let v = json(&run(&url, ["stats", "--json"]));
    assert_eq!(number(&v, "invalidations_in_flight"), 1);
    let inv = &v["invalidations"][0];
    assert_eq!(inv["tag"], "T", "{v}");
    assert_eq!(inv["bucket"], 0);
    assert_eq!(inv["remaining"], 7);
    assert_eq!(inv["abandoned"], true);
    assert_eq!(inv["sweep_after_ms"], 0);
    assert!(number(inv, "heartbeat_age_ms") >= 60_000, "{v}");
    let text = ok(&run(&url, ["stats"]));
    let row = text
        .lines()
        .find(|l| l.contains("abandoned"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains(" T ") && row.contains(" 7 "), "{row}");

    let text = ok(&run(&url, ["doctor"]));
    let line = text
        .lines()
        .find(|l| l.contains("invalidations"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("warn"), "{line}");
    assert!(line.contains("T (bucket 0): 7 entries left"), "{line}");
    assert!(line.contains("next sweep finishes it"), "{line}");
    let v = json(&run(&url, ["doctor", "--json"]));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["invalidations"][0]["remaining"], 7, "{v}");

    let v = json(&run(&url, ["prune", "--json"]));
    assert_eq!(number(&v, "invalidations_resumed"), 1, "{v}");
    assert_eq!(number(&v, "entries_removed"), 7, "{v}");
    let v = json(&run(&url, ["stats", "--json"]));
    assert_eq!(number(&v, "invalidations_in_flight"), 0);
    assert_eq!(v["invalidations"], serde_json::json!([]));
    let text = ok(&run(&url, ["doctor"]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains("none in flight")),
        "{text}"
    );
}
