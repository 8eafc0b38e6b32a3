//! The response timeout of one multiplexed connection, kept by one ticker
//! instead of one timer per call.
//!
//! Redis answers a connection's requests in the order they were sent, so
//! the request waiting longest is the one the connection is stuck on: when
//! it has waited the response timeout, every request behind it waits too.
//! So the bound is a property of the connection. Each call enters the slot
//! of the current *epoch* (a quarter of the timeout) on the way in and
//! leaves it on the way out (two atomic additions, no timer, no lock); a
//! ticker advances the epoch and, when a slot four epochs old still holds
//! a call, declares the connection stuck: it stops the connection's driver
//! task, so every call waiting on it fails at once (reported as a
//! timeout), and the connection is replaced. A call therefore fails
//! between 1 and 1.25 times the response timeout after it was sent. A call
//! also races its request against the watch firing ([`Watch::stopped`]),
//! for the one request stopping the driver does not fail.
//!
//! A per-call `tokio::time::timeout` costs a timer registration and
//! removal per call: ~5 % of a `GET`'s client time at 64 calls in flight
//! (`tagcache bench --throughput-only reads`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Slots in the ring: the four epochs a call may wait, the one it is
/// checked in, and spares, so a slot is only reused long after its check.
const SLOTS: usize = 8;
/// Epochs per response timeout.
const EPOCHS_PER_TIMEOUT: u32 = 4;
/// The shortest epoch: a smaller timeout is kept less precisely rather
/// than by a busier ticker.
const MIN_EPOCH: Duration = Duration::from_millis(1);

/// Calls in flight on one connection, by the epoch they started in.
#[derive(Debug)]
pub(crate) struct Watch {
    epoch: AtomicUsize,
    slots: [AtomicUsize; SLOTS],
    fired: AtomicBool,
    /// Woken when the watch fires: the calls still in flight stop
    /// waiting (see [`Watch::stopped`]).
    stop: tokio::sync::Notify,
    timeout: Duration,
}

/// One call in flight: leaves its slot when dropped (also when the call's
/// future is dropped before it ends).
pub(crate) struct Entered<'a> {
    watch: &'a Watch,
    slot: usize,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.watch.slots[self.slot].fetch_sub(1, Ordering::Release);
    }
}

impl Watch {
    /// Starts watching a connection whose driver task is `driver`: the
    /// ticker runs until the watch is dropped or fires; `on_fire` runs once
    /// when it fires, after the driver was stopped.
    pub(crate) fn start(
        timeout: Duration,
        driver: tokio::task::AbortHandle,
        on_fire: impl FnOnce() + Send + 'static,
    ) -> Arc<Self> {
        let watch = Arc::new(Self {
            epoch: AtomicUsize::new(0),
            slots: Default::default(),
            fired: AtomicBool::new(false),
            stop: tokio::sync::Notify::new(),
            timeout,
        });
        let epoch = (timeout / EPOCHS_PER_TIMEOUT).max(MIN_EPOCH);
        tokio::spawn(tick(Arc::downgrade(&watch), epoch, driver, on_fire));
        watch
    }

    /// Counts a call in flight until the guard drops.
    pub(crate) fn enter(&self) -> Entered<'_> {
        let slot = self.epoch.load(Ordering::Acquire) % SLOTS;
        self.slots[slot].fetch_add(1, Ordering::AcqRel);
        Entered { watch: self, slot }
    }

    /// Resolves when the watch fires. Stopping the driver fails every call
    /// waiting on it, except one whose request entered the driver's channel
    /// just as the driver ended: tokio's channel keeps such a message (and
    /// the reply sender in it) until every sender is gone, and the waiting
    /// call holds one, so it would wait forever (seen with Redis killed, 1
    /// call in thousands). A call races its request against this.
    pub(crate) async fn stopped(&self) {
        // A `Notified` sees every `notify_waiters` from its creation on,
        // polled or not: created before the check, nothing is missed.
        let stop = self.stop.notified();
        if self.fired.load(Ordering::Acquire) {
            return;
        }
        stop.await;
    }

    /// A call's error, as the caller should see it: a timeout when the
    /// watch stopped the connection (the error redis-rs reports then only
    /// says the connection closed).
    pub(crate) fn explain(&self, e: redis::RedisError) -> redis::RedisError {
        if self.fired.load(Ordering::Acquire) {
            no_answer(self.timeout)
        } else {
            e
        }
    }

    /// Advances the epoch; `true` when calls of the epoch that has just
    /// become the response timeout old are still waiting.
    fn advance(&self) -> bool {
        let now = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        // The slot of epoch `now - 5` (= `now + 3` in a ring of 8): its
        // calls started at least four epochs ago.
        let oldest = (now + SLOTS - (EPOCHS_PER_TIMEOUT as usize + 1)) % SLOTS;
        self.slots[oldest].load(Ordering::Acquire) > 0
    }
}

/// The timeout error of a call or connection attempt that got no answer
/// within `limit` (a timeout to redis-rs' `is_timeout` and to the breaker).
pub(crate) fn no_answer(limit: Duration) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {limit:?}"),
    ))
}

async fn tick(
    watch: Weak<Watch>,
    epoch: Duration,
    driver: tokio::task::AbortHandle,
    on_fire: impl FnOnce(),
) {
    let mut ticks = tokio::time::interval(epoch);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(w) = watch.upgrade() else {
            // The connection is no longer used: its driver ends with it.
            driver.abort();
            return;
        };
        // (A finished driver is no reason to stop: a call may still wait
        // on it, see `Watch::stopped`; the ticker ends with the watch.)
        if w.advance() {
            w.fired.store(true, Ordering::Release);
            driver.abort();
            w.stop.notify_waiters();
            on_fire();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked() -> tokio::task::AbortHandle {
        tokio::spawn(std::future::pending::<()>()).abort_handle()
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_waiting_the_timeout_fires_within_a_quarter_more() {
        let driver = parked();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let w = Watch::start(Duration::from_millis(100), driver.clone(), move || {
            let _ = tx.send(tokio::time::Instant::now());
        });
        let start = tokio::time::Instant::now();
        let _call = w.enter();
        let fired = rx.await.unwrap();
        let waited = fired - start;
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited <= Duration::from_millis(126), "{waited:?}");
        tokio::task::yield_now().await;
        assert!(driver.is_finished());
        let e = w.explain(redis::RedisError::from(std::io::Error::other("closed")));
        assert!(e.is_timeout());
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_stuck_after_its_driver_ended_is_stopped_by_the_watch() {
        // The driver has ended (the server went away) but a call still
        // waits: its request was left in the driver's channel.
        let driver = tokio::spawn(async {}).abort_handle();
        tokio::task::yield_now().await;
        assert!(driver.is_finished());
        let w = Watch::start(Duration::from_millis(100), driver, || {});
        let start = tokio::time::Instant::now();
        let _call = w.enter();
        tokio::select! {
            () = std::future::pending::<()>() => unreachable!(),
            () = w.stopped() => {}
        }
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited <= Duration::from_millis(126), "{waited:?}");
        // A call that starts after the watch fired does not wait.
        tokio::time::timeout(Duration::from_millis(1), w.stopped())
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn calls_that_end_in_time_never_fire() {
        let driver = parked();
        let w = Watch::start(Duration::from_millis(100), driver.clone(), || {
            panic!("fired")
        });
        for _ in 0..100 {
            let call = w.enter();
            tokio::time::sleep(Duration::from_millis(90)).await;
            drop(call);
        }
        assert!(!driver.is_finished());
        let e = w.explain(redis::RedisError::from(std::io::Error::other("closed")));
        assert!(!e.is_timeout());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_watch_stops_its_ticker_and_driver() {
        let driver = parked();
        let w = Watch::start(Duration::from_millis(100), driver.clone(), || {});
        drop(w);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(driver.is_finished());
    }
}
