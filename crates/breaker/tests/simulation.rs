//! Simulated traffic on the manual clock: calls arrive at a fixed rate, each takes a
//! latency spread ±25 % around a mean, failures are drawn at random (seeded). The breaker
//! runs beside pybreaker's rule (every success resets the count) on the same calls.
//!
//! Two properties of "consecutive failures" under concurrency:
//! - steady load with isolated failures trips no more often than pybreaker's rule;
//! - calls in flight when an outage starts do not hold the circuit closed: the trip comes
//!   after `threshold` failed calls, where pybreaker's rule waits for them to drain.
//!
//! `cargo test -p breaker --test simulation -- --nocapture` prints the figures.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use breaker::{CircuitBreaker, Clock, ManualClock, Outcome, Permit, State, TripPolicy};

const THRESHOLD: u32 = 5;
const RESET: Duration = Duration::from_secs(60);

/// splitmix64: a seeded, dependency-free source of uniform numbers.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// pybreaker's counting, on the same calls: every success resets, `THRESHOLD` failures in
/// completion order open for the reset timeout, then one trial; outcomes of calls admitted
/// before a state change are dropped (as the breaker's generations do).
struct Pybreaker {
    reset: u64,
    count: u32,
    open_until: Option<u64>,
    trial_out: bool,
    generation: u64,
    trips: u32,
}

impl Pybreaker {
    fn new(reset: Duration) -> Self {
        Self {
            reset: reset.as_nanos() as u64,
            count: 0,
            open_until: None,
            trial_out: false,
            generation: 0,
            trips: 0,
        }
    }
    /// The generation a call is admitted in, or `None` when rejected.
    fn admit(&mut self, now: u64) -> Option<u64> {
        match self.open_until {
            None => Some(self.generation),
            Some(until) if now >= until && !self.trial_out => {
                self.trial_out = true;
                Some(self.generation)
            }
            Some(_) => None,
        }
    }
    fn record(&mut self, now: u64, generation: u64, failed: bool) {
        if generation != self.generation {
            return;
        }
        if self.open_until.is_some() {
            // The trial.
            self.generation += 1;
            self.trial_out = false;
            self.count = 0;
            self.open_until = failed.then_some(now + self.reset);
            return;
        }
        if !failed {
            self.count = 0;
            return;
        }
        self.count += 1;
        if self.count >= THRESHOLD {
            self.count = 0;
            self.trips += 1;
            self.generation += 1;
            self.open_until = Some(now + self.reset);
        }
    }
}

/// How the upstream answers a call that arrives at `t` (ns).
trait Upstream {
    /// (latency, failed) for one call.
    fn answer(&mut self, t: u64, rng: &mut Rng) -> (u64, bool);
}

/// Every call takes `latency` ±25 %; a share `p` fails, after a latency of its own:
/// `fail_latency` × the success latency (1 = as slow as a success, 0 = at once).
struct Steady {
    latency: Duration,
    p: f64,
    fail_latency: f64,
}

impl Upstream for Steady {
    fn answer(&mut self, _t: u64, rng: &mut Rng) -> (u64, bool) {
        let spread = self.latency.as_nanos() as f64 * (0.75 + 0.5 * rng.unit());
        let failed = rng.unit() < self.p;
        let latency = if failed {
            spread * self.fail_latency
        } else {
            spread
        };
        (latency as u64, failed)
    }
}

/// Healthy until `from`, then every call fails at once (a gateway's 503) until `until`.
struct Outage {
    healthy: Steady,
    from: u64,
    until: u64,
}

impl Upstream for Outage {
    fn answer(&mut self, t: u64, rng: &mut Rng) -> (u64, bool) {
        if (self.from..self.until).contains(&t) {
            (1_000_000, true)
        } else {
            self.healthy.answer(t, rng)
        }
    }
}

/// A call in flight: our permit (if we admitted it), pybreaker's generation (if it did),
/// and whether it will fail.
type Flight<'a> = (Option<Permit<'a>>, Option<u64>, bool);

struct Run {
    trips: u32,
    pybreaker_trips: u32,
    /// Upstream calls (ours) that arrived in the outage window, if any.
    calls_in_window: u32,
    pybreaker_calls_in_window: u32,
}

/// Drives `rate` calls per second for `seconds` through the breaker and pybreaker's rule.
fn simulate(
    rate: f64,
    seconds: u64,
    reset: Duration,
    upstream: &mut dyn Upstream,
    window: (u64, u64),
) -> Run {
    let (clock, hand): (Clock, ManualClock) = Clock::manual();
    let breaker = CircuitBreaker::builder("sim")
        .trip_policy(TripPolicy::consecutive_failures(THRESHOLD))
        .reset_timeout(reset)
        .clock(clock)
        .build()
        .expect("valid");
    let mut rng = Rng(0x5EED);
    let mut py = Pybreaker::new(reset);
    let step = (1e9 / rate) as u64;
    let end = seconds * 1_000_000_000;
    // Calls in flight, by completion time: (done at, sequence) → the permit and outcome.
    let mut heap: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut flights: Vec<Option<Flight<'_>>> = Vec::new();
    let (mut now, mut next_arrival) = (0u64, 0u64);
    let (mut trips, mut in_window, mut py_in_window) = (0u32, 0u32, 0u32);
    let mut last = State::Closed;
    while next_arrival < end || !heap.is_empty() {
        let next_done = heap.peek().map(|Reverse((t, _))| *t);
        let arrival_first = next_arrival < end && next_done.is_none_or(|d| next_arrival <= d);
        let t = if arrival_first {
            next_arrival
        } else {
            next_done.expect("a completion")
        };
        hand.advance(Duration::from_nanos(t - now));
        now = t;
        if arrival_first {
            next_arrival += step;
            let ours = breaker.try_acquire().ok();
            let theirs = py.admit(now);
            if ours.is_none() && theirs.is_none() {
                continue;
            }
            let (latency, failed) = upstream.answer(now, &mut rng);
            let counted = (window.0..window.1).contains(&now);
            in_window += u32::from(counted && ours.is_some());
            py_in_window += u32::from(counted && theirs.is_some());
            heap.push(Reverse((now + latency, flights.len() as u64)));
            flights.push(Some((ours, theirs, failed)));
        } else {
            let Reverse((_, id)) = heap.pop().expect("a completion");
            let (ours, theirs, failed) = flights[id as usize].take().expect("once");
            if let Some(permit) = ours {
                permit.record(if failed {
                    Outcome::Failure
                } else {
                    Outcome::Success
                });
            }
            if let Some(generation) = theirs {
                py.record(now, generation, failed);
            }
        }
        let state = breaker.state();
        if state == State::Open && last != State::Open {
            trips += 1;
        }
        last = state;
    }
    Run {
        trips,
        pybreaker_trips: py.trips,
        calls_in_window: in_window,
        pybreaker_calls_in_window: py_in_window,
    }
}

#[test]
fn steady_load_with_isolated_failures_trips_no_more_than_pybreaker() {
    // (req/s, latency, failure share, how long a failure takes against a success):
    // the first four loads false-tripped an earlier rule 48, 54, 49 and 2 times in an
    // hour; in the last four, failures come back at once (a proxy's 503) while successes
    // take seconds, so a failure's run only meets a success admitted after it one latency
    // later (41 and 57 trips an hour without the in-flight check: this test's
    // `fast_isolated_failures_under_load_are_reported` at commit 65a690e).
    let loads = [
        (20.0, 2_000, 0.05, 1.0),
        (100.0, 500, 0.05, 1.0),
        (50.0, 3_000, 0.02, 1.0),
        (20.0, 2_000, 0.01, 1.0),
        (20.0, 2_000, 0.01, 0.0),
        (100.0, 500, 0.01, 0.0),
        (20.0, 2_000, 0.05, 0.0),
        (100.0, 500, 0.05, 0.0),
    ];
    for (rate, ms, p, fail_latency) in loads {
        let mut upstream = Steady {
            latency: Duration::from_millis(ms),
            p,
            fail_latency,
        };
        let run = simulate(rate, 3_600, RESET, &mut upstream, (0, 0));
        let how = if fail_latency == 0.0 {
            "at once"
        } else {
            "as slow"
        };
        eprintln!(
            "{rate} req/s, {ms} ms, {p} failing {how}: trips in 1 h {} (pybreaker's rule {})",
            run.trips, run.pybreaker_trips
        );
        assert!(
            run.trips <= run.pybreaker_trips,
            "{rate} req/s, {ms} ms, {p} failing {how}: {} trips vs pybreaker {}",
            run.trips,
            run.pybreaker_trips
        );
    }
}

/// Healthy until `from`, then every call hangs until the caller's `timeout` fails it.
struct Hang {
    healthy: Steady,
    from: u64,
    timeout: u64,
}

impl Upstream for Hang {
    fn answer(&mut self, t: u64, rng: &mut Rng) -> (u64, bool) {
        if t >= self.from {
            (self.timeout, true)
        } else {
            self.healthy.answer(t, rng)
        }
    }
}

#[test]
fn a_hang_trips_with_the_fifth_timeout() {
    // 50 req/s, 500 ms answers, then a hang from t = 30 s; calls time out after 2 s. The
    // trip cannot come before the first timeouts: it must come with the fifth.
    let (from, timeout) = (30_000_000_000u64, 2_000_000_000u64);
    let mut upstream = Hang {
        healthy: Steady {
            latency: Duration::from_millis(500),
            p: 0.0,
            fail_latency: 1.0,
        },
        from,
        timeout,
    };
    // Calls admitted from the hang's start until a little after the fifth timed out.
    let after_fifth = from + timeout + 5 * 20_000_000;
    let run = simulate(50.0, 40, RESET, &mut upstream, (from, after_fifth));
    eprintln!(
        "hang: {} calls admitted from its start to just after the fifth timeout \
         (pybreaker's rule {})",
        run.calls_in_window, run.pybreaker_calls_in_window
    );
    assert_eq!(run.trips, 1);
    // Arrivals every 20 ms up to the fifth timeout at 2.08 s (105, the last at the same
    // instant): none after it.
    assert_eq!(run.calls_in_window, 105);
}

#[test]
fn calls_in_flight_when_an_outage_starts_do_not_delay_the_trip() {
    // 50 req/s, 2 s answers (100 calls in flight), then every call fails at once from
    // t = 30 s for 60 s; reset 10 s.
    let (from, until) = (30_000_000_000, 90_000_000_000);
    let mut upstream = Outage {
        healthy: Steady {
            latency: Duration::from_secs(2),
            p: 0.0,
            fail_latency: 1.0,
        },
        from,
        until,
    };
    let reset = Duration::from_secs(10);
    let run = simulate(50.0, 100, reset, &mut upstream, (from, until));
    let trials = (until - from) / reset.as_nanos() as u64;
    eprintln!(
        "60 s outage: {} upstream calls (pybreaker's rule {}); ≤ {} allowed",
        run.calls_in_window,
        run.pybreaker_calls_in_window,
        u64::from(THRESHOLD) + trials
    );
    assert!(u64::from(run.calls_in_window) <= u64::from(THRESHOLD) + trials);
    // The scenario is one where completion order lets old successes hold it closed.
    assert!(u64::from(run.pybreaker_calls_in_window) > u64::from(THRESHOLD) + trials);
}
