//! Index statistics, read from the registries (never by SCAN).

use crate::builder::LAYOUT_VERSION;
use crate::cache::ServerInfo;
use crate::core::Core;
use crate::error::Result;

/// Registry entries read per round trip.
const PAGE: isize = 500;
/// Index keys whose memory is measured; the total is extrapolated.
const MEMORY_SAMPLES: usize = 32;

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
        stats.invalidations_in_flight += core
            .conn
            .query::<u64>(redis::cmd("ZCARD").arg(core.space.inflight(b)))
            .await?;
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
