//! Outcome counters that scale with threads.
//!
//! One shared `AtomicU64` per counter would bounce its cache line between cores on every
//! call; instead each thread adds to one of a few cache-padded stripes and a snapshot sums
//! them. Writes stay core-local, reads (status, metrics) are rare.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

const STRIPES: usize = 8;

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
    stripes: [Stripe; STRIPES],
}

/// Totals since the breaker was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub successes: u64,
    pub failures: u64,
    pub ignored: u64,
    pub rejected: u64,
}

fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
    }
    INDEX.with(|i| *i)
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            stripes: Default::default(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, count: Count) {
        // Relaxed: counters order nothing else; a snapshot may be a moment behind.
        self.stripes[stripe_index()].0[count as usize].fetch_add(1, Relaxed);
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
