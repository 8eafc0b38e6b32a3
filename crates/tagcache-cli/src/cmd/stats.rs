//! `tagcache stats`: the namespace's indexes and the server facts that
//! matter to them, read from the registries (never by SCAN).

use std::process::ExitCode;

use clap::Args;
use comfy_table::Table;
use serde_json::{json, Value};
use tagcache::{CircuitState, EvictionCheck, InflightInvalidation, TagKind};

use crate::cmd::{Context, JsonFlag};
use crate::error::Result;
use crate::output;

/// Options of `tagcache stats`.
#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub out: JsonFlag,
}

/// Prints a two-column table (a JSON object).
pub async fn run(args: StatsArgs, ctx: &Context) -> Result<ExitCode> {
    let (_target, cache) = ctx.cache(EvictionCheck::Ignore).await?;
    let s = cache.stats().await?;
    let circuit = circuit_name(cache.circuit_state());
    if ctx.json(args.out) {
        output::json(&json!({
            "namespace": cache.namespace(),
            "indexes": s.indexes,
            "members": s.members,
            "stale_members": s.stale_members,
            "index_memory_bytes": s.index_memory_bytes,
            "invalidations_in_flight": s.invalidations_in_flight,
            "invalidations": invalidations_json(&s.invalidations),
            "layout_version": s.layout_version,
            "buckets": s.buckets,
            "redis_version": s.redis_version,
            "eviction_policy": s.eviction_policy,
            "circuit_state": circuit,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    let policy = if s.eviction_policy.is_empty() {
        "unknown (CONFIG GET refused)".to_owned()
    } else {
        s.eviction_policy.clone()
    };
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(vec!["namespace", cache.namespace()]);
    for (name, value) in [
        ("indexes", s.indexes.to_string()),
        ("members", s.members.to_string()),
        ("stale members", s.stale_members.to_string()),
        ("index memory", bytes(s.index_memory_bytes)),
        (
            "invalidations in flight",
            s.invalidations_in_flight.to_string(),
        ),
        ("layout version", s.layout_version.to_string()),
        ("buckets", s.buckets.to_string()),
        ("redis version", s.redis_version.clone()),
        ("eviction policy", policy),
        ("circuit", circuit.to_owned()),
    ] {
        table.add_row(vec![name.to_owned(), value]);
    }
    let mut text = table.to_string();
    if !s.invalidations.is_empty() {
        text.push('\n');
        text.push_str(&invalidations_table(&s.invalidations));
        let unlisted = s
            .invalidations_in_flight
            .saturating_sub(s.invalidations.len() as u64);
        if unlisted > 0 {
            text.push_str(&format!("\n... and {unlisted} more"));
        }
    }
    output::print(&text);
    Ok(ExitCode::SUCCESS)
}

/// In-flight invalidations as a JSON array (durations in ms).
pub fn invalidations_json(list: &[InflightInvalidation]) -> Value {
    list.iter()
        .map(|i| {
            json!({
                "tag": TagKind::parse(&i.tag).to_string(),
                "bucket": i.bucket,
                "remaining": i.remaining,
                "heartbeat_age_ms": u64::try_from(i.heartbeat_age.as_millis()).unwrap_or(u64::MAX),
                "abandoned": i.abandoned,
                "sweep_after_ms": u64::try_from(i.sweep_after.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect()
}

/// In-flight invalidations as a table for people.
fn invalidations_table(list: &[InflightInvalidation]) -> String {
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "invalidation of",
        "bucket",
        "entries left",
        "last progress",
        "state",
    ]);
    for i in list {
        table.add_row(vec![
            TagKind::parse(&i.tag).to_string(),
            i.bucket.to_string(),
            i.remaining.to_string(),
            format!("{} ago", seconds(i.heartbeat_age)),
            state(i),
        ]);
    }
    table.to_string()
}

/// Whether anyone is working on it, and when the sweep will.
fn state(i: &InflightInvalidation) -> String {
    if i.abandoned {
        "abandoned: the next sweep finishes it (tagcache prune)".to_owned()
    } else {
        format!(
            "running; the sweep takes over if silent for {} more",
            seconds(i.sweep_after)
        )
    }
}

/// One in-flight invalidation in a sentence (for `doctor`).
pub fn describe(i: &InflightInvalidation) -> String {
    format!(
        "{} (bucket {}): {} entries left, last progress {} ago, {}",
        TagKind::parse(&i.tag),
        i.bucket,
        i.remaining,
        seconds(i.heartbeat_age),
        state(i)
    )
}

/// A duration in whole seconds: `42 s`.
fn seconds(d: std::time::Duration) -> String {
    format!("{} s", d.as_secs())
}

/// The breaker state as a word.
pub fn circuit_name(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half-open",
        _ => "unknown",
    }
}

/// A byte count for people: `123 B`, `4.5 KiB`, `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }
}
