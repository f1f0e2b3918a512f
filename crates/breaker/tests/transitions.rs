//! Every transition and option of the state machine, on a hand-driven clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breaker::{
    Backoff, Builder, CircuitBreaker, Clock, Event, Listener, ManualClock, Outcome, State,
    Transition, TripPolicy, Window,
};

const RESET: Duration = Duration::from_secs(60);

fn breaker(configure: impl FnOnce(Builder) -> Builder) -> (CircuitBreaker, ManualClock) {
    let (clock, hand) = Clock::manual();
    let builder = CircuitBreaker::builder("test")
        .reset_timeout(RESET)
        .clock(clock);
    (configure(builder).build().expect("valid settings"), hand)
}

fn record(b: &CircuitBreaker, outcome: Outcome) {
    b.try_acquire().expect("admitted").record(outcome);
}

fn fail_times(b: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        record(b, Outcome::Failure);
    }
}

#[test]
fn starts_closed_and_lets_calls_through() {
    let (b, _) = breaker(|b| b);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.call_sync(|| Ok::<_, ()>(7)).expect("closed"), 7);
}

#[test]
fn opens_after_threshold_consecutive_failures() {
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(3)));
    fail_times(&b, 2);
    assert_eq!(b.state(), State::Closed);
    fail_times(&b, 1);
    assert_eq!(b.state(), State::Open);
    let status = b.status();
    assert_eq!(status.consecutive_failures, 3);
    assert_eq!(status.last_transition, Some("consecutive_failures"));
    assert!(status.opened_at.is_some());
}

#[test]
fn default_policy_is_five_consecutive_failures() {
    let (b, _) = breaker(|b| b);
    fail_times(&b, 4);
    assert_eq!(b.state(), State::Closed);
    fail_times(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(3)));
    fail_times(&b, 2);
    record(&b, Outcome::Success);
    fail_times(&b, 2);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.status().consecutive_failures, 2);
}

#[test]
fn a_success_admitted_before_every_failure_of_the_run_does_not_reset_the_count() {
    // Calls in flight when an outage starts may still succeed after it began.
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(3)));
    let early = b.try_acquire().expect("admitted before the failures");
    hand.advance(Duration::from_millis(10));
    fail_times(&b, 2);
    early.record(Outcome::Success);
    assert_eq!(b.status().consecutive_failures, 2, "stale success ignored");
    fail_times(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_success_admitted_after_a_failing_call_ends_the_run_even_when_it_finishes_later() {
    // Steady load: the failing call and the success were both in flight; the success was
    // admitted later, so in admission order the failures are not consecutive.
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(3)));
    let failing = b.try_acquire().expect("closed");
    hand.advance(Duration::from_millis(10));
    let later = b.try_acquire().expect("closed");
    hand.advance(Duration::from_millis(10));
    failing.record(Outcome::Failure);
    fail_times(&b, 1);
    assert_eq!(b.status().consecutive_failures, 2);
    later.record(Outcome::Success);
    assert_eq!(b.status().consecutive_failures, 0);
}

#[test]
fn a_run_with_more_calls_in_flight_than_it_tracks_is_still_decided() {
    // The run keeps a fixed table of the calls in flight within it (1,024); past that,
    // calls go untracked. The run still waits for the tracked ones, then trips.
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(2)));
    record(&b, Outcome::Failure);
    let held: Vec<_> = (0..1_500)
        .map(|_| b.try_acquire_owned().expect("closed"))
        .collect();
    record(&b, Outcome::Failure);
    let run = b.failure_run().expect("a run");
    assert_eq!((run.failures, run.settled), (2, false));
    assert_eq!(
        b.state(),
        State::Closed,
        "calls within the run may still succeed"
    );
    drop(held); // cancelled: they end no run
    assert_eq!(b.state(), State::Open);
    // Every slot was given back: the next closed period tracks its calls again.
    b.reset();
    record(&b, Outcome::Failure);
    let within = b.try_acquire().expect("closed");
    record(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Closed);
    within.record(Outcome::Success);
    assert_eq!(
        b.status().consecutive_failures,
        0,
        "a success within the run ends it"
    );
}

#[test]
fn a_success_admitted_after_the_failures_resets_the_count() {
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(3)));
    fail_times(&b, 2);
    let late = b.try_acquire().expect("admitted after the failures");
    late.record(Outcome::Success);
    assert_eq!(b.status().consecutive_failures, 0);
}

#[test]
fn ignored_outcomes_neither_trip_nor_reset() {
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(3)));
    fail_times(&b, 2);
    for _ in 0..10 {
        record(&b, Outcome::Ignored);
    }
    assert_eq!(b.status().consecutive_failures, 2, "ignored must not reset");
    fail_times(&b, 1);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.status().ignored, 10);
}

#[test]
fn open_rejects_at_once_with_the_time_until_the_trial() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(1)));
    fail_times(&b, 1);
    hand.advance(Duration::from_secs(15));
    let rejected = b.try_acquire().err().expect("open rejects");
    assert_eq!(rejected.state, State::Open);
    assert_eq!(rejected.retry_after, Some(Duration::from_secs(45)));
    let mut ran = false;
    let r = b.call_sync(|| {
        ran = true;
        Ok::<_, ()>(())
    });
    assert!(r.is_err() && !ran, "the call must not run while open");
    assert_eq!(b.status().rejected, 2);
    assert_eq!(b.status().retry_after_seconds, Some(45.0));
}

#[test]
fn after_the_reset_timeout_one_trial_goes_through() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(1)));
    fail_times(&b, 1);
    hand.advance(RESET - Duration::from_nanos(1));
    assert!(b.try_acquire().is_err());
    hand.advance(Duration::from_nanos(1));
    let trial = b.try_acquire().expect("trial admitted");
    assert_eq!(b.state(), State::HalfOpen);
    let other = b.try_acquire().err().expect("second trial rejected");
    assert_eq!(other.state, State::HalfOpen);
    assert_eq!(other.retry_after, Some(Duration::ZERO));
    drop(trial);
}

#[test]
fn a_successful_trial_closes_the_circuit() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(1)));
    fail_times(&b, 1);
    hand.advance(RESET);
    record(&b, Outcome::Success);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.status().consecutive_failures, 0);
    assert_eq!(b.status().opened_at, None);
}

#[test]
fn a_failed_trial_reopens_for_another_reset_timeout() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(1)));
    fail_times(&b, 1);
    hand.advance(RESET);
    record(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    let rejected = b.try_acquire().err().expect("reopened");
    assert_eq!(rejected.retry_after, Some(RESET));
    assert_eq!(b.status().last_transition, Some("trial_failed"));
}

#[test]
fn success_threshold_needs_that_many_trial_successes() {
    let (b, hand) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(1))
            .success_threshold(3)
    });
    fail_times(&b, 1);
    hand.advance(RESET);
    record(&b, Outcome::Success);
    record(&b, Outcome::Success);
    assert_eq!(b.state(), State::HalfOpen);
    record(&b, Outcome::Success);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn half_open_max_calls_limits_concurrent_trials() {
    let (b, hand) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(1))
            .half_open_max_calls(2)
            .success_threshold(2)
    });
    fail_times(&b, 1);
    hand.advance(RESET);
    let first = b.try_acquire().expect("first trial");
    let second = b.try_acquire().expect("second trial");
    assert!(b.try_acquire().is_err(), "a third trial exceeds the limit");
    assert_eq!(b.status().half_open_in_flight, 2);
    first.record(Outcome::Success);
    let third = b.try_acquire().expect("a finished trial frees its place");
    second.record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
    third.record(Outcome::Success); // late trial of the old generation: no effect
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn an_ignored_trial_releases_its_permit_without_closing() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(1)));
    fail_times(&b, 1);
    hand.advance(RESET);
    record(&b, Outcome::Ignored);
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "an excluded error proves nothing"
    );
    record(&b, Outcome::Success);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_dropped_trial_permit_releases_its_place() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(1)));
    fail_times(&b, 1);
    hand.advance(RESET);
    let trial = b.try_acquire().expect("trial");
    drop(trial);
    assert_eq!(b.state(), State::HalfOpen);
    assert!(
        b.try_acquire().is_ok(),
        "the place of a dropped trial is free again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_trial_future_cannot_leave_the_circuit_stuck_half_open() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(1)));
    fail_times(&b, 1);
    hand.advance(RESET);
    // The trial hangs; the caller gives up on it (drops the future) after 1 s.
    let hung = b.call(std::future::pending::<Result<(), ()>>());
    let gave_up = tokio::time::timeout(Duration::from_secs(1), hung).await;
    assert!(gave_up.is_err());
    assert_eq!(b.state(), State::HalfOpen);
    let next = b.call(async { Ok::<_, ()>("recovered") }).await;
    assert_eq!(next.expect("a new trial is admitted"), "recovered");
    assert_eq!(b.state(), State::Closed);
}

/// Runs `call` on the runtime, moving the manual clock a second at a time until it is done;
/// returns its output and the time that had to pass.
async fn on_the_clock<T: Send + 'static>(
    hand: &ManualClock,
    call: impl std::future::Future<Output = T> + Send + 'static,
) -> (T, Duration) {
    let task = tokio::spawn(call);
    let mut waited = Duration::ZERO;
    tokio::task::yield_now().await;
    while !task.is_finished() {
        hand.advance(Duration::from_secs(1));
        waited += Duration::from_secs(1);
        tokio::task::yield_now().await;
    }
    (task.await.expect("the call does not panic"), waited)
}

#[tokio::test]
async fn a_call_times_out_on_the_breakers_clock_as_a_failure_and_releases_its_trial_permit() {
    let (b, hand) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(2))
            .call_timeout(Duration::from_secs(30))
    });
    let hung = |b: &CircuitBreaker| {
        let b = b.clone();
        async move { b.call(std::future::pending::<Result<(), ()>>()).await }
    };
    for _ in 0..2 {
        let (r, waited) = on_the_clock(&hand, hung(&b)).await;
        assert!(matches!(r, Err(breaker::CallError::Timeout(d)) if d == Duration::from_secs(30)));
        assert_eq!(
            waited,
            Duration::from_secs(30),
            "the manual clock drives the deadline"
        );
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.status().failures, 2);
    hand.advance(RESET);
    let (r, _) = on_the_clock(&hand, hung(&b)).await;
    assert!(matches!(r, Err(breaker::CallError::Timeout(_))));
    assert_eq!(b.state(), State::Open, "a timed-out trial reopens");
}

#[tokio::test]
async fn a_call_that_answers_in_time_on_the_breakers_clock_succeeds() {
    let (b, hand) = breaker(|b| b.call_timeout(Duration::from_secs(30)));
    let clock = b.clock().clone();
    let slow = {
        let b = b.clone();
        async move {
            b.call(async move {
                clock.sleep(Duration::from_secs(29)).await;
                Ok::<_, ()>("answer")
            })
            .await
        }
    };
    let (r, waited) = on_the_clock(&hand, slow).await;
    assert_eq!(r.expect("in time"), "answer");
    assert_eq!(waited, Duration::from_secs(29));
    assert_eq!(b.status().successes, 1);
}

#[test]
fn a_late_failure_from_before_a_trip_does_not_move_the_new_state() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(2)));
    let slow = b.try_acquire().expect("admitted while closed");
    fail_times(&b, 2);
    hand.advance(RESET);
    record(&b, Outcome::Success); // trial closes the circuit again
    assert_eq!(b.state(), State::Closed);
    slow.record(Outcome::Failure);
    assert_eq!(b.status().consecutive_failures, 0, "stale outcome dropped");
}

#[test]
fn a_late_success_from_before_a_trip_does_not_close_the_circuit() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(1)));
    let slow = b.try_acquire().expect("admitted while closed");
    fail_times(&b, 1);
    hand.advance(RESET);
    let trial = b.try_acquire().expect("trial");
    slow.record(Outcome::Success);
    assert_eq!(b.state(), State::HalfOpen);
    trial.record(Outcome::Failure);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_slow_success_counts_as_a_failure() {
    let (b, hand) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(1))
            .slow_call_threshold(Duration::from_secs(2))
    });
    let permit = b.try_acquire().expect("admitted");
    hand.advance(Duration::from_secs(2));
    permit.record(Outcome::Success);
    assert_eq!(b.state(), State::Closed, "at the threshold is not slow");
    let permit = b.try_acquire().expect("admitted");
    hand.advance(Duration::from_millis(2001));
    permit.record(Outcome::Success);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn failure_rate_over_a_count_window_trips_once_min_calls_are_seen() {
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::failure_rate(0.5, Window::Count(10), 4)));
    fail_times(&b, 3);
    assert_eq!(b.state(), State::Closed, "3 calls < min_calls");
    record(&b, Outcome::Success);
    record(&b, Outcome::Success);
    assert_eq!(b.state(), State::Closed, "successes never trip");
    fail_times(&b, 1); // 4 failures of 6 calls
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.status().last_transition, Some("failure_rate"));
    assert_eq!(b.status().fail_threshold, None);
}

#[test]
fn failure_rate_count_window_forgets_old_calls() {
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::failure_rate(0.5, Window::Count(4), 4)));
    fail_times(&b, 1);
    for _ in 0..4 {
        record(&b, Outcome::Success);
    }
    fail_times(&b, 1); // window: S S S F
    assert_eq!(b.state(), State::Closed);
    fail_times(&b, 1); // window: S S F F = 50 %
    assert_eq!(b.state(), State::Open);
}

#[test]
fn failure_rate_time_window_drops_calls_older_than_the_period() {
    let (b, hand) = breaker(|b| {
        b.trip_policy(TripPolicy::failure_rate(
            0.6,
            Window::Time(Duration::from_secs(10)),
            3,
        ))
    });
    fail_times(&b, 2);
    record(&b, Outcome::Success);
    hand.advance(Duration::from_secs(11));
    fail_times(&b, 1);
    assert_eq!(b.state(), State::Closed, "the old calls left the window");
    fail_times(&b, 1);
    record(&b, Outcome::Success);
    assert_eq!(
        b.state(),
        State::Closed,
        "a success never trips, even at a rate above the threshold"
    );
    fail_times(&b, 1); // 3 failures of 4 calls
    assert_eq!(b.state(), State::Open);
}

#[test]
fn exponential_backoff_lengthens_each_consecutive_open() {
    let (b, hand) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(1))
            .reset_timeout(Duration::from_secs(10))
            .backoff(Backoff::Exponential {
                multiplier: 2.0,
                max: Duration::from_secs(35),
                jitter: 0.0,
            })
    });
    let mut open_times = Vec::new();
    fail_times(&b, 1);
    for _ in 0..4 {
        let wait = b
            .try_acquire()
            .err()
            .and_then(|r| r.retry_after)
            .expect("open");
        open_times.push(wait.as_secs());
        hand.advance(wait);
        record(&b, Outcome::Failure); // trial fails
    }
    assert_eq!(open_times, [10, 20, 35, 35]);
    let wait = b
        .try_acquire()
        .err()
        .and_then(|r| r.retry_after)
        .expect("open");
    hand.advance(wait);
    record(&b, Outcome::Success);
    fail_times(&b, 1);
    let wait = b
        .try_acquire()
        .err()
        .and_then(|r| r.retry_after)
        .expect("open");
    assert_eq!(wait, Duration::from_secs(10), "closing resets the backoff");
}

#[test]
fn jittered_backoff_stays_within_its_share() {
    let (b, hand) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(1))
            .reset_timeout(Duration::from_secs(100))
            .backoff(Backoff::Exponential {
                multiplier: 1.0,
                max: Duration::from_secs(100),
                jitter: 0.2,
            })
    });
    fail_times(&b, 1);
    for _ in 0..20 {
        let wait = b
            .try_acquire()
            .err()
            .and_then(|r| r.retry_after)
            .expect("open");
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(100));
        hand.advance(wait);
        record(&b, Outcome::Failure);
    }
}

#[test]
fn an_upstream_retry_hint_lengthens_the_open_time_up_to_the_cap() {
    let (b, hand) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(1))
            .max_retry_hint(Duration::from_secs(120))
    });
    record(&b, Outcome::RetryAfter(Duration::from_secs(90)));
    let wait = b
        .try_acquire()
        .err()
        .and_then(|r| r.retry_after)
        .expect("open");
    assert_eq!(wait, Duration::from_secs(90));
    hand.advance(wait);
    record(&b, Outcome::RetryAfter(Duration::from_secs(3600)));
    let wait = b
        .try_acquire()
        .err()
        .and_then(|r| r.retry_after)
        .expect("open");
    assert_eq!(wait, Duration::from_secs(120), "capped");
    hand.advance(wait);
    record(&b, Outcome::RetryAfter(Duration::from_secs(1)));
    let wait = b
        .try_acquire()
        .err()
        .and_then(|r| r.retry_after)
        .expect("open");
    assert_eq!(wait, RESET, "a hint never shortens the open time");
}

#[test]
fn forced_open_rejects_everything_until_reset() {
    let (b, hand) = breaker(|b| b);
    b.force_open();
    hand.advance(RESET * 10);
    let rejected = b.try_acquire().err().expect("forced open");
    assert_eq!(rejected.state, State::ForcedOpen);
    assert_eq!(rejected.retry_after, None);
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert!(b.try_acquire().is_ok());
}

#[test]
fn disabled_lets_everything_through_and_still_counts() {
    let (b, _) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(1))
            .enabled(false)
    });
    assert_eq!(b.state(), State::Disabled);
    fail_times(&b, 10);
    assert_eq!(b.state(), State::Disabled);
    assert_eq!(b.status().failures, 10);
    b.reset();
    fail_times(&b, 1);
    assert_eq!(b.state(), State::Open);
    b.disable();
    assert!(b.try_acquire().is_ok());
}

#[test]
fn reset_forgets_failures() {
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(3)));
    fail_times(&b, 2);
    b.reset();
    fail_times(&b, 2);
    assert_eq!(b.state(), State::Closed);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, Event)>>);

impl Listener for Recorder {
    fn on_event(&self, breaker: &str, event: &Event) {
        self.0
            .lock()
            .expect("not poisoned")
            .push((breaker.to_owned(), *event));
    }
}

#[test]
fn listeners_hear_every_event_with_the_trip_reason() {
    let recorder = Arc::new(Recorder::default());
    let (b, hand) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(1))
            .listener(recorder.clone())
    });
    record(&b, Outcome::Success);
    record(&b, Outcome::Ignored);
    record(&b, Outcome::Failure);
    let _ = b.try_acquire().err();
    hand.advance(RESET);
    record(&b, Outcome::Success);
    let events: Vec<Event> = recorder
        .0
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(name, e)| {
            assert_eq!(name, "test");
            *e
        })
        .collect();
    use State::*;
    assert_eq!(
        events,
        [
            Event::Success,
            Event::Ignored,
            Event::Failure,
            Event::StateChanged {
                from: Closed,
                to: Open,
                reason: Transition::ConsecutiveFailures(1)
            },
            Event::Rejected { state: Open },
            Event::StateChanged {
                from: Open,
                to: HalfOpen,
                reason: Transition::ResetTimeoutElapsed
            },
            Event::Success,
            Event::StateChanged {
                from: HalfOpen,
                to: Closed,
                reason: Transition::TrialsSucceeded
            },
        ]
    );
}

/// A listener that calls back into the breaker: deadlocks if events fire under a lock.
struct Reentrant(Mutex<Option<CircuitBreaker>>);

impl Listener for Reentrant {
    fn on_event(&self, _: &str, event: &Event) {
        if let Event::StateChanged { .. } = event {
            if let Some(b) = self.0.lock().expect("not poisoned").as_ref() {
                let _ = b.status();
            }
        }
    }
}

#[test]
fn listeners_are_called_outside_the_breakers_lock() {
    let listener = Arc::new(Reentrant(Mutex::new(None)));
    let (b, _) = breaker(|b| {
        b.trip_policy(TripPolicy::consecutive_failures(1))
            .listener(listener.clone())
    });
    *listener.0.lock().expect("not poisoned") = Some(b.clone());
    fail_times(&b, 1);
    assert_eq!(b.state(), State::Open);
    listener.0.lock().expect("not poisoned").take();
}

#[test]
fn status_counts_calls_by_outcome() {
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(2)));
    record(&b, Outcome::Success);
    record(&b, Outcome::Ignored);
    fail_times(&b, 2);
    let _ = b.try_acquire().err();
    let s = b.status();
    assert_eq!(
        (s.calls, s.successes, s.failures, s.ignored, s.rejected),
        (4, 1, 2, 1, 1)
    );
    assert_eq!(s.name, "test");
    assert_eq!(s.fail_threshold, Some(2));
    assert_eq!(s.reset_timeout_seconds, 60.0);
}

#[test]
fn invalid_settings_are_refused_naming_the_setting() {
    let cases: Vec<(Builder, &str)> = vec![
        (
            CircuitBreaker::builder("x").trip_policy(TripPolicy::consecutive_failures(0)),
            "trip_policy",
        ),
        (
            CircuitBreaker::builder("x").trip_policy(TripPolicy::failure_rate(
                1.5,
                Window::Count(10),
                1,
            )),
            "trip_policy",
        ),
        (
            CircuitBreaker::builder("x").trip_policy(TripPolicy::failure_rate(
                0.5,
                Window::Count(0),
                1,
            )),
            "trip_policy",
        ),
        (
            CircuitBreaker::builder("x").half_open_max_calls(0),
            "half_open_max_calls",
        ),
        (
            CircuitBreaker::builder("x").success_threshold(0),
            "success_threshold",
        ),
        (
            CircuitBreaker::builder("x").call_timeout(Duration::ZERO),
            "call_timeout",
        ),
        (CircuitBreaker::builder(""), "name"),
    ];
    for (builder, setting) in cases {
        let err = builder.build().expect_err("invalid");
        assert_eq!(err.setting, setting);
        assert!(err.to_string().contains(setting));
    }
}

#[test]
fn consecutive_or_rate_opens_on_whichever_comes_first() {
    let policy = TripPolicy::ConsecutiveOrRate {
        failures: 3,
        threshold: 0.5,
        window: Window::Count(10),
        min_calls: 6,
    };
    // Alternating outcomes never make three in a row, but reach half of six calls.
    let (b, _) = breaker(|b| b.trip_policy(policy));
    for _ in 0..3 {
        record(&b, Outcome::Success);
        record(&b, Outcome::Failure);
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.status().last_transition, Some("failure_rate"));
    // Three in a row open it before the window holds enough calls.
    let (b, _) = breaker(|b| b.trip_policy(policy));
    fail_times(&b, 3);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.status().last_transition, Some("consecutive_failures"));
    let s = b.status();
    assert_eq!(
        (s.fail_threshold, s.failure_rate_threshold),
        (Some(3), Some(0.5))
    );
    assert_eq!(
        (s.failure_rate_window_calls, s.failure_rate_min_calls),
        (Some(10), Some(6))
    );
}

#[test]
fn a_run_with_a_call_in_flight_inside_it_waits_for_that_call() {
    // Failures at once while calls admitted between them are still on their way: the run
    // is consecutive in admission order only if those calls fail too.
    for (last, opens) in [
        (Outcome::Success, false),
        (Outcome::Failure, true),
        (Outcome::Ignored, true),
    ] {
        let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(3)));
        record(&b, Outcome::Failure); // the run starts
        hand.advance(Duration::from_millis(10));
        let between = b.try_acquire().expect("admitted during the run");
        hand.advance(Duration::from_millis(10));
        fail_times(&b, 2);
        assert_eq!(
            b.state(),
            State::Closed,
            "{last:?}: undecided while it is in flight"
        );
        assert_eq!(b.status().consecutive_failures, 3);
        between.record(last);
        assert_eq!(b.state() == State::Open, opens, "{last:?}");
        if !opens {
            assert_eq!(
                b.status().consecutive_failures,
                0,
                "its success ends the run"
            );
        }
    }
}

#[test]
fn a_call_in_flight_admitted_after_the_run_does_not_hold_it_back() {
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(3)));
    fail_times(&b, 2);
    hand.advance(Duration::from_millis(10));
    let late_failure = b.try_acquire().expect("closed");
    hand.advance(Duration::from_millis(10));
    let after = b
        .try_acquire()
        .expect("admitted after every failure of the run");
    late_failure.record(Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    drop(after);
}

#[test]
fn a_shared_open_lasts_exactly_as_long_as_it_says_then_trials_as_usual() {
    let (b, hand) = breaker(|b| {
        b.backoff(Backoff::Exponential {
            multiplier: 2.0,
            max: RESET * 8,
            jitter: 0.0,
        })
    });
    let told = Duration::from_millis(12_345);
    b.open_shared(told);
    let rejected = b.try_acquire().err().expect("open");
    assert_eq!(
        rejected.retry_after,
        Some(told),
        "not the policy's open time"
    );
    assert_eq!(b.status().last_transition, Some("shared"));
    hand.advance(told);
    let trial = b.try_acquire_owned().expect("the trial");
    assert!(trial.is_trial());
    trial.record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
    assert!(!b.try_acquire_owned().expect("closed").is_trial());
}

#[test]
fn a_shared_close_ends_an_open_period_early() {
    let (b, _) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(1)));
    fail_times(&b, 1);
    assert_eq!(b.state(), State::Open);
    b.close_shared();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.status().last_transition, Some("shared"));
    // The close forgot the trips: the next trip opens for the base time again.
    fail_times(&b, 1);
    assert_eq!(
        b.try_acquire().err().and_then(|r| r.retry_after),
        Some(RESET)
    );
}

#[test]
fn a_failure_run_is_settled_once_no_call_admitted_within_it_is_in_flight() {
    use breaker::FailureRun;
    let run = |failures, settled| Some(FailureRun { failures, settled });
    let (b, hand) = breaker(|b| b.trip_policy(TripPolicy::consecutive_failures(5)));
    assert_eq!(b.failure_run(), None);
    record(&b, Outcome::Failure);
    assert_eq!(b.failure_run(), run(1, true));
    hand.advance(Duration::from_millis(5));
    let in_flight = b.try_acquire_owned().expect("closed");
    hand.advance(Duration::from_millis(5));
    record(&b, Outcome::Failure);
    assert_eq!(
        b.failure_run(),
        run(2, false),
        "a call admitted within it may yet succeed"
    );
    in_flight.record(Outcome::Failure);
    assert_eq!(b.failure_run(), run(3, true));
    hand.advance(Duration::from_millis(5));
    record(&b, Outcome::Success);
    assert_eq!(b.failure_run(), None);
}
