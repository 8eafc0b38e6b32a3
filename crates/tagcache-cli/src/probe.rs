//! The stall probe: a thread of its own, on a connection of its own, that
//! sends PING every millisecond and records how long each answer took.
//! Its longest wait is the longest time any client of the server was
//! blocked. Readable while it runs (the demo's live table) and summarized
//! when stopped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{CliError, Result};

/// Time between PINGs.
const PERIOD: Duration = Duration::from_millis(1);

/// What the probe thread shares with its owner.
#[derive(Debug, Default)]
struct Seen {
    pings: AtomicU64,
    /// Longest wait since the last [`StallProbe::take_window`], in µs.
    window_us: AtomicU64,
    longest_us: AtomicU64,
    failure: Mutex<Option<String>>,
}

/// A running probe; dropping it stops the thread.
#[derive(Debug)]
pub struct StallProbe {
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
    thread: Option<JoinHandle<()>>,
}

/// What a probe saw over its life.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeSummary {
    /// PINGs answered.
    pub pings: u64,
    /// The longest wait for an answer.
    pub longest: Duration,
}

impl StallProbe {
    /// Connects and starts probing.
    ///
    /// # Errors
    /// The probe's connection cannot be made.
    pub fn start(client: &redis::Client) -> Result<Self> {
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(60)))?;
        redis::cmd("PING").query::<()>(&mut conn)?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let (flag, shared) = (stop.clone(), seen.clone());
        let thread = std::thread::Builder::new()
            .name("stall-probe".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    // A script running past `busy-reply-threshold` makes
                    // Redis answer BUSY: the client is still waiting.
                    while let Err(e) = redis::cmd("PING").query::<()>(&mut conn) {
                        if e.code() != Some("BUSY") {
                            *shared.failure.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(e.to_string());
                            return;
                        }
                        std::thread::sleep(PERIOD);
                    }
                    let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    shared.pings.fetch_add(1, Ordering::Relaxed);
                    shared.window_us.fetch_max(us, Ordering::Relaxed);
                    shared.longest_us.fetch_max(us, Ordering::Relaxed);
                    if let Some(rest) = PERIOD.checked_sub(sent.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
            })?;
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

    /// What the probe has seen so far.
    pub fn summary(&self) -> ProbeSummary {
        ProbeSummary {
            pings: self.seen.pings.load(Ordering::Relaxed),
            longest: Duration::from_micros(self.seen.longest_us.load(Ordering::Relaxed)),
        }
    }

    /// Stops the probe and says what it saw.
    ///
    /// # Errors
    /// The probe's connection failed while it ran.
    pub async fn stop(mut self) -> Result<ProbeSummary> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| CliError::error(format!("stall probe: {e}")))?
                .map_err(|_| CliError::error("stall probe panicked"))?;
        }
        let failure = self
            .seen
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match failure {
            Some(e) => Err(CliError::error(format!("stall probe: {e}"))),
            None => Ok(self.summary()),
        }
    }
}

impl Drop for StallProbe {
    fn drop(&mut self) {
        // The thread ends after its current PING; nobody waits for it.
        self.stop.store(true, Ordering::Relaxed);
    }
}
