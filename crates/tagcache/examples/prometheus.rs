//! Wiring tagcache's metrics to Prometheus: install a recorder, use the
//! cache, render the exposition text (serve it on `/metrics` in an app).
//!
//! `cargo run --example prometheus` starts a private redis-server unless
//! `REDIS_URL` is set.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use metrics_exporter_prometheus::PrometheusBuilder;
use tagcache::{Cache, SetOptions};

#[tokio::main]
async fn main() {
    // tagcache emits through the `metrics` facade: nothing is recorded
    // until the application installs a recorder like this one.
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("install the recorder");

    let (_server, url) = tagcache_testkit::redis_url_or_private(false);
    let cache = Cache::builder(url)
        .namespace(format!("prom-{}", std::process::id()))
        .build()
        .await
        .unwrap();
    let fs = cache.fail_safe();
    fs.set("a", &1u32, &SetOptions::new().tag("t"))
        .await
        .unwrap();
    fs.get::<u32>("a").await.unwrap();
    fs.get::<u32>("missing").await.unwrap();
    fs.invalidate_tag("t").await.unwrap();

    let text = prometheus.render();
    for line in text
        .lines()
        .filter(|l| l.starts_with("tagcache_") && !l.contains("_bucket"))
    {
        println!("{line}");
    }
    for name in [
        "tagcache_hits_total",
        "tagcache_misses_total",
        "tagcache_entries_invalidated_total",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}
