//! Per-thread stripes: a counter that threads add to without sharing a
//! cache line (the L1's hit count is written on every hit, and one atomic
//! written by every core would pass its line from core to core on each of
//! them), and each thread's stripe number, which also picks the replica
//! of the L1's map a thread reads ([`super::store`]).

use std::cell::Cell;
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

/// [`MINE`] before its thread's first use.
const UNNUMBERED: usize = usize::MAX;

thread_local! {
    /// This thread's number, given at its first use (threads take turns).
    /// (Initialized by a constant: each read is one load, no lazy-init
    /// check; this runs on every hit.)
    static MINE: Cell<usize> = const { Cell::new(UNNUMBERED) };
}

/// This thread's number: threads that use the L1 are numbered in turn.
pub(crate) fn thread_number() -> usize {
    MINE.with(|m| {
        let n = m.get();
        if n != UNNUMBERED {
            return n;
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed) & (UNNUMBERED >> 1);
        m.set(n);
        n
    })
}

impl Striped {
    /// Adds one.
    pub(crate) fn increment(&self) {
        let i = thread_number() % STRIPES;
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
