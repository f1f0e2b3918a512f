//! What the fake upstream does to each LLM call: the fault configuration and its validation.

use serde::{Deserialize, Serialize};

/// How the fake upstream treats each LLM call (chat or text generation).
///
/// Faults never apply to the admin endpoints nor to `/healthz`.
///
/// Every field has a default, so a partial JSON object such as `{"mode":"error"}` is a
/// complete fault (status 503, every call fails). Unknown fields are rejected, so a typo in
/// a test's fault does not silently leave the upstream healthy.
///
/// ```
/// use fake_llm::{Fault, FaultMode};
///
/// let fault: Fault = serde_json::from_str(r#"{"mode":"error","status":429}"#)?;
/// assert_eq!(fault, Fault::error(429));
/// assert_eq!(fault.mode, FaultMode::Error);
/// assert_eq!(fault.failure_rate, 1.0);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    /// What happens after the latency: answer, fail, hang or send broken JSON.
    pub mode: FaultMode,
    /// HTTP status of an injected failure (`mode = error`); 400..=599, default 503.
    pub status: u16,
    /// Delay before anything else happens, in every mode (0 = none).
    pub latency_ms: u64,
    /// Fraction of calls that fail in `mode = error`, in 0..=1 (default 1: every call).
    ///
    /// Deterministic: with the calls made since the fault was set numbered from 0, call `n`
    /// fails iff `floor((n + 1) * rate) > floor(n * rate)`, so any `k` consecutive calls
    /// hold `k * rate` failures, give or take one.
    pub failure_rate: f64,
    /// When set, an injected failure carries `Retry-After: <seconds>`.
    pub retry_after_seconds: Option<u64>,
    /// When set, an injected failure looks like HF's model-loading error:
    /// `{"error":"Model is currently loading","estimated_time":x}`.
    pub estimated_time: Option<f64>,
    /// What a streamed answer (`"stream": true`) does once it has begun.
    pub stream: StreamFault,
}

/// How a streamed answer behaves after its headers: the pieces it sends, the delay between
/// them, and what goes wrong after `after_chunks` of them.
///
/// ```
/// use fake_llm::{Fault, StreamMode};
///
/// let fault: Fault = serde_json::from_str(r#"{"stream":{"mode":"cut","after_chunks":2}}"#)?;
/// assert_eq!(fault.stream.mode, StreamMode::Cut);
/// assert_eq!(fault.stream.chunk_delay_ms, 0);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StreamFault {
    /// What happens after `after_chunks` pieces.
    pub mode: StreamMode,
    /// Pieces of the answer sent before the fault strikes (default 3).
    pub after_chunks: u32,
    /// Delay between two pieces, in milliseconds (a slow "drip"; 0 = none).
    pub chunk_delay_ms: u64,
    /// Split the answer into this many pieces (default: one per word).
    pub chunks: Option<u32>,
}

/// The behaviour selected by [`StreamFault::mode`] (also the `--stream` flag's values).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StreamMode {
    /// The whole answer, then the end marker.
    #[default]
    Ok,
    /// The connection is cut (aborted, no end of body) after `after_chunks` pieces.
    Cut,
    /// Nothing more after `after_chunks` pieces: the stream stays open, silent.
    Stall,
    /// An event whose data is truncated JSON after `after_chunks` pieces.
    Malformed,
    /// The whole answer, then a clean end of body without the end marker.
    NoEnd,
    /// An error object in the stream after `after_chunks` pieces.
    Error,
}

impl Default for StreamFault {
    fn default() -> Self {
        Self {
            mode: StreamMode::Ok,
            after_chunks: 3,
            chunk_delay_ms: 0,
            chunks: None,
        }
    }
}

impl StreamFault {
    /// A stream that breaks as `mode` says after `after_chunks` pieces.
    pub fn new(mode: StreamMode, after_chunks: u32) -> Self {
        Self {
            mode,
            after_chunks,
            ..Self::default()
        }
    }

    /// This stream, with `delay_ms` between pieces.
    #[must_use]
    pub fn with_chunk_delay_ms(self, chunk_delay_ms: u64) -> Self {
        Self {
            chunk_delay_ms,
            ..self
        }
    }

    /// This stream, with the answer split into `chunks` pieces.
    #[must_use]
    pub fn with_chunks(self, chunks: u32) -> Self {
        Self {
            chunks: Some(chunks),
            ..self
        }
    }
}

/// The behaviour selected by [`Fault::mode`] (also the `--mode` flag's values).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// Answer normally.
    #[default]
    Ok,
    /// Fail with [`Fault::status`] (for the share of calls given by [`Fault::failure_rate`]).
    Error,
    /// Never answer: the call waits until the client gives up or the server shuts down.
    /// Calls that arrived before keep their own fault.
    Hang,
    /// Like `hang`, and the calls still sleeping their latency when it is set never answer
    /// either: a server that has stopped (wedged, or paused), not one that only stops
    /// taking new work. Streams already answering go on.
    Freeze,
    /// Answer `200` with truncated JSON.
    Malformed,
}

/// A fault that cannot be applied, with the reason.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid fault: {detail}")]
pub struct InvalidFault {
    /// What is wrong with the fault, as a sentence for the caller.
    pub detail: String,
}

impl Default for Fault {
    fn default() -> Self {
        Self {
            mode: FaultMode::Ok,
            status: 503,
            latency_ms: 0,
            failure_rate: 1.0,
            retry_after_seconds: None,
            estimated_time: None,
            stream: StreamFault::default(),
        }
    }
}

impl Fault {
    /// A healthy upstream: every call is answered at once.
    pub fn ok() -> Self {
        Self::default()
    }

    /// Every call fails with `status`.
    pub fn error(status: u16) -> Self {
        Self {
            mode: FaultMode::Error,
            status,
            ..Self::default()
        }
    }

    /// Every call hangs until the client gives up.
    pub fn hang() -> Self {
        Self {
            mode: FaultMode::Hang,
            ..Self::default()
        }
    }

    /// Every call hangs, and so do the calls still waiting out their latency.
    pub fn freeze() -> Self {
        Self {
            mode: FaultMode::Freeze,
            ..Self::default()
        }
    }

    /// Every call gets `200` with a truncated JSON body.
    pub fn malformed() -> Self {
        Self {
            mode: FaultMode::Malformed,
            ..Self::default()
        }
    }

    /// A healthy upstream whose streamed answers behave as `stream` says.
    pub fn streaming(stream: StreamFault) -> Self {
        Self {
            stream,
            ..Self::default()
        }
    }

    /// This fault, with `latency_ms` of delay before each call is handled.
    #[must_use]
    pub fn with_latency_ms(self, latency_ms: u64) -> Self {
        Self { latency_ms, ..self }
    }

    /// This fault, failing only the fraction `failure_rate` of calls.
    #[must_use]
    pub fn with_failure_rate(self, failure_rate: f64) -> Self {
        Self {
            failure_rate,
            ..self
        }
    }

    /// This fault, with `Retry-After: seconds` on its failures.
    #[must_use]
    pub fn with_retry_after_seconds(self, seconds: u64) -> Self {
        Self {
            retry_after_seconds: Some(seconds),
            ..self
        }
    }

    /// This fault, with HF's model-loading body and its `estimated_time` (seconds).
    #[must_use]
    pub fn with_estimated_time(self, seconds: f64) -> Self {
        Self {
            estimated_time: Some(seconds),
            ..self
        }
    }

    /// Checks that the fault can be applied as written.
    pub fn validate(&self) -> Result<(), InvalidFault> {
        let invalid = |detail: String| Err(InvalidFault { detail });
        // `contains` is false for NaN too, which is what we want.
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return invalid(format!(
                "failure_rate must be within 0..=1, got {}",
                self.failure_rate
            ));
        }
        if !(400..=599).contains(&self.status) {
            return invalid(format!(
                "status must be an error status within 400..=599, got {}",
                self.status
            ));
        }
        // No let-chain here: the workspace's MSRV (1.85) predates them.
        if let Some(t) = self
            .estimated_time
            .filter(|t| !(t.is_finite() && *t >= 0.0))
        {
            return invalid(format!(
                "estimated_time must be a finite number of seconds >= 0, got {t}"
            ));
        }
        if self.stream.chunks == Some(0) {
            return invalid("stream.chunks must be at least 1".to_owned());
        }
        Ok(())
    }

    /// Whether call number `n` (counted from 0 since this fault was set) is one that fails.
    ///
    /// Spreads failures evenly without a random source, so tests can count them exactly.
    pub(crate) fn selects_failure(&self, n: u64) -> bool {
        // u64 -> f64 loses precision only past 2^53 calls: not a concern for a test server.
        let before = (n as f64 * self.failure_rate).floor();
        let after = ((n + 1) as f64 * self.failure_rate).floor();
        after > before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures_in(rate: f64, calls: u64) -> usize {
        let fault = Fault::error(503).with_failure_rate(rate);
        (0..calls).filter(|&n| fault.selects_failure(n)).count()
    }

    #[test]
    fn failure_rate_selects_exactly_its_share_of_calls() {
        assert_eq!(failures_in(0.0, 100), 0);
        assert_eq!(failures_in(1.0, 100), 100);
        assert_eq!(failures_in(0.5, 10), 5);
        assert_eq!(failures_in(0.25, 100), 25);
        assert_eq!(failures_in(0.1, 100), 10);
    }

    #[test]
    fn failure_rate_half_alternates_success_and_failure() {
        let fault = Fault::error(503).with_failure_rate(0.5);
        let pattern: Vec<bool> = (0..4).map(|n| fault.selects_failure(n)).collect();
        assert_eq!(pattern, [false, true, false, true]);
    }

    #[test]
    fn partial_json_takes_defaults_for_missing_fields() {
        let fault: Fault = serde_json::from_str(r#"{"mode":"error"}"#).expect("valid fault");
        assert_eq!(fault, Fault::error(503));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let parsed = serde_json::from_str::<Fault>(r#"{"latency":100}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn validate_rejects_rates_outside_unit_interval_and_non_error_statuses() {
        assert!(Fault::error(503).with_failure_rate(1.5).validate().is_err());
        assert!(
            Fault::error(503)
                .with_failure_rate(-0.1)
                .validate()
                .is_err()
        );
        assert!(
            Fault::error(503)
                .with_failure_rate(f64::NAN)
                .validate()
                .is_err()
        );
        assert!(Fault::error(200).validate().is_err());
        assert!(Fault::error(600).validate().is_err());
        assert!(
            Fault::error(503)
                .with_estimated_time(-1.0)
                .validate()
                .is_err()
        );
        assert!(
            Fault::error(429)
                .with_retry_after_seconds(3)
                .validate()
                .is_ok()
        );
        assert!(Fault::ok().validate().is_ok());
    }
}
