use tagcache::{ErrorKind, SetOptions};

use tagcache_testkit::RedisServer;

#[tokio::test]
async fn rediss_urls_connect_with_a_trusted_root() {
    let server = RedisServer::start_tls();
    let cache = tagcache::Cache::builder(server.tls_url())
        .namespace("test")
        .auto_sweep(None)
        .tls_root_certificate(server.ca_pem())
        .build()
        .await
        .unwrap();
    cache
        .set("k", &1, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    assert_eq!(cache.invalidate_tag("t").await.unwrap(), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_clear_error() {
    let server = RedisServer::start_tls();
    let e = tagcache::Cache::builder(server.tls_url())
        .connect_timeout(std::time::Duration::from_millis(500))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("cannot connect to rediss://localhost"),
        "{e}"
    );
}
