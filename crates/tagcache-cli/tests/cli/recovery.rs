//! Recovery at `maxmemory` (issue 9, finding 3): every command that reads
//! or frees memory works when Redis is full.

use tagcache::SetOptions;

use crate::{fails, ok, run, with_cache, RedisServer};

/// Sets `maxmemory` well below what the server uses now.
fn fill_up(url: &str) {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used / 2)
        .query::<()>(&mut c)
        .unwrap();
}

#[test]
fn full_redis_does_not_lock_the_cli_out() {
    let redis = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    let url = redis.url();
    with_cache(&url, "tagcache", async |c| {
        let items = (0..100).map(|i| (format!("k{i}"), "v", SetOptions::new().tag("t")));
        c.set_many_bytes(items).await.unwrap();
    });
    fill_up(&url);
    let refused = fails(&run(&url, ["set", "more", "v"]), 2);
    assert!(refused.to_lowercase().contains("memory"), "{refused}");
    assert_eq!(ok(&run(&url, ["get", "k1"])), "v");
    ok(&run(&url, ["del", "k1"]));
    assert_eq!(ok(&run(&url, ["invalidate", "--tag", "t"])), "99\n");
    ok(&run(&url, ["prune"]));
}
