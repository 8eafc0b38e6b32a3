//! Redis' clock as seen from this process, for writes that compute their
//! expiry on the client (the transaction write path).
//!
//! One `TIME` gives the server's clock; the local monotonic clock carries it
//! forward, and it is read again after [`RESYNC_AFTER`]. The reading is
//! taken as of the moment its reply *arrived*, less 1 ms (both clocks are
//! read in whole ms), so the estimate is never ahead of the server by more
//! than the clock drift since the last sync
//! (a monotonic clock against a slewed wall clock: at most a few ms over
//! the resync period): an entry written with it expires at most one round
//! trip (plus that drift) earlier than asked, never later. Expiries in the
//! entry (`PXAT`) and in its index scores are the same number, so the
//! layout's invariants do not depend on the estimate being exact.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::server::conn::Conn;

/// How long a reading of Redis' clock is trusted.
pub(crate) const RESYNC_AFTER: Duration = Duration::from_secs(10);

/// Redis' clock estimated from one `TIME` and the local monotonic clock.
#[derive(Debug)]
pub(crate) struct ServerClock {
    /// The zero of the local clock.
    base: Instant,
    /// Server ms minus local ms since `base`, at the last sync.
    offset_ms: AtomicI64,
    /// Local ms since `base` of the last sync, plus one (0: never synced).
    synced_at: AtomicU64,
}

impl Default for ServerClock {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            offset_ms: AtomicI64::new(0),
            synced_at: AtomicU64::new(0),
        }
    }
}

impl ServerClock {
    fn local_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Redis' clock now (Unix ms), reading `TIME` first when the last
    /// reading is missing or older than [`RESYNC_AFTER`].
    pub(crate) async fn now_ms(&self, conn: &Conn) -> Result<u64> {
        let synced = self.synced_at.load(Ordering::Acquire);
        let local = self.local_ms();
        let fresh_for = u64::try_from(RESYNC_AFTER.as_millis()).unwrap_or(u64::MAX);
        if synced == 0 || local.saturating_sub(synced - 1) > fresh_for {
            self.sync(conn).await?;
        }
        let now = i64::try_from(self.local_ms()).unwrap_or(i64::MAX)
            + self.offset_ms.load(Ordering::Acquire);
        u64::try_from(now).map_err(|_| Error::new(ErrorKind::Protocol, "redis clock before 1970"))
    }

    /// Reads Redis' `TIME` and re-bases the estimate on it.
    pub(crate) async fn sync(&self, conn: &Conn) -> Result<()> {
        let server = conn.server_time_ms().await?;
        // As of the reply's arrival: the server read its clock before.
        let local = self.local_ms();
        let server = i64::try_from(server)
            .map_err(|_| Error::new(ErrorKind::Protocol, "redis TIME out of range"))?;
        let local_i = i64::try_from(local).unwrap_or(i64::MAX);
        // Both readings are whole ms (truncated), which alone could put the
        // estimate up to 1 ms ahead: one ms less keeps it behind.
        self.offset_ms
            .store(server - local_i - 1, Ordering::Release);
        self.synced_at.store(local + 1, Ordering::Release);
        Ok(())
    }
}
