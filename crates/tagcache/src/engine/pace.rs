//! Pacing of chunked server work by time, not by count: every chunked
//! script (an invalidation's drain, the sweep's trims and its check for
//! members whose entry is gone) reports the Redis time it spent, and the
//! next call carries as many items as fit [`CALL_BUDGET_US`] at the rate
//! just measured. So the bound holds on a slow or busy server as on a fast
//! one, instead of being an entry count tuned on one machine.

/// Server time one chunked call should take: a little less than what a
/// script may spend on its own ([`SCRIPT_BUDGET_US`] for reading, about as
/// much again for writing), so calls are sized by the client and a
/// script's own cut is a backstop rather than the rule. 1 ms rather than
/// the 1.5 ms of earlier versions: on a server sharing its CPU with a busy
/// process (`tagcache bench --slow-server`) a PING's p99 wait during an
/// invalidation fell from 5.4–5.9 ms to 4.9–5.4 ms, for ~2 % more Redis
/// time (one call's fixed cost is ~20 µs).
pub(crate) const CALL_BUDGET_US: f64 = 1000.0;
/// What a script that checks the clock as it goes (`drop.lua`,
/// `sweep_gone.lua`) may spend reading before it stops and writes what it
/// read: Redis' clock, µs.
pub(crate) const SCRIPT_BUDGET_US: u64 = 700;
/// The fewest items a paced call carries.
const MIN_CHUNK: usize = 16;
/// Items of the first call, before anything was measured (a script's own
/// budget, or a count this small, bounds it anyway).
const FIRST_CHUNK: usize = 256;

/// Items per call, adapted after every call so a call takes about
/// [`CALL_BUDGET_US`] of Redis' time (the script's own measure: a round
/// trip would also count a busy client's delays and shrink chunks for
/// nothing), never more than the configured `chunk_size`.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    now: usize,
    max: usize,
}

impl Pace {
    /// A pace that starts small and never exceeds `max` items per call.
    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            now: FIRST_CHUNK.min(max),
            max,
        }
    }

    /// Items the next call should carry.
    pub(crate) fn get(&self) -> usize {
        self.now
    }

    /// Adapts to the last call: `sent` items, of which the script
    /// processed `reached` before its own budget ran out, in `server_us`
    /// of Redis time. A cut call says exactly what fits; otherwise the size
    /// scales by budget / time, at most doubling per call.
    pub(crate) fn observe(&mut self, sent: usize, reached: usize, server_us: u64) {
        let floor = MIN_CHUNK.min(self.max);
        if reached < sent {
            self.now = reached.clamp(floor, self.max);
            return;
        }
        if sent < self.now || sent == 0 {
            return; // a short last call says little
        }
        let per_item = server_us as f64 / sent as f64;
        let fit = if per_item > 0.0 {
            (CALL_BUDGET_US / per_item) as usize
        } else {
            self.max
        };
        self.now = fit.min(self.now.saturating_mul(2)).clamp(floor, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_call_sets_the_size_to_what_fit() {
        let mut p = Pace::new(1000);
        p.observe(256, 100, 1500);
        assert_eq!(p.get(), 100);
    }

    #[test]
    fn fast_calls_grow_at_most_twofold_and_never_past_the_maximum() {
        let mut p = Pace::new(1000);
        p.observe(256, 256, 10);
        assert_eq!(p.get(), 512);
        p.observe(512, 512, 10);
        assert_eq!(p.get(), 1000);
    }

    #[test]
    fn slow_calls_shrink_to_the_time_budget_but_not_below_the_floor() {
        let mut p = Pace::new(1000);
        // 256 items in twice the budget: half as many fit.
        p.observe(256, 256, 2 * CALL_BUDGET_US as u64);
        assert_eq!(p.get(), 128);
        p.observe(128, 128, 1_000_000);
        assert_eq!(p.get(), MIN_CHUNK);
    }

    #[test]
    fn a_short_last_call_changes_nothing() {
        let mut p = Pace::new(1000);
        p.observe(10, 10, 5000);
        assert_eq!(p.get(), 256);
    }
}
