//! One measured run of a strategy, as the invalidation and clear phases
//! take it: a fresh namespace written first ([`prepare`]); the slow log
//! reset, the server sampled before and after, the PING probe running
//! while the work runs ([`measure`]); and the median of the rounds.

use std::future::Future;
use std::time::{Duration, Instant};

use tagcache::{Cache, SetOptions};

use super::layout::{Footprint, Keys, Space};
use super::probe::{Probe, Stalls};
use super::report::Run;
use super::server::{self, Sample};
use super::writes::load;
use super::{Bench, TTL};
use crate::error::Result;

/// Writes `n` entries of the invalidation workload (each also tagged
/// `first` when given) in the fresh namespace `suffix`, tracked for
/// cleanup; `phase` is shown meanwhile.
pub async fn prepare(
    b: &Bench<'_>,
    suffix: &str,
    n: u64,
    first: Option<&str>,
    phase: String,
) -> Result<(Cache, Footprint)> {
    prepare_with_ttl(b, suffix, n, first, phase, TTL).await
}

/// [`prepare`] with entries that expire after `ttl`.
pub async fn prepare_with_ttl(
    b: &Bench<'_>,
    suffix: &str,
    n: u64,
    first: Option<&str>,
    phase: String,
    ttl: Duration,
) -> Result<(Cache, Footprint)> {
    let wl = &b.plan.inv_workload;
    let space = Space::new(b.plan.namespace(suffix));
    let fp = Footprint {
        space: space.clone(),
        entries: n,
        keys: Keys::Items,
        tags: wl.tag_set(n, first),
    };
    b.janitor.track(&fp);
    let cache = b.cache(space.name()).await?;
    b.progress.set(phase);
    load(&cache, n, |i| {
        let opts = SetOptions::new().ttl(ttl).tags(wl.tags_of(i, first));
        (wl.value().to_vec(), opts)
    })
    .await?;
    Ok((cache, fp))
}

/// What was seen around the work.
pub struct Measured<T> {
    /// What the work returned.
    pub out: T,
    /// Its wall time.
    pub wall: Duration,
    /// What the PING probe saw while it ran.
    pub stalls: Stalls,
    /// The probe's waits over time, `[ms since start, wait ms]`.
    pub timeline: Vec<[f64; 2]>,
    /// Every wait the probe saw (to pool over rounds).
    pub waits: Vec<Duration>,
    /// The server's counters before the work.
    pub before: Sample,
    /// And after it.
    pub after: Sample,
    /// The longest single command in the slow log (private server only).
    pub server_longest_command_ms: Option<f64>,
}

/// Runs `work` with the probe on, showing `phase` as progress.
pub async fn measure<T>(
    b: &Bench<'_>,
    phase: String,
    work: impl Future<Output = Result<T>>,
) -> Result<Measured<T>> {
    if let Some(log) = &b.slowlog {
        log.reset().await?;
    }
    b.progress.set(phase);
    let before = server::sample(&b.raw).await?;
    let probe = Probe::start(&b.client)?;
    let start = Instant::now();
    let out = work.await;
    let wall = start.elapsed();
    let seen = probe.stop_with_timeline().await?;
    let out = out?;
    let after = server::sample(&b.raw).await?;
    let server_longest_command_ms = match &b.slowlog {
        Some(log) => Some(log.longest_ms().await?),
        None => None,
    };
    Ok(Measured {
        out,
        wall,
        stalls: seen.stalls,
        timeline: seen.timeline,
        waits: seen.waits,
        before,
        after,
        server_longest_command_ms,
    })
}

/// A strategy's figures of one round, as [`median_round`] reads them.
pub trait Round {
    /// The round's wall time, milliseconds.
    fn wall_ms(&self) -> f64;
    /// The round's longest stall, milliseconds.
    fn longest_stall_ms(&self) -> f64;
    /// Records every round's wall time (fastest first) and the longest
    /// stall of any round on the median round.
    fn set_rounds(&mut self, walls: Vec<f64>, worst_longest_stall_ms: f64);
}

/// Implements [`Round`] for a run with the fields `wall_ms`, `stalls`,
/// `rounds_wall_ms` and `worst_round_longest_stall_ms`.
macro_rules! impl_round {
    ($run:ty) => {
        impl $crate::measure::Round for $run {
            fn wall_ms(&self) -> f64 {
                self.wall_ms
            }

            fn longest_stall_ms(&self) -> f64 {
                self.stalls.longest_ms
            }

            fn set_rounds(&mut self, walls: Vec<f64>, worst_longest_stall_ms: f64) {
                self.rounds_wall_ms = walls;
                self.worst_round_longest_stall_ms = worst_longest_stall_ms;
            }
        }
    };
}
pub(crate) use impl_round;

/// `SCAN MATCH pattern` with `UNLINK` of each batch, as an application
/// without indexes clears a pattern; the keys unlinked.
pub async fn scan_unlink(
    conn: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> Result<u64> {
    let (mut cursor, mut deleted) = (0u64, 0u64);
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            deleted += redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<u64>(conn)
                .await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// The round with the median wall time, carrying every round's wall time
/// and the worst stall of any round.
pub fn median_round<R: Round>(mut runs: Vec<R>) -> Option<R> {
    runs.sort_by(|a, b| a.wall_ms().total_cmp(&b.wall_ms()));
    let walls: Vec<f64> = runs.iter().map(Round::wall_ms).collect();
    let worst = runs.iter().map(Round::longest_stall_ms).fold(0.0, f64::max);
    let mid = runs.len() / 2;
    let mut median = runs.into_iter().nth(mid)?;
    median.set_rounds(walls, worst);
    Some(median)
}

/// Runs two measurements one after the other, `b` first when `b_first`,
/// and answers them as `(a, b)`. Rounds that alternate the order let a
/// machine's drift hit both sides of each pair.
pub async fn pair<A, B>(b_first: bool, a: A, b: B) -> Result<(Run, Run)>
where
    A: Future<Output = Result<Run>>,
    B: Future<Output = Result<Run>>,
{
    if b_first {
        let b = b.await?;
        Ok((a.await?, b))
    } else {
        let a = a.await?;
        Ok((a, b.await?))
    }
}

/// The median over the rounds of `ours[r] / baseline[r]` (two series
/// measured round by round, each round's pair moments apart).
pub fn paired_ratio(ours: &[f64], baseline: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = ours.iter().zip(baseline).map(|(t, b)| t / b).collect();
    median(&mut ratios)
}

/// Sorts and takes the middle (the mean of the two middles when even).
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
