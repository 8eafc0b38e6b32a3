//! set, get, del, tags, keys.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tagcache::SetOptions;

use crate::{fails, json, ok, run, tagcache, with_cache, RedisServer};

#[test]
fn set_then_get_prints_the_raw_value() {
    let redis = RedisServer::start();
    let url = redis.url();
    let out = run(
        &url,
        [
            "set",
            "k1",
            "hello world",
            "--tag",
            "a",
            "--tag",
            "b",
            "--ttl",
            "60",
        ],
    );
    assert_eq!(ok(&out), "", "set prints nothing");
    assert_eq!(ok(&run(&url, ["get", "k1"])), "hello world");
    // Raw bytes, readable by the library (and any client).
    let (value, ttl) = with_cache(&url, "tagcache", async |c| {
        (c.get_bytes("k1").await.unwrap(), c.ttl("k1").await.unwrap())
    });
    assert_eq!(value.as_deref(), Some(&b"hello world"[..]));
    assert!(ttl.unwrap() <= Duration::from_secs(60));
}

#[test]
fn keys_and_values_are_the_arguments_bytes() {
    let redis = RedisServer::start();
    let url = redis.url();
    let key = OsStr::from_bytes(b"k\xff");
    let value = OsStr::from_bytes(b"v\xfe\x01");
    let out = run(&url, [OsStr::new("set"), key, value]);
    ok(&out);
    let out = run(&url, [OsStr::new("get"), key]);
    ok(&out);
    assert_eq!(out.stdout, b"v\xfe\x01");
}

#[test]
fn get_and_tags_exit_1_when_missing() {
    let redis = RedisServer::start();
    let url = redis.url();
    ok(&run(&url, ["set", "other", "v"]));
    let line = fails(&run(&url, ["get", "nope"]), 1);
    assert!(line.contains("nope"), "{line}");
    fails(&run(&url, ["tags", "nope"]), 1);
    fails(&run(&url, ["tags", "--json", "nope"]), 1);
}

#[test]
fn tags_lists_in_write_order() {
    let redis = RedisServer::start();
    let url = redis.url();
    ok(&run(&url, ["set", "k", "v", "--tag", "b", "--tag", "a"]));
    assert_eq!(ok(&run(&url, ["tags", "k"])), "b\na\n");
    assert_eq!(json(&run(&url, ["tags", "k", "--json"])), json!(["b", "a"]));
    assert_eq!(json(&run(&url, ["--json", "tags", "k"])), json!(["b", "a"]));
}

#[test]
fn del_counts_what_existed() {
    let redis = RedisServer::start();
    let url = redis.url();
    ok(&run(&url, ["set", "k1", "v", "--tag", "t"]));
    ok(&run(&url, ["set", "k2", "v", "--tag", "t"]));
    assert_eq!(ok(&run(&url, ["del", "k1", "nope"])), "1\n");
    assert_eq!(
        json(&run(&url, ["del", "--json", "k1", "k2"])),
        json!({"deleted": 1})
    );
    // Deleting removed the index edges too.
    assert_eq!(ok(&run(&url, ["keys", "--tag", "t"])), "");
}

#[test]
fn keys_lists_a_tag_page_by_page() {
    let redis = RedisServer::start();
    let url = redis.url();
    with_cache(&url, "tagcache", async |c| {
        let items = (0..2500).map(|i| (format!("item:{i}"), "v", SetOptions::new().tag("big")));
        c.set_many_bytes(items).await.unwrap();
        c.set_bytes("other", "v", &SetOptions::new().tag("small"))
            .await
            .unwrap();
    });
    let text = ok(&run(&url, ["keys", "--tag", "big"]));
    let mut keys: Vec<&str> = text.lines().collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 2500);
    assert!(keys.iter().all(|k| k.starts_with("item:")));
    let listed = json(&run(&url, ["keys", "--tag", "big", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2500);
    assert_eq!(
        json(&run(&url, ["keys", "--json", "--tag", "none"])),
        json!([])
    );
    assert_eq!(ok(&run(&url, ["keys", "--tag", "small"])), "other\n");
}

#[test]
fn keys_stops_quietly_when_the_reader_goes_away() {
    let redis = RedisServer::start();
    let url = redis.url();
    with_cache(&url, "tagcache", async |c| {
        let items = (0..20_000).map(|i| {
            (
                format!("a-rather-long-key-name:{i:08}"),
                "v",
                SetOptions::new().tag("big"),
            )
        });
        c.set_many_bytes(items).await.unwrap();
    });
    let mut child = tagcache()
        .args(["--url", &url, "keys", "--tag", "big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // stdout is dropped: the next write fails with a broken pipe.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
