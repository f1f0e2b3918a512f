//! When to open (trip policies) and for how long (backoff).

use std::time::Duration;

/// Decides, in the closed state, when failures are enough to open the circuit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TripPolicy {
    /// Open after this many failures in a row (pybreaker's `fail_max`).
    ConsecutiveFailures(u32),
    /// Open when the failure rate over a sliding window reaches `threshold`, once the
    /// window holds at least `min_calls` calls (resilience4j's sliding windows).
    FailureRate {
        /// Failure share in `(0, 1]` that opens the circuit.
        threshold: f64,
        /// The calls the rate is computed over.
        window: Window,
        /// Calls the window must hold before the rate counts.
        min_calls: u32,
    },
    /// Open on `failures` in a row, or when the failure rate over `window` reaches
    /// `threshold` once it holds `min_calls` calls, whichever comes first.
    ConsecutiveOrRate {
        /// Failures in a row that open the circuit.
        failures: u32,
        /// Failure share in `(0, 1]` that opens the circuit.
        threshold: f64,
        /// The calls the rate is computed over.
        window: Window,
        /// Calls the window must hold before the rate counts.
        min_calls: u32,
    },
}

impl TripPolicy {
    /// Open after `n` failures in a row.
    pub fn consecutive_failures(n: u32) -> Self {
        Self::ConsecutiveFailures(n)
    }

    /// Open when at least `threshold` of the calls in `window` failed, once the window
    /// holds `min_calls` calls.
    pub fn failure_rate(threshold: f64, window: Window, min_calls: u32) -> Self {
        Self::FailureRate {
            threshold,
            window,
            min_calls,
        }
    }
}

impl TripPolicy {
    /// Failures in a row that open the circuit, if this policy counts them.
    pub fn consecutive(&self) -> Option<u32> {
        match *self {
            Self::ConsecutiveFailures(n) | Self::ConsecutiveOrRate { failures: n, .. } => Some(n),
            Self::FailureRate { .. } => None,
        }
    }

    /// The failure-rate rule (threshold, window, minimum calls), if this policy has one.
    pub fn rate(&self) -> Option<(f64, Window, u32)> {
        match *self {
            Self::ConsecutiveFailures(_) => None,
            Self::FailureRate {
                threshold,
                window,
                min_calls,
            }
            | Self::ConsecutiveOrRate {
                threshold,
                window,
                min_calls,
                ..
            } => Some((threshold, window, min_calls)),
        }
    }
}

impl Default for TripPolicy {
    fn default() -> Self {
        Self::ConsecutiveFailures(5)
    }
}

/// A sliding window of recent calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The last `n` calls.
    Count(u32),
    /// The calls of the last period, kept in ten buckets of a tenth of it each: the window
    /// covers between nine and ten tenths of the period, as in resilience4j.
    Time(Duration),
}

/// How long the circuit stays open after each trip.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Backoff {
    /// Always the reset timeout.
    #[default]
    Constant,
    /// The first trip opens for the reset timeout; each later trip since the circuit last
    /// closed multiplies it by `multiplier`, capped at `max`, then shortened by a random
    /// share of up to `jitter` (0..=1, never below the reset timeout) so that replicas do
    /// not send their trials in lock-step.
    Exponential {
        /// Growth per trip (≥ 1).
        multiplier: f64,
        /// The longest open time.
        max: Duration,
        /// Share of the open time that may be randomly cut (0 = no jitter).
        jitter: f64,
    },
}

impl Backoff {
    /// Open time for the `trip`-th trip in a row (1-based); `unit` is a random number in
    /// `[0, 1)` used for the jitter.
    pub(crate) fn open_time(&self, reset_timeout: Duration, trip: u32, unit: f64) -> Duration {
        match *self {
            Self::Constant => reset_timeout,
            Self::Exponential {
                multiplier,
                max,
                jitter,
            } => {
                // The first trip opens for exactly the reset timeout; later ones grow.
                if trip <= 1 {
                    return reset_timeout;
                }
                let exponent = trip.saturating_sub(1).min(64) as i32;
                let grown = reset_timeout.as_secs_f64() * multiplier.powi(exponent);
                let capped = grown.min(max.as_secs_f64());
                // Never below the reset timeout, whatever the jitter.
                let jittered = (capped * (1.0 - jitter * unit)).max(reset_timeout.as_secs_f64());
                // `max` may be huge (Duration::MAX): saturate instead of panicking.
                Duration::try_from_secs_f64(jittered).unwrap_or(max)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_grows_and_caps() {
        let b = Backoff::Exponential {
            multiplier: 2.0,
            max: Duration::from_secs(10),
            jitter: 0.0,
        };
        let base = Duration::from_secs(1);
        let times: Vec<u64> = (1..=6)
            .map(|t| b.open_time(base, t, 0.5).as_secs())
            .collect();
        assert_eq!(times, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn jitter_only_shortens_within_its_share() {
        let b = Backoff::Exponential {
            multiplier: 1.0,
            max: Duration::from_secs(100),
            jitter: 0.25,
        };
        let base = Duration::from_secs(8);
        assert_eq!(
            b.open_time(base, 1, 0.5),
            base,
            "the first open time is exact"
        );
        assert_eq!(b.open_time(base, 2, 0.0), base);
        assert_eq!(
            b.open_time(base, 2, 0.5),
            base,
            "never below the reset timeout"
        );
        let grow = Backoff::Exponential {
            multiplier: 2.0,
            max: Duration::from_secs(100),
            jitter: 0.25,
        };
        assert_eq!(grow.open_time(base, 2, 0.5), Duration::from_secs(14));
        assert!(grow.open_time(base, 2, 0.999_999) > Duration::from_secs(12));
    }

    #[test]
    fn constant_backoff_is_the_reset_timeout() {
        let base = Duration::from_millis(1500);
        assert_eq!(Backoff::Constant.open_time(base, 9, 0.7), base);
    }
}
