//! The bound on calls in flight: fixed and adaptive, on the manual clock, and under threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use breaker::{
    Adaptive, CircuitBreaker, Clock, InFlightLimit, ManualClock, Outcome, Permit, State, TripPolicy,
};

fn breaker(limit: InFlightLimit) -> (CircuitBreaker, ManualClock) {
    let (clock, hand) = Clock::manual();
    let b = CircuitBreaker::builder("llm")
        .trip_policy(TripPolicy::consecutive_failures(5))
        .max_in_flight(limit)
        .clock(clock)
        .build()
        .expect("valid");
    (b, hand)
}

#[test]
fn a_fixed_bound_sheds_beyond_it_without_counting_failures() {
    let (b, _) = breaker(InFlightLimit::Fixed(3));
    let held: Vec<_> = (0..3).map(|_| b.try_acquire().expect("within")).collect();
    for _ in 0..10 {
        let shed = b.try_acquire().err().expect("beyond the bound");
        assert!(shed.is_shed());
        assert_eq!(shed.state, State::Closed);
    }
    let status = b.status();
    assert_eq!(
        (status.state, status.failures, status.rejected),
        (State::Closed, 0, 10)
    );
    let limit = status.in_flight_limit.expect("a bound");
    assert_eq!(
        (limit.mode, limit.limit, limit.in_flight, limit.shed),
        ("fixed", 3, 3, 10)
    );
    let mut held = held.into_iter();
    held.next().expect("one").record(Outcome::Failure);
    b.try_acquire()
        .expect("a place is free again")
        .record(Outcome::Success);
    drop(held); // cancelled calls give their places back too
    assert_eq!(b.status().in_flight_limit.expect("a bound").in_flight, 0);
}

#[test]
fn a_call_that_began_answering_gives_its_place_back_once() {
    let (b, _) = breaker(InFlightLimit::Fixed(1));
    let mut streaming = b.try_acquire_owned().expect("within");
    assert!(b.try_acquire().err().expect("beyond").is_shed());
    streaming.responded();
    streaming.responded();
    let next = b.try_acquire_owned().expect("the place is free again");
    // The outcome of the first call comes later and frees nothing twice.
    streaming.record(Outcome::Success);
    assert!(
        b.try_acquire()
            .err()
            .expect("the second call holds it")
            .is_shed()
    );
    next.record(Outcome::Success);
    let status = b.status();
    assert_eq!((status.successes, status.failures), (2, 0));
    assert_eq!(status.in_flight_limit.expect("a bound").in_flight, 0);
}

#[test]
fn trial_calls_take_no_place_in_the_bound() {
    let (b, hand) = breaker(InFlightLimit::Fixed(2));
    let stuck = b.try_acquire().expect("within"); // from before the trip, never answers
    for _ in 0..5 {
        b.try_acquire().expect("room").record(Outcome::Failure);
    }
    assert_eq!(b.state(), State::Open);
    hand.advance(Duration::from_secs(60));
    let trial = b.try_acquire().expect("the trial");
    assert_eq!(b.state(), State::HalfOpen);
    let places = b.status().in_flight_limit.expect("a bound").in_flight;
    assert_eq!(places, 1, "only the stuck call holds a place");
    trial.record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
    drop(stuck);
}

/// Steady traffic: `rate` calls per second answered after `latency`, for `seconds`.
fn steady(b: &CircuitBreaker, hand: &ManualClock, rate: u32, latency: Duration, seconds: u32) {
    let step = Duration::from_secs(1) / rate;
    let per_latency = (latency.as_nanos() / step.as_nanos()) as usize;
    let mut flying: std::collections::VecDeque<Permit<'_>> = Default::default();
    for _ in 0..rate * seconds {
        flying.push_back(b.try_acquire().expect("a healthy upstream is never shed"));
        if flying.len() > per_latency {
            flying.pop_front().expect("one").record(Outcome::Success);
        }
        hand.advance(step);
    }
    // The last calls finish on time too.
    while let Some(p) = flying.pop_front() {
        hand.advance(step);
        p.record(Outcome::Success);
    }
}

#[test]
fn an_adaptive_bound_never_sheds_a_healthy_upstream_even_when_load_jumps() {
    let (b, hand) = breaker(InFlightLimit::Adaptive(Adaptive::default()));
    steady(&b, &hand, 10, Duration::from_millis(500), 5);
    // Twenty times the load, at once: nothing is late, so nothing is shed.
    steady(&b, &hand, 200, Duration::from_millis(500), 5);
    assert_eq!(b.status().rejected, 0);
    let limit = b.status().in_flight_limit.expect("a bound");
    assert_eq!(limit.mode, "auto");
    assert!(limit.usual_latency_seconds.expect("learnt") >= 0.5);
}

#[test]
fn an_adaptive_bound_holds_a_hung_upstream_to_a_handful_of_calls() {
    let (b, hand) = breaker(InFlightLimit::Adaptive(Adaptive::default()));
    steady(&b, &hand, 50, Duration::from_millis(500), 5);
    // The upstream hangs: nothing completes; calls keep arriving at 50/s for 2 s.
    let mut hung = Vec::new();
    let mut admitted_at = Vec::new();
    for i in 0..100u32 {
        if let Ok(p) = b.try_acquire() {
            hung.push(p);
            admitted_at.push(i);
        }
        hand.advance(Duration::from_millis(20));
    }
    let status = b.status();
    let limit = status.in_flight_limit.expect("a bound");
    eprintln!(
        "hang at 50 req/s, 500 ms usual latency: {} calls admitted in 2 s, the last at {} ms; \
         bound now {}",
        hung.len(),
        admitted_at.last().copied().unwrap_or(0) * 20,
        limit.limit
    );
    // Once a call is 1.25 usual latencies old (~0.65 s), the bound falls to the floor.
    assert!(
        hung.len() <= 40,
        "{} calls reached the hung upstream",
        hung.len()
    );
    assert_eq!(limit.limit, Adaptive::default().floor);
    assert_eq!(status.rejected, 100 - hung.len() as u64);
    assert_eq!(status.state, State::Closed, "shedding is not failing");
}

#[test]
fn a_late_call_on_a_busy_healthy_upstream_does_not_cause_shedding() {
    let (b, hand) = breaker(InFlightLimit::Adaptive(Adaptive::default()));
    steady(&b, &hand, 50, Duration::from_millis(500), 3);
    // One call takes far longer than usual while the rest keep flowing.
    let slow = b.try_acquire().expect("admitted");
    steady(&b, &hand, 50, Duration::from_millis(500), 3);
    slow.record(Outcome::Success);
    assert_eq!(b.status().rejected, 0);
}

#[test]
fn a_bound_holds_under_many_threads() {
    for limit in [
        InFlightLimit::Fixed(5),
        InFlightLimit::Adaptive(Adaptive {
            floor: 3,
            max: 7,
            ..Adaptive::default()
        }),
    ] {
        let b = CircuitBreaker::builder("stress")
            .trip_policy(TripPolicy::consecutive_failures(1_000_000))
            .max_in_flight(limit)
            .build()
            .expect("valid");
        let (inside, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        std::thread::scope(|s| {
            for t in 0..8 {
                let (b, inside, most) = (b.clone(), Arc::clone(&inside), Arc::clone(&most));
                s.spawn(move || {
                    for i in 0..5_000u32 {
                        let Ok(permit) = b.try_acquire() else {
                            continue;
                        };
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        for _ in 0..64 {
                            std::hint::spin_loop();
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                        match (i + t) % 3 {
                            0 => permit.record(Outcome::Success),
                            1 => permit.record(Outcome::Failure),
                            _ => drop(permit),
                        }
                    }
                });
            }
        });
        let max = match limit {
            InFlightLimit::Fixed(n) => n,
            _ => 7,
        };
        assert!(most.load(Ordering::SeqCst) <= max, "{limit:?}");
        assert_eq!(b.status().in_flight_limit.expect("a bound").in_flight, 0);
        let s = b.status();
        assert_eq!(s.calls + s.rejected, 8 * 5_000);
    }
}

#[test]
fn invalid_bounds_are_refused() {
    for limit in [
        InFlightLimit::Fixed(0),
        InFlightLimit::Adaptive(Adaptive {
            floor: 0,
            ..Adaptive::default()
        }),
        InFlightLimit::Adaptive(Adaptive {
            stall_factor: 0.5,
            ..Adaptive::default()
        }),
    ] {
        let err = CircuitBreaker::builder("x")
            .max_in_flight(limit)
            .build()
            .expect_err("refused");
        assert_eq!(err.setting, "max_in_flight");
    }
}

#[tokio::test(start_paused = true)]
async fn waiters_hear_of_a_stall_when_the_bound_tightens() {
    let (b, hand) = breaker(InFlightLimit::Adaptive(Adaptive::default()));
    steady(&b, &hand, 50, Duration::from_millis(500), 3);
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.stalled().await }
    });
    tokio::task::yield_now().await;
    let mut hung = Vec::new();
    let mut heard_at = None;
    for step in 0..100u32 {
        if let Ok(p) = b.try_acquire() {
            hung.push(p);
        }
        tokio::task::yield_now().await;
        if heard_at.is_none() && waiter.is_finished() {
            heard_at = Some(step);
        }
        hand.advance(Duration::from_millis(20));
    }
    let heard_at = heard_at.expect("the stall was announced");
    let admitted = hung.len() as u32;
    // Announced at the admission that found the calls late, the one the bound first shed.
    assert_eq!(
        heard_at, admitted,
        "heard at step {heard_at}, {admitted} admitted"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(10), b.stalled())
            .await
            .is_err(),
        "a stall is announced once, not to later waiters"
    );
}
