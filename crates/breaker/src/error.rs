//! What a call through the breaker can fail with.

use std::fmt;
use std::time::Duration;

use crate::State;

/// The breaker refused the call without running it.
///
/// Carries the state that refused it and, when a trial is scheduled, how long until then:
/// the honest value for an HTTP `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Rejected {
    /// The state that refused the call (`open`, `half_open` or `forced_open`; `closed`
    /// when the in-flight bound shed it).
    pub state: State,
    /// Time until the breaker lets a trial call through; `None` when an operator forced it
    /// open and no trial is scheduled. In `half_open` it is zero: a trial is under way.
    pub retry_after: Option<Duration>,
}

impl Rejected {
    /// The circuit is closed but the bound on calls in flight was reached: the call was
    /// shed, not refused for an outage.
    pub fn is_shed(&self) -> bool {
        self.state == State::Closed
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_shed() {
            return f.write_str("too many calls in flight to the upstream: call shed");
        }
        write!(f, "circuit breaker is {}: call rejected", self.state)?;
        match self.retry_after {
            Some(d) => write!(f, ", next trial in {:.3}s", d.as_secs_f64()),
            None => write!(f, ", no trial scheduled"),
        }
    }
}

/// The error of a call made through the breaker.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker did not run the call.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// The call ran past the breaker's call timeout and was abandoned; counted as a failure.
    #[error("call timed out after {:.3}s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The call ran and returned this error.
    #[error("{0}")]
    Inner(E),
}

impl<E> CallError<E> {
    /// The inner error, if the call ran and failed on its own.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(e) => Some(e),
            _ => None,
        }
    }
}

/// A breaker configuration that cannot work.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid circuit breaker setting `{setting}`: {reason}")]
pub struct BuildError {
    /// The builder setting at fault.
    pub setting: &'static str,
    /// Why it is wrong.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_says_why_and_when_the_next_trial_is() {
        let open = Rejected {
            state: State::Open,
            retry_after: Some(Duration::from_millis(1500)),
        };
        assert_eq!(
            open.to_string(),
            "circuit breaker is open: call rejected, next trial in 1.500s"
        );
        let forced = Rejected {
            state: State::ForcedOpen,
            retry_after: None,
        };
        assert!(!forced.is_shed());
        assert!(
            forced.to_string().ends_with(", no trial scheduled"),
            "{forced}"
        );
        let shed = Rejected {
            state: State::Closed,
            retry_after: Some(Duration::ZERO),
        };
        assert!(shed.is_shed());
        assert_eq!(
            shed.to_string(),
            "too many calls in flight to the upstream: call shed"
        );
    }

    #[test]
    fn a_call_error_shows_its_cause_and_keeps_the_inner_error() {
        let timeout: CallError<&str> = CallError::Timeout(Duration::from_millis(250));
        assert_eq!(timeout.to_string(), "call timed out after 0.250s");
        assert_eq!(timeout.into_inner(), None);
        let inner: CallError<&str> = CallError::Inner("upstream said 503");
        assert_eq!(inner.to_string(), "upstream said 503");
        assert_eq!(inner.into_inner(), Some("upstream said 503"));
    }
}
