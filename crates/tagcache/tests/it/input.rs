use std::time::Duration;

use tagcache::{ErrorKind, InvalidInput, SetOptions};

use tagcache_testkit::RedisServer;

fn invalid<T: std::fmt::Debug>(r: tagcache::Result<T>) -> String {
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    e.to_string()
}

#[tokio::test]
async fn empty_keys_and_tags_are_refused() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    assert!(invalid(cache.set("", &1, &SetOptions::new()).await).contains("key is empty"));
    assert!(invalid(cache.set("k", &1, &SetOptions::new().tag("")).await).contains("tag is empty"));
    invalid(cache.get::<i32>("").await);
    invalid(cache.invalidate_tag("").await);
    invalid(cache.keys_with_tag("").collect().await);
    assert_eq!(crate::keys_besides_fences(&server), 1);
}

#[tokio::test]
async fn binary_utf8_and_separator_keys_stay_apart() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let keys: Vec<Vec<u8>> = vec![
        b"a:b".to_vec(),
        b"a".to_vec(),
        b"{test.0}:e:a".to_vec(),
        b"}:t:x".to_vec(),
        "ключ-ü-🔑".as_bytes().to_vec(),
        vec![1, 0, 2, 255, b'\n', b'{'],
    ];
    for (i, k) in keys.iter().enumerate() {
        cache
            .set_bytes(
                k,
                i.to_string(),
                &SetOptions::new().tags([k.as_slice(), b"x".as_slice()]),
            )
            .await
            .unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            cache.get_bytes(k).await.unwrap().unwrap(),
            i.to_string().as_bytes()
        );
        let listed = cache.keys_with_tag(k).collect().await.unwrap();
        assert_eq!(listed, vec![k.clone()]);
    }
    assert_eq!(cache.tag_len("x").await.unwrap(), keys.len() as u64);
    assert_eq!(cache.invalidate_tag("x").await.unwrap(), keys.len() as u64);
    assert_eq!(crate::keys_besides_fences(&server), 1);
}

#[tokio::test]
async fn ttl_limits() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .max_ttl(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let zero = invalid(
        cache
            .set("k", &1, &SetOptions::new().ttl(Duration::ZERO))
            .await,
    );
    assert!(zero.contains("at least 1 ms"), "{zero}");
    invalid(
        cache
            .set("k", &1, &SetOptions::new().ttl(Duration::from_micros(500)))
            .await,
    );
    let above = invalid(
        cache
            .set("k", &1, &SetOptions::new().ttl(Duration::from_secs(3601)))
            .await,
    );
    assert!(above.contains("maximum ttl"), "{above}");
    cache
        .set("k", &1, &SetOptions::new().ttl(Duration::from_secs(3600)))
        .await
        .unwrap();
    // A default TTL above the cap is refused at build.
    let e = crate::builder(&server)
        .default_ttl(Duration::from_secs(7200))
        .max_ttl(Duration::from_secs(3600))
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn sizes_and_counts_are_bounded() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .max_value_bytes(1024)
        .max_tags(1000)
        .build()
        .await
        .unwrap();
    invalid(
        cache
            .set_bytes("k", vec![0u8; 1025], &SetOptions::new())
            .await,
    );
    invalid(
        cache
            .set("k", &1, &SetOptions::new().tag(vec![b'x'; 1025]))
            .await,
    );
    invalid(cache.set(vec![b'k'; 4097], &1, &SetOptions::new()).await);
    let too_many = invalid(
        cache
            .set(
                "k",
                &1,
                &SetOptions::new().tags((0..1001).map(|i| format!("t{i}"))),
            )
            .await,
    );
    assert!(too_many.contains("1001 tags"), "{too_many}");
    // 1000 tags is fine, and every edge is exact.
    let tags: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
    cache
        .set("k", &1, &SetOptions::new().tags(&tags))
        .await
        .unwrap();
    assert_eq!(cache.tags("k").await.unwrap().unwrap().len(), 1000);
    assert!(cache.has_tag("k", "t999").await.unwrap());
    cache
        .set("k", &2, &SetOptions::new().tag("t0"))
        .await
        .unwrap();
    assert!(!cache.has_tag("k", "t999").await.unwrap());
    assert_eq!(cache.invalidate_tag("t0").await.unwrap(), 1);
    assert_eq!(crate::keys_besides_fences(&server), 1);
    assert!(matches!(InvalidInput::EmptyKey, InvalidInput::EmptyKey));
}

#[tokio::test]
async fn bad_namespace_and_unreachable_server_are_clear_errors() {
    let server = RedisServer::start();
    let e = crate::builder(&server)
        .namespace("a:b")
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = tagcache::Cache::builder("unix:///nonexistent/redis.sock")
        .connect_timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap_err();
    assert!(e.is_connection() || e.is_timeout(), "{e}");
    let e = tagcache::Cache::builder("nonsense://x")
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}
