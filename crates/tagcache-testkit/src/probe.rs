//! The stall probe: a thread of its own, on a connection of its own, that
//! sends PING every millisecond and records how long each answer took.
//! Its longest wait is the longest time any client of the server was
//! blocked. Readable while it runs (the demo's live table) and summarized
//! when stopped (longest, 99th percentile, a timeline for the bench).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Time between PINGs.
const PERIOD: Duration = Duration::from_millis(1);

/// Most points a timeline keeps.
pub const TIMELINE_POINTS: usize = 600;

/// What the probe thread shares with its owner.
#[derive(Debug, Default)]
struct Seen {
    pings: AtomicU64,
    /// Longest wait since the last [`StallProbe::take_window`], in µs.
    window_us: AtomicU64,
    longest_us: AtomicU64,
    failure: Mutex<Option<String>>,
}

/// Each wait: when the PING was sent (since the start) and how long it took.
type Waits = Vec<(Duration, Duration)>;

/// What a stopped probe saw.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The summary.
    pub stalls: Stalls,
    /// The waits over time, `[ms since start, wait ms]`, at most
    /// [`TIMELINE_POINTS`] points (the longest wait of each slice of time,
    /// so no stall is hidden).
    pub timeline: Vec<[f64; 2]>,
    /// Every wait, in the order the PINGs were sent (none for a probe
    /// started with [`StallProbe::start_live`]).
    pub waits: Vec<Duration>,
}

/// A running probe; dropping it stops the thread.
#[derive(Debug)]
pub struct StallProbe {
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
    thread: Option<JoinHandle<Waits>>,
}

/// What a probe saw.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stalls {
    /// PINGs answered.
    pub pings: u64,
    /// The longest wait for an answer, in milliseconds.
    pub longest_ms: f64,
    /// The 99th percentile wait, in milliseconds (0 for a probe that did
    /// not record its waits).
    pub p99_ms: f64,
}

/// The probe's connection failed while it ran (or its thread panicked).
#[derive(Debug, Clone)]
pub struct ProbeError(pub String);

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stall probe: {}", self.0)
    }
}

impl std::error::Error for ProbeError {}

impl Stalls {
    /// The summary of `waits` (of one probe, or pooled over several runs:
    /// a 99th percentile needs a few hundred waits to mean more than the
    /// longest).
    pub fn of(waits: &[Duration]) -> Self {
        if waits.is_empty() {
            return Self::default();
        }
        let mut waits = waits.to_vec();
        waits.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p99 = waits[(waits.len() * 99 / 100).min(waits.len() - 1)];
        Self {
            pings: waits.len() as u64,
            longest_ms: ms(waits[waits.len() - 1]),
            p99_ms: ms(p99),
        }
    }

    /// The longest wait.
    pub fn longest(&self) -> Duration {
        Duration::from_secs_f64(self.longest_ms / 1000.0)
    }
}

impl StallProbe {
    /// Connects and starts probing, recording every wait (for the 99th
    /// percentile and the timeline: 16 bytes a millisecond).
    ///
    /// # Errors
    /// The probe's connection cannot be made.
    pub fn start(client: &redis::Client) -> redis::RedisResult<Self> {
        Self::spawn(client, true)
    }

    /// As [`StallProbe::start`], keeping only the counts and the longest
    /// waits (for a probe that may run for hours).
    ///
    /// # Errors
    /// The probe's connection cannot be made.
    pub fn start_live(client: &redis::Client) -> redis::RedisResult<Self> {
        Self::spawn(client, false)
    }

    fn spawn(client: &redis::Client, record: bool) -> redis::RedisResult<Self> {
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        // A one-call invalidation of a million entries blocks for seconds.
        conn.set_read_timeout(Some(Duration::from_secs(120)))?;
        redis::cmd("PING").query::<()>(&mut conn)?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let (flag, shared) = (stop.clone(), seen.clone());
        let thread = std::thread::Builder::new()
            .name("stall-probe".into())
            .spawn(move || {
                let mut waits = Waits::with_capacity(if record { 1 << 16 } else { 0 });
                let started = Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    // A script running past `busy-reply-threshold` makes
                    // Redis answer BUSY: the client is still waiting.
                    while let Err(e) = redis::cmd("PING").query::<()>(&mut conn) {
                        if e.code() != Some("BUSY") {
                            *shared.failure.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(e.to_string());
                            return waits;
                        }
                        std::thread::sleep(PERIOD);
                    }
                    let wait = sent.elapsed();
                    if record {
                        waits.push((sent - started, wait));
                    }
                    let us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
                    shared.pings.fetch_add(1, Ordering::Relaxed);
                    shared.window_us.fetch_max(us, Ordering::Relaxed);
                    shared.longest_us.fetch_max(us, Ordering::Relaxed);
                    if let Some(rest) = PERIOD.checked_sub(sent.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
                waits
            })
            .map_err(redis::RedisError::from)?;
        Ok(Self {
            stop,
            seen,
            thread: Some(thread),
        })
    }

    /// The longest wait since the previous call (or the start).
    pub fn take_window(&self) -> Duration {
        Duration::from_micros(self.seen.window_us.swap(0, Ordering::Relaxed))
    }

    /// PINGs answered so far and the longest wait so far.
    pub fn so_far(&self) -> (u64, Duration) {
        (
            self.seen.pings.load(Ordering::Relaxed),
            Duration::from_micros(self.seen.longest_us.load(Ordering::Relaxed)),
        )
    }

    /// Stops the probe and summarizes what it saw.
    ///
    /// # Errors
    /// The probe's connection failed while it ran.
    pub async fn stop(self) -> Result<Stalls, ProbeError> {
        Ok(self.stop_with_timeline().await?.stalls)
    }

    /// Stops the probe: the summary, the waits over time and every wait.
    ///
    /// # Errors
    /// The probe's connection failed while it ran.
    pub async fn stop_with_timeline(mut self) -> Result<Observed, ProbeError> {
        self.stop.store(true, Ordering::Relaxed);
        let waits = match self.thread.take() {
            Some(thread) => tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| ProbeError(e.to_string()))?
                .map_err(|_| ProbeError("its thread panicked".into()))?,
            None => Waits::new(),
        };
        let failure = self
            .seen
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(e) = failure {
            return Err(ProbeError(e));
        }
        let timeline = downsample(&waits);
        let waits: Vec<Duration> = waits.into_iter().map(|(_, w)| w).collect();
        let mut stalls = Stalls::of(&waits);
        let (pings, longest) = self.so_far();
        stalls.pings = pings;
        stalls.longest_ms = longest.as_secs_f64() * 1000.0;
        Ok(Observed {
            stalls,
            timeline,
            waits,
        })
    }
}

impl Drop for StallProbe {
    fn drop(&mut self) {
        // The thread ends after its current PING; nobody waits for it.
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn downsample(waits: &[(Duration, Duration)]) -> Vec<[f64; 2]> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let per = waits.len().div_ceil(TIMELINE_POINTS).max(1);
    waits
        .chunks(per)
        .filter_map(|slice| {
            let (at, wait) = slice.iter().max_by_key(|(_, w)| *w)?;
            Some([ms(*at), ms(*wait)])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_the_tail() {
        let waits: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = Stalls::of(&waits);
        assert_eq!(s.pings, 100);
        assert_eq!(s.longest_ms, 100.0);
        assert_eq!(s.p99_ms, 100.0);
        assert_eq!(Stalls::of(&[]).pings, 0);
        // Pooled: 1000 waits, ten of them long; the 99th percentile is the
        // first of the long ones, not the longest.
        let mut pooled = vec![Duration::from_millis(1); 990];
        pooled.extend((1..=10).map(|i| Duration::from_millis(10 + i)));
        let s = Stalls::of(&pooled);
        assert_eq!((s.longest_ms, s.p99_ms), (20.0, 11.0));
    }
}
