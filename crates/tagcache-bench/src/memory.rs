//! Index memory: what the tag indexes cost per entry and tag while the
//! entries live, and what is left of them once every entry has expired
//! and `prune` ran.
//!
//! Cost while alive, two ways: the `used_memory` growth of writing N
//! tagged entries minus that of writing N untagged entries whose stored
//! strings are exactly as long (the payload padded by the tag section),
//! and the sum of `MEMORY USAGE` over the index keys and the registry.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use tagcache::SetOptions;

use super::layout::{item_key, Footprint, Keys, Space};
use super::probe::{Probe, Stalls};
use super::report::Goal;
use super::server;
use super::workload::tag_section_len;
use super::writes::load;
use super::{Bench, TTL};
use crate::error::Result;

/// TTL of the entries left to expire.
const SHORT_TTL: Duration = Duration::from_secs(1);

/// The phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// Entries written.
    pub entries: u64,
    /// Tags per entry.
    pub tags: usize,
    /// `used_memory` growth writing untagged entries, bytes.
    pub used_memory_untagged: i64,
    /// `used_memory` growth writing the same entries with their tags.
    pub used_memory_tagged: i64,
    /// (tagged - untagged) / (entries x tags), of the median round.
    pub index_bytes_per_entry_tag: f64,
    /// The same for every round, smallest first.
    pub index_bytes_per_entry_tag_rounds: Vec<f64>,
    /// `MEMORY USAGE` of the index keys and the registry, bytes.
    pub memory_usage_index_bytes: u64,
    /// The same, per entry and tag.
    pub memory_usage_per_entry_tag: f64,
    /// After every entry expired.
    pub after_expiry: AfterExpiry,
    /// Per-entry-tag and leftover goals.
    pub goals: Vec<Goal>,
}

/// Index memory once every entry expired.
#[derive(Debug, Clone, Serialize)]
pub struct AfterExpiry {
    /// TTL of the entries, milliseconds.
    pub ttl_ms: u64,
    /// Index keys (and registry) still there before `prune`, and their bytes.
    pub index_keys_before_prune: u64,
    /// Bytes of those keys.
    pub index_bytes_before_prune: u64,
    /// `prune` wall time, milliseconds.
    pub prune_ms: f64,
    /// Stalls seen while `prune` ran.
    pub prune_stalls: Stalls,
    /// Expired members `prune` removed.
    pub members_removed: u64,
    /// Empty indexes `prune` removed.
    pub indexes_removed: u64,
    /// Index, registry and in-flight keys left afterwards.
    pub index_keys_left: u64,
    /// Their bytes (the goal is 0).
    pub index_bytes_left: u64,
}

/// Measures index memory.
pub async fn run(b: &Bench<'_>) -> Result<MemoryReport> {
    let n = b.plan.entries;
    let k = b.plan.workload.tag_count();
    let edges = (n as f64) * (k as f64);
    // used_memory moves with hash-table rehashing and buffers: one pair
    // of measurements per round, the median pair kept.
    let mut pairs = Vec::new();
    for round in 1..=b.plan.rounds {
        b.progress.set(format!(
            "memory: {n} entries (round {round}/{})",
            b.plan.rounds
        ));
        let untagged = grow(b, "mem-bare", false).await?;
        let tagged = grow(b, "mem-tags", true).await?;
        if untagged.stored_len != tagged.stored_len {
            tracing::warn!(
                untagged = untagged.stored_len,
                tagged = tagged.stored_len,
                "stored entry sizes differ: the used_memory comparison is off"
            );
        }
        pairs.push((untagged, tagged));
    }
    pairs.sort_by_key(|(u, t)| t.used - u.used);
    let rounds: Vec<f64> = pairs
        .iter()
        .map(|(u, t)| (t.used - u.used) as f64 / edges)
        .collect();
    let Some((untagged, tagged)) = pairs.into_iter().nth(rounds.len() / 2) else {
        return Err(crate::error::BenchError::error("no memory round ran"));
    };
    let per_edge = (tagged.used - untagged.used) as f64 / edges;
    let after_expiry = after_expiry(b).await?;
    let goals = vec![
        Goal::at_most("index_bytes_per_entry_tag", 120.0, "B").check(per_edge),
        Goal::at_most("index_bytes_after_expiry_and_prune", 0.0, "B")
            .check(after_expiry.index_bytes_left as f64),
    ];
    Ok(MemoryReport {
        entries: n,
        tags: k,
        used_memory_untagged: untagged.used,
        used_memory_tagged: tagged.used,
        index_bytes_per_entry_tag: per_edge,
        index_bytes_per_entry_tag_rounds: rounds,
        memory_usage_index_bytes: tagged.index_bytes,
        memory_usage_per_entry_tag: tagged.index_bytes as f64 / edges,
        after_expiry,
        goals,
    })
}

struct Growth {
    used: i64,
    index_bytes: u64,
    stored_len: u64,
}

/// The names of a footprint's index keys and registry.
fn index_names(space: &Space, tags: &BTreeSet<String>) -> Vec<String> {
    tags.iter()
        .map(|t| space.tag(t))
        .chain([space.registry(), space.inflight()])
        .collect()
}

/// Writes the data set (with or without tags) and reads what it added.
async fn grow(b: &Bench<'_>, suffix: &str, tagged: bool) -> Result<Growth> {
    let n = b.plan.entries;
    let wl = &b.plan.workload;
    let space = Space::new(b.plan.namespace(suffix));
    let fp = Footprint {
        keys: Keys::Items,
        space: space.clone(),
        entries: n,
        tags: if tagged {
            wl.tag_set(n, None)
        } else {
            BTreeSet::new()
        },
    };
    b.janitor.track(&fp);
    let cache = b.cache(space.name()).await?;
    b.progress
        .set(format!("memory: {n} entries, tagged: {tagged}"));
    let before = server::used_memory(&b.raw).await?;
    load(&cache, n, |i| {
        let tags = wl.tags_of(i, None);
        let opts = SetOptions::new().ttl(TTL);
        if tagged {
            (wl.value().to_vec(), opts.tags(tags))
        } else {
            let mut padded = wl.value().to_vec();
            padded.resize(padded.len() + tag_section_len(&tags), b'.');
            (padded, opts)
        }
    })
    .await?;
    let after = server::used_memory(&b.raw).await?;
    let index_bytes = server::memory_usage(&b.raw, &index_names(&space, &fp.tags)).await?;
    let stored_len: u64 = redis::cmd("STRLEN")
        .arg(space.entry(&item_key(0)))
        .query_async(&mut b.raw.clone())
        .await?;
    b.janitor.wipe(&b.raw, &fp).await?;
    Ok(Growth {
        used: after as i64 - before as i64,
        index_bytes,
        stored_len,
    })
}

/// Writes entries with a short TTL, waits until all expired, prunes, and
/// reads what is left of their indexes.
async fn after_expiry(b: &Bench<'_>) -> Result<AfterExpiry> {
    let n = b.plan.entries;
    let wl = &b.plan.workload;
    let space = Space::new(b.plan.namespace("mem-exp"));
    let fp = Footprint {
        keys: Keys::Items,
        space: space.clone(),
        entries: n,
        tags: wl.tag_set(n, None),
    };
    b.janitor.track(&fp);
    let cache = b.cache(space.name()).await?;
    b.progress.set(format!("memory: {n} entries expiring"));
    load(&cache, n, |i| {
        let opts = SetOptions::new().ttl(SHORT_TTL).tags(wl.tags_of(i, None));
        (wl.value().to_vec(), opts)
    })
    .await?;
    // Every entry was written before now, so expires before now + TTL.
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(100)).await;
    let names = index_names(&space, &fp.tags);
    let keys_before = server::existing(&b.raw, &names).await?;
    let bytes_before = server::memory_usage(&b.raw, &names).await?;
    b.progress.set("memory: prune after expiry");
    let probe = Probe::start(&b.client)?;
    let start = Instant::now();
    let pruned = cache.prune().await;
    let prune_ms = start.elapsed().as_secs_f64() * 1000.0;
    let prune_stalls = probe.stop().await?;
    let pruned = pruned?;
    let index_keys_left = server::existing(&b.raw, &names).await?;
    let index_bytes_left = server::memory_usage(&b.raw, &names).await?;
    b.janitor.wipe(&b.raw, &fp).await?;
    Ok(AfterExpiry {
        ttl_ms: SHORT_TTL.as_millis() as u64,
        index_keys_before_prune: keys_before,
        index_bytes_before_prune: bytes_before,
        prune_ms,
        prune_stalls,
        members_removed: pruned.members_removed,
        indexes_removed: pruned.indexes_removed,
        index_keys_left,
        index_bytes_left,
    })
}
