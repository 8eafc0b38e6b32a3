//! The state every operation needs: the connection, the key space and the
//! limits. Shared (in an `Arc`) by the cache handle and its background tasks.

use std::time::Duration;

use crate::layout::codec::Compression;
use crate::layout::keys::KeySpace;
use crate::server::conn::Conn;

/// Limits and defaults fixed when the cache is built.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) default_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) max_tags: usize,
    pub(crate) max_value_bytes: usize,
    pub(crate) chunk_size: usize,
    pub(crate) trim_limit: usize,
    /// Which way writes go.
    pub(crate) write_path: crate::options::WritePath,
    pub(crate) compression: Compression,
    /// How long invalidations and deletes fence guarded writes.
    pub(crate) fence_window: Duration,
    /// Check listed keys still exist (when the eviction policy may have
    /// removed entries behind the index's back).
    pub(crate) verify_listing: bool,
    /// How keys appear in spans.
    pub(crate) key_logging: crate::observe::KeyLogging,
    /// Default eager refresh threshold, thousandths of the TTL (0: off).
    pub(crate) eager_permille: u16,
    /// Default load lease (`None`: read-throughs take none unless asked).
    pub(crate) lease: Option<crate::options::LeaseConfig>,
}

impl Limits {
    /// The fence window in µs, as scripts take it.
    pub(crate) fn fence_window_us(&self) -> String {
        self.fence_window.as_micros().to_string()
    }
}

/// Where the check for members whose entry is gone (`gone.rs`) resumes.
/// Kept here, with the rest of the handle's engine state, so `Core` does
/// not depend on the check that moves it.
///
/// Ranks can shift between steps (writes and the
/// expiry sweep re-file indexes), which may skip or repeat an index in one
/// pass but never makes the check remove a live member.
#[derive(Debug, Default, Clone)]
pub(crate) struct GoneCursor {
    pub(super) bucket: u16,
    /// Rank, in the bucket's registry, of the index being checked.
    pub(super) index: usize,
    /// Rank of the next member to check in that index.
    pub(super) member: usize,
    /// A pass ended and no step has reported `complete` since.
    pub(super) pass_done: bool,
}

/// Connection, keys and limits.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) conn: Conn,
    pub(crate) space: KeySpace,
    pub(crate) limits: Limits,
    /// Where the sweep's check for members whose entry is gone resumes.
    pub(crate) gone: std::sync::Mutex<GoneCursor>,
    /// Redis' clock as seen from here, for the transaction write path.
    pub(crate) clock: crate::server::clock::ServerClock,
    /// The tags this process last wrote per key (the transaction path's
    /// guess of what a rewrite drops).
    pub(crate) recent: crate::engine::recent::RecentTags,
}
