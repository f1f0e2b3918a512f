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
    /// The upstream answered 2xx with a body that is not a completion.
    #[error("the LLM upstream sent an unreadable answer: {0}")]
    Malformed(String),
}

impl LlmError {
    /// What this failure means to the circuit breaker: the upstream's own trouble
    /// (unreachable, timeouts, `408`, `429`, `5xx`, unreadable bodies) is a failure; any
    /// other `4xx` is the request's own fault and is ignored: it neither trips nor resets.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Connect(_) | Self::Timeout | Self::Malformed(_) | Self::Setup(_) => {
                Outcome::Failure
            }
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
    }

    #[test]
    fn an_upstream_wait_hint_travels_with_the_failure() {
        let hint = Duration::from_secs(20);
        assert_eq!(status(503, Some(20)).outcome(), Outcome::RetryAfter(hint));
        assert_eq!(status(429, Some(20)).outcome(), Outcome::RetryAfter(hint));
    }
}
