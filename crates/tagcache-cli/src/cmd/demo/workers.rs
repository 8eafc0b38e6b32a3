//! The demo's traffic: readers reading pages through the cache
//! (read-through, fail-safe), writers updating the database and
//! invalidating what showed the old data, and a sampler measuring the
//! namespace once a second.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagcache::{Cache, FailSafeCache, Removal};
use tokio::task::JoinHandle;

use super::catalogue::{category_tags, Catalogue, Rng, Thing, CATEGORIES, DB_LATENCY, PRODUCTS};
use super::meter::Meter;

/// A writer's pause between two updates.
const WRITE_PAUSE: Duration = Duration::from_millis(25);
/// Share of updates that rename a category (invalidating every page of it)
/// rather than change a product.
const CATEGORY_SHARE: f64 = 0.05;

/// What every worker shares.
#[derive(Debug, Clone)]
pub struct Crew {
    /// The application's view of the cache.
    pub cache: FailSafeCache,
    /// Database, pages and fences.
    pub catalogue: Arc<Catalogue>,
    /// Counters.
    pub meter: Arc<Meter>,
    /// Set when the run is over.
    pub stop: Arc<AtomicBool>,
    /// With `--l1`: where the fences are recorded for the peer process.
    pub fences: Option<super::peer::SharedFences>,
}

impl Crew {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// Starts `readers` readers, `writers` writers and the sampler.
pub fn spawn(crew: &Crew, cache: &Cache, readers: u32, writers: u32) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for r in 0..readers {
        tasks.push(tokio::spawn(reader(crew.clone(), 1 + u64::from(r))));
    }
    for w in 0..writers {
        tasks.push(tokio::spawn(writer(crew.clone(), 1000 + u64::from(w))));
    }
    tasks.push(tokio::spawn(sampler(
        cache.clone(),
        crew.meter.clone(),
        crew.stop.clone(),
    )));
    tasks
}

/// Reads popular pages through the cache and checks each one served.
pub async fn reader(crew: Crew, seed: u64) {
    let mut rng = Rng::new(seed);
    let cat = &crew.catalogue;
    let mut n = 0u64;
    while crew.running() {
        n += 1;
        if crew.fences.is_some() && n.is_multiple_of(super::peer::PACE_EVERY) {
            tokio::time::sleep(super::peer::PACE).await;
        }
        let page = &cat.pages[rng.popular(cat.pages.len())];
        // The fences in place before the read begins: nothing older than
        // them may be served.
        let fences = cat.fences_of(page);
        let started = Instant::now();
        let got = crew
            .cache
            .get_or_compute(&page.key, &page.opts, || async {
                tokio::time::sleep(DB_LATENCY).await;
                Ok::<_, Infallible>(cat.render(page))
            })
            .await;
        let took = started.elapsed();
        match got {
            Ok(computed) => {
                crew.meter.read(Some(computed.source), took);
                if let Some((thing, shown, fence)) = cat.stale_in(&computed.value, &fences) {
                    crew.meter.stale(|| {
                        format!(
                            "{} served {thing:?} v{shown} ({:?}) after the invalidation of v{fence} returned",
                            page.key, computed.source
                        )
                    });
                }
            }
            Err(e) => {
                tracing::warn!("read of {} failed: {e}", page.key);
                crew.meter.read(None, took);
            }
        }
    }
}

/// Changes products (now and then a category) and invalidates their tag.
pub async fn writer(crew: Crew, seed: u64) {
    let mut rng = Rng::new(seed);
    let cat = &crew.catalogue;
    while crew.running() {
        let thing = if rng.unit() < CATEGORY_SHARE {
            Thing::Category(rng.popular(CATEGORIES as usize) as u32)
        } else {
            Thing::Product(rng.popular(PRODUCTS as usize) as u32)
        };
        let version = cat.update(thing);
        match crew.cache.invalidate_tag(thing.tag()).await {
            Ok(removal) => {
                crew.meter.invalidated(match removal {
                    Removal::Done(n) => Some(n),
                    _ => None,
                });
                // Returned (or journaled, and then reads bypass what it
                // covers): no page older than `version` may be served now.
                cat.fence(thing, version);
                // Only an invalidation that reached Redis binds another
                // process (a journaled one is replayed when Redis answers).
                if let (Some(shared), Removal::Done(_)) = (&crew.fences, removal) {
                    shared.record(thing.id(), version).await;
                }
            }
            Err(e) => tracing::warn!("invalidating {} failed: {e}", thing.tag()),
        }
        tokio::time::sleep(WRITE_PAUSE).await;
    }
}

/// Samples the namespace's entries and indexes about once a second.
pub async fn sampler(cache: Cache, meter: Arc<Meter>, stop: Arc<AtomicBool>) {
    // Just before each tick of the live table.
    let first = tokio::time::Instant::now() + Duration::from_millis(900);
    let mut every = tokio::time::interval_at(first, Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Err(e) = sample(&cache, &meter).await {
            tracing::debug!("sampling the namespace failed: {e}");
        }
    }
}

/// Reads the namespace's live pages (every page is in one category),
/// indexes and index memory into the meter.
///
/// # Errors
/// Redis errors.
pub async fn sample(cache: &Cache, meter: &Meter) -> tagcache::Result<()> {
    let mut entries = 0;
    for tag in category_tags() {
        entries += cache.tag_len(tag).await?;
    }
    let stats = cache.stats().await?;
    meter.sampled(entries, stats.indexes, stats.index_memory_bytes);
    Ok(())
}
