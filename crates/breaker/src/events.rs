//! What the breaker tells its listeners.

use crate::State;

/// Something that happened in a breaker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// The state changed.
    StateChanged {
        /// The state before.
        from: State,
        /// The state after.
        to: State,
        /// Why.
        reason: Transition,
    },
    /// A call succeeded.
    Success,
    /// A call failed (including timeouts and slow calls).
    Failure,
    /// A call ended with an outcome that neither trips nor resets (or was cancelled).
    Ignored,
    /// A call was refused without running.
    Rejected {
        /// The state that refused it.
        state: State,
    },
}

/// Why the state changed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transition {
    /// `n` failures in a row reached the threshold.
    ConsecutiveFailures(u32),
    /// The failure rate over the window reached the threshold.
    FailureRate {
        /// The rate that tripped, in `[0, 1]`.
        rate: f64,
        /// Calls in the window.
        calls: u32,
    },
    /// The open time ran out; trial calls may go through.
    ResetTimeoutElapsed,
    /// A trial call failed.
    TrialFailed,
    /// Enough trial calls succeeded.
    TrialsSucceeded,
    /// An operator forced the circuit open.
    ForcedOpen,
    /// An operator disabled the breaker: every call passes.
    Disabled,
    /// An operator reset the breaker to closed.
    Reset,
    /// The state was decided by another replica and shared (cluster mode).
    Shared,
}

impl Transition {
    /// A short, stable description for logs and metrics labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ConsecutiveFailures(_) => "consecutive_failures",
            Self::FailureRate { .. } => "failure_rate",
            Self::ResetTimeoutElapsed => "reset_timeout_elapsed",
            Self::TrialFailed => "trial_failed",
            Self::TrialsSucceeded => "trials_succeeded",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
            Self::Reset => "reset",
            Self::Shared => "shared",
        }
    }
}

/// Receives a breaker's events.
///
/// Called synchronously on the calling thread, after the breaker released any internal
/// lock: keep it short (count, log, send on a channel). `breaker` is the breaker's name,
/// so one listener can serve a whole [`Registry`](crate::Registry).
pub trait Listener: Send + Sync + 'static {
    /// One event.
    fn on_event(&self, breaker: &str, event: &Event);
}
