//! Opening namespaces whose bucket count the client does not know:
//! `existing_namespace` and `adopt_buckets`.

use tagcache::{ErrorKind, SetOptions};

use tagcache_testkit::RedisServer;

#[tokio::test]
async fn existing_namespace_never_writes_and_adopts_the_recorded_bucket_count() {
    let server = RedisServer::start();
    let e = crate::builder(&server)
        .existing_namespace()
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NamespaceNotFound, "{e}");
    assert!(e.to_string().contains("test"), "{e}");
    assert_eq!(server.cmd::<u64>(&[b"DBSIZE"]), 0, "opening wrote");

    // Created by the application with 4 buckets: a read-only client
    // configured with 1 (the default) works on its 4.
    let app = crate::builder(&server).buckets(4).build().await.unwrap();
    for i in 0..16 {
        app.set_bytes(format!("k{i}"), b"v", &SetOptions::new().tag("t"))
            .await
            .unwrap();
    }
    let reader = crate::builder(&server)
        .existing_namespace()
        .build()
        .await
        .unwrap();
    assert_eq!(reader.stats().await.unwrap().buckets, 4);
    assert_eq!(reader.keys_with_tag("t").collect().await.unwrap().len(), 16);
    assert_eq!(
        reader.get_bytes("k3").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    // Without it, the mismatch is refused as before.
    let e = crate::builder(&server).build().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Layout, "{e}");
}

#[tokio::test]
async fn adopt_buckets_creates_with_the_configured_count_and_keeps_a_recorded_one() {
    let server = RedisServer::start();
    let first = crate::builder(&server)
        .buckets(8)
        .adopt_buckets()
        .build()
        .await
        .unwrap();
    assert_eq!(first.stats().await.unwrap().buckets, 8);
    let second = crate::builder(&server)
        .buckets(2)
        .adopt_buckets()
        .build()
        .await
        .unwrap();
    assert_eq!(second.stats().await.unwrap().buckets, 8);
    let e = crate::builder(&server)
        .existing_namespace()
        .build_lazy()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}
