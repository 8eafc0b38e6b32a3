//! migrate: legacy keys seeded with raw commands, moved by the binary.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{fails, json, ok, run, tagcache, with_cache, RedisServer};

/// The rules file the tests use (the README's example).
pub const RULES: &str = tagcache_testkit::fixtures::LEGACY_RULES_FILE;

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn cmd<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap()
}

/// Legacy keys of owners `pr-1` and `pr-10` in the three formats (one
/// without a TTL), a stale twin, and keys the rules leave alone.
fn seed(url: &str) -> redis::Connection {
    // The twin's new key, written by a current writer.
    ok(&run(url, ["set", r"dsr:pr-10:identity\:phone", "new"]));
    let mut con = raw(url);
    for args in [
        &[
            "SET",
            "id-pr-1-identity-email",
            "one@example.com",
            "EX",
            "600",
        ][..],
        &[
            "SET",
            "id-pr-10-identity-email",
            "ten@example.com",
            "EX",
            "600",
        ],
        &["SET", "EN_id-pr-1-identity-name", "T25l"],
        &["SET", "dsr__pr-1__retry__3", "3", "EX", "600"],
        &["SET", "dsr__pr-10__retry__12", "12", "EX", "600"],
        &["SET", "id-pr-10-identity-phone", "old", "EX", "600"],
        &["SET", "unrelated:key", "x"],
        &["SET", "id-a-identity-b-identity-c", "ambiguous"],
        &["RPUSH", "id-pr-1-identity-list", "x"],
    ] {
        cmd::<redis::Value>(&mut con, args);
    }
    con
}

fn exists(con: &mut redis::Connection, key: &str) -> bool {
    cmd::<i64>(con, &["EXISTS", key]) == 1
}

/// The counts of a report (without `scanned`, which depends on timing).
fn counts(v: &Value) -> Value {
    let mut v = v.clone();
    let map = v.as_object_mut().unwrap();
    assert!(map.remove("scanned").unwrap().as_u64().unwrap() >= 9, "{v}");
    map.remove("moves");
    v
}

#[test]
fn migrate_moves_legacy_keys_once_keeping_their_ttl() {
    let mut redis = RedisServer::start();
    redis.allow_scan(); // migrate walks the keyspace with SCAN
    let url = redis.url();
    let mut con = seed(&url);
    let v = json(&run(&url, ["migrate", "--rules", RULES, "--json"]));
    assert_eq!(
        counts(&v),
        json!({"migrated": 5, "skipped": 1, "unmatched": 1, "ambiguous": 1,
               "vanished": 0, "not_string": 1, "dry_run": false, "resumed": false})
    );
    // The new keys: the scope's parts and the part, joined and escaped.
    for (key, value) in [
        (r"dsr:pr-1:identity\:email", "one@example.com"),
        (r"dsr:pr-10:identity\:email", "ten@example.com"),
        (r"dsr:pr-1:encoded\:identity\:name", "T25l"),
        (r"dsr:pr-1:retry\:3", "3"),
        (r"dsr:pr-10:retry\:12", "12"),
        // The twin's newer value won.
        (r"dsr:pr-10:identity\:phone", "new"),
    ] {
        assert_eq!(ok(&run(&url, ["get", key])), value, "{key}");
    }
    for gone in [
        "id-pr-1-identity-email",
        "id-pr-10-identity-email",
        "EN_id-pr-1-identity-name",
        "dsr__pr-1__retry__3",
        "dsr__pr-10__retry__12",
        "id-pr-10-identity-phone",
    ] {
        assert!(!exists(&mut con, gone), "{gone}");
    }
    for kept in [
        "unrelated:key",
        "id-a-identity-b-identity-c",
        "id-pr-1-identity-list",
    ] {
        assert!(exists(&mut con, kept), "{kept}");
    }
    // TTLs: kept, or the rules' default for the key that had none.
    let (ttl, no_ttl, pr1, pr10) = with_cache(&url, "tagcache", async |c| {
        let pr1 = c.scope(["dsr", "pr-1"]).unwrap();
        let pr10 = c.scope(["dsr", "pr-10"]).unwrap();
        (
            pr1.ttl("identity:email").await.unwrap().unwrap(),
            pr1.ttl("encoded:identity:name").await.unwrap().unwrap(),
            pr1.keys().collect().await.unwrap().len(),
            pr10.keys().collect().await.unwrap().len(),
        )
    });
    assert!(
        ttl > Duration::from_secs(590) && ttl <= Duration::from_secs(600),
        "{ttl:?}"
    );
    assert!(
        no_ttl > Duration::from_secs(86_390) && no_ttl <= Duration::from_secs(86_400),
        "{no_ttl:?}"
    );
    // Each owner's index holds its own keys only (pr-1 is not pr-10),
    // however they were written (pr-10's phone was a plain `set`).
    assert_eq!((pr1, pr10), (3, 3));
    assert_eq!(
        ok(&run(&url, ["keys", "--tag", "dsr:pr-1"])),
        "dsr:pr-1:retry\\:3\n"
    );

    // Run again: nothing left to move, nothing changed.
    let size: i64 = cmd(&mut con, &["DBSIZE"]);
    let v = json(&run(&url, ["migrate", "--json", "--rules", RULES]));
    assert_eq!(
        counts(&v),
        json!({"migrated": 0, "skipped": 0, "unmatched": 1, "ambiguous": 1,
               "vanished": 0, "not_string": 1, "dry_run": false, "resumed": false})
    );
    assert_eq!(cmd::<i64>(&mut con, &["DBSIZE"]), size);
    let text = ok(&run(&url, ["migrate", "--rules", RULES]));
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.contains(&vec!["migrated", "0"]), "{text}");
    assert!(rows.contains(&vec!["not", "string", "1"]), "{text}");
    assert!(rows.contains(&vec!["dry", "run", "no"]), "{text}");
}

#[test]
fn a_dry_run_changes_nothing_and_lists_the_moves() {
    let mut redis = RedisServer::start();
    redis.allow_scan(); // migrate walks the keyspace with SCAN
    let url = redis.url();
    let mut con = seed(&url);
    let size: i64 = cmd(&mut con, &["DBSIZE"]);
    let text = ok(&run(&url, ["migrate", "--rules", RULES, "--dry-run"]));
    let mut moves: Vec<&str> = text.lines().filter(|l| l.contains(" -> ")).collect();
    moves.sort_unstable();
    assert_eq!(
        moves,
        [
            r"EN_id-pr-1-identity-name -> dsr:pr-1:encoded\:identity\:name, migrate (rule identity-encoded)",
            r"dsr__pr-10__retry__12 -> dsr:pr-10:retry\:12, migrate (rule retry)",
            r"dsr__pr-1__retry__3 -> dsr:pr-1:retry\:3, migrate (rule retry)",
            r"id-pr-1-identity-email -> dsr:pr-1:identity\:email, migrate (rule identity)",
            r"id-pr-1-identity-list -> dsr:pr-1:identity\:list, not_string (rule identity)",
            r"id-pr-10-identity-email -> dsr:pr-10:identity\:email, migrate (rule identity)",
            r"id-pr-10-identity-phone -> dsr:pr-10:identity\:phone, skip (rule identity)",
        ],
        "{text}"
    );
    // The moves come first, the counts last.
    assert!(text.trim_end().ends_with("resumed     no"), "{text}");
    assert!(text.contains("\nmigrated    5\n"), "{text}");

    let v = json(&run(
        &url,
        ["migrate", "--rules", RULES, "--dry-run", "--json"],
    ));
    assert_eq!(v["moves"].as_array().unwrap().len(), 7, "{v}");
    assert!(
        v["moves"].as_array().unwrap().contains(&json!({
            "legacy_key": "id-pr-10-identity-phone",
            "new_key": r"dsr:pr-10:identity\:phone",
            "action": "skip",
            "rule": "identity",
        })),
        "{v}"
    );
    assert_eq!(
        counts(&v),
        json!({"migrated": 5, "skipped": 1, "unmatched": 1, "ambiguous": 1,
               "vanished": 0, "not_string": 1, "dry_run": true, "resumed": false})
    );
    // Nothing changed: no key added or removed, values and TTLs as they
    // were, no cursor saved, no marker set.
    assert_eq!(cmd::<i64>(&mut con, &["DBSIZE"]), size);
    let email: String = cmd(&mut con, &["GET", "id-pr-1-identity-email"]);
    assert_eq!(email, "one@example.com");
    assert_eq!(
        cmd::<i64>(&mut con, &["PTTL", "EN_id-pr-1-identity-name"]),
        -1
    );
    let twin: String = cmd(&mut con, &["GET", "id-pr-10-identity-phone"]);
    assert_eq!(twin, "old");
    fails(&run(&url, ["get", r"dsr:pr-1:identity\:email"]), 1);
    assert!(!exists(&mut con, "{tagcache}:legacy"));
    let marker: Option<String> = cmd(&mut con, &["HGET", "{tagcache}:meta", "legacy_done"]);
    assert_eq!(marker, None);
}

#[test]
fn an_interrupted_migration_resumes_from_its_cursor() {
    interrupted_migration_resumes("-INT");
}

/// Containers stop a process with SIGTERM: it stops as cleanly as Ctrl-C.
#[test]
fn a_terminated_migration_resumes_from_its_cursor() {
    interrupted_migration_resumes("-TERM");
}

fn interrupted_migration_resumes(signal: &str) {
    const N: usize = 300;
    let mut redis = RedisServer::start();
    redis.allow_scan(); // migrate walks the keyspace with SCAN
    let url = redis.url();
    let mut con = raw(&url);
    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.set(format!("id-pr-{i}-identity-email"), format!("e{i}"))
            .ignore();
    }
    pipe.query::<()>(&mut con).unwrap();
    // Slowed down (about 1.5 s in all), stopped once a step is saved.
    let child = tagcache()
        .args(["--url", &url, "migrate", "--rules", RULES, "--json", "-q"])
        .args(["--batch", "10", "--rate", "200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exists(&mut con, "{tagcache}:legacy") {
        assert!(Instant::now() < deadline, "no cursor saved");
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let line = fails(&child.wait_with_output().unwrap(), 2);
    assert!(
        line.contains("interrupted") && line.contains("resumes"),
        "{line}"
    );
    let saved: u64 = cmd(&mut con, &["HGET", "{tagcache}:legacy", "migrated"]);
    assert!(saved > 0 && saved < N as u64, "{saved}");

    let v = json(&run(&url, ["migrate", "--rules", RULES, "--json"]));
    assert_eq!(v["resumed"], true, "{v}");
    // The totals go on from the saved ones (a step dropped mid-way may
    // have moved keys it did not count).
    let migrated = v["migrated"].as_u64().unwrap();
    assert!(migrated > saved && migrated <= N as u64, "{v}");
    let mut left = redis::cmd("EXISTS");
    for i in 0..N {
        left.arg(format!("id-pr-{i}-identity-email"));
    }
    assert_eq!(left.query::<i64>(&mut con).unwrap(), 0);
    assert_eq!(
        ok(&run(&url, ["get", r"dsr:pr-299:identity\:email"])),
        "e299"
    );
    assert!(!exists(&mut con, "{tagcache}:legacy"));
    let marker: Option<String> = cmd(&mut con, &["HGET", "{tagcache}:meta", "legacy_done"]);
    assert!(marker.is_some());
}

#[test]
fn bad_rules_files_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let overlapping = std::path::Path::new(tagcache_testkit::fixtures::OVERLAPPING_RULES_FILE);
    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, "[[rule]]\npattern = \"x\nscope = 1\n").unwrap();
    let missing = dir.path().join("missing.toml");
    // The file is checked before any server is contacted.
    let url = "redis://127.0.0.1:1";
    let file = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let line = fails(&run(url, ["migrate", "--rules", &file(overlapping)]), 2);
    assert!(
        line.contains("\"identity\"") && line.contains("\"catch-all\"") && line.contains("overlap"),
        "{line}"
    );
    assert!(line.contains("overlapping-rules.toml"), "{line}");
    let line = fails(&run(url, ["migrate", "--rules", &file(&syntax)]), 2);
    assert!(line.contains("line 2"), "{line}");
    let line = fails(&run(url, ["migrate", "--rules", &file(&missing)]), 2);
    assert!(line.contains("cannot read rules file"), "{line}");
}

#[test]
fn the_documented_rules_files_are_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let from_readme: String = readme
        .lines()
        .skip_while(|l| !l.starts_with("- **migrate**"))
        .skip_while(|l| l.trim() != "```toml")
        .skip(1)
        .take_while(|l| l.trim() != "```")
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    let help = ok(&tagcache().args(["migrate", "--help"]).output().unwrap());
    let from_help: String = help
        .lines()
        .skip_while(|l| l.trim() != "Rules file (TOML):")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('`'))
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    let fixture = std::fs::read_to_string(RULES).unwrap();
    for (source, text) in [
        ("README", &from_readme),
        ("--help", &from_help),
        ("fixture", &fixture),
    ] {
        let rules = tagcache::legacy::LegacyRules::from_toml(text)
            .unwrap_or_else(|e| panic!("{source}: {e}\n{text}"));
        assert_eq!(rules.len(), 3, "{source}");
        for (legacy, new) in [
            ("id-pr-1-identity-email", r"dsr:pr-1:identity\:email"),
            (
                "EN_id-pr-1-identity-name",
                r"dsr:pr-1:encoded\:identity\:name",
            ),
            ("dsr__pr-10__retry__12", r"dsr:pr-10:retry\:12"),
        ] {
            let target = rules.map(legacy.as_bytes());
            let key = target.map(|t| t.key().to_string());
            assert_eq!(key.as_deref(), Some(new), "{source}: {legacy}");
        }
    }
}
