//! Legacy-key migration: rules, lazy migration on read, transition-mode
//! listing and clearing, bulk migration, and the example that shows it.
//!
//! Tests that scan call `server.allow_scan()`; the others rely on the
//! fixture's check (and assert it) that SCAN was never called.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tagcache::legacy::{LegacyMode, LegacyRule, LegacyRules, MigrateOptions, MoveAction};
use tagcache::{Cache, ErrorKind, KeyPath, SetOptions};

use tagcache_testkit::RedisServer;

// The example brings its own copy of the fixture for its `main`.
#[allow(clippy::duplicate_mod)]
#[path = "../../examples/privacy_requests.rs"]
mod privacy_requests;

/// The formats of the privacy-request platform.
fn rules() -> LegacyRules {
    LegacyRules::new([
        LegacyRule::new("id-{id}-identity-{attr}")
            .name("identity")
            .scope(["dsr", "{id}"])
            .part("identity:{attr}"),
        LegacyRule::new("EN_id-{id}-identity-{attr}")
            .name("encoded")
            .scope(["dsr", "{id}"])
            .part("encoded:{attr}"),
        LegacyRule::new("dsr__{id}__retry__{n:digits}")
            .name("retry")
            .scope(["dsr", "{id}"])
            .part("retry:{n}")
            .tag("retries"),
    ])
    .unwrap()
    .default_ttl(Duration::from_secs(120))
}

async fn legacy_cache(server: &RedisServer, mode: LegacyMode) -> Cache {
    crate::builder(server)
        .legacy(rules(), mode)
        .build()
        .await
        .unwrap()
}

fn put(server: &RedisServer, key: &str, value: &str, ttl_ms: Option<u64>) {
    match ttl_ms {
        Some(ms) => server.cmd::<()>(&[
            b"SET",
            key.as_bytes(),
            value.as_bytes(),
            b"PX",
            ms.to_string().as_bytes(),
        ]),
        None => server.cmd::<()>(&[b"SET", key.as_bytes(), value.as_bytes()]),
    }
}

/// The options of every new entry these tests write.
fn minute() -> SetOptions {
    SetOptions::new().ttl(Duration::from_secs(60))
}

/// A new entry for `owner`'s e-mail, which makes its legacy key a twin.
async fn set_new_email(cache: &Cache, owner: &str) {
    cache
        .scope(["dsr", owner])
        .unwrap()
        .set_bytes("identity:email", "new", &minute())
        .await
        .unwrap();
}

fn exists(server: &RedisServer, key: &str) -> bool {
    server.cmd::<u8>(&[b"EXISTS", key.as_bytes()]) == 1
}

fn scans(server: &RedisServer) -> u64 {
    server.command_calls().get("scan").copied().unwrap_or(0)
}

fn names(paths: Vec<KeyPath>) -> BTreeSet<String> {
    paths.iter().map(ToString::to_string).collect()
}

#[test]
fn overlapping_and_malformed_rules_are_refused() {
    let identity = || {
        LegacyRule::new("id-{id}-identity-{attr}")
            .name("identity")
            .scope(["dsr", "{id}"])
            .part("identity:{attr}")
    };
    let cases: Vec<(Vec<LegacyRule>, &str)> = vec![
        (
            vec![
                identity(),
                LegacyRule::new("id-{id}-{rest}")
                    .name("catch-all")
                    .scope(["dsr", "{id}"])
                    .part("other:{rest}"),
            ],
            "\"catch-all\"",
        ),
        // Separators inside captures make these overlap too:
        // dsr__a__mask__b__retry__c is both.
        (
            vec![
                LegacyRule::new("dsr__{id}__retry__{n}")
                    .scope(["dsr", "{id}"])
                    .part("retry:{n}"),
                LegacyRule::new("dsr__{id}__mask__{n}")
                    .scope(["dsr", "{id}"])
                    .part("mask:{n}"),
            ],
            "__mask__",
        ),
        // Two formats for one new key.
        (
            vec![
                identity(),
                LegacyRule::new("EN_id-{id}-identity-{attr}")
                    .name("encoded")
                    .scope(["dsr", "{id}"])
                    .part("identity:{attr}"),
            ],
            "new key",
        ),
        (vec![identity(), identity().name("again")], "\"again\""),
        (
            vec![LegacyRule::new("k-{a}{b}").scope(["{a}"]).part("{b}")],
            "side by side",
        ),
        (
            vec![LegacyRule::new("k-{a}").scope(["{a}"]).part("{missing}")],
            "{missing}",
        ),
        (
            vec![LegacyRule::new("k-{a}-{b}").scope(["{a}"]).part("p")],
            "{b}",
        ),
    ];
    for (rules, needle) in cases {
        let e = LegacyRules::new(rules).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(needle), "{e}");
    }
    // Both rules are named, with a key both match.
    let e = LegacyRules::new([
        identity(),
        LegacyRule::new("id-{id}-{rest}")
            .name("catch-all")
            .scope(["dsr", "{id}"])
            .part("other:{rest}"),
    ])
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("\"identity\"") && msg.contains("legacy key \"id-"),
        "{msg}"
    );
    // Classes that keep separators out of captures make such rules disjoint.
    LegacyRules::new([
        LegacyRule::new("dsr__{id:[^_]}__retry__{n}")
            .scope(["dsr", "{id}"])
            .part("retry:{n}"),
        LegacyRule::new("dsr__{id:[^_]}__mask__{n}")
            .scope(["dsr", "{id}"])
            .part("mask:{n}"),
        LegacyRule::new("id-{id}-identity-{a:[^-]}")
            .scope(["dsr", "{id}"])
            .part("identity:{a}"),
        LegacyRule::new("id-{id}-custom-{f:[^-]}")
            .scope(["dsr", "{id}"])
            .part("custom:{f}"),
    ])
    .unwrap();
    // The same checks apply to a rules file.
    let e = LegacyRules::from_toml(tagcache_testkit::fixtures::OVERLAPPING_RULES_TOML).unwrap_err();
    assert!(e.to_string().contains("\"catch-all\""), "{e}");
}

#[tokio::test]
async fn a_read_migrates_the_legacy_key_with_its_remaining_ttl() {
    let server = RedisServer::start();
    let cache = legacy_cache(&server, LegacyMode::Migrate).await;
    put(
        &server,
        "id-pr-1-identity-email",
        "a@example.com",
        Some(600_000),
    );
    put(&server, "EN_id-pr-1-identity-name", "\u{1}enc", None);
    put(&server, "dsr__pr-1__retry__2", "3", Some(30_000));
    let dsr = cache.scope(["dsr", "pr-1"]).unwrap();

    assert_eq!(
        dsr.get_bytes("identity:email").await.unwrap().as_deref(),
        Some(&b"a@example.com"[..])
    );
    assert!(!exists(&server, "id-pr-1-identity-email"), "moved");
    let ttl = cache
        .ttl("dsr:pr-1:identity\\:email")
        .await
        .unwrap()
        .unwrap();
    assert!(
        ttl <= Duration::from_secs(600) && ttl > Duration::from_secs(590),
        "{ttl:?}"
    );
    // Indexed under the owner's scope: listed, checked, cleared with it.
    assert!(dsr.contains("identity:email").await.unwrap());
    // Read again: from the new key.
    assert_eq!(
        dsr.get_bytes("identity:email").await.unwrap().as_deref(),
        Some(&b"a@example.com"[..])
    );
    // A legacy key without TTL gets the rules' default.
    assert_eq!(
        dsr.get_bytes("encoded:name").await.unwrap().as_deref(),
        Some(&b"\x01enc"[..])
    );
    let ttl = cache.ttl("dsr:pr-1:encoded\\:name").await.unwrap().unwrap();
    assert!(
        ttl <= Duration::from_secs(120) && ttl > Duration::from_secs(110),
        "{ttl:?}"
    );
    // The rule's tags are indexed too.
    assert_eq!(
        dsr.get_bytes("retry:2").await.unwrap().as_deref(),
        Some(&b"3"[..])
    );
    assert_eq!(
        cache.keys_with_tag("retries").collect().await.unwrap(),
        vec![b"dsr:pr-1:retry\\:2".to_vec()]
    );
    // Legacy values are raw bytes: a typed read says so.
    assert_eq!(
        dsr.get::<String>("identity:email")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Codec
    );
    // No legacy key, no entry: a miss. A part no rule maps: a plain read.
    assert_eq!(dsr.get_bytes("identity:phone").await.unwrap(), None);
    assert_eq!(dsr.get_bytes("notes").await.unwrap(), None);
    dsr.set("notes", &"typed", &minute()).await.unwrap();
    assert_eq!(
        dsr.get::<String>("notes").await.unwrap().as_deref(),
        Some("typed")
    );
    // Once the namespace is marked migrated, clear does not scan either.
    server.cmd::<()>(&[b"HSET", b"{test}:meta", b"legacy_done", b"1"]);
    assert_eq!(dsr.clear().await.unwrap(), 4);
    assert_eq!(scans(&server), 0, "point reads never scan");
}

#[tokio::test]
async fn a_read_moves_exactly_the_value_it_returns() {
    // The move script is given the SHA1 of the value the read returned and
    // moves nothing else (a value rewritten in between stays legacy).
    let server = RedisServer::start();
    let cache = legacy_cache(&server, LegacyMode::Migrate).await;
    put(&server, "id-pr-1-identity-a", "old", Some(60_000));
    let dsr = cache.scope(["dsr", "pr-1"]).unwrap();
    assert_eq!(
        dsr.get_bytes("identity:a").await.unwrap().as_deref(),
        Some(&b"old"[..])
    );
    assert!(!exists(&server, "id-pr-1-identity-a"));
    assert_eq!(
        server.cmd::<u8>(&[b"EXISTS", b"{test.0}:e:dsr:pr-1:identity\\:a"]),
        1
    );
}

#[tokio::test]
async fn read_only_mode_returns_legacy_values_without_moving_them() {
    let server = RedisServer::start();
    let cache = legacy_cache(&server, LegacyMode::ReadOnly).await;
    put(
        &server,
        "id-pr-1-identity-email",
        "a@example.com",
        Some(600_000),
    );
    let dsr = cache.scope(["dsr", "pr-1"]).unwrap();
    for _ in 0..2 {
        assert_eq!(
            dsr.get_bytes("identity:email").await.unwrap().as_deref(),
            Some(&b"a@example.com"[..])
        );
    }
    assert!(exists(&server, "id-pr-1-identity-email"), "left in place");
    assert!(!cache.exists("dsr:pr-1:identity\\:email").await.unwrap());
    assert!(dsr.contains("identity:email").await.unwrap());
    // A new write wins over the legacy key, which old code may still read.
    dsr.set_bytes("identity:email", "b@example.com", &minute())
        .await
        .unwrap();
    assert_eq!(
        dsr.get_bytes("identity:email").await.unwrap().as_deref(),
        Some(&b"b@example.com"[..])
    );
    assert!(exists(&server, "id-pr-1-identity-email"));
    // A delete takes both, so the old value cannot come back.
    assert!(dsr.delete("identity:email").await.unwrap());
    assert!(!exists(&server, "id-pr-1-identity-email"));
    assert_eq!(dsr.get_bytes("identity:email").await.unwrap(), None);
    assert!(!dsr.contains("identity:email").await.unwrap());
    assert_eq!(scans(&server), 0);
}

#[tokio::test]
async fn stale_legacy_twins_are_deleted() {
    let server = RedisServer::start();
    let cache = legacy_cache(&server, LegacyMode::Migrate).await;
    let dsr = cache.scope(["dsr", "pr-1"]).unwrap();
    dsr.set_bytes("identity:email", "new", &minute())
        .await
        .unwrap();
    // Old code writes the legacy key after the new one exists.
    put(&server, "id-pr-1-identity-email", "old", Some(600_000));
    assert_eq!(
        dsr.get_bytes("identity:email").await.unwrap().as_deref(),
        Some(&b"new"[..])
    );
    assert!(!exists(&server, "id-pr-1-identity-email"), "twin deleted");
    // A write deletes the twin at once (Migrate mode).
    put(&server, "id-pr-1-identity-phone", "old", None);
    dsr.set_bytes("identity:phone", "new", &minute())
        .await
        .unwrap();
    assert!(!exists(&server, "id-pr-1-identity-phone"));
    // Typed writes too.
    put(&server, "dsr__pr-1__retry__1", "9", None);
    dsr.set("retry:1", &1u32, &minute()).await.unwrap();
    assert!(!exists(&server, "dsr__pr-1__retry__1"));
    assert_eq!(dsr.get::<u32>("retry:1").await.unwrap(), Some(1));
    assert_eq!(scans(&server), 0);
}

/// Legacy keys of `pr-1`, `pr-10` and `pr-[1]` (glob characters), a twin,
/// an ambiguous key, and new entries.
async fn seed_mixed(server: &RedisServer, cache: &Cache) {
    for owner in ["pr-1", "pr-10", "pr-[1]"] {
        put(
            server,
            &format!("id-{owner}-identity-email"),
            "e",
            Some(600_000),
        );
        put(server, &format!("EN_id-{owner}-identity-name"), "n", None);
        put(
            server,
            &format!("dsr__{owner}__retry__1"),
            "1",
            Some(600_000),
        );
        let scope = cache.scope(["dsr", owner]).unwrap();
        scope.set_bytes("mask", "secret", &minute()).await.unwrap();
    }
    // A twin (old code wrote it after the new entry) and a key matching
    // the identity pattern in two ways.
    let pr1 = cache.scope(["dsr", "pr-1"]).unwrap();
    pr1.set_bytes("identity:phone", "new", &minute())
        .await
        .unwrap();
    put(server, "id-pr-1-identity-phone", "old", None);
    put(server, "id-pr-1-identity-a-identity-b", "?", None);
}

fn mixed_pr1() -> BTreeSet<String> {
    [
        "dsr:pr-1:identity\\:email",
        "dsr:pr-1:encoded\\:name",
        "dsr:pr-1:retry\\:1",
        "dsr:pr-1:mask",
        "dsr:pr-1:identity\\:phone",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[tokio::test]
async fn listing_and_clearing_cover_both_formats_per_owner() {
    let mut server = RedisServer::start();
    server.allow_scan();
    let plain = crate::cache(&server).await;
    seed_mixed(&server, &plain).await;

    // Read-only: legacy keys listed as the paths they map to, each once.
    let ro = legacy_cache(&server, LegacyMode::ReadOnly).await;
    let listed = ro.scope(["dsr", "pr-1"]).unwrap().keys().collect().await;
    assert_eq!(names(listed.unwrap()), mixed_pr1());
    assert!(exists(&server, "id-pr-1-identity-email"), "read-only");
    let odd = ro.scope(["dsr", "pr-[1]"]).unwrap().keys().collect().await;
    assert_eq!(names(odd.unwrap()).len(), 4);

    // Migrate: the same list, and pr-1's legacy keys are backfilled.
    let mig = legacy_cache(&server, LegacyMode::Migrate).await;
    let pr1 = mig.scope(["dsr", "pr-1"]).unwrap();
    assert_eq!(names(pr1.keys().collect().await.unwrap()), mixed_pr1());
    assert!(!exists(&server, "id-pr-1-identity-email"), "moved");
    assert!(!exists(&server, "EN_id-pr-1-identity-name"), "moved");
    assert_eq!(
        plain
            .get_bytes("dsr:pr-1:identity\\:email")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"e"[..])
    );
    assert!(
        !exists(&server, "id-pr-1-identity-phone"),
        "the twin was deleted"
    );
    for other in ["pr-10", "pr-[1]"] {
        assert!(
            exists(&server, &format!("id-{other}-identity-email")),
            "{other} untouched"
        );
    }
    // Without the legacy phase, pr-1 now lists its backfilled keys.
    assert_eq!(
        plain
            .scope(["dsr", "pr-1"])
            .unwrap()
            .keys()
            .collect()
            .await
            .unwrap()
            .len(),
        5
    );

    // Clear pr-1: its entries and remaining legacy keys, nobody else's.
    let pr10 = mig.scope(["dsr", "pr-10"]).unwrap();
    let before10 = names(
        ro.scope(["dsr", "pr-10"])
            .unwrap()
            .keys()
            .collect()
            .await
            .unwrap(),
    );
    assert_eq!(before10.len(), 4);
    // Old code writes one more legacy key meanwhile.
    put(&server, "dsr__pr-1__retry__2", "2", None);
    assert_eq!(pr1.clear().await.unwrap(), 6, "5 entries and a legacy key");
    assert!(pr1.keys().collect().await.unwrap().is_empty());
    assert!(!exists(&server, "dsr__pr-1__retry__2"));
    assert!(
        exists(&server, "id-pr-1-identity-a-identity-b"),
        "ambiguous keys are never touched"
    );
    assert_eq!(
        names(
            ro.scope(["dsr", "pr-10"])
                .unwrap()
                .keys()
                .collect()
                .await
                .unwrap()
        ),
        before10
    );
    assert!(exists(&server, "id-pr-10-identity-email"));
    assert!(exists(&server, "dsr__pr-10__retry__1"));
    // pr-10 clears in its turn: legacy keys and entries.
    assert_eq!(pr10.clear().await.unwrap(), 4);
    assert!(!exists(&server, "id-pr-10-identity-email"));
    assert!(exists(&server, "id-pr-[1]-identity-email"));
}

/// Legacy keys of many owners for the bulk tests: returns how many map.
fn seed_bulk(server: &RedisServer, owners: usize) -> usize {
    let mut c = server.conn();
    let mut pipe = redis::pipe();
    for o in 0..owners {
        pipe.cmd("SET")
            .arg(format!("id-pr-{o}-identity-email"))
            .arg(format!("e{o}"))
            .arg("PX")
            .arg(600_000)
            .ignore();
        pipe.cmd("SET")
            .arg(format!("EN_id-pr-{o}-identity-name"))
            .arg(format!("n{o}"))
            .ignore();
        pipe.cmd("SET")
            .arg(format!("dsr__pr-{o}__retry__{}", o % 3))
            .arg(o)
            .ignore();
    }
    for u in 0..20 {
        pipe.cmd("SET")
            .arg(format!("unrelated:{u}"))
            .arg(u)
            .ignore();
    }
    for a in 0..3 {
        pipe.cmd("SET")
            .arg(format!("id-x{a}-identity-a-identity-b"))
            .arg(a)
            .ignore();
    }
    pipe.cmd("HSET")
        .arg("id-hash-identity-h")
        .arg("f")
        .arg("v")
        .ignore();
    pipe.exec(&mut c).unwrap();
    3 * owners
}

#[tokio::test]
async fn bulk_migration_resumes_after_interruption_and_is_idempotent() {
    let mut server = RedisServer::start();
    server.allow_scan();
    let cache = crate::cache(&server).await;
    let legacy = seed_bulk(&server, 200);
    // Five legacy keys whose new key exists already (twins).
    for o in 0..5 {
        set_new_email(&cache, &format!("pr-{o}")).await;
    }
    let rules = rules();
    let opts = MigrateOptions::new().batch(50);

    // Interrupted after three steps (a crash or Ctrl-C: the state stays).
    let mut first = cache
        .legacy_migration(Some(&rules), opts.clone())
        .await
        .unwrap();
    assert!(!first.resumed());
    let mut handled = 0;
    for _ in 0..3 {
        let step = first.step().await.unwrap();
        assert!(!step.done);
        handled += step.moves.len();
    }
    let partial = first.totals();
    drop(first);
    assert!(handled > 0);
    let state: Vec<String> = server.cmd(&[b"HMGET", b"{test}:legacy", b"cursor", b"migrated"]);
    assert_ne!(state[0], "0");
    assert_eq!(state[1], partial.migrated.to_string());

    // Resumed: totals continue from the saved ones.
    let second = cache
        .legacy_migration(Some(&rules), opts.clone())
        .await
        .unwrap();
    assert!(second.resumed());
    assert_eq!(second.totals(), partial);
    let mut steps = 0;
    let report = second
        .run(|step, m| {
            steps += 1;
            assert!(m.fraction() <= 1.0);
            assert_eq!(step.totals, m.totals());
        })
        .await
        .unwrap();
    assert!(steps > 0);
    assert_eq!(report.migrated, (legacy - 5) as u64);
    assert_eq!(report.skipped, 5);
    assert!(report.unmatched >= 20, "{report:?}");
    assert!(report.ambiguous >= 3, "{report:?}");
    assert!(report.not_string >= 1, "{report:?}");
    // Every mapped legacy key is gone, its value and TTL in the new key.
    for o in [0usize, 7, 199] {
        assert!(!exists(&server, &format!("id-pr-{o}-identity-email")));
        assert!(!exists(&server, &format!("EN_id-pr-{o}-identity-name")));
        let scope = cache.scope(["dsr".to_owned(), format!("pr-{o}")]).unwrap();
        let want = if o < 5 {
            "new".to_owned()
        } else {
            format!("e{o}")
        };
        assert_eq!(
            scope.get_bytes("identity:email").await.unwrap(),
            Some(want.into_bytes())
        );
        assert_eq!(
            scope.get_bytes("encoded:name").await.unwrap(),
            Some(format!("n{o}").into_bytes())
        );
        assert_eq!(scope.keys().collect().await.unwrap().len(), 3);
    }
    assert!(exists(&server, "unrelated:3"));
    assert!(exists(&server, "id-x0-identity-a-identity-b"));
    assert!(exists(&server, "id-hash-identity-h"));
    // The marker is set and the state dropped.
    let marker: Option<String> = server.cmd(&[b"HGET", b"{test}:meta", b"legacy_done"]);
    assert!(marker.is_some());
    assert!(!exists(&server, "{test}:legacy"));

    // Run again: nothing left to do.
    let migration = cache.legacy_migration(Some(&rules), opts).await.unwrap();
    let again = migration.run(|_, _| {}).await.unwrap();
    assert_eq!((again.migrated, again.skipped), (0, 0));
    assert!(again.not_string >= 1);
    assert!(again.scanned > 0);
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let mut server = RedisServer::start();
    server.allow_scan();
    let cache = crate::cache(&server).await;
    let legacy = seed_bulk(&server, 30);
    set_new_email(&cache, "pr-0").await;
    let dbsize: u64 = server.cmd(&[b"DBSIZE"]);
    let writes = |s: &RedisServer| {
        let calls = s.command_calls();
        [
            "set", "del", "unlink", "hset", "zadd", "evalsha", "expire", "pexpire",
        ]
        .map(|c| calls.get(c).copied().unwrap_or(0))
    };
    let before = writes(&server);

    let mut planned = Vec::new();
    let report = cache
        .legacy_migration(
            Some(&rules()),
            MigrateOptions::new().dry_run(true).batch(20),
        )
        .await
        .unwrap()
        .run(|step, _| {
            planned.extend(step.moves.clone());
        })
        .await
        .unwrap();
    assert_eq!(report.migrated, (legacy - 1) as u64);
    assert_eq!(report.skipped, 1);
    assert_eq!(report.not_string, 1);
    let twin = planned
        .iter()
        .find(|m| m.legacy_key == b"id-pr-0-identity-email")
        .unwrap();
    assert_eq!(twin.action, MoveAction::SkipExisting);
    assert_eq!(twin.new_key.to_string(), "dsr:pr-0:identity\\:email");
    assert!(planned
        .iter()
        .any(|m| m.legacy_key == b"dsr__pr-4__retry__1" && m.action == MoveAction::Migrate));

    assert_eq!(writes(&server), before, "no write command ran");
    assert_eq!(server.cmd::<u64>(&[b"DBSIZE"]), dbsize);
    assert!(exists(&server, "id-pr-3-identity-email"));
    assert!(!exists(&server, "{test}:legacy"));
    let marker: Option<String> = server.cmd(&[b"HGET", b"{test}:meta", b"legacy_done"]);
    assert_eq!(marker, None);
}

#[tokio::test]
async fn the_completion_marker_stops_every_scan_fallback() {
    let mut server = RedisServer::start();
    server.allow_scan();
    let cache = legacy_cache(&server, LegacyMode::Migrate).await;
    put(&server, "id-pr-1-identity-email", "e", None);
    let pr1 = cache.scope(["dsr", "pr-1"]).unwrap();

    let s0 = scans(&server);
    assert_eq!(pr1.keys().collect().await.unwrap().len(), 1);
    let s1 = scans(&server);
    assert!(s1 > s0, "in transition, listing scans");

    let report = cache
        .legacy_migration(Some(&rules()), MigrateOptions::new())
        .await
        .unwrap()
        .run(|_, _| {})
        .await
        .unwrap();
    assert_eq!(report.migrated, 0, "the listing had moved it already");
    let s2 = scans(&server);

    // Listing, clearing, reading: no SCAN any more, in this cache and in
    // one that has never seen the marker.
    let fresh = legacy_cache(&server, LegacyMode::Migrate).await;
    for c in [&cache, &fresh] {
        let scope = c.scope(["dsr", "pr-1"]).unwrap();
        assert_eq!(scope.keys().collect().await.unwrap().len(), 1);
        assert!(c
            .scope(["dsr", "pr-2"])
            .unwrap()
            .keys()
            .collect()
            .await
            .unwrap()
            .is_empty());
        assert_eq!(c.scope(["dsr", "pr-9"]).unwrap().clear().await.unwrap(), 0);
    }
    // Point reads still fall back (no scan), for stragglers.
    put(&server, "id-pr-2-identity-x", "late", None);
    assert_eq!(
        fresh
            .scope(["dsr", "pr-2"])
            .unwrap()
            .get_bytes("identity:x")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"late"[..])
    );
    assert_eq!(pr1.clear().await.unwrap(), 1);
    assert_eq!(scans(&server), s2, "no SCAN after the marker");
}

#[tokio::test]
async fn bulk_migration_keeps_to_its_rate() {
    let mut server = RedisServer::start();
    server.allow_scan();
    let cache = crate::cache(&server).await;
    let legacy = seed_bulk(&server, 40);
    let started = Instant::now();
    let report = cache
        .legacy_migration(
            Some(&rules()),
            MigrateOptions::new().rate_per_sec(200).batch(20),
        )
        .await
        .unwrap()
        .run(|_, _| {})
        .await
        .unwrap();
    assert_eq!(report.migrated, legacy as u64);
    // 120 keys at 200/s: the first batch goes at once, the rest paced.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_privacy_requests_example_checks_out() {
    let mut server = RedisServer::start();
    server.allow_scan();
    privacy_requests::run(&server.url()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_read_moves_in_two_ordered_steps() {
    let cluster = tagcache_testkit::RedisCluster::start(3, 0);
    let cache = Cache::builder("")
        .cluster(cluster.seeds())
        .namespace("test")
        .auto_sweep(None)
        .response_timeout(Duration::from_secs(5))
        .legacy(rules(), LegacyMode::Migrate)
        .build()
        .await
        .unwrap();
    let client = redis::cluster::ClusterClient::new(cluster.seeds()).unwrap();
    let mut raw = client.get_connection().unwrap();
    let mut put = |key: &str, value: &str| {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(600_000)
            .query::<()>(&mut raw)
            .unwrap();
    };
    put("id-pr-1-identity-email", "e");
    let dsr = cache.scope(["dsr", "pr-1"]).unwrap();
    assert_eq!(
        dsr.get_bytes("identity:email").await.unwrap().as_deref(),
        Some(&b"e"[..])
    );
    let ttl = dsr.ttl("identity:email").await.unwrap().unwrap();
    assert!(ttl > Duration::from_secs(590), "{ttl:?}");
    assert!(dsr.contains("identity:email").await.unwrap());
    // A twin written by old code goes on the next read.
    put("id-pr-1-identity-email", "old");
    assert_eq!(
        dsr.get_bytes("identity:email").await.unwrap().as_deref(),
        Some(&b"e"[..])
    );
    let mut raw = client.get_connection().unwrap();
    let left: u8 = redis::cmd("EXISTS")
        .arg("id-pr-1-identity-email")
        .query(&mut raw)
        .unwrap();
    assert_eq!(left, 0);
    // Scans would have to visit every master: refused, not silently partial.
    let e = dsr.keys().collect().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

#[tokio::test]
async fn a_migration_without_rules_takes_the_builders_or_says_there_are_none() {
    let mut server = RedisServer::start();
    server.allow_scan();
    let seeded = seed_bulk(&server, 10);
    let cache = legacy_cache(&server, LegacyMode::Migrate).await;
    let report = cache
        .legacy_migration(None, MigrateOptions::new())
        .await
        .unwrap()
        .run(|_, _| {})
        .await
        .unwrap();
    assert_eq!(report.migrated, seeded as u64);

    let plain = crate::cache(&server).await;
    let e = plain
        .legacy_migration(None, MigrateOptions::new())
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}
