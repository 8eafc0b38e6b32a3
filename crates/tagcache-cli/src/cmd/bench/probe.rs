//! The stall probe: a thread of its own, on a connection of its own, that
//! sends PING every millisecond and records how long each answer took.
//! Its longest wait is the longest time another client of the server
//! would have been blocked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{CliError, Result};

/// Time between PINGs.
const PERIOD: Duration = Duration::from_millis(1);

/// What the probe saw.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stalls {
    /// PINGs answered.
    pub pings: u64,
    /// The longest wait for an answer, in milliseconds.
    pub longest_ms: f64,
    /// The 99th percentile wait, in milliseconds.
    pub p99_ms: f64,
}

/// A running probe; [`Probe::stop`] ends it.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<std::result::Result<Vec<(Duration, Duration)>, String>>,
}

impl Probe {
    /// Connects and starts probing.
    ///
    /// # Errors
    /// The probe's connection cannot be made.
    pub fn start(client: &redis::Client) -> Result<Self> {
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        // A one-call invalidation of a million entries blocks for seconds.
        conn.set_read_timeout(Some(Duration::from_secs(120)))?;
        redis::cmd("PING").query::<()>(&mut conn)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("stall-probe".into())
            .spawn(move || {
                let mut waits = Vec::with_capacity(1 << 16);
                let started = Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    // A script running past `busy-reply-threshold` (5 s)
                    // makes Redis answer BUSY: the client is still waiting.
                    while let Err(e) = redis::cmd("PING").query::<()>(&mut conn) {
                        if e.code() != Some("BUSY") {
                            return Err(e.to_string());
                        }
                        std::thread::sleep(PERIOD);
                    }
                    waits.push((sent - started, sent.elapsed()));
                    if let Some(rest) = PERIOD.checked_sub(sent.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
                Ok(waits)
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops the probe and summarizes what it saw.
    ///
    /// # Errors
    /// The probe's connection failed.
    pub async fn stop(self) -> Result<Stalls> {
        Ok(self.stop_with_timeline().await?.0)
    }

    /// Stops the probe: the summary, and the waits over time as
    /// `[ms since start, wait ms]`, at most [`TIMELINE_POINTS`] points
    /// (the longest wait of each slice of time, so no stall is hidden).
    ///
    /// # Errors
    /// The probe's connection failed.
    pub async fn stop_with_timeline(self) -> Result<(Stalls, Vec<[f64; 2]>)> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        let waits = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| CliError::error(format!("stall probe: {e}")))?
            .map_err(|_| CliError::error("stall probe panicked"))?
            .map_err(|e| CliError::error(format!("stall probe: {e}")))?;
        let timeline = downsample(&waits);
        Ok((
            summarize(waits.into_iter().map(|(_, w)| w).collect()),
            timeline,
        ))
    }
}

/// Most points a timeline keeps.
pub const TIMELINE_POINTS: usize = 600;

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

fn summarize(mut waits: Vec<Duration>) -> Stalls {
    if waits.is_empty() {
        return Stalls::default();
    }
    waits.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = waits[(waits.len() * 99 / 100).min(waits.len() - 1)];
    Stalls {
        pings: waits.len() as u64,
        longest_ms: ms(waits[waits.len() - 1]),
        p99_ms: ms(p99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_the_tail() {
        let waits = (1..=100).map(Duration::from_millis).collect();
        let s = summarize(waits);
        assert_eq!(s.pings, 100);
        assert_eq!(s.longest_ms, 100.0);
        assert_eq!(s.p99_ms, 100.0);
        assert_eq!(summarize(vec![]).pings, 0);
    }
}
