//! Keeps docs/redis-layout.md in step with the code.

use tagcache::SetOptions;

use tagcache_testkit::RedisServer;

const DOC: &str = include_str!("../../../../docs/redis-layout.md");

/// `(pattern, type)` of each row of the doc's "## Keys" table.
fn documented_keys() -> Vec<(String, String)> {
    let section = DOC.split("\n## Keys\n").nth(1).expect("a ## Keys section");
    // The key table comes before the section's first subsection.
    let section = section.split("\n## ").next().unwrap();
    let section = section.split("\n### ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
        })
        .collect()
}

fn instantiate(pattern: &str, key: &str, tag: &str) -> String {
    pattern
        .replace("<ns>", "test")
        .replace("<b>", "0")
        .replace("<key>", key)
        .replace("<tag>", tag)
}

#[test]
fn doc_states_the_layout_version() {
    let title = DOC.lines().next().unwrap();
    assert!(
        title.ends_with(&format!("version {}", tagcache::LAYOUT_VERSION)),
        "{title}"
    );
}

#[tokio::test]
async fn doc_matches_the_keys_the_code_uses() {
    let rows = documented_keys();
    assert_eq!(rows.len(), 11, "{rows:?}");
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    // Two entries under tag "t", then the state a crashed invalidation
    // leaves (the index renamed to its snapshot, filed as in flight), then
    // a third entry that builds a fresh index.
    for k in ["j", "k"] {
        cache.set(k, &1, &SetOptions::new().tag("t")).await.unwrap();
    }
    server.cmd::<()>(&[b"RENAME", b"{test.0}:t:t", b"{test.0}:x:t"]);
    server.cmd::<()>(&[b"ZADD", b"{test.0}:inv", b"1", b"t"]);
    cache
        .set("k2", &1, &SetOptions::new().tag("t"))
        .await
        .unwrap();

    let mut names = Vec::new();
    // Fences outlive the invalidation (checked below); the legacy
    // migration's state has its own test.
    for (pattern, kind) in rows.iter().filter(|(p, _)| {
        !p.ends_with(":fence")
            && !p.ends_with(":legacy")
            && !p.ends_with(":creg")
            && !p.contains(":l:")
    }) {
        let keys: &[&str] = if pattern.contains("<key>") {
            &["j", "k", "k2"]
        } else {
            &["-"]
        };
        for key in keys {
            let name = instantiate(pattern, key, "t");
            let actual: String = server.cmd(&[b"TYPE", name.as_bytes()]);
            assert_eq!(&actual, kind, "{name} is a {actual}, the doc says {kind}");
            names.push(name);
        }
    }
    let dbsize: usize = server.cmd(&[b"DBSIZE"]);
    assert_eq!(
        dbsize,
        names.len(),
        "Redis holds keys the doc does not list"
    );

    // The code reads the documented names: the invalidation joins the
    // snapshot and removes all three entries, leaving the meta key, the
    // fence that remembers the invalidation and the announcement counter.
    assert_eq!(cache.invalidate_tag("t").await.unwrap(), 3);
    assert_eq!(server.cmd::<usize>(&[b"DBSIZE"]), 3);
    let (l1, kind) = rows.iter().find(|(p, _)| p.ends_with(":l1")).unwrap();
    assert_eq!(
        &server.cmd::<String>(&[b"TYPE", instantiate(l1, "-", "t").as_bytes()]),
        kind
    );
    let (fence, kind) = rows.iter().find(|(p, _)| p.ends_with(":fence")).unwrap();
    assert_eq!(
        &server.cmd::<String>(&[b"TYPE", instantiate(fence, "-", "t").as_bytes()]),
        kind
    );
    assert_eq!(server.cmd::<String>(&[b"TYPE", b"{test}:meta"]), "hash");
    let meta: Vec<String> = server.cmd(&[b"HMGET", b"{test}:meta", b"layout", b"buckets"]);
    assert_eq!(
        meta,
        vec![tagcache::LAYOUT_VERSION.to_string(), "1".to_owned()]
    );

    // A clear stopped midway (an index it cannot drain: a string where
    // the snapshot goes) leaves its cut registry behind, as documented.
    cache
        .set("z", &1, &SetOptions::new().tag("u"))
        .await
        .unwrap();
    server.cmd::<()>(&[b"SET", b"{test.0}:x:u", b"in the way"]);
    assert!(cache.clear().await.is_err());
    let (creg, kind) = rows.iter().find(|(p, _)| p.ends_with(":creg")).unwrap();
    assert_eq!(
        &server.cmd::<String>(&[b"TYPE", instantiate(creg, "-", "-").as_bytes()]),
        kind
    );
    server.cmd::<()>(&[b"DEL", b"{test.0}:x:u"]);
    assert_eq!(cache.clear().await.unwrap(), 1);
    assert_eq!(server.cmd::<u64>(&[b"EXISTS", b"{test.0}:creg"]), 0);

    // A read-through with a load lease holds the documented lease key
    // while its loader runs, with a TTL, and releases it.
    let (lease, kind) = rows.iter().find(|(p, _)| p.contains(":l:")).unwrap();
    let name = instantiate(lease, "lk", "-");
    let c = cache
        .get_or_compute("lk", &SetOptions::new().lease(true), || async {
            let actual: String = server.cmd(&[b"TYPE", name.as_bytes()]);
            let pttl: i64 = server.cmd(&[b"PTTL", name.as_bytes()]);
            Ok::<_, String>((actual, pttl))
        })
        .await
        .unwrap();
    assert_eq!(&c.value.0, kind);
    assert!(c.value.1 > 0, "a lease expires by itself");
    assert_eq!(server.cmd::<u64>(&[b"EXISTS", name.as_bytes()]), 0);
}

#[tokio::test]
async fn a_namespace_refuses_another_bucket_count() {
    let server = RedisServer::start();
    let _first = crate::cache(&server).await;
    let e = crate::builder(&server)
        .buckets(4)
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), tagcache::ErrorKind::Layout, "{e}");
    server.cmd::<()>(&[b"HSET", b"{test}:meta", b"layout", b"99"]);
    let e = crate::builder(&server).build().await.unwrap_err();
    assert_eq!(e.kind(), tagcache::ErrorKind::Layout, "{e}");
    // Other namespaces are independent.
    crate::builder(&server)
        .namespace("other")
        .buckets(4)
        .build()
        .await
        .unwrap();
}

#[tokio::test]
async fn doc_matches_the_legacy_migration_keys() {
    let rows = documented_keys();
    let (state, kind) = rows.iter().find(|(p, _)| p.ends_with(":legacy")).unwrap();
    assert!(
        DOC.contains("`legacy_done`"),
        "the meta marker is documented"
    );
    let mut server = RedisServer::start();
    server.allow_scan();
    let cache = crate::cache(&server).await;
    for i in 0..300 {
        server.cmd::<()>(&[b"SET", format!("old-{i}").as_bytes(), b"v"]);
    }
    let rules = tagcache::legacy::LegacyRules::new([tagcache::legacy::LegacyRule::new("old-{n}")
        .scope(["o", "{n}"])
        .part("v")])
    .unwrap();
    // One step of a pass: the state key is a hash, as documented.
    let mut m = cache
        .legacy_migration(&rules, tagcache::legacy::MigrateOptions::new().batch(10))
        .await
        .unwrap();
    assert!(!m.step().await.unwrap().done);
    let name = instantiate(state, "-", "-");
    assert_eq!(&server.cmd::<String>(&[b"TYPE", name.as_bytes()]), kind);
    for field in ["cursor", "rules", "migrated", "skipped", "unmatched"] {
        let v: Option<String> = server.cmd(&[b"HGET", name.as_bytes(), field.as_bytes()]);
        assert!(v.is_some(), "{field}");
    }
    // Completed: state gone, marker set.
    m.run(|_, _| {}).await.unwrap();
    assert_eq!(server.cmd::<String>(&[b"TYPE", name.as_bytes()]), "none");
    let marker: Option<String> = server.cmd(&[b"HGET", b"{test}:meta", b"legacy_done"]);
    assert!(marker.is_some());
}
