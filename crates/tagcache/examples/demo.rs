//! A small catalogue on tagcache: pages tagged by product and category,
//! readers reading through the cache, writers changing products and
//! invalidating their pages. It checks tagcache's guarantee as it runs: a
//! page whose write completed before its product's invalidation began is
//! never served after that invalidation returned. Exits 1 if one is.
//!
//! `cargo run --example demo` starts a private redis-server (needs
//! `redis-server` on PATH) unless `REDIS_URL` is set.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tagcache::{Cache, SetOptions};

const PRODUCTS: u64 = 200;
const PAGES: u64 = 2000;
const READERS: u64 = 8;
const WRITERS: u64 = 2;

/// A rendered page: which product versions it shows, and when it was made.
#[derive(Serialize, Deserialize)]
struct Page {
    rendered_at: u64,
    versions: [u64; 2],
}

/// The "database" and the bookkeeping that checks the cache.
#[derive(Default)]
struct World {
    tick: AtomicU64,
    versions: Vec<AtomicU64>,
    /// Per product: (version, tick the invalidation began) of the last
    /// invalidation that returned.
    invalidated: Vec<Mutex<(u64, u64)>>,
    /// (page, rendered_at) -> tick its cache write completed.
    written: Mutex<HashMap<(u64, u64), u64>>,
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    invalidations: AtomicU64,
    removed: AtomicU64,
}

fn products_of(page: u64) -> [u64; 2] {
    [page % PRODUCTS, (page * 7 + 3) % PRODUCTS]
}

async fn reader(cache: Cache, w: Arc<World>, seed: u64, until: Instant) {
    let mut page = seed;
    while Instant::now() < until {
        page = page
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            % PAGES;
        let ps = products_of(page);
        let floor: Vec<(u64, u64)> = ps
            .iter()
            .map(|p| *w.invalidated[*p as usize].lock().unwrap())
            .collect();
        let key = format!("page:{page}");
        match cache.get::<Page>(&key).await.unwrap() {
            Some(cached) => {
                w.hits.fetch_add(1, SeqCst);
                let done = w
                    .written
                    .lock()
                    .unwrap()
                    .get(&(page, cached.rendered_at))
                    .copied();
                for (shown, (version, began)) in cached.versions.iter().zip(&floor) {
                    if shown < version && done.is_some_and(|d| d < *began) {
                        w.stale.fetch_add(1, SeqCst);
                    }
                }
            }
            None => {
                w.misses.fetch_add(1, SeqCst);
                let rendered_at = w.tick.fetch_add(1, SeqCst);
                let versions = ps.map(|p| w.versions[p as usize].load(SeqCst));
                let opts = SetOptions::new().ttl(Duration::from_secs(60)).tags([
                    format!("product:{}", ps[0]),
                    format!("product:{}", ps[1]),
                    format!("category:{}", ps[0] % 20),
                ]);
                cache
                    .set(
                        &key,
                        &Page {
                            rendered_at,
                            versions,
                        },
                        &opts,
                    )
                    .await
                    .unwrap();
                let done = w.tick.fetch_add(1, SeqCst);
                w.written.lock().unwrap().insert((page, rendered_at), done);
            }
        }
    }
}

async fn writer(cache: Cache, w: Arc<World>, seed: u64, until: Instant) {
    let mut p = seed;
    while Instant::now() < until {
        p = (p * 31 + 17) % PRODUCTS;
        let version = w.versions[p as usize].fetch_add(1, SeqCst) + 1;
        let began = w.tick.fetch_add(1, SeqCst);
        let n = cache.invalidate_tag(format!("product:{p}")).await.unwrap();
        *w.invalidated[p as usize].lock().unwrap() = (version, began);
        w.invalidations.fetch_add(1, SeqCst);
        w.removed.fetch_add(n, SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() {
    let (_server, url) = tagcache_testkit::redis_url_or_private(false);
    let ns = format!("demo-{}", std::process::id());
    let cache = match Cache::builder(&url).namespace(&ns).build().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tagcache demo: {e}");
            std::process::exit(2);
        }
    };
    let world = Arc::new(World {
        versions: (0..PRODUCTS).map(|_| AtomicU64::new(0)).collect(),
        invalidated: (0..PRODUCTS).map(|_| Mutex::new((0, 0))).collect(),
        ..World::default()
    });
    let started = Instant::now();
    let until = started + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for r in 0..READERS {
        tasks.push(tokio::spawn(reader(cache.clone(), world.clone(), r, until)));
    }
    for i in 0..WRITERS {
        tasks.push(tokio::spawn(writer(cache.clone(), world.clone(), i, until)));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = cache.stats().await.unwrap();
    let (h, m) = (world.hits.load(SeqCst), world.misses.load(SeqCst));
    let stale = world.stale.load(SeqCst);
    println!("tagcache demo: {READERS} readers, {WRITERS} writers, {secs:.1} s, namespace {ns}");
    println!(
        "  reads           {:>9}  ({:.0}/s, hit ratio {:.1}%)",
        h + m,
        (h + m) as f64 / secs,
        100.0 * h as f64 / (h + m).max(1) as f64
    );
    println!(
        "  invalidations   {:>9}  ({} pages removed)",
        world.invalidations.load(SeqCst),
        world.removed.load(SeqCst)
    );
    println!(
        "  indexes         {:>9}  ({} members, {} stale)",
        stats.indexes, stats.members, stats.stale_members
    );
    println!("  index memory    {:>9}  bytes", stats.index_memory_bytes);
    println!("  stale served    {stale:>9}  (must be 0)");
    let _ = cache
        .invalidate_tags((0..PRODUCTS).map(|p| format!("product:{p}")))
        .await;
    if stale > 0 {
        eprintln!("tagcache demo: a page written before its invalidation began was served after it returned");
        std::process::exit(1);
    }
}
