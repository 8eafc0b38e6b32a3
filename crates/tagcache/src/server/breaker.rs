//! The circuit breaker: after a run of failed calls, stop calling Redis for
//! a cool-down (calls fail in microseconds instead of waiting for a
//! timeout), then let one probe through.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::observe::metrics as names;

/// State of the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls go to Redis.
    Closed,
    /// Calls fail at once; a probe runs after the cool-down.
    Open,
    /// One probe is testing whether Redis answers again.
    HalfOpen,
}

impl CircuitState {
    fn as_u8(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Open,
            2 => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

/// Breaker settings: [`BreakerConfig::default`], then the setters.
///
/// ```
/// use std::time::Duration;
/// let config = tagcache::BreakerConfig::default()
///     .failures(3)
///     .cooldown(Duration::from_millis(100));
/// assert_ne!(config, tagcache::BreakerConfig::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerConfig {
    failures: u32,
    cooldown: Duration,
    max_cooldown: Duration,
}

impl BreakerConfig {
    /// Consecutive failures that open the circuit. Default: 5 (at least 1).
    #[must_use]
    pub fn failures(mut self, n: u32) -> Self {
        self.failures = n.max(1);
        self
    }

    /// First cool-down; doubled (with jitter) after each failed probe, up
    /// to [`BreakerConfig::max_cooldown`]. Default: 250 ms.
    #[must_use]
    pub fn cooldown(mut self, d: Duration) -> Self {
        self.cooldown = d;
        self
    }

    /// Longest cool-down, so service resumes within about this long after
    /// Redis returns. Default: 1 s.
    #[must_use]
    pub fn max_cooldown(mut self, d: Duration) -> Self {
        self.max_cooldown = d;
        self
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown: Duration::from_millis(250),
            max_cooldown: Duration::from_secs(1),
        }
    }
}

/// A consecutive-failure circuit breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    state: AtomicU8,
    failures: AtomicU32,
    /// When the cool-down ends, and the cool-down that follows a failed probe.
    open: Mutex<(Instant, Duration)>,
    namespace: String,
}

/// Whether a call may go to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Go ahead.
    Yes,
    /// Go ahead as the probe: report the result with `probe_done`.
    Probe,
    /// The circuit is open.
    No,
}

impl Breaker {
    /// The namespace this breaker guards (a label of every metric).
    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn new(config: BreakerConfig, namespace: &str) -> Self {
        Self {
            config,
            state: AtomicU8::new(CircuitState::Closed.as_u8()),
            failures: AtomicU32::new(0),
            open: Mutex::new((Instant::now(), config.cooldown)),
            namespace: namespace.to_owned(),
        }
    }

    pub(crate) fn state(&self) -> CircuitState {
        CircuitState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, s: CircuitState) {
        self.state.store(s.as_u8(), Ordering::Release);
        metrics::gauge!(names::CIRCUIT_STATE, "namespace" => self.namespace.clone())
            .set(f64::from(s.as_u8()));
    }

    /// Asks to make a call.
    pub(crate) fn admit(&self) -> Admit {
        match self.state() {
            CircuitState::Closed => Admit::Yes,
            CircuitState::HalfOpen => Admit::No,
            CircuitState::Open => {
                let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                if Instant::now() < open.0 {
                    return Admit::No;
                }
                // Only one caller wins the probe.
                let won = self
                    .state
                    .compare_exchange(
                        CircuitState::Open.as_u8(),
                        CircuitState::HalfOpen.as_u8(),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok();
                if won {
                    Admit::Probe
                } else {
                    Admit::No
                }
            }
        }
    }

    /// Records the outcome of an admitted call; `unavailable` is true when
    /// Redis did not answer (timeout, connection failure).
    pub(crate) fn record(&self, admit: Admit, unavailable: bool) {
        match (admit, unavailable) {
            (Admit::No, _) => {}
            (Admit::Probe, false) => self.close(),
            (Admit::Probe, true) => self.reopen(true),
            (Admit::Yes, false) => {
                // Read first: a write per call would bounce the counter's
                // cache line between every core that reads through it.
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
            }
            (Admit::Yes, true) => {
                let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                if n >= self.config.failures && self.state() == CircuitState::Closed {
                    self.reopen(false);
                }
            }
        }
    }

    fn close(&self) {
        self.failures.store(0, Ordering::Relaxed);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.1 = self.config.cooldown;
        drop(open);
        self.set_state(CircuitState::Closed);
        tracing::warn!(namespace = %self.namespace, "redis answers again: circuit closed");
    }

    fn reopen(&self, after_probe: bool) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let cooldown = if after_probe {
            (open.1 * 2).min(self.config.max_cooldown)
        } else {
            self.config.cooldown
        };
        // Up to 25 % jitter, so processes do not probe in step.
        let jitter = cooldown.mul_f64(fastrand::f64() / 4.0);
        *open = (Instant::now() + cooldown + jitter, cooldown);
        drop(open);
        self.set_state(CircuitState::Open);
        if !after_probe {
            tracing::warn!(namespace = %self.namespace, ?cooldown, "redis unavailable: circuit open");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_probes_once() {
        let b = Breaker::new(
            BreakerConfig::default()
                .failures(3)
                .cooldown(Duration::from_millis(20))
                .max_cooldown(Duration::from_millis(100)),
            "t",
        );
        for _ in 0..2 {
            b.record(b.admit(), true);
        }
        b.record(b.admit(), false);
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "a success resets the count"
        );
        for _ in 0..3 {
            b.record(b.admit(), true);
        }
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.admit(), Admit::No);
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.admit();
        assert_eq!(probe, Admit::Probe);
        assert_eq!(b.admit(), Admit::No, "one probe at a time");
        b.record(probe, true);
        assert_eq!(b.state(), CircuitState::Open);
        std::thread::sleep(Duration::from_millis(60));
        let probe = b.admit();
        assert_eq!(probe, Admit::Probe);
        b.record(probe, false);
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.admit(), Admit::Yes);
    }
}
