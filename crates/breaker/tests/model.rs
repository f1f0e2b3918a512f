//! Property test: random outcomes and clock steps drive the breaker and a plain reference
//! model side by side; their states, admissions and retry times must agree at every step.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use breaker::{CircuitBreaker, Clock, Outcome, Permit, State, TripPolicy, Window};
use proptest::prelude::*;

const RESET_MS: u64 = 1_000;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Acquire and finish at once.
    Call(Outcome),
    /// Acquire and hold the permit (a call in flight).
    Begin,
    /// Finish the oldest held call.
    Finish(Outcome),
    /// Drop the oldest held call unfinished (cancellation).
    Cancel,
    Advance(u64),
    ForceOpen,
    Disable,
    Reset,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Success),
        4 => Just(Outcome::Failure),
        1 => Just(Outcome::Ignored),
        1 => (1u64..5_000).prop_map(|ms| Outcome::RetryAfter(Duration::from_millis(ms))),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => outcome().prop_map(Op::Call),
        2 => Just(Op::Begin),
        2 => outcome().prop_map(Op::Finish),
        1 => Just(Op::Cancel),
        4 => (0u64..1_500).prop_map(Op::Advance),
        1 => prop_oneof![Just(Op::ForceOpen), Just(Op::Disable), Just(Op::Reset)],
    ]
}

#[derive(Clone, Copy, Debug)]
enum ModelPolicy {
    Consecutive(u32),
    CountRate {
        threshold: f64,
        size: usize,
        min: u32,
    },
    TimeRate {
        threshold: f64,
        period_ms: u64,
        min: u32,
    },
}

fn policy() -> impl Strategy<Value = ModelPolicy> {
    prop_oneof![
        (1u32..6).prop_map(ModelPolicy::Consecutive),
        (0.2f64..1.0, 1usize..8, 1u32..6).prop_map(|(threshold, size, min)| {
            ModelPolicy::CountRate {
                threshold,
                size,
                min,
            }
        }),
        (0.2f64..1.0, 100u64..3_000, 1u32..6).prop_map(|(threshold, period_ms, min)| {
            ModelPolicy::TimeRate {
                threshold,
                period_ms,
                min,
            }
        }),
    ]
}

/// The reference: the contract written as plainly as possible, one field per fact.
struct Model {
    policy: ModelPolicy,
    half_open_max: u32,
    success_threshold: u32,
    max_hint_ms: u64,
    now_ms: u64,
    state: State,
    generation: u64,
    consecutive: u32,
    /// When the earliest-admitted failing call of the current run was admitted: a success
    /// resets `consecutive` only if its call was admitted no earlier (admission order).
    run_since_ms: u64,
    /// When the latest-admitted failing call of the run was admitted.
    run_until_ms: u64,
    /// Calls admitted while a run was under way, still in flight: (generation, admitted).
    /// A long enough run trips only when none of them lies within its span.
    pending: Vec<(u64, u64)>,
    open_until_ms: u64,
    in_flight: u32,
    trial_successes: u32,
    ring: VecDeque<bool>,
    /// Time window: bucket index (time / width) → (calls, failures).
    buckets: BTreeMap<u64, (u32, u32)>,
}

#[derive(Clone, Copy, Debug)]
struct ModelTicket {
    generation: u64,
    admitted_ms: u64,
    tracked: bool,
    trial: bool,
    passthrough: bool,
}

impl Model {
    fn admit(&mut self) -> Result<ModelTicket, Option<u64>> {
        let ticket = |m: &mut Self, trial: bool| {
            let tracked = !trial
                && m.state == State::Closed
                && m.consecutive > 0
                && matches!(m.policy, ModelPolicy::Consecutive(_));
            if tracked {
                m.pending.push((m.generation, m.now_ms));
            }
            ModelTicket {
                generation: m.generation,
                admitted_ms: m.now_ms,
                tracked,
                trial,
                passthrough: m.state == State::Disabled,
            }
        };
        match self.state {
            State::Closed | State::Disabled => Ok(ticket(self, false)),
            State::ForcedOpen => Err(None),
            State::Open if self.now_ms < self.open_until_ms => {
                Err(Some(self.open_until_ms - self.now_ms))
            }
            State::Open => {
                self.enter(State::HalfOpen);
                self.in_flight = 1;
                Ok(ticket(self, true))
            }
            State::HalfOpen if self.in_flight >= self.half_open_max => Err(Some(0)),
            State::HalfOpen => {
                self.in_flight += 1;
                Ok(ticket(self, true))
            }
        }
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.generation += 1;
        self.in_flight = 0;
        self.trial_successes = 0;
        if state != State::Open && state != State::HalfOpen {
            self.consecutive = 0;
            self.ring.clear();
            self.buckets.clear();
        }
    }

    fn open(&mut self, outcome: Outcome) {
        let hint = match outcome {
            Outcome::RetryAfter(d) => (d.as_millis() as u64).min(self.max_hint_ms),
            _ => 0,
        };
        self.enter(State::Open);
        self.open_until_ms = self.now_ms + RESET_MS.max(hint);
    }

    fn finish(&mut self, ticket: ModelTicket, outcome: Outcome) {
        if ticket.tracked {
            let at = self
                .pending
                .iter()
                .position(|&p| p == (ticket.generation, ticket.admitted_ms))
                .expect("a tracked call is pending");
            self.pending.swap_remove(at);
        }
        if ticket.passthrough || ticket.generation != self.generation {
            return;
        }
        let failed = matches!(outcome, Outcome::Failure | Outcome::RetryAfter(_));
        if ticket.trial {
            match outcome {
                Outcome::Ignored => self.in_flight -= 1,
                _ if failed => self.open(outcome),
                _ => {
                    self.in_flight -= 1;
                    self.trial_successes += 1;
                    if self.trial_successes >= self.success_threshold {
                        self.enter(State::Closed);
                    }
                }
            }
            return;
        }
        if failed {
            if self.consecutive == 0 {
                (self.run_since_ms, self.run_until_ms) = (ticket.admitted_ms, ticket.admitted_ms);
            } else {
                self.run_since_ms = self.run_since_ms.min(ticket.admitted_ms);
                self.run_until_ms = self.run_until_ms.max(ticket.admitted_ms);
            }
            self.consecutive += 1;
        } else if outcome != Outcome::Ignored && ticket.admitted_ms >= self.run_since_ms {
            self.consecutive = 0;
        }
        let (since, until, generation) = (self.run_since_ms, self.run_until_ms, self.generation);
        let undecided = self
            .pending
            .iter()
            .any(|&(g, at)| g == generation && (since..=until).contains(&at));
        if outcome == Outcome::Ignored {
            // Counts nothing, but a tracked call that finished may decide a held-back run.
            if let ModelPolicy::Consecutive(n) = self.policy
                && ticket.tracked
                && self.consecutive >= n
                && !undecided
            {
                self.open(Outcome::Failure);
            }
            return;
        }
        let trips = match self.policy {
            ModelPolicy::Consecutive(n) => {
                (failed || ticket.tracked) && self.consecutive >= n && !undecided
            }
            ModelPolicy::CountRate {
                threshold,
                size,
                min,
            } => {
                self.ring.push_back(failed);
                if self.ring.len() > size {
                    self.ring.pop_front();
                }
                let fails = self.ring.iter().filter(|f| **f).count() as f64;
                failed
                    && self.ring.len() as u32 >= min
                    && fails / self.ring.len() as f64 >= threshold
            }
            ModelPolicy::TimeRate {
                threshold,
                period_ms,
                min,
            } => {
                // The breaker's buckets are a tenth of the period, in nanoseconds.
                let width_ns = period_ms * 1_000_000 / 10;
                let bucket = self.now_ms * 1_000_000 / width_ns;
                let entry = self.buckets.entry(bucket).or_default();
                entry.0 += 1;
                entry.1 += u32::from(failed);
                let live = self.buckets.range(bucket.saturating_sub(9)..=bucket);
                let (calls, fails) = live.fold((0, 0), |(c, f), (_, (bc, bf))| (c + bc, f + bf));
                failed && calls >= min && f64::from(fails) / f64::from(calls) >= threshold
            }
        };
        if trips {
            self.open(outcome);
        }
    }
}

fn build(
    policy: ModelPolicy,
    half_open_max: u32,
    success_threshold: u32,
    clock: Clock,
) -> CircuitBreaker {
    let trip = match policy {
        ModelPolicy::Consecutive(n) => TripPolicy::consecutive_failures(n),
        ModelPolicy::CountRate {
            threshold,
            size,
            min,
        } => TripPolicy::failure_rate(threshold, Window::Count(size as u32), min),
        ModelPolicy::TimeRate {
            threshold,
            period_ms,
            min,
        } => TripPolicy::failure_rate(
            threshold,
            Window::Time(Duration::from_millis(period_ms)),
            min,
        ),
    };
    CircuitBreaker::builder("model")
        .trip_policy(trip)
        .reset_timeout(Duration::from_millis(RESET_MS))
        .half_open_max_calls(half_open_max)
        .success_threshold(success_threshold)
        .max_retry_hint(Duration::from_millis(3_000))
        .clock(clock)
        .build()
        .expect("valid settings")
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Integration tests have no lib.rs beside them to keep regressions in.
        failure_persistence: None,
        // More with PROPTEST_CASES=30000 (as run for the note).
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn breaker_agrees_with_the_reference_model(
        policy in policy(),
        half_open_max in 1u32..4,
        success_threshold in 1u32..4,
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let (clock, hand) = Clock::manual();
        let breaker = build(policy, half_open_max, success_threshold, clock);
        let mut model = Model {
            policy, half_open_max, success_threshold, max_hint_ms: 3_000, now_ms: 0,
            state: State::Closed, generation: 0, consecutive: 0, run_since_ms: 0, run_until_ms: 0, pending: Vec::new(), open_until_ms: 0,
            in_flight: 0, trial_successes: 0, ring: VecDeque::new(), buckets: BTreeMap::new(),
        };
        let mut held: VecDeque<(Permit<'_>, ModelTicket)> = VecDeque::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Call(outcome) => match (breaker.try_acquire(), model.admit()) {
                    (Ok(permit), Ok(ticket)) => {
                        permit.record(outcome);
                        model.finish(ticket, outcome);
                    }
                    (Err(r), Err(wait)) => {
                        prop_assert_eq!(r.retry_after.map(|d| d.as_millis() as u64), wait, "step {}", step);
                    }
                    (real, _) => prop_assert!(false, "step {}: admission differs: breaker {:?}", step, real.is_ok()),
                },
                Op::Begin => match (breaker.try_acquire(), model.admit()) {
                    (Ok(permit), Ok(ticket)) => held.push_back((permit, ticket)),
                    (Err(_), Err(_)) => {}
                    (real, _) => prop_assert!(false, "step {}: admission differs: breaker {:?}", step, real.is_ok()),
                },
                Op::Finish(outcome) => {
                    if let Some((permit, ticket)) = held.pop_front() {
                        permit.record(outcome);
                        model.finish(ticket, outcome);
                    }
                }
                Op::Cancel => {
                    if let Some((permit, ticket)) = held.pop_front() {
                        drop(permit);
                        model.finish(ticket, Outcome::Ignored);
                    }
                }
                Op::Advance(ms) => {
                    hand.advance(Duration::from_millis(ms));
                    model.now_ms += ms;
                }
                Op::ForceOpen => { breaker.force_open(); model.enter(State::ForcedOpen); }
                Op::Disable => { breaker.disable(); model.enter(State::Disabled); }
                Op::Reset => { breaker.reset(); model.enter(State::Closed); }
            }
            prop_assert_eq!(breaker.state(), model.state, "step {}: {:?}", step, op);
            let status = breaker.status();
            if model.state == State::Closed {
                prop_assert_eq!(status.consecutive_failures, model.consecutive, "step {}", step);
            }
            if model.state == State::HalfOpen {
                prop_assert_eq!(status.half_open_in_flight, model.in_flight, "step {}", step);
            }
        }
    }
}
