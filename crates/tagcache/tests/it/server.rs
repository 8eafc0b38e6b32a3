//! How the cache reacts to the server's configuration: eviction policy,
//! memory limit, authentication and ACL permissions.

use std::time::Duration;

use tagcache::{ErrorKind, EvictionCheck, SetOptions};

use tagcache_testkit::RedisServer;

#[tokio::test]
async fn allkeys_eviction_is_refused_unless_accepted() {
    let server = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let e = crate::builder(&server).build().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsafeEvictionPolicy);
    assert!(e.to_string().contains("allkeys-lru"), "{e}");
    let cache = crate::builder(&server)
        .eviction_check(EvictionCheck::Warn)
        .build()
        .await
        .unwrap();
    assert_eq!(cache.server_info().eviction_policy, "allkeys-lru");
}

#[tokio::test]
async fn volatile_eviction_is_accepted_and_listings_skip_evicted_entries() {
    let server = RedisServer::start_with(&["--maxmemory-policy", "volatile-lru"]);
    let cache = crate::cache(&server).await;
    for k in ["a", "b", "c"] {
        cache.set(k, &1, &SetOptions::new().tag("t")).await.unwrap();
    }
    // An entry removed behind tagcache's back (as eviction would).
    server.cmd::<()>(&[b"DEL", b"{test.0}:e:b"]);
    let keys = cache.keys_with_tag("t").collect().await.unwrap();
    assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec()]);
    assert_eq!(cache.invalidate_tag("t").await.unwrap(), 2);
    assert_eq!(crate::keys_besides_fences(&server), 1);
}

#[tokio::test]
async fn out_of_memory_is_an_error_not_a_silent_skip() {
    let server =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let cache = crate::cache(&server).await;
    // Incompressible, so LZ4 cannot shrink it below the limit.
    let value: Vec<u8> = (0..64 * 1024u64)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut oom = None;
    for i in 0..200 {
        if let Err(e) = cache
            .set_bytes(format!("k{i}"), &value, &SetOptions::new().tag("t"))
            .await
        {
            oom = Some(e);
            break;
        }
    }
    let e = oom.expect("a 2 MB server must fill up");
    assert!(e.is_out_of_memory(), "{e:?}");
    // Reads and invalidation still work, and free the memory.
    assert!(cache.get_bytes("k0").await.unwrap().is_some());
    assert!(cache.invalidate_tag("t").await.unwrap() > 0);
    cache
        .set_bytes("again", &value, &SetOptions::new().tag("t"))
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_password_and_missing_script_permission_fail_at_build() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let sock = server.socket().display().to_string();
    let ok = tagcache::Cache::builder(format!("unix://{sock}?pass=s3cret"))
        .auto_sweep(None)
        .build()
        .await;
    assert!(ok.is_ok(), "{:?}", ok.err());
    let e = tagcache::Cache::builder(format!("unix://{sock}?pass=wrong"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
    assert!(!e.to_string().contains("wrong"), "the password leaked: {e}");

    // A user who may read and write but not run scripts.
    let mut admin = redis::Client::open(format!("unix://{sock}?pass=s3cret"))
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "noscript",
            "on",
            ">pw",
            "~*",
            "+@all",
            "-@scripting",
        ])
        .query::<()>(&mut admin)
        .unwrap();
    let e = tagcache::Cache::builder(format!("unix://{sock}?user=noscript&pass=pw"))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
}

/// Issue 9, finding 8: a user who may only read was told "script error"
/// when a write's script hit a command its ACL refuses; it is a permission
/// error naming the command.
#[tokio::test]
async fn finding_8_a_read_only_acl_user_gets_a_permission_error_naming_the_command() {
    let server = RedisServer::start();
    let sock = server.socket().display().to_string();
    let admin = crate::cache(&server).await;
    admin
        .set_bytes("k", b"v", &SetOptions::new().tag("t"))
        .await
        .unwrap();
    let _: () = server.cmd(&[
        b"ACL",
        b"SETUSER",
        b"reader",
        b"on",
        b">pw",
        b"~*",
        b"+@read",
        b"+@scripting",
        b"+@connection",
        b"+info",
        b"+time",
        b"+config|get",
    ]);
    let reader = tagcache::Cache::builder(format!("unix://{sock}?user=reader&pass=pw"))
        .namespace("test")
        .auto_sweep(None)
        .response_timeout(Duration::from_secs(5))
        .existing_namespace()
        .build()
        .await
        .unwrap();
    assert_eq!(
        reader.get_bytes("k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(reader.tags("k").await.unwrap(), Some(vec![b"t".to_vec()]));

    // A write: its script's first write is refused.
    let e = reader
        .set_bytes("k2", b"v", &SetOptions::new().tag("t"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    let text = e.to_string();
    assert!(text.contains("permission denied"), "{text}");
    assert!(text.contains("script set"), "{text}");
    assert!(!text.contains("script error"), "{text}");
    let command = text
        .split("may not run ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        ["SET", "ZADD", "ZREM", "SETRANGE", "DEL"].contains(&command),
        "{text}"
    );
    let e = reader.invalidate_tag("t").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("may not run RENAME"), "{e}");

    // A command sent directly: Redis names it itself.
    let _: () = server.cmd(&[b"ACL", b"SETUSER", b"reader", b"-get"]);
    let e = reader.get_bytes("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("may not run GET"), "{e}");
}
