//! The current run of failures on a closed circuit, in admission order.
//!
//! "Consecutive" means consecutive in the order calls were admitted, not the order they
//! finished: with many calls in flight the two differ, and completion order either lets a
//! stale success hide an outage (the calls in flight when it began still succeed) or lets
//! isolated failures pile up (every success in flight was admitted before some failure).
//!
//! - A success ends the run only if its call was admitted no earlier than the run's
//!   earliest-admitted failure.
//! - A run long enough to trip does so only when no call admitted between its earliest-
//!   and latest-admitted failures is still in flight: such a call may yet succeed, and then
//!   the failures were not consecutive (5 % of calls failing at once while the rest take
//!   seconds must not trip). Calls are tracked only while a run is under way, so a healthy
//!   circuit pays nothing; the few admitted between the first failure's admission and the
//!   run's start are not, which errs toward tripping.
//!
//! Admissions and successes are lock-free: a tracked call holds a slot of a fixed table
//! (its admission stamp), found by compare-and-swap; when all [`SLOTS`] are taken a call
//! goes untracked, which again errs toward tripping. Failures take a mutex (they are the
//! slow path), so that the run's start and bounds move together with its count.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Calls a run can track at once; the default adaptive in-flight bound's largest bound
/// (1,000) fits.
pub(crate) const SLOTS: usize = 1024;

pub(crate) struct Run {
    /// Admission stamp of the run's earliest-admitted failing call.
    since: AtomicU64,
    /// Admission stamp of the run's latest-admitted failing call.
    until: AtomicU64,
    /// Held by failures while they join the run.
    failures: Mutex<()>,
    /// Admission stamp + 1 of each tracked call still in flight; 0 is a free slot. Emptied
    /// when the circuit closes, so calls of an earlier generation (which may share a tick
    /// with this one's) do not hold up its runs.
    slots: Box<[AtomicU64]>,
    /// Where the next search for a free slot begins.
    cursor: AtomicUsize,
}

impl Default for Run {
    fn default() -> Self {
        Self {
            since: AtomicU64::new(0),
            until: AtomicU64::new(0),
            failures: Mutex::new(()),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            cursor: AtomicUsize::new(0),
        }
    }
}

impl Run {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A failing call admitted at `stamp` joins the run (`first`: it starts one). Called
    /// with the lock held, before the count that includes it is published.
    pub(crate) fn failed(&self, _held: &MutexGuard<'_, ()>, stamp: u64, first: bool) {
        if first {
            self.since.store(stamp, SeqCst);
            self.until.store(stamp, SeqCst);
        } else {
            self.since.fetch_min(stamp, SeqCst);
            self.until.fetch_max(stamp, SeqCst);
        }
    }

    /// Whether a success of a call admitted at `stamp` ends the run.
    pub(crate) fn ended_by(&self, stamp: u64) -> bool {
        stamp >= self.since.load(Relaxed)
    }

    /// A call admitted at `stamp` during a run: the slot it holds, or `None` when every
    /// slot is taken.
    pub(crate) fn track(&self, stamp: u64) -> Option<usize> {
        let start = self.cursor.fetch_add(1, Relaxed);
        (0..SLOTS).map(|i| (start + i) % SLOTS).find(|&slot| {
            self.slots[slot]
                .compare_exchange(0, stamp + 1, SeqCst, Relaxed)
                .is_ok()
        })
    }

    /// The tracked call admitted at `stamp` into `slot` finished. Its slot may have been
    /// emptied and taken again since; then it is not this call's to free.
    pub(crate) fn untrack(&self, slot: usize, stamp: u64) {
        // SeqCst, as are the loads of `undecided`: two calls that finish at once must not
        // each miss the other's leaving, or neither would trip the run.
        let _ = self.slots[slot].compare_exchange(stamp + 1, 0, SeqCst, Relaxed);
    }

    /// Forgets every tracked call: the circuit closed afresh (a new generation).
    pub(crate) fn clear(&self) {
        for slot in &self.slots {
            slot.store(0, SeqCst);
        }
    }

    /// Whether a call admitted within the run's span is still in flight. Reads without the
    /// lock: a failure that widens the span meanwhile decides again itself.
    pub(crate) fn undecided(&self) -> bool {
        let (since, until) = (self.since.load(SeqCst), self.until.load(SeqCst));
        since <= until
            && self.slots.iter().any(|slot| {
                let held = slot.load(SeqCst);
                held != 0 && (since..=until).contains(&(held - 1))
            })
    }
}
