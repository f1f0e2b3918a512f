//! A serialisable snapshot of a breaker, for health endpoints and logs.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::limit::LimitStatus;
use crate::policy::{Backoff, Window};
use crate::state::{Machine, State};

/// A breaker's state and counters at one moment.
///
/// Serialises to the JSON the health endpoint serves:
///
/// ```
/// let breaker = breaker::CircuitBreaker::builder("chat").build().expect("valid");
/// let json = serde_json::to_value(breaker.status()).expect("serialisable");
/// assert_eq!(json["state"], "closed");
/// assert_eq!(json["fail_threshold"], 5);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// The breaker's name.
    pub name: String,
    /// The current state.
    pub state: State,
    /// Failures in a row (closed), or the count that last tripped it (open, half-open).
    pub consecutive_failures: u32,
    /// Failures in a row that open the circuit (`None` with a failure-rate policy).
    pub fail_threshold: Option<u32>,
    /// Failure share that opens the circuit (`None` with a consecutive-failures policy).
    pub failure_rate_threshold: Option<f64>,
    /// The failure-rate window: its length in seconds (time window) ...
    pub failure_rate_window_seconds: Option<f64>,
    /// ... or the calls it holds (count window).
    pub failure_rate_window_calls: Option<u32>,
    /// Calls the window must hold before the rate counts.
    pub failure_rate_min_calls: Option<u32>,
    /// The base open time, in seconds.
    pub reset_timeout_seconds: f64,
    /// The longest open time repeated trips grow to (= the reset timeout when fixed).
    pub max_reset_timeout_seconds: f64,
    /// Trial calls allowed at once while half-open.
    pub half_open_max_calls: u32,
    /// Trial successes that close the circuit.
    pub success_threshold: u32,
    /// A success slower than this counts as a failure, in seconds.
    pub slow_call_seconds: Option<f64>,
    /// The per-call deadline, in seconds.
    pub call_timeout_seconds: Option<f64>,
    /// The bound on calls in flight, when there is one.
    pub in_flight_limit: Option<LimitStatus>,
    /// When the circuit last opened (RFC 3339, UTC), while it is open or half-open.
    pub opened_at: Option<String>,
    /// Seconds until the next trial call: open = time left, half-open = 0, otherwise none.
    pub retry_after_seconds: Option<f64>,
    /// Trial calls under way (half-open).
    pub half_open_in_flight: u32,
    /// Why the state last changed (`consecutive_failures`, `trial_failed`, ...).
    pub last_transition: Option<&'static str>,
    /// Calls admitted and finished (successes + failures + ignored).
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed, timed out or were too slow.
    pub failures: u64,
    /// Calls refused without running.
    pub rejected: u64,
    /// Calls whose outcome neither trips nor resets (excluded errors, cancellations).
    pub ignored: u64,
}

impl Status {
    pub(crate) fn read(machine: &Machine) -> Self {
        let reading = machine.read();
        let totals = machine.counters.totals();
        let s = &machine.settings;
        let fail_threshold = s.policy.consecutive();
        let rate = s.policy.rate();
        let failure_rate_threshold = rate.map(|(threshold, _, _)| threshold);
        let (window_seconds, window_calls) = match rate.map(|(_, window, _)| window) {
            Some(Window::Time(d)) => (Some(d.as_secs_f64()), None),
            Some(Window::Count(n)) => (None, Some(n)),
            None => (None, None),
        };
        let min_calls = rate.map(|(_, _, min_calls)| min_calls);
        let max_reset = match s.backoff {
            Backoff::Constant => s.reset_timeout,
            Backoff::Exponential { max, .. } => max.max(s.reset_timeout),
        };
        let now = machine.clock.now_nanos();
        Self {
            name: machine.name.to_string(),
            state: reading.state,
            consecutive_failures: reading.consecutive_failures,
            fail_threshold,
            failure_rate_threshold,
            failure_rate_window_seconds: window_seconds,
            failure_rate_window_calls: window_calls,
            failure_rate_min_calls: min_calls,
            reset_timeout_seconds: s.reset_timeout.as_secs_f64(),
            max_reset_timeout_seconds: max_reset.as_secs_f64(),
            half_open_max_calls: s.half_open_max_calls,
            success_threshold: s.success_threshold,
            slow_call_seconds: (s.slow_call_nanos > 0).then(|| s.slow_call_nanos as f64 / 1e9),
            call_timeout_seconds: s.call_timeout.map(|d| d.as_secs_f64()),
            in_flight_limit: machine.limiter.as_ref().map(|l| l.status(now)),
            opened_at: reading
                .opened_at
                .map(|t| rfc3339(machine.clock.wall_time(t))),
            retry_after_seconds: reading.retry_after.map(|d| d.as_secs_f64()),
            half_open_in_flight: reading.half_open_in_flight,
            last_transition: reading.last_transition.map(|t| t.as_str()),
            calls: totals.successes + totals.failures + totals.ignored,
            successes: totals.successes,
            failures: totals.failures,
            rejected: totals.rejected,
            ignored: totals.ignored,
        }
    }
}

/// `2026-11-22T22:51:34.123Z`: formatting one timestamp does not need a date crate.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339_in_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_387_894_123);
        assert_eq!(rfc3339(t), "2026-11-22T22:51:34.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
