use std::time::Duration;

use serde::{Deserialize, Serialize};
use tagcache::{Compression, SetOptions};

use tagcache_testkit::RedisServer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Product {
    id: u32,
    name: String,
    tags: Vec<String>,
}

#[tokio::test]
async fn typed_and_raw_values_round_trip() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let p = Product {
        id: 42,
        name: "shoe".into(),
        tags: vec!["blue".into()],
    };
    cache
        .set("p:42", &p, &SetOptions::new().tag("product:42"))
        .await
        .unwrap();
    assert_eq!(cache.get::<Product>("p:42").await.unwrap(), Some(p));
    cache
        .set_bytes("raw", b"\x00\xffbytes", &SetOptions::new())
        .await
        .unwrap();
    assert_eq!(
        cache.get_bytes("raw").await.unwrap(),
        Some(b"\x00\xffbytes".to_vec())
    );
    assert!(cache.get::<Product>("raw").await.unwrap_err().kind() == tagcache::ErrorKind::Codec);
    assert_eq!(cache.get::<Product>("missing").await.unwrap(), None);
    assert!(cache.exists("p:42").await.unwrap());
    assert!(!cache.exists("missing").await.unwrap());
}

/// A type that deserializes from a byte buffer (like `serde_bytes::ByteBuf`
/// or `rmpv::Value`): what a caller that does not know how an entry was
/// written (the Python package) reads with.
#[derive(Debug, PartialEq)]
struct Blob(Vec<u8>);

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

#[tokio::test]
async fn raw_entries_read_into_byte_buffer_types() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache
        .set_bytes("raw", b"\x00\xffbytes", &SetOptions::new())
        .await
        .unwrap();
    assert_eq!(
        cache.get::<Blob>("raw").await.unwrap(),
        Some(Blob(b"\x00\xffbytes".to_vec()))
    );
    assert_eq!(
        cache.get_many::<Blob, _>(["raw", "missing"]).await.unwrap(),
        vec![Some(Blob(b"\x00\xffbytes".to_vec())), None]
    );
    assert_eq!(
        cache.fail_safe().get::<Blob>("raw").await.unwrap(),
        tagcache::Lookup::Hit(Blob(b"\x00\xffbytes".to_vec()))
    );
    // Any other type is still refused, with the same message, even a
    // String reading UTF-8 bytes.
    cache
        .set_bytes("text", b"plain text", &SetOptions::new())
        .await
        .unwrap();
    let e = cache.get::<String>("text").await.unwrap_err();
    assert_eq!(e.kind(), tagcache::ErrorKind::Codec);
    assert!(e
        .to_string()
        .contains("entry holds raw bytes; read it with get_bytes"));
}

#[tokio::test]
async fn get_many_keeps_order_and_gaps() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache
        .set_many((0..10).map(|i| (format!("k{i}"), i, SetOptions::new().tag("all"))))
        .await
        .unwrap();
    let got: Vec<Option<i32>> = cache.get_many(["k3", "nope", "k0", "k9"]).await.unwrap();
    assert_eq!(got, vec![Some(3), None, Some(0), Some(9)]);
    let none: Vec<Option<i32>> = cache.get_many(Vec::<String>::new()).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(server.command_calls().get("mget"), Some(&1));
}

#[tokio::test]
async fn ttl_is_applied_and_reported() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache
        .set("a", &1, &SetOptions::new().ttl(Duration::from_secs(30)))
        .await
        .unwrap();
    let ttl = cache.ttl("a").await.unwrap().unwrap();
    assert!(
        ttl <= Duration::from_secs(30) && ttl > Duration::from_secs(25),
        "{ttl:?}"
    );
    assert_eq!(cache.ttl("missing").await.unwrap(), None);
    cache
        .set(
            "short",
            &1,
            &SetOptions::new().ttl(Duration::from_millis(50)).tag("t"),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(cache.get::<i32>("short").await.unwrap(), None);
    assert_eq!(
        cache.tag_len("t").await.unwrap(),
        0,
        "expired members are not counted"
    );
}

#[tokio::test]
async fn delete_reports_existence() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache
        .set("a", &1, &SetOptions::new().tags(["x", "y"]))
        .await
        .unwrap();
    cache.set("b", &2, &SetOptions::new()).await.unwrap();
    assert!(cache.delete("a").await.unwrap());
    assert!(!cache.delete("a").await.unwrap());
    assert_eq!(cache.delete_many(["b", "b", "c"]).await.unwrap(), 1);
    assert_eq!(cache.tag_len("x").await.unwrap(), 0);
    assert_eq!(
        crate::keys_besides_fences(&server),
        1,
        "only the meta key is left"
    );
}

#[tokio::test]
async fn large_values_are_compressed_and_restored() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .compression(Compression::lz4_above(1024))
        .build()
        .await
        .unwrap();
    let big = "abc".repeat(400_000); // 1.2 MB, compressible
    cache
        .set_bytes("big", big.as_bytes(), &SetOptions::new().tag("t"))
        .await
        .unwrap();
    let stored: usize = server.cmd(&[b"STRLEN", b"{test.0}:e:big"]);
    assert!(stored < big.len() / 10, "stored {stored} bytes");
    assert_eq!(
        cache.get_bytes("big").await.unwrap().unwrap(),
        big.as_bytes()
    );

    let plain = crate::builder(&server)
        .compression(Compression::none())
        .build()
        .await
        .unwrap();
    let mb: Vec<u8> = (0..1_000_000u64).map(|i| (i * 7919 % 251) as u8).collect();
    plain
        .set_bytes("mb", &mb, &SetOptions::new())
        .await
        .unwrap();
    assert_eq!(plain.get_bytes("mb").await.unwrap().unwrap(), mb);
}

/// `connected_clients` from `INFO clients`.
fn connected_clients(server: &RedisServer) -> u64 {
    redis::cmd("INFO")
        .arg("clients")
        .query::<String>(&mut server.conn())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn clones_share_one_connection() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let before = connected_clients(&server);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = cache.clone();
        tasks.push(tokio::spawn(async move {
            c.set(format!("k{i}"), &i, &SetOptions::new())
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = connected_clients(&server);
    assert_eq!(before, after);
}

/// The single-server connection replaces itself: after Redis closed it
/// (`CLIENT KILL`), only calls already sent on it fail (as connection
/// errors); the call that finds it gone marks it, the calls after it share
/// one new connection, and the cache still holds one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_redis_closed_is_replaced_by_the_next_call() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache.set("k", &1u32, &SetOptions::new()).await.unwrap();
    let before = connected_clients(&server);
    for round in 0..3 {
        let killed: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query(&mut server.conn())
            .unwrap();
        assert!(killed >= 1, "round {round}");
        // The first call after the kill may still go out on the dead
        // connection.
        if let Err(e) = cache.get::<u32>("k").await {
            assert_eq!(e.kind(), tagcache::ErrorKind::Connection, "{e}");
        }
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(async move { c.get::<u32>("k").await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Some(1), "round {round}");
        }
    }
    assert_eq!(connected_clients(&server), before);
}
