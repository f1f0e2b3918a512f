//! LLM failures, and which of them are the upstream's fault.

use std::time::Duration;

use breaker::Outcome;

/// Why an LLM call did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The upstream could not be reached (DNS, refused, reset, TLS).
    #[error("could not reach the LLM upstream: {0}")]
    Connect(#[source] reqwest::Error),
    /// The upstream did not answer in time.
    #[error("the LLM upstream did not answer in time")]
    Timeout,
    /// The upstream answered with an error status.
    #[error("the LLM upstream answered {status}: {detail}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// How long the upstream asked us to wait (`Retry-After`, or HF's
        /// `estimated_time` while a model loads).
        retry_after: Option<Duration>,
        /// The start of the upstream's error body.
        detail: String,
    },
    /// The HTTP client could not be set up (TLS roots, settings): a start-up error.
    #[error("could not set up the LLM client: {0}")]
    Setup(#[source] reqwest::Error),
    /// The upstream answered 2xx with a body (or a stream event) that is not a completion.
    #[error("the LLM upstream sent an unreadable answer: {0}")]
    Malformed(String),
    /// A streamed answer ended without its end marker: what came is not the whole answer.
    #[error("the LLM stream ended before its end marker")]
    Cut,
    /// A stream sent no first piece of the answer in time.
    #[error("the LLM stream sent no first token within {:.1}s", .0.as_secs_f64())]
    FirstTokenLate(Duration),
    /// A stream went quiet for longer than the idle deadline between two pieces.
    #[error("the LLM stream paused longer than {:.1}s between chunks", .0.as_secs_f64())]
    Idle(Duration),
    /// A stream ran past the request's whole deadline.
    #[error("the LLM stream ran past the request deadline ({:.1}s)", .0.as_secs_f64())]
    PastDeadline(Duration),
    /// A stream carried an error object (an upstream failure after its `200`).
    #[error("the LLM stream carried an error: {0}")]
    InStream(String),
}

impl LlmError {
    /// What this failure means to the circuit breaker: the upstream's own trouble
    /// (unreachable, timeouts, `408`, `429`, `5xx`, unreadable bodies) is a failure; any
    /// other `4xx` is the request's own fault and is ignored: it neither trips nor resets.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Connect(_)
            | Self::Timeout
            | Self::Malformed(_)
            | Self::Setup(_)
            | Self::Cut
            | Self::FirstTokenLate(_)
            | Self::Idle(_)
            | Self::InStream(_) => Outcome::Failure,
            // The request's own budget ran out (perhaps spent on an earlier upstream):
            // the upstream did not miss a deadline of its own.
            Self::PastDeadline(_) => Outcome::Ignored,
            Self::Status {
                status,
                retry_after,
                ..
            } => match (*status, retry_after) {
                (408 | 429 | 500..=599, Some(wait)) => Outcome::RetryAfter(*wait),
                (408 | 429 | 500..=599, None) => Outcome::Failure,
                // The request's own fault: it says nothing about the upstream's health.
                (400..=499, _) => Outcome::Ignored,
                // Anything else (an unfollowed redirect, 1xx) is not a completion.
                _ => Outcome::Failure,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry_after: Option<u64>) -> LlmError {
        LlmError::Status {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            detail: String::new(),
        }
    }

    #[test]
    fn upstream_trouble_is_a_failure_and_request_faults_are_ignored() {
        assert_eq!(status(500, None).outcome(), Outcome::Failure);
        assert_eq!(status(503, None).outcome(), Outcome::Failure);
        assert_eq!(status(408, None).outcome(), Outcome::Failure);
        assert_eq!(status(429, None).outcome(), Outcome::Failure);
        assert_eq!(status(400, None).outcome(), Outcome::Ignored);
        assert_eq!(status(401, None).outcome(), Outcome::Ignored);
        assert_eq!(status(404, None).outcome(), Outcome::Ignored);
        assert_eq!(status(422, Some(5)).outcome(), Outcome::Ignored);
        assert_eq!(status(304, None).outcome(), Outcome::Failure);
        assert_eq!(LlmError::Timeout.outcome(), Outcome::Failure);
        assert_eq!(LlmError::Malformed("x".into()).outcome(), Outcome::Failure);
        for broken_stream in [
            LlmError::Cut,
            LlmError::FirstTokenLate(Duration::from_secs(1)),
            LlmError::Idle(Duration::from_secs(1)),
            LlmError::InStream("overloaded".into()),
        ] {
            assert_eq!(broken_stream.outcome(), Outcome::Failure, "{broken_stream}");
        }
        let out_of_budget = LlmError::PastDeadline(Duration::from_secs(1));
        assert_eq!(out_of_budget.outcome(), Outcome::Ignored);
    }

    #[test]
    fn an_upstream_wait_hint_travels_with_the_failure() {
        let hint = Duration::from_secs(20);
        assert_eq!(status(503, Some(20)).outcome(), Outcome::RetryAfter(hint));
        assert_eq!(status(429, Some(20)).outcome(), Outcome::RetryAfter(hint));
    }
}
