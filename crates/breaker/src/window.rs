//! Lock-free sliding windows for the failure-rate policy.
//!
//! Recording is a handful of atomic operations, so the closed-state path takes no lock
//! with either policy. Under concurrent recording a rate may be off by the calls in flight
//! at a bucket's rollover; a trip decision does not need more precision than that.

use std::sync::atomic::{
    AtomicU8, AtomicU32, AtomicU64,
    Ordering::{AcqRel, Relaxed},
};

use crate::policy::Window;

/// Calls and failures currently in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub calls: u32,
    pub failures: u32,
}

impl Tally {
    pub(crate) fn rate(self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            f64::from(self.failures) / f64::from(self.calls)
        }
    }
}

pub(crate) enum SlidingWindow {
    Count(CountWindow),
    Time(TimeWindow),
}

impl SlidingWindow {
    pub(crate) fn new(window: Window) -> Self {
        match window {
            Window::Count(n) => Self::Count(CountWindow::new(n)),
            Window::Time(period) => Self::Time(TimeWindow::new(period.as_nanos() as u64)),
        }
    }

    pub(crate) fn record(&self, now: u64, failed: bool) {
        match self {
            Self::Count(w) => w.record(failed),
            Self::Time(w) => w.record(now, failed),
        }
    }

    pub(crate) fn tally(&self, now: u64) -> Tally {
        match self {
            Self::Count(w) => w.tally(),
            Self::Time(w) => w.tally(now),
        }
    }

    pub(crate) fn clear(&self) {
        match self {
            Self::Count(w) => w.clear(),
            Self::Time(w) => w.clear(),
        }
    }
}

const EMPTY: u8 = 0;
const OK: u8 = 1;
const FAILED: u8 = 2;

/// A ring of the last `n` outcomes with running totals.
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
}

impl CountWindow {
    fn new(n: u32) -> Self {
        Self {
            slots: (0..n.max(1)).map(|_| AtomicU8::new(EMPTY)).collect(),
            next: AtomicU64::new(0),
            calls: AtomicU32::new(0),
            failures: AtomicU32::new(0),
        }
    }

    fn record(&self, failed: bool) {
        let i = (self.next.fetch_add(1, Relaxed) % self.slots.len() as u64) as usize;
        let new = if failed { FAILED } else { OK };
        // The swap makes each slot's change atomic, so the running totals always move by
        // exactly what the ring gained and lost.
        let old = self.slots[i].swap(new, AcqRel);
        if old == EMPTY {
            self.calls.fetch_add(1, Relaxed);
        }
        match (old == FAILED, failed) {
            (false, true) => {
                self.failures.fetch_add(1, Relaxed);
            }
            (true, false) => {
                // Saturating: a `clear` between the swap and here already zeroed it.
                let _ = self
                    .failures
                    .fetch_update(Relaxed, Relaxed, |f| Some(f.saturating_sub(1)));
            }
            _ => {}
        }
    }

    fn tally(&self) -> Tally {
        // A record racing a `clear` can leave a total one off; clamp to what the ring holds.
        let calls = self.calls.load(Relaxed).min(self.slots.len() as u32);
        Tally {
            calls,
            failures: self.failures.load(Relaxed).min(calls),
        }
    }

    fn clear(&self) {
        for slot in self.slots.iter() {
            slot.store(EMPTY, Relaxed);
        }
        self.next.store(0, Relaxed);
        self.calls.store(0, Relaxed);
        self.failures.store(0, Relaxed);
    }
}

const BUCKETS: u64 = 10;

struct Bucket {
    /// Which bucket-width period of the clock this bucket holds; `u64::MAX` = none yet.
    epoch: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
}

/// Ten buckets of a tenth of the period each, reused round-robin as time moves on.
pub(crate) struct TimeWindow {
    width: u64,
    buckets: Box<[Bucket]>,
}

impl TimeWindow {
    fn new(period_nanos: u64) -> Self {
        Self {
            width: (period_nanos / BUCKETS).max(1),
            buckets: (0..BUCKETS)
                .map(|_| Bucket {
                    epoch: AtomicU64::new(u64::MAX),
                    calls: AtomicU32::new(0),
                    failures: AtomicU32::new(0),
                })
                .collect(),
        }
    }

    fn record(&self, now: u64, failed: bool) {
        let epoch = now / self.width;
        let bucket = &self.buckets[(epoch % BUCKETS) as usize];
        let seen = bucket.epoch.load(Relaxed);
        if seen != epoch
            && bucket
                .epoch
                .compare_exchange(seen, epoch, AcqRel, Relaxed)
                .is_ok()
        {
            // This thread claimed the bucket for the new period: empty it first.
            bucket.calls.store(0, Relaxed);
            bucket.failures.store(0, Relaxed);
        }
        bucket.calls.fetch_add(1, Relaxed);
        if failed {
            bucket.failures.fetch_add(1, Relaxed);
        }
    }

    fn tally(&self, now: u64) -> Tally {
        let current = now / self.width;
        let mut tally = Tally::default();
        for bucket in self.buckets.iter() {
            let epoch = bucket.epoch.load(Relaxed);
            if epoch <= current && current - epoch < BUCKETS {
                tally.calls += bucket.calls.load(Relaxed);
                tally.failures += bucket.failures.load(Relaxed);
            }
        }
        tally
    }

    fn clear(&self) {
        for bucket in self.buckets.iter() {
            bucket.epoch.store(u64::MAX, Relaxed);
            bucket.calls.store(0, Relaxed);
            bucket.failures.store(0, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn count_window_keeps_only_the_last_n() {
        let w = SlidingWindow::new(Window::Count(4));
        for failed in [true, true, false, false, false, false] {
            w.record(0, failed);
        }
        assert_eq!(
            w.tally(0),
            Tally {
                calls: 4,
                failures: 0
            }
        );
    }

    #[test]
    fn time_window_forgets_calls_older_than_the_period() {
        let w = SlidingWindow::new(Window::Time(Duration::from_secs(10)));
        let s = 1_000_000_000;
        w.record(0, true);
        w.record(5 * s, false);
        assert_eq!(w.tally(9 * s).calls, 2);
        // At 10 s the first bucket (0..1 s) has left the window.
        assert_eq!(
            w.tally(10 * s),
            Tally {
                calls: 1,
                failures: 0
            }
        );
        w.record(10 * s, true);
        assert_eq!(w.tally(10 * s).failures, 1);
    }

    #[test]
    fn clear_empties_the_window() {
        let w = SlidingWindow::new(Window::Count(3));
        w.record(0, true);
        w.clear();
        assert_eq!(w.tally(0), Tally::default());
    }
}
