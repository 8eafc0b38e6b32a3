//! A privacy-request platform, in the middle of
//! its move to tagcache: each request (`dsr:<id>`) keeps dozens of parts in
//! one owner scope, while keys in the old formats (`id-{id}-identity-{attr}`,
//! `EN_`-prefixed encoded objects, `dsr__{id}__retry__{n}`) are still in
//! Redis. The program seeds both, then shows and checks:
//!
//! - lazy migration: a read of a part that only exists in the old format
//!   returns the old value and moves it (remaining TTL kept);
//! - listing a request in the mixed state: old and new keys, each once;
//! - clearing a request: all its keys in both formats, and nothing of
//!   request `pr-10` when clearing `pr-1`.
//!
//! It exits 1 when an outcome differs from the expected one.
//!
//! `cargo run --example privacy_requests` starts a private redis-server
//! (needs `redis-server` on PATH) unless `REDIS_URL` is set; the test
//! suite runs it too (`tests/it/legacy.rs`).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use tagcache::legacy::{LegacyMode, LegacyRules};
use tagcache::{Cache, SetOptions};

/// The old formats, as an operator would keep them in a rules file.
const RULES: &str = r#"
default_ttl_secs = 86400   # for old keys that had no TTL

[[rule]]
name = "identity"
pattern = "id-{id}-identity-{attr}"
scope = ["dsr", "{id}"]
part = "identity:{attr}"

[[rule]]
name = "encoded"
pattern = "EN_id-{id}-identity-{attr}"
scope = ["dsr", "{id}"]
part = "encoded:{attr}"

[[rule]]
name = "retry"
pattern = "dsr__{id}__retry__{n:digits}"
scope = ["dsr", "{id}"]
part = "retry:{n}"
tags = ["retries"]
"#;

const REQUESTS: [&str; 2] = ["pr-1", "pr-10"];

fn ensure(ok: bool, what: impl std::fmt::Display) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("mismatch: {what}"))
    }
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Seeds the old formats for both requests, as the old code wrote them.
async fn seed_legacy(conn: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
    let mut pipe = redis::pipe();
    for id in REQUESTS {
        pipe.cmd("SET")
            .arg(format!("id-{id}-identity-email"))
            .arg(format!("{id}@example.com"))
            .arg("PX")
            .arg(3_600_000)
            .ignore();
        pipe.cmd("SET")
            .arg(format!("id-{id}-identity-name"))
            .arg(format!("Name of {id}"))
            .arg("PX")
            .arg(3_600_000)
            .ignore();
        pipe.cmd("SET")
            .arg(format!("EN_id-{id}-identity-ssn"))
            .arg(b"\x00\x01encrypted".as_slice())
            .ignore();
        pipe.cmd("SET")
            .arg(format!("dsr__{id}__retry__1"))
            .arg(2)
            .arg("PX")
            .arg(600_000)
            .ignore();
    }
    pipe.exec_async(conn).await.map_err(fail)
}

async fn exists(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Result<bool, String> {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async(conn)
        .await
        .map_err(fail)
}

async fn listing(cache: &Cache, id: &str) -> Result<BTreeSet<String>, String> {
    let keys = cache
        .scope(["dsr", id])
        .map_err(fail)?
        .keys()
        .collect()
        .await
        .map_err(fail)?;
    Ok(keys.iter().map(ToString::to_string).collect())
}

/// Runs the scenario against the Redis at `url`; `Err` describes the
/// first outcome that differs from the expected one.
pub async fn run(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(fail)?;
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .map_err(fail)?;
    seed_legacy(&mut raw).await?;

    let rules = LegacyRules::from_toml(RULES).map_err(fail)?;
    let cache = Cache::builder(url)
        .namespace("privacy-example")
        .legacy(rules, LegacyMode::Migrate)
        .auto_sweep(None)
        // A batch job beside a busy application: a second per call rather
        // than the default 100 ms (this example also runs inside the
        // parallel test suite on a loaded machine).
        .response_timeout(Duration::from_secs(1))
        .build()
        .await
        .map_err(fail)?;

    // Workers write new parts in the new layout only.
    for id in REQUESTS {
        let request = cache.scope(["dsr", id]).map_err(fail)?;
        request
            .set_bytes(
                "mask:secret",
                format!("mask-{id}"),
                &SetOptions::new().ttl(Duration::from_secs(3600)),
            )
            .await
            .map_err(fail)?;
        request
            .set(
                "result:export",
                &vec![1u8, 2, 3],
                &SetOptions::new().ttl(Duration::from_secs(3600)),
            )
            .await
            .map_err(fail)?;
    }

    // Lazy migration: the old value, moved with its remaining TTL.
    let pr1 = cache.scope(["dsr", "pr-1"]).map_err(fail)?;
    let email = pr1.get_bytes("identity:email").await.map_err(fail)?;
    ensure(
        email.as_deref() == Some(b"pr-1@example.com".as_slice()),
        format!("identity:email of pr-1 read {email:?}"),
    )?;
    ensure(
        !exists(&mut raw, "id-pr-1-identity-email").await?,
        "the legacy email key of pr-1 was moved",
    )?;
    let ttl = pr1
        .ttl("identity:email")
        .await
        .map_err(fail)?
        .unwrap_or_default();
    ensure(
        ttl > Duration::from_secs(3500) && ttl <= Duration::from_secs(3600),
        format!("the moved key keeps its remaining TTL (got {ttl:?})"),
    )?;
    let ssn = pr1.get_bytes("encoded:ssn").await.map_err(fail)?;
    ensure(
        ssn.as_deref() == Some(b"\x00\x01encrypted".as_slice()),
        "encoded values come back byte for byte",
    )?;
    println!("lazy migration: identity:email and encoded:ssn of pr-1 moved on read (ttl {ttl:?})");

    // Listing in the mixed state: two parts moved, two still legacy, two
    // new; each once, and none of pr-10's.
    let expected = |id: &str| -> BTreeSet<String> {
        [
            "identity\\:email",
            "identity\\:name",
            "encoded\\:ssn",
            "retry\\:1",
            "mask\\:secret",
            "result\\:export",
        ]
        .iter()
        .map(|p| format!("dsr:{id}:{p}"))
        .collect()
    };
    ensure(
        exists(&mut raw, "id-pr-1-identity-name").await?,
        "identity:name of pr-1 is still in the old format before the listing",
    )?;
    let listed = listing(&cache, "pr-1").await?;
    ensure(listed == expected("pr-1"), format!("pr-1 lists {listed:?}"))?;
    println!("pr-1 in the mixed state: {} keys", listed.len());
    let listed10 = listing(&cache, "pr-10").await?;
    ensure(
        listed10 == expected("pr-10"),
        format!("pr-10 lists {listed10:?}"),
    )?;
    ensure(
        pr1.contains("retry:1").await.map_err(fail)?,
        "retry:1 is part of pr-1",
    )?;

    // Clear pr-1: everything of it, in both formats; nothing of pr-10.
    let removed = pr1.clear().await.map_err(fail)?;
    ensure(
        removed == 6,
        format!("clearing pr-1 removed {removed} keys"),
    )?;
    ensure(
        listing(&cache, "pr-1").await?.is_empty(),
        "pr-1 is empty after clear",
    )?;
    ensure(
        pr1.get_bytes("identity:name")
            .await
            .map_err(fail)?
            .is_none(),
        "no old value comes back after clear",
    )?;
    let after10 = listing(&cache, "pr-10").await?;
    ensure(
        after10 == expected("pr-10"),
        format!("pr-10 still lists all its keys after clearing pr-1: {after10:?}"),
    )?;
    let pr10 = cache.scope(["dsr", "pr-10"]).map_err(fail)?;
    let mask = pr10.get_bytes("mask:secret").await.map_err(fail)?;
    ensure(
        mask.as_deref() == Some(b"mask-pr-10".as_slice()),
        "pr-10's new parts survive clearing pr-1",
    )?;
    println!("cleared pr-1: {removed} keys; pr-10 untouched");

    // Tidy up the second request as well.
    let removed10 = pr10.clear().await.map_err(fail)?;
    ensure(
        removed10 == 6,
        format!("clearing pr-10 removed {removed10}"),
    )?;
    println!("privacy_requests: all checks passed");
    Ok(())
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    // Listing and clearing scan for legacy keys (this example's whole
    // point); the fixture otherwise forbids SCAN.
    let (_server, url) = tagcache_testkit::redis_url_or_private(true);
    if let Err(e) = run(&url).await {
        println!("{e}");
        // Stop the private server before exiting (exit skips destructors).
        drop(_server);
        std::process::exit(1);
    }
}
