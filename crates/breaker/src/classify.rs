//! How the caller tells the breaker what a call's result means.

use std::time::Duration;

/// What a finished call means to the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream worked: resets the consecutive-failure count; closes a half-open
    /// circuit once enough trials succeed.
    Success,
    /// The upstream failed: counts toward opening; re-opens a half-open circuit.
    Failure,
    /// A failure for which the upstream said when to come back (a `429`/`503` with
    /// `Retry-After`, or a model still loading): like [`Outcome::Failure`], and if the
    /// circuit opens on it, it stays open at least this long (capped by the builder's
    /// `max_retry_hint`), so the `Retry-After` the service gives its own callers is true.
    RetryAfter(Duration),
    /// Not the upstream's fault (a `4xx` the request caused, a cancellation): neither trips
    /// nor resets, never closes a half-open circuit; it only gives back the call's permit.
    Ignored,
}

impl Outcome {
    pub(crate) fn is_failure(self) -> bool {
        matches!(self, Self::Failure | Self::RetryAfter(_))
    }
}

/// Maps a call's result to an [`Outcome`].
///
/// Implemented for any `Fn(&Result<T, E>) -> Outcome`; [`DefaultClassifier`] treats every
/// `Ok` as success and every `Err` as failure.
pub trait Classify<T, E> {
    /// What this result means to the breaker.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// `Ok` is a success, `Err` a failure.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl<T, E> Classify<T, E> for DefaultClassifier {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}
