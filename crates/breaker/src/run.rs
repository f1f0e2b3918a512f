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
//! Failures take the mutex (they are the slow path); a success reads `since` lock-free.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Default)]
pub(crate) struct Run {
    /// Admission stamp of the run's earliest-admitted failing call.
    since: AtomicU64,
    span: Mutex<Span>,
}

#[derive(Default)]
pub(crate) struct Span {
    /// Admission stamp of the run's latest-admitted failing call.
    until: u64,
    /// Calls admitted while a run was under way and still in flight:
    /// (generation, admission stamp) → how many.
    in_flight: BTreeMap<(u64, u64), u32>,
}

impl Run {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Span> {
        self.span.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A failing call admitted at `stamp` joins the run (`first`: it starts one). Called
    /// with the lock held, before the count that includes it is published.
    pub(crate) fn failed(&self, span: &mut Span, stamp: u64, first: bool) {
        if first {
            self.since.store(stamp, Relaxed);
            span.until = stamp;
        } else {
            self.since.fetch_min(stamp, Relaxed);
            span.until = span.until.max(stamp);
        }
    }

    /// Whether a success of a call admitted at `stamp` ends the run.
    pub(crate) fn ended_by(&self, stamp: u64) -> bool {
        stamp >= self.since.load(Relaxed)
    }

    /// A call admitted during a run, in generation `generation`.
    pub(crate) fn track(&self, generation: u64, stamp: u64) {
        *self
            .lock()
            .in_flight
            .entry((generation, stamp))
            .or_default() += 1;
    }

    /// A tracked call finished.
    pub(crate) fn untrack(&self, generation: u64, stamp: u64) {
        let mut span = self.lock();
        if let Some(n) = span.in_flight.get_mut(&(generation, stamp)) {
            *n -= 1;
            if *n == 0 {
                span.in_flight.remove(&(generation, stamp));
            }
        }
    }

    /// Whether a call admitted within the run's span is still in flight.
    pub(crate) fn undecided(&self, span: &Span, generation: u64) -> bool {
        let since = self.since.load(Relaxed);
        since <= span.until
            && span
                .in_flight
                .range((generation, since)..=(generation, span.until))
                .next()
                .is_some()
    }
}
