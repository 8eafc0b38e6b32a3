use std::collections::BTreeSet;

use tagcache::SetOptions;

use tagcache_testkit::RedisServer;

fn set(v: &[&str]) -> BTreeSet<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

async fn keys(cache: &tagcache::Cache, tag: &str) -> BTreeSet<Vec<u8>> {
    cache
        .keys_with_tag(tag)
        .collect()
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn invalidate_removes_tagged_entries_only() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache
        .set("a", &1, &SetOptions::new().tags(["p1", "c1"]))
        .await
        .unwrap();
    cache
        .set("b", &2, &SetOptions::new().tags(["p2", "c1"]))
        .await
        .unwrap();
    cache
        .set("c", &3, &SetOptions::new().tag("p3"))
        .await
        .unwrap();
    assert_eq!(cache.invalidate_tag("c1").await.unwrap(), 2);
    assert_eq!(cache.get::<i32>("a").await.unwrap(), None);
    assert_eq!(cache.get::<i32>("b").await.unwrap(), None);
    assert_eq!(cache.get::<i32>("c").await.unwrap(), Some(3));
    // The deleted entries left their other tags too.
    assert_eq!(cache.tag_len("p1").await.unwrap(), 0);
    assert_eq!(cache.tag_len("p2").await.unwrap(), 0);
    assert_eq!(
        server.cmd::<u64>(&[
            b"EXISTS",
            b"{test.0}:t:p1",
            b"{test.0}:t:p2",
            b"{test.0}:x:c1"
        ]),
        0
    );
    assert_eq!(cache.invalidate_tag("c1").await.unwrap(), 0);
}

#[tokio::test]
async fn overwrite_with_other_tags_leaves_no_stale_edge() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache
        .set("page", &1, &SetOptions::new().tags(["a", "b"]))
        .await
        .unwrap();
    cache
        .set("page", &2, &SetOptions::new().tags(["b", "c"]))
        .await
        .unwrap();
    assert_eq!(keys(&cache, "a").await, set(&[]));
    assert_eq!(keys(&cache, "b").await, set(&["page"]));
    assert_eq!(keys(&cache, "c").await, set(&["page"]));
    assert_eq!(
        cache.tags("page").await.unwrap().unwrap(),
        vec![b"b".to_vec(), b"c".to_vec()]
    );
    // Invalidating the tag it left must not touch it.
    assert_eq!(cache.invalidate_tag("a").await.unwrap(), 0);
    assert_eq!(cache.get::<i32>("page").await.unwrap(), Some(2));
    cache.set("page", &3, &SetOptions::new()).await.unwrap();
    assert_eq!(
        cache.tag_len("b").await.unwrap() + cache.tag_len("c").await.unwrap(),
        0
    );
    assert_eq!(
        cache.tags("page").await.unwrap().unwrap(),
        Vec::<Vec<u8>>::new()
    );
}

#[tokio::test]
async fn invalidating_several_tags_counts_each_entry_once() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    for i in 0..50 {
        let mut o = SetOptions::new().tag("even-or-all");
        if i % 2 == 0 {
            o = o.tag("even");
        }
        cache.set(format!("k{i}"), &i, &o).await.unwrap();
    }
    cache
        .set("other", &0, &SetOptions::new().tag("z"))
        .await
        .unwrap();
    assert_eq!(
        cache
            .invalidate_tags(["even", "even-or-all", "even"])
            .await
            .unwrap(),
        50
    );
    assert_eq!(cache.get::<i32>("other").await.unwrap(), Some(0));
}

#[tokio::test]
async fn membership_and_counts() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    cache
        .set("a", &1, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    assert!(cache.has_tag("a", "t").await.unwrap());
    assert!(!cache.has_tag("a", "u").await.unwrap());
    assert!(!cache.has_tag("b", "t").await.unwrap());
    assert_eq!(cache.tag_len("t").await.unwrap(), 1);
    assert_eq!(cache.tag_len("u").await.unwrap(), 0);
}

#[tokio::test]
async fn large_tag_is_listed_in_pages_and_invalidated_in_chunks() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .chunk_size(100)
        .build()
        .await
        .unwrap();
    let n = 2_500;
    cache
        .set_many_bytes((0..n).map(|i| {
            (
                format!("k{i:05}"),
                b"v".to_vec(),
                SetOptions::new().tags(["big", "other"]),
            )
        }))
        .await
        .unwrap();
    let mut pages = cache.keys_with_tag("big").page_size(300);
    let mut seen = BTreeSet::new();
    let mut count = 0;
    while let Some(page) = pages.next_page().await.unwrap() {
        assert!(page.len() <= 300);
        count += page.len();
        seen.extend(page);
    }
    assert_eq!((count, seen.len()), (n, n));
    let before = server.command_calls();
    assert_eq!(cache.invalidate_tag("big").await.unwrap(), n as u64);
    let after = server.command_calls();
    let drops = after.get("evalsha").unwrap() - before.get("evalsha").unwrap();
    // chunks of 100: at least 25 drop calls + 1 snapshot (the first chunk
    // takes a second call to learn the "other" tag's index)
    assert!(drops >= 26, "{drops} script calls");
    assert_eq!(cache.tag_len("other").await.unwrap(), 0);
    assert_eq!(crate::keys_besides_fences(&server), 1);
}

#[tokio::test]
async fn keys_with_tag_walks_every_bucket() {
    let server = RedisServer::start();
    let cache = crate::builder(&server).buckets(8).build().await.unwrap();
    for i in 0..200 {
        cache
            .set(format!("k{i}"), &i, &SetOptions::new().tag("t"))
            .await
            .unwrap();
    }
    assert_eq!(
        cache
            .keys_with_tag("t")
            .page_size(7)
            .collect()
            .await
            .unwrap()
            .len(),
        200
    );
    assert_eq!(cache.tag_len("t").await.unwrap(), 200);
    assert_eq!(cache.invalidate_tag("t").await.unwrap(), 200);
    assert_eq!(cache.tag_len("t").await.unwrap(), 0);
}
