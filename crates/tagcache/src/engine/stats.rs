//! Index statistics, read from the registries (never by SCAN).

use std::time::Duration;

use crate::engine::core::Core;
use crate::error::Result;
use crate::layout::keys::LAYOUT_VERSION;
use crate::server::ServerInfo;

/// Registry entries read per round trip.
const PAGE: isize = 500;
/// Index keys whose memory is measured; the total is extrapolated.
const MEMORY_SAMPLES: usize = 32;
/// In-flight invalidations described one by one (all are counted).
const INVALIDATIONS_LISTED: usize = 100;

/// An invalidation in flight, or abandoned by a process that stopped
/// midway (a crash, a dropped future): its snapshot `x:<tag>` is filed in
/// the bucket's `inv` registry with the time of its last progress.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InflightInvalidation {
    /// The tag being invalidated (reserved tags as stored; see
    /// [`crate::TagKind`]); `\0c` stands for a namespace clear
    /// ([`crate::Cache::clear`]), whose `remaining` counts the indexes it
    /// has left.
    pub tag: Vec<u8>,
    /// The bucket whose snapshot this is.
    pub bucket: u16,
    /// Members left in the snapshot: at most this many entries are still
    /// to be deleted.
    pub remaining: u64,
    /// Time since the invalidation last made progress (its heartbeat).
    pub heartbeat_age: Duration,
    /// Whether the heartbeat is older than the sweep's lease
    /// ([`InflightInvalidation::SWEEP_LEASE`]): no process is working on
    /// it, and the next sweep ([`crate::Cache::prune`], or any handle's
    /// background sweep) or invalidation of the tag finishes it.
    pub abandoned: bool,
    /// How long until the sweep may take it over, if it stays silent
    /// (zero once abandoned).
    pub sweep_after: Duration,
}

impl InflightInvalidation {
    /// How long an invalidation may go without progress before the sweep
    /// finishes it: 30 s.
    pub const SWEEP_LEASE: Duration = crate::engine::sweep::INVALIDATION_LEASE;
}

/// Statistics of a namespace's indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Tag index keys (one per tag and bucket).
    pub indexes: u64,
    /// Index members, live or expired.
    pub members: u64,
    /// Members whose entry has expired and that a sweep would remove.
    pub stale_members: u64,
    /// Bytes used by index keys (`MEMORY USAGE` of a sample, extrapolated).
    pub index_memory_bytes: u64,
    /// Invalidations in flight (or abandoned, waiting for the sweep).
    pub invalidations_in_flight: u64,
    /// The first 100 of those, one by one: tag, bucket, what is left and
    /// whether the sweep will finish it.
    pub invalidations: Vec<InflightInvalidation>,
    /// Layout version of the namespace.
    pub layout_version: u32,
    /// Buckets of the namespace.
    pub buckets: u16,
    /// The server's version.
    pub redis_version: String,
    /// The server's `maxmemory-policy` (empty when unreadable).
    pub eviction_policy: String,
}

pub(crate) async fn collect(core: &Core, info: &ServerInfo) -> Result<Stats> {
    let mut stats = Stats {
        layout_version: LAYOUT_VERSION,
        buckets: core.space.buckets(),
        redis_version: info.redis_version.clone(),
        eviction_policy: info.eviction_policy.clone(),
        ..Stats::default()
    };
    let now = core.server_time_ms().await?;
    let mut sampled: Vec<Vec<u8>> = Vec::new();
    let (mut seen, mut rng) = (0u64, 0x2545_F491_4F6C_DD1Du64);
    let mut registry_bytes = 0u64;
    for b in 0..core.space.buckets() {
        let registry = core.space.registry(b);
        let mut start = 0isize;
        loop {
            let tags: Vec<Vec<u8>> = core
                .conn
                .query(
                    redis::cmd("ZRANGE")
                        .arg(&registry)
                        .arg(start)
                        .arg(start + PAGE - 1),
                )
                .await?;
            if tags.is_empty() {
                break;
            }
            let mut pipe = redis::pipe();
            for t in &tags {
                let k = core.space.tag(b, t);
                pipe.zcard(&k).zcount(&k, "-inf", format!("({now}"));
                // Reservoir sampling: every index equally likely to be
                // measured, whatever its place in the registry.
                seen += 1;
                if sampled.len() < MEMORY_SAMPLES {
                    sampled.push(k);
                } else {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let slot = (rng >> 33) % seen;
                    if let Ok(slot) = usize::try_from(slot) {
                        if slot < MEMORY_SAMPLES {
                            sampled[slot] = k;
                        }
                    }
                }
            }
            let counts: Vec<u64> = core.conn.pipe(&pipe).await?;
            for pair in counts.chunks(2) {
                if pair[0] > 0 {
                    stats.indexes += 1;
                }
                stats.members += pair[0];
                stats.stale_members += pair[1];
            }
            start += PAGE;
        }
        registry_bytes += memory_usage(core, &registry).await?;
        let in_flight = core
            .conn
            .query::<u64>(redis::cmd("ZCARD").arg(core.space.inflight(b)))
            .await?;
        stats.invalidations_in_flight += in_flight;
        if in_flight > 0 {
            let room = INVALIDATIONS_LISTED.saturating_sub(stats.invalidations.len());
            stats
                .invalidations
                .extend(inflight(core, b, now, room).await?);
        }
    }
    let mut sample_bytes = 0u64;
    for k in &sampled {
        sample_bytes += memory_usage(core, k).await?;
    }
    let per_index = if sampled.is_empty() {
        0
    } else {
        sample_bytes / sampled.len() as u64
    };
    stats.index_memory_bytes = per_index * stats.indexes + registry_bytes;
    Ok(stats)
}

/// Up to `limit` in-flight invalidations of bucket `b`, oldest heartbeat
/// first, with their snapshots' sizes (two round trips).
async fn inflight(
    core: &Core,
    b: u16,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<InflightInvalidation>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let filed: Vec<(Vec<u8>, f64)> = core
        .conn
        .query(
            redis::cmd("ZRANGE")
                .arg(core.space.inflight(b))
                .arg(0)
                .arg(limit - 1)
                .arg("WITHSCORES"),
        )
        .await?;
    let mut pipe = redis::pipe();
    for (tag, _) in &filed {
        if tag.as_slice() == crate::layout::keys::CLEAR_MARKER {
            // A namespace clear: the indexes it has left.
            pipe.zcard(core.space.clear_registry(b));
        } else {
            pipe.zcard(core.space.snapshot(b, tag));
        }
    }
    let sizes: Vec<u64> = if filed.is_empty() {
        Vec::new()
    } else {
        core.conn.pipe(&pipe).await?
    };
    let lease = InflightInvalidation::SWEEP_LEASE;
    Ok(filed
        .into_iter()
        .zip(sizes)
        .map(|((tag, heartbeat), remaining)| {
            // Scores are whole ms (Redis' clock); a heartbeat "ahead" of
            // now (another node's clock) counts as fresh.
            let age = Duration::from_millis(now_ms.saturating_sub(heartbeat.max(0.0) as u64));
            InflightInvalidation {
                tag,
                bucket: b,
                remaining,
                heartbeat_age: age,
                abandoned: age > lease,
                sweep_after: lease.saturating_sub(age),
            }
        })
        .collect())
}

async fn memory_usage(core: &Core, key: &[u8]) -> Result<u64> {
    let bytes: Option<u64> = core
        .conn
        .query(
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(5),
        )
        .await?;
    Ok(bytes.unwrap_or(0))
}
