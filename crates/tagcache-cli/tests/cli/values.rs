//! Values the argument list cannot carry, typed values, reserved tags and
//! malformed entries (issue 9, finding 7).

use std::io::Write;
use std::process::{Output, Stdio};

use serde_json::json;
use tagcache::{KeyPath, SetOptions};

use crate::{fails, ok, redis_cmd, run, tagcache, with_cache, RedisServer};

/// Runs the binary on `url` with `args`, `input` on its stdin.
fn run_with_stdin(url: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = tagcache()
        .arg("--url")
        .arg(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

/// Incompressible bytes with NULs in them.
fn binary_value(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .chain([0, 0, b'x', 0])
        .collect()
}

/// Finding 7: values over ~128 KiB (the argument limit) or with NUL bytes
/// could not be stored, and `set k -` stored "-".
#[test]
fn finding_7_set_stores_any_bytes_of_any_size_from_stdin_or_a_file() {
    let redis = RedisServer::start();
    let url = redis.url();
    let big = binary_value(1 << 20);
    ok(&run_with_stdin(
        &url,
        &["set", "big", "-", "--tag", "t"],
        &big,
    ));
    let out = run(&url, ["get", "big"]);
    ok(&out);
    assert!(out.stdout == big, "stdin value differs");
    let stored = with_cache(&url, "tagcache", async |c| {
        c.get_bytes("big").await.unwrap()
    });
    assert!(stored.as_deref() == Some(&big[..]));
    assert_eq!(ok(&run(&url, ["keys", "--tag", "t"])), "big\n");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value.bin");
    let other = binary_value(300 << 10);
    std::fs::write(&file, &other).unwrap();
    ok(&run(
        &url,
        ["set", "file", "--value-file", file.to_str().unwrap()],
    ));
    assert!(run(&url, ["get", "file"]).stdout == other);
    // A literal "-" is piped in; an empty stdin is an empty value.
    ok(&run_with_stdin(&url, &["set", "dash", "-"], b"-"));
    assert_eq!(ok(&run(&url, ["get", "dash"])), "-");
    ok(&run_with_stdin(&url, &["set", "empty", "-"], b""));
    assert_eq!(ok(&run(&url, ["get", "empty"])), "");

    let line = fails(
        &run(&url, ["set", "k", "--value-file", "/nonexistent/v"]),
        2,
    );
    assert!(line.contains("/nonexistent/v"), "{line}");
    let line = fails(&run(&url, ["set", "k", "v", "--value-file", "x"]), 2);
    assert!(line.contains("--help"), "{line}");
}

#[derive(serde::Serialize)]
struct Product {
    id: u32,
    name: String,
    prices: Vec<f64>,
    tags: Option<Vec<String>>,
}

/// Finding 7: `get` of a typed entry printed its MessagePack bytes.
#[test]
fn finding_7_get_prints_a_typed_value_as_json() {
    let redis = RedisServer::start();
    let url = redis.url();
    let product = Product {
        id: 42,
        name: "chair".into(),
        prices: vec![10.5, 12.0],
        tags: None,
    };
    let msgpack = with_cache(&url, "tagcache", async |c| {
        c.set("p", &product, &SetOptions::new()).await.unwrap();
        c.get_payload("p").await.unwrap().unwrap().bytes
    });
    let text = ok(&run(&url, ["get", "p"]));
    assert!(text.ends_with('\n'), "{text:?}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        json!({"id": 42, "name": "chair", "prices": [10.5, 12.0], "tags": null})
    );
    let out = run(&url, ["get", "--raw", "p"]);
    ok(&out);
    assert_eq!(out.stdout, msgpack);
    // Raw entries are still printed as they are.
    ok(&run(&url, ["set", "r", "{\"not\": \"parsed\"}"]));
    assert_eq!(ok(&run(&url, ["get", "r"])), "{\"not\": \"parsed\"}");
}

/// Finding 7: `tags` printed reserved tags with raw NUL bytes.
#[test]
fn finding_7_tags_prints_reserved_tags_readably() {
    let redis = RedisServer::start();
    let url = redis.url();
    with_cache(&url, "tagcache", async |c| {
        let path = KeyPath::from_parts(["org"]).push(7).push("a:b");
        c.set_path(&path, &1, &SetOptions::new().tag("t"))
            .await
            .unwrap();
    });
    let text = ok(&run(&url, ["tags", "org:7:a\\:b"]));
    assert!(!text.contains('\0'), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    // Every proper prefix (a path is not indexed under itself).
    for tag in ["t", "prefix:org", "prefix:org:7"] {
        assert!(lines.contains(&tag), "{tag} in {lines:?}");
    }
    assert!(!lines.contains(&"all"), "{lines:?}");
    let v = crate::json(&run(&url, ["tags", "--json", "org:7:a\\:b"]));
    assert!(
        v.as_array().unwrap().contains(&json!("prefix:org:7")),
        "{v}"
    );
}

/// Finding 7: on a malformed entry `tags` exited 0 with nothing while
/// `get` reported a codec error; both now report the same one (exit 2).
#[test]
fn finding_7_get_and_tags_report_the_same_codec_error_for_a_malformed_entry() {
    let redis = RedisServer::start();
    let url = redis.url();
    ok(&run(&url, ["set", "good", "v", "--tag", "F"]));
    // The issue's bytes: format 1, a 1-byte tag section that cannot hold
    // a tag length.
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("SET")
        .arg("{tagcache.0}:e:odd")
        .arg(&b"\x01\x00\x00\x00\x00\x01X"[..])
        .query::<()>(&mut con)
        .unwrap();
    let get = fails(&run(&url, ["get", "odd"]), 2);
    let tags = fails(&run(&url, ["tags", "odd"]), 2);
    assert!(get.contains("codec error"), "{get}");
    assert_eq!(get, tags);
    assert_eq!(redis_cmd::<u64>(&url, &["EXISTS", "{tagcache.0}:e:odd"]), 1);
    assert_eq!(ok(&run(&url, ["get", "good"])), "v");
    // A foreign writer's bytes, and another Redis type, likewise.
    redis::cmd("SET")
        .arg("{tagcache.0}:e:foreign")
        .arg("hello")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("RPUSH")
        .arg("{tagcache.0}:e:list")
        .arg("x")
        .query::<()>(&mut con)
        .unwrap();
    for key in ["foreign", "list"] {
        let get = fails(&run(&url, ["get", key]), 2);
        let tags = fails(&run(&url, ["tags", key]), 2);
        assert!(get.contains("codec error"), "{key}: {get}");
        assert_eq!(get, tags, "{key}");
    }
}
