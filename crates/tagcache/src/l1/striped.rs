//! A counter that threads add to without sharing a cache line: the L1's
//! hit count is written on every hit, and one atomic written by every
//! core would pass its line from core to core on each of them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes of a counter (threads beyond this many share them).
const STRIPES: usize = 8;

/// One stripe, alone on its cache lines.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Stripe(AtomicU64);

/// A counter summed over per-thread stripes.
#[derive(Debug, Default)]
pub(crate) struct Striped([Stripe; STRIPES]);

/// The next thread's stripe.
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe, given at its first count.
    static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

impl Striped {
    /// Adds one.
    pub(crate) fn increment(&self) {
        let i = MINE.with(|m| *m);
        self.0[i].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The sum of every stripe.
    pub(crate) fn load(&self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_from_every_thread_add_up() {
        let c = Arc::new(Striped::default());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.increment()))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.load(), 12_000);
    }
}
