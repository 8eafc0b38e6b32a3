//! Bad input and unusable servers: one line on stderr, exit 2, never a
//! panic — for every subcommand that talks to Redis.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::migrate::RULES;
use crate::{fails, ok, run, tagcache, RedisServer};

/// Each operator subcommand with valid arguments.
const COMMANDS: [&[&str]; 10] = [
    &["set", "k", "v"],
    &["get", "k"],
    &["del", "k"],
    &["tags", "k"],
    &["keys", "--tag", "t"],
    &["invalidate", "--tag", "t"],
    &["prune"],
    &["stats"],
    &["doctor"],
    &["migrate", "--rules", RULES],
];

#[test]
fn an_unreachable_server_is_one_line_and_exit_2() {
    for args in COMMANDS {
        let line = fails(&run("redis://127.0.0.1:1", args), 2);
        assert!(line.contains("127.0.0.1:1"), "{args:?}: {line}");
        assert!(line.contains("connect"), "{args:?}: {line}");
    }
    let line = fails(&run("unix:///nonexistent/redis.sock", ["get", "k"]), 2);
    assert!(line.contains("/nonexistent/redis.sock"), "{line}");
}

#[test]
fn a_bad_url_is_one_line_and_exit_2() {
    for args in COMMANDS {
        let line = fails(&run("http://example.invalid", args), 2);
        assert!(line.contains("url"), "{args:?}: {line}");
    }
    let line = fails(&run("redis://host:notaport", ["stats"]), 2);
    assert!(line.contains("url"), "{line}");
}

#[test]
fn no_url_says_how_to_give_one() {
    for args in COMMANDS {
        let out = tagcache().args(args).output().unwrap();
        let line = fails(&out, 2);
        assert!(
            line.contains("--url") && line.contains("REDIS_URL"),
            "{line}"
        );
    }
}

#[test]
fn a_wrong_password_is_one_line_and_exit_2() {
    let redis = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let socket = format!("unix://{}", redis.socket().display());
    let wrong = format!("{socket}?pass=wrong");
    for args in COMMANDS {
        let line = fails(&run(&wrong, args), 2);
        assert!(line.contains("authentication"), "{args:?}: {line}");
        assert!(!line.contains("wrong"), "password shown: {line}");
    }
    let right = redis.url();
    assert_eq!(right, format!("{socket}?pass=s3cret"));
    ok(&run(&right, ["set", "k", "v"]));
    assert_eq!(ok(&run(&right, ["get", "k"])), "v");
}

#[test]
fn a_tls_failure_is_one_line_and_exit_2() {
    // A server that does not speak TLS: the handshake fails.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"-ERR plain text only\r\n");
        }
    });
    let url = format!("rediss://127.0.0.1:{port}");
    for args in [&["get", "k"][..], &["doctor"]] {
        let line = fails(&run(&url, args), 2);
        assert!(line.contains("TLS"), "{line}");
    }
}

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    for args in [
        &["get"][..],
        &["set", "k"],
        &["del"],
        &["keys"],
        &["invalidate"],
        &["migrate"],
        &["migrate", "--rules", RULES, "--batch", "0"],
        &["set", "k", "v", "--ttl", "0"],
        &["set", "k", "v", "--ttl", "soon"],
        &["frobnicate"],
        &[],
    ] {
        let out = tagcache().args(args).output().unwrap();
        let line = fails(&out, 2);
        assert!(line.contains("--help"), "{args:?}: {line}");
    }
}

#[test]
fn invalid_keys_and_namespaces_are_refused_with_exit_2() {
    let redis = RedisServer::start();
    let url = redis.url();
    let line = fails(&run(&url, ["set", "", "v"]), 2);
    assert!(line.contains("key is empty"), "{line}");
    let line = fails(&run(&url, ["keys", "--tag", ""]), 2);
    assert!(line.contains("tag is empty"), "{line}");
    let line = fails(&run(&url, ["--namespace", "bad.ns", "stats"]), 2);
    assert!(line.contains("namespace"), "{line}");
}

#[test]
fn help_and_version_exit_0() {
    let out = tagcache().arg("--help").output().unwrap();
    let help = ok(&out);
    for sub in [
        "set",
        "get",
        "del",
        "tags",
        "keys",
        "invalidate",
        "prune",
        "stats",
        "doctor",
        "migrate",
        "demo",
        "bench",
    ] {
        assert!(help.contains(sub), "{sub} in {help}");
    }
    assert!(help.contains("Exit codes"), "{help}");
    ok(&tagcache().arg("--version").output().unwrap());
}

/// Issue 9, finding 8: an ACL user who may only read was told "script
/// error"; it is a permission error naming the refused command.
#[test]
fn finding_8_a_read_only_user_is_told_which_command_it_may_not_run() {
    let redis = RedisServer::start();
    let url = redis.url();
    ok(&run(&url, ["set", "k", "v", "--tag", "t"]));
    crate::redis_cmd::<()>(
        &url,
        &[
            "ACL",
            "SETUSER",
            "reader",
            "on",
            ">pw",
            "~*",
            "+@read",
            "+@scripting",
            "+@connection",
            "+info",
            "+time",
            "+config|get",
        ],
    );
    let reader = format!("{url}?user=reader&pass=pw");
    assert_eq!(ok(&run(&reader, ["get", "k"])), "v");
    assert_eq!(ok(&run(&reader, ["tags", "k"])), "t\n");
    assert_eq!(ok(&run(&reader, ["keys", "--tag", "t"])), "k\n");
    ok(&run(&reader, ["stats"]));
    for (args, command) in [
        (&["set", "k2", "v"][..], "may not run SET"),
        (&["invalidate", "--tag", "t"], "may not run RENAME"),
    ] {
        let line = fails(&run(&reader, args), 2);
        assert!(line.contains("permission denied"), "{args:?}: {line}");
        assert!(line.contains(command), "{args:?}: {line}");
        assert!(!line.contains("script error"), "{args:?}: {line}");
    }
    assert_eq!(ok(&run(&url, ["get", "k"])), "v");
}
