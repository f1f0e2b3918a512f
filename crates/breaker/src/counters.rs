//! Outcome counters that cost no atomic read-modify-write on the hot path.
//!
//! A shared `AtomicU64` per counter would bounce its cache line between cores on every
//! call, and even uncontended a `lock xadd` costs more than the rest of the closed path.
//! Instead each thread claims a stripe of its own for its lifetime, process-wide, and adds
//! to it with a plain load and store: the thread is that stripe's only writer, so nothing
//! is lost. A snapshot sums the stripes. Threads beyond the stripe count share one last
//! stripe with atomic adds.

use std::cell::Cell;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

/// Stripes per breaker: a power of two, so that masking an index proves it in bounds.
const STRIPES: usize = 64;
/// Threads that get a stripe of their own.
const OWNED: usize = STRIPES - 1;
/// The stripe shared, with atomic adds, by threads beyond `OWNED`.
const SHARED: usize = OWNED;

/// What a counter counts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    Success,
    Failure,
    Ignored,
    Rejected,
}

#[derive(Default)]
#[repr(align(128))] // two cache lines: adjacent-line prefetch would otherwise share them
struct Stripe([AtomicU64; 4]);

pub(crate) struct Counters {
    stripes: Box<[Stripe; STRIPES]>,
}

/// Totals since the breaker was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub successes: u64,
    pub failures: u64,
    pub ignored: u64,
    pub rejected: u64,
}

static CLAIMED: [AtomicBool; OWNED] = [const { AtomicBool::new(false) }; OWNED];

/// A thread's claim on a stripe index, given back when the thread exits.
struct Claim(Cell<usize>);

impl Claim {
    #[inline]
    fn index(&self) -> usize {
        let index = self.0.get();
        if index != usize::MAX {
            return index;
        }
        self.claim()
    }

    /// First count on this thread: find a free stripe.
    #[cold]
    #[inline(never)]
    fn claim(&self) -> usize {
        // Acquire pairs with the previous owner's release, so this thread continues
        // from the counts that owner left in the stripe.
        let claimed = CLAIMED
            .iter()
            .position(|c| c.compare_exchange(false, true, Acquire, Relaxed).is_ok())
            .unwrap_or(SHARED);
        self.0.set(claimed);
        claimed
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(flag) = CLAIMED.get(self.0.get()) {
            flag.store(false, Release);
        }
    }
}

thread_local! {
    static CLAIM: Claim = const { Claim(Cell::new(usize::MAX)) };
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            stripes: Box::new(std::array::from_fn(|_| Stripe::default())),
        }
    }

    #[inline]
    pub(crate) fn add(&self, count: Count) {
        // During thread teardown the claim may be gone: count on the shared stripe.
        let index = CLAIM.try_with(Claim::index).unwrap_or(SHARED);
        let cell = &self.stripes[index & (STRIPES - 1)].0[count as usize];
        if index == SHARED {
            cell.fetch_add(1, Relaxed);
        } else {
            // Sole writer: a plain load and store cannot lose an update. Relaxed: counters
            // order nothing else; a snapshot may be a moment behind.
            cell.store(cell.load(Relaxed) + 1, Relaxed);
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        let sum = |c: Count| {
            self.stripes
                .iter()
                .map(|s| s.0[c as usize].load(Relaxed))
                .sum()
        };
        Totals {
            successes: sum(Count::Success),
            failures: sum(Count::Failure),
            ignored: sum(Count::Ignored),
            rejected: sum(Count::Rejected),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_threads_that_come_and_go() {
        let counters = Counters::new();
        for _ in 0..3 {
            std::thread::scope(|s| {
                for _ in 0..(OWNED + 8) {
                    s.spawn(|| {
                        for _ in 0..100 {
                            counters.add(Count::Success);
                        }
                    });
                }
            });
        }
        assert_eq!(counters.totals().successes, 3 * (OWNED as u64 + 8) * 100);
    }
}
