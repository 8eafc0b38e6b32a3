//! `tagcache demo --l1`: the demo with the in-process L1 tier, in two
//! processes against one Redis.
//!
//! The main process runs the usual readers and writers, each cache read
//! through its own L1. It starts a second process of itself (the *peer*,
//! `demo --peer <namespace>`), whose readers read the same pages through
//! their own L1 and never write: every change they see comes from the
//! other process, through the announcements (docs/l1.md).
//!
//! Checking the peer: after each invalidation returns, the writers record
//! its fence in Redis beside the namespace (`<namespace>:fences`, a hash:
//! thing → "version:ms", the wall clock when the invalidation returned).
//! A peer reader reads the fences of a page before it reads the page; a
//! page older than one of them was served after that invalidation
//! returned. Within [`BOUND`] of its return that is the staleness the L1
//! allows (the announcement was on its way); past it, the guarantee broke.
//! The peer reports once a second on stdout (a JSON line), and at the end.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tagcache::{Cache, L1Options, Lookup};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::catalogue::{Catalogue, Rendered, Rng};
use crate::error::{CliError, Result};
use crate::target::Target;

/// The L1's check period in the demo (both processes).
pub const CHECK_PERIOD: Duration = Duration::from_millis(100);
/// How long after an invalidation returned another process's L1 may still
/// serve what it removed: two check periods and a margin for a round trip
/// on a busy machine (docs/l1.md, *The guarantee*).
pub const BOUND: Duration = Duration::from_millis(300);

/// With the L1, readers pause [`PACE`] every this many reads: an L1 hit
/// takes microseconds, and readers that never wait would take every core
/// from Redis (two demo processes share the machine with it).
pub const PACE_EVERY: u64 = 8;
/// The pause.
pub const PACE: Duration = Duration::from_millis(1);

/// The demo's L1 settings.
pub fn l1_options() -> L1Options {
    L1Options::new().check_period(CHECK_PERIOD)
}

/// The hash of fences beside the namespace.
pub fn fences_key(namespace: &str) -> String {
    format!("{namespace}:fences")
}

/// Records a fence unless a newer one of the same thing is there.
const FENCE_SCRIPT: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or tonumber(string.match(cur, '^(%d+)')) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
end";

/// Where the writers record their fences for the peer.
#[derive(Debug, Clone)]
pub struct SharedFences {
    conn: MultiplexedConnection,
    key: String,
}

impl SharedFences {
    /// Fences of `namespace`, written through `conn`.
    pub fn new(conn: MultiplexedConnection, namespace: &str) -> Self {
        Self {
            conn,
            key: fences_key(namespace),
        }
    }

    /// The invalidation of `thing` at `version` has returned now.
    pub async fn record(&self, thing: u32, version: u64) {
        let result: redis::RedisResult<()> = redis::cmd("EVAL")
            .arg(FENCE_SCRIPT)
            .arg(1)
            .arg(&self.key)
            .arg(thing)
            .arg(version)
            .arg(now_ms())
            .query_async(&mut self.conn.clone())
            .await;
        if let Err(e) = result {
            tracing::warn!("recording a fence for the peer failed: {e}");
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the peer reports (cumulative).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct PeerReport {
    /// Reads answered.
    pub reads: u64,
    /// Pages found (from its L1 or Redis).
    pub found: u64,
    /// Reads its L1 answered.
    pub l1_hits: u64,
    /// Reads that went to Redis.
    pub l1_misses: u64,
    /// Announcements its L1 received.
    pub announcements: u64,
    /// Their delivery lag, µs: median, 99th percentile, max.
    pub lag_p50_us: u64,
    /// 99th percentile.
    pub lag_p99_us: u64,
    /// Largest.
    pub lag_max_us: u64,
    /// Pages served older than an invalidation that had returned, within
    /// [`BOUND`] of its return.
    pub stale_within_bound: u64,
    /// Past it: the guarantee broke.
    pub stale_past_bound: u64,
    /// The longest such staleness, ms.
    pub stale_max_ms: u64,
    /// The last report.
    pub last: bool,
}

impl PeerReport {
    /// The L1 hit ratio of its reads.
    pub fn l1_hit_ratio(&self) -> f64 {
        let all = self.l1_hits + self.l1_misses;
        if all == 0 {
            0.0
        } else {
            self.l1_hits as f64 / all as f64
        }
    }
}

/// The peer process, seen from the main one.
#[derive(Debug)]
pub struct Peer {
    child: tokio::process::Child,
    latest: Arc<Mutex<Option<PeerReport>>>,
    reading: tokio::task::JoinHandle<()>,
}

impl Peer {
    /// Starts `tagcache demo --peer <namespace>` on `target` with
    /// `readers` readers, for at most `seconds` (plus a margin).
    ///
    /// # Errors
    /// The process cannot be started.
    pub fn start(target: &Target, namespace: &str, readers: u32, seconds: u64) -> Result<Self> {
        let exe = std::env::current_exe().map_err(|e| {
            CliError::error(format!("cannot find this program to start the peer: {e}"))
        })?;
        let mut child = tokio::process::Command::new(exe)
            .args(["--url", target.url(), "-q", "demo", "--peer", namespace])
            .args(["--readers", &readers.to_string()])
            .args(["--seconds", &(seconds + 30).to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CliError::error(format!("cannot start the peer process: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| CliError::error("the peer process has no stdout"))?;
        let latest = Arc::new(Mutex::new(None));
        let into = latest.clone();
        let reading = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(report) = serde_json::from_str::<PeerReport>(&line) {
                    *into.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
                }
            }
        });
        Ok(Self {
            child,
            latest,
            reading,
        })
    }

    /// Its latest report.
    pub fn latest(&self) -> Option<PeerReport> {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells it to stop (its stdin closes) and waits for its last report.
    ///
    /// # Errors
    /// It did not end with a last report within a few seconds.
    pub async fn stop(mut self) -> Result<PeerReport> {
        drop(self.child.stdin.take());
        let ended = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.reading).await;
        match (ended, self.latest()) {
            (Ok(Ok(status)), Some(report)) if status.success() && report.last => Ok(report),
            (Ok(Ok(status)), _) => Err(CliError::error(format!(
                "the peer process ended with {status} without its last report"
            ))),
            _ => {
                let _ = self.child.kill().await;
                Err(CliError::error("the peer process did not stop within 10 s"))
            }
        }
    }
}

/// Counters of the peer's readers.
#[derive(Debug, Default)]
struct Seen {
    reads: AtomicU64,
    found: AtomicU64,
    within: AtomicU64,
    past: AtomicU64,
    max_ms: AtomicU64,
}

/// The peer process: readers only, through the L1, until its stdin closes
/// or `seconds` have passed; a report a second on stdout.
///
/// # Errors
/// Redis unreachable at the start.
pub async fn run(target: &Target, namespace: &str, readers: u32, seconds: u64) -> Result<()> {
    let cache = Cache::builder(target.url())
        .namespace(namespace)
        .auto_sweep(None)
        .adopt_buckets()
        .l1(l1_options())
        .build()
        .await
        .map_err(|e| target.cannot_connect(e))?;
    let conn = target
        .client()?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| CliError::error(format!("cannot connect to {}: {e}", target.shown())))?;
    let catalogue = Arc::new(Catalogue::new());
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for r in 0..readers {
        let (cache, conn, cat, seen, stop) = (
            cache.clone(),
            conn.clone(),
            catalogue.clone(),
            seen.clone(),
            stop.clone(),
        );
        let key = fences_key(namespace);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(5000 + u64::from(r));
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                n += 1;
                if n.is_multiple_of(PACE_EVERY) {
                    tokio::time::sleep(PACE).await;
                }
                read_one(&cache, &conn, &key, &cat, &mut rng, &seen).await;
            }
        }));
    }
    // The main process closes our stdin when it is done (or dies).
    let (closed, mut stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if line.is_err() {
                break;
            }
        }
        let _ = closed.send(());
    });
    let started = Instant::now();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = &mut stdin_closed => break,
        }
        crate::output::print(&json(&report(&cache, &seen, false)));
        if started.elapsed() > Duration::from_secs(seconds) {
            break;
        }
    }
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    crate::output::print(&json(&report(&cache, &seen, true)));
    Ok(())
}

fn json(r: &PeerReport) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

fn report(cache: &Cache, seen: &Seen, last: bool) -> PeerReport {
    let l1 = cache.l1_stats().unwrap_or_default();
    PeerReport {
        reads: seen.reads.load(Relaxed),
        found: seen.found.load(Relaxed),
        l1_hits: l1.hits,
        l1_misses: l1.misses,
        announcements: l1.announcements,
        lag_p50_us: l1.lag_p50_us,
        lag_p99_us: l1.lag_p99_us,
        lag_max_us: l1.lag_max_us,
        stale_within_bound: seen.within.load(Relaxed),
        stale_past_bound: seen.past.load(Relaxed),
        stale_max_ms: seen.max_ms.load(Relaxed),
        last,
    }
}

/// When the invalidation returned that a served page is older than: the
/// first of its things shown at a version below its fence (`fences`: the
/// page's "version:ms" values, in the order it shows them).
fn fenced_at(served: &Rendered, fences: &[Option<String>]) -> Option<u64> {
    served
        .shows
        .iter()
        .zip(fences)
        .find_map(|((_, shown), fence)| {
            let (version, at) = fence.as_deref()?.split_once(':')?;
            let (version, at): (u64, u64) = (version.parse().ok()?, at.parse().ok()?);
            (*shown < version).then_some(at)
        })
}

/// One read: the page's fences, then the page (through the L1), then the
/// check.
async fn read_one(
    cache: &Cache,
    conn: &MultiplexedConnection,
    key: &str,
    cat: &Catalogue,
    rng: &mut Rng,
    seen: &Seen,
) {
    let page = &cat.pages[rng.popular(cat.pages.len())];
    let mut hmget = redis::cmd("HMGET");
    hmget.arg(key);
    for t in &page.shows {
        hmget.arg(t.id());
    }
    let fences: Vec<Option<String>> = match hmget.query_async(&mut conn.clone()).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("reading the fences failed: {e}");
            tokio::time::sleep(Duration::from_millis(10)).await;
            return;
        }
    };
    let got = cache.fail_safe().get::<Rendered>(&page.key).await;
    let done = now_ms();
    seen.reads.fetch_add(1, Relaxed);
    let Ok(Lookup::Hit(page)) = got else {
        return;
    };
    seen.found.fetch_add(1, Relaxed);
    let fenced = fenced_at(&page, &fences);
    if let Some(at) = fenced {
        let stale_ms = done.saturating_sub(at);
        seen.max_ms.fetch_max(stale_ms, Relaxed);
        if Duration::from_millis(stale_ms) > BOUND {
            seen.past.fetch_add(1, Relaxed);
        } else {
            seen.within.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::demo::catalogue::Thing;

    #[test]
    fn a_page_older_than_a_shared_fence_is_dated_by_that_fence() {
        let cat = Catalogue::new();
        let page = &cat.pages[17];
        let old = cat.render(page);
        let fences = |v: &[Option<&str>]| -> Vec<Option<String>> {
            v.iter().map(|f| f.map(str::to_owned)).collect()
        };
        // No fence, or fences at the versions shown: not stale.
        assert_eq!(fenced_at(&old, &fences(&[None, None])), None);
        assert_eq!(fenced_at(&old, &fences(&[Some("0:5"), None])), None);
        // The category (shown second) moved on: stale since its fence.
        assert_eq!(
            fenced_at(&old, &fences(&[Some("0:5"), Some("1:1234")])),
            Some(1234)
        );
        cat.update(Thing::Product(17));
        let new = cat.render(page);
        assert_eq!(fenced_at(&new, &fences(&[Some("1:9"), None])), None);
        assert_eq!(fenced_at(&old, &fences(&[Some("1:9"), None])), Some(9));
        // Garbage is no fence.
        assert_eq!(fenced_at(&old, &fences(&[Some("x"), Some("1:y")])), None);
    }
}
