//! Prometheus metrics: breaker state and calls, answers by fallback level, request latency.
//!
//! Recorded through the `metrics` facade into one process-wide Prometheus recorder and
//! rendered by the `/metrics` route. Names:
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `breakwater_circuit_breaker_state` | `breaker`, `state` | 1 for the current state, 0 for the others |
//! | `breakwater_circuit_breaker_calls_total` | `breaker`, `outcome` | `success`, `failure`, `ignored`, `rejected` |
//! | `breakwater_circuit_breaker_transitions_total` | `breaker`, `to`, `reason` | state changes |
//! | `breakwater_circuit_breaker_retry_after_seconds` | `breaker` | time until the next trial |
//! | `breakwater_answers_total` | `source` | `llm`, `cache`, `stale_cache`, `excerpts`, `unavailable` |
//! | `breakwater_llm_request_duration_seconds` | `outcome` | upstream call latency (a stream's: until its end) |
//! | `breakwater_llm_first_token_seconds` | | a stream's time to its first piece of answer |
//! | `breakwater_streams_total` | `outcome` | streamed answers: `complete`, `fallback` (the LLM failed mid-stream), `error`, `client_left` |
//! | `breakwater_http_request_duration_seconds` | `method`, `route`, `status` | request latency |

use std::sync::OnceLock;

use breaker::{Event, Listener, Registry, State};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
];

const STATES: [State; 5] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::ForcedOpen,
    State::Disabled,
];

/// The process's Prometheus recorder.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the process-wide recorder on first use and returns its handle; later calls
    /// (several servers in one test process) share it.
    pub fn install() -> Self {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder owns the facade: keep a private one so /metrics still
                // answers (it will show only what is recorded through it).
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        });
        Self {
            handle: handle.clone(),
        }
    }

    /// The Prometheus text exposition, with the breakers' gauges read fresh.
    pub fn render(&self, registry: &Registry) -> String {
        for status in registry.statuses() {
            // The breaker counts its calls itself; export its totals rather than counting
            // twice through events.
            for (outcome, total) in [
                ("success", status.successes),
                ("failure", status.failures),
                ("ignored", status.ignored),
                ("rejected", status.rejected),
            ] {
                counter!("breakwater_circuit_breaker_calls_total", "breaker" => status.name.clone(), "outcome" => outcome)
                    .absolute(total);
            }
            for state in STATES {
                gauge!("breakwater_circuit_breaker_state", "breaker" => status.name.clone(), "state" => state.as_str())
                    .set(if state == status.state { 1.0 } else { 0.0 });
            }
            gauge!("breakwater_circuit_breaker_retry_after_seconds", "breaker" => status.name.clone())
                .set(status.retry_after_seconds.unwrap_or(0.0));
            if let Some(limit) = status.in_flight_limit {
                // Shed calls are part of `rejected` above; this says how many of them.
                counter!("breakwater_circuit_breaker_shed_total", "breaker" => status.name.clone())
                    .absolute(limit.shed);
                gauge!("breakwater_circuit_breaker_in_flight", "breaker" => status.name.clone())
                    .set(f64::from(limit.in_flight));
                gauge!("breakwater_circuit_breaker_in_flight_limit", "breaker" => status.name.clone())
                    .set(f64::from(limit.limit));
            }
        }
        self.handle.render()
    }
}

/// Counts an answer by the level of the fallback chain that gave it.
pub fn record_answer(source: &'static str) {
    counter!("breakwater_answers_total", "source" => source).increment(1);
}

/// Times one upstream LLM call.
pub fn record_llm(outcome: &'static str, seconds: f64) {
    histogram!("breakwater_llm_request_duration_seconds", "outcome" => outcome).record(seconds);
}

/// Times a stream's first piece of answer, from the call's start.
pub fn record_first_token(seconds: f64) {
    histogram!("breakwater_llm_first_token_seconds").record(seconds);
}

/// Counts a streamed answer that got under way by how it ended.
pub fn record_stream(outcome: &'static str) {
    counter!("breakwater_streams_total", "outcome" => outcome).increment(1);
}

/// Counts a connection closed on arrival because the connection cap and its overflow lane
/// were full.
pub fn record_refused_connection() {
    counter!("breakwater_http_connections_refused_total").increment(1);
}

/// Counts a request that stopped waiting for its LLM call because the upstream stalled.
pub fn record_abandoned() {
    counter!("breakwater_llm_abandoned_total").increment(1);
}

/// Times one HTTP request; `route` is the matched route pattern, so labels stay bounded.
pub fn record_http(method: &str, route: &str, status: u16, seconds: f64) {
    histogram!(
        "breakwater_http_request_duration_seconds",
        "method" => method.to_owned(),
        "route" => route.to_owned(),
        "status" => status.to_string()
    )
    .record(seconds);
}

/// A breaker listener that counts transitions and logs state changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct BreakerMetrics;

impl Listener for BreakerMetrics {
    fn on_event(&self, breaker: &str, event: &Event) {
        let Event::StateChanged { from, to, reason } = event else {
            return;
        };
        counter!(
            "breakwater_circuit_breaker_transitions_total",
            "breaker" => breaker.to_owned(),
            "to" => to.as_str(),
            "reason" => reason.as_str()
        )
        .increment(1);
        match to {
            State::Open | State::ForcedOpen => tracing::warn!(
                breaker, from = %from, to = %to, reason = reason.as_str(),
                "circuit opened: calls fail fast until the next trial"
            ),
            _ => tracing::info!(
                breaker, from = %from, to = %to, reason = reason.as_str(),
                "circuit state changed"
            ),
        }
    }
}
