//! Many threads on one breaker: the half-open permit limit and the counters hold under races.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use breaker::{CircuitBreaker, Clock, Event, Listener, Outcome, State, TripPolicy};

const THREADS: usize = 8;

#[test]
fn half_open_never_admits_more_trials_than_its_limit_under_races() {
    for max in [1u32, 3] {
        let (clock, hand) = Clock::manual();
        let breaker = CircuitBreaker::builder("race")
            .trip_policy(TripPolicy::consecutive_failures(1))
            .reset_timeout(Duration::from_secs(1))
            .half_open_max_calls(max)
            .clock(clock)
            .build()
            .expect("valid");
        breaker
            .try_acquire()
            .expect("closed")
            .record(Outcome::Failure);
        hand.advance(Duration::from_secs(1));

        let held = AtomicU32::new(0);
        let peak = AtomicU32::new(0);
        let admitted = AtomicU64::new(0);
        let start = Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (breaker, held, peak, admitted, start) =
                    (&breaker, &held, &peak, &admitted, &start);
                s.spawn(move || {
                    start.wait();
                    for i in 0..20_000 {
                        let Ok(permit) = breaker.try_acquire() else {
                            continue;
                        };
                        let now = held.fetch_add(1, SeqCst) + 1;
                        peak.fetch_max(now, SeqCst);
                        admitted.fetch_add(1, SeqCst);
                        std::hint::spin_loop();
                        held.fetch_sub(1, SeqCst);
                        // Ignored trials and cancellations keep the circuit half-open.
                        if (i + t) % 2 == 0 {
                            permit.record(Outcome::Ignored);
                        } else {
                            drop(permit);
                        }
                    }
                });
            }
        });
        assert!(
            peak.load(SeqCst) <= max,
            "peak {} > limit {max}",
            peak.load(SeqCst)
        );
        assert!(admitted.load(SeqCst) > 0);
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(breaker.status().half_open_in_flight, 0, "no permit leaked");
        breaker
            .try_acquire()
            .expect("a trial is admitted")
            .record(Outcome::Success);
        assert_eq!(breaker.state(), State::Closed);
    }
}

#[test]
fn exactly_one_thread_turns_an_expired_open_circuit_half_open() {
    let (clock, hand) = Clock::manual();
    let breaker = CircuitBreaker::builder("race")
        .trip_policy(TripPolicy::consecutive_failures(1))
        .clock(clock)
        .build()
        .expect("valid");
    breaker
        .try_acquire()
        .expect("closed")
        .record(Outcome::Failure);
    hand.advance(Duration::from_secs(60));
    let start = Barrier::new(THREADS);
    let permits: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    breaker.try_acquire_owned().ok()
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    assert_eq!(permits.len(), 1);
    assert_eq!(breaker.status().rejected, THREADS as u64 - 1);
}

#[test]
fn counters_add_up_across_threads() {
    let breaker = CircuitBreaker::builder("count")
        .trip_policy(TripPolicy::consecutive_failures(1_000_000))
        .build()
        .expect("valid");
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let breaker = &breaker;
            s.spawn(move || {
                for i in 0..25_000u64 {
                    let outcome = match (i + t) % 4 {
                        0 => Outcome::Failure,
                        1 => Outcome::Ignored,
                        _ => Outcome::Success,
                    };
                    breaker.try_acquire().expect("closed").record(outcome);
                }
            });
        }
    });
    let s = breaker.status();
    assert_eq!(
        (s.calls, s.successes, s.failures, s.ignored),
        (100_000, 50_000, 25_000, 25_000)
    );
    assert_eq!(breaker.state(), State::Closed);
}

struct CountTrips(AtomicU32);

impl Listener for CountTrips {
    fn on_event(&self, _: &str, event: &Event) {
        if let Event::StateChanged { .. } = event {
            self.0.fetch_add(1, SeqCst);
        }
    }
}

#[test]
fn concurrent_failures_trip_exactly_once() {
    let trips = Arc::new(CountTrips(AtomicU32::new(0)));
    let breaker = CircuitBreaker::builder("trip")
        .trip_policy(TripPolicy::consecutive_failures(50))
        .listener(trips.clone())
        .build()
        .expect("valid");
    let start = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let (breaker, start) = (&breaker, &start);
            s.spawn(move || {
                start.wait();
                for _ in 0..100 {
                    if let Ok(p) = breaker.try_acquire() {
                        p.record(Outcome::Failure);
                    }
                }
            });
        }
    });
    let s = breaker.status();
    assert_eq!(s.state, State::Open);
    assert_eq!(trips.0.load(SeqCst), 1, "one transition: closed → open");
    // Failures admitted before the trip may still land in the same closed generation.
    assert!(s.consecutive_failures >= 50);
    assert_eq!(s.calls + s.rejected, (THREADS * 100) as u64);
}

#[test]
fn a_run_held_back_by_calls_in_flight_is_decided_once_they_finish() {
    // Threads hold calls across failures and finish them in any order, on a moving clock.
    // Once every call has finished nothing is undecided: a closed circuit must hold fewer
    // failures in a row than the threshold.
    let mut closed_with_failures = 0;
    for round in 0..40u64 {
        let (clock, hand) = Clock::manual();
        let breaker = CircuitBreaker::builder("runs")
            .trip_policy(TripPolicy::consecutive_failures(4))
            .reset_timeout(Duration::from_secs(3600))
            .clock(clock)
            .build()
            .expect("valid");
        let start = Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS as u64 {
                let (breaker, hand, start) = (&breaker, &hand, &start);
                s.spawn(move || {
                    start.wait();
                    let mut held = Vec::new();
                    for i in 0..2_000u64 {
                        let x = (i * 7 + t * 13 + round) % 23;
                        if x == 0 {
                            hand.advance(Duration::from_micros(1));
                        }
                        if let Ok(permit) = breaker.try_acquire() {
                            held.push(permit);
                        }
                        if held.len() > (x % 4) as usize {
                            let permit = held.swap_remove(0);
                            match x % 7 {
                                0..=2 => permit.record(Outcome::Success),
                                6 => drop(permit),
                                _ => permit.record(Outcome::Failure),
                            }
                        }
                    }
                    // The last ones are cancelled: they end no run, and leave nothing in
                    // flight to hold one back.
                    drop(held);
                });
            }
        });
        let status = breaker.status();
        if status.state == State::Closed {
            assert!(status.consecutive_failures < 4, "round {round}: {status:?}");
            closed_with_failures += u32::from(status.consecutive_failures > 0);
        }
    }
    eprintln!("{closed_with_failures} of 40 rounds ended closed inside a run");
}
