//! A fast, cancellation-safe circuit breaker.
//!
//! Guards calls to an upstream. After repeated failures the circuit *opens*: calls are
//! refused at once, in nanoseconds, with the time until the next trial, instead of each
//! waiting out a timeout. After the reset timeout a limited number of *trial* calls go
//! through (*half-open*); enough successes close the circuit, any failure opens it again.
//!
//! - pybreaker's semantics: consecutive failures trip, excluded errors (here
//!   [`Outcome::Ignored`]) are decided by the caller, listeners see every event;
//! - resilience4j's policies: failure rate over a count or time window with a minimum
//!   number of calls, slow calls as failures, exponential open time with jitter;
//! - gobreaker's generations: an outcome that arrives after the state moved on is dropped;
//! - linkerd's permits: a trial whose future is dropped gives its permit back, so the
//!   breaker can never be stuck half-open.
//!
//! The closed-state path is a load and, at most, a compare-exchange on one atomic word:
//! no lock, no allocation. It knows nothing of HTTP: the caller classifies outcomes.
//!
//! ```
//! use std::time::Duration;
//! use breaker::{CircuitBreaker, Clock, Outcome, State, TripPolicy};
//!
//! let (clock, hand) = Clock::manual();
//! let breaker = CircuitBreaker::builder("llm")
//!     .trip_policy(TripPolicy::consecutive_failures(3))
//!     .reset_timeout(Duration::from_secs(60))
//!     .clock(clock)
//!     .build()
//!     .expect("valid settings");
//!
//! for _ in 0..3 {
//!     breaker.try_acquire().expect("closed").record(Outcome::Failure);
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let rejected = breaker.try_acquire().err().expect("open");
//! assert_eq!(rejected.retry_after, Some(Duration::from_secs(60)));
//!
//! hand.advance(Duration::from_secs(60));
//! let trial = breaker.try_acquire().expect("one trial");
//! assert_eq!(breaker.state(), State::HalfOpen);
//! assert!(breaker.try_acquire().is_err(), "only one trial at a time");
//! trial.record(Outcome::Success);
//! assert_eq!(breaker.state(), State::Closed);
//! ```
#![deny(missing_docs)]

mod breaker;
mod classify;
mod clock;
mod counters;
mod error;
mod events;
mod layer;
mod limit;
mod policy;
mod registry;
mod run;
mod state;
mod status;
mod window;

pub use breaker::{Builder, CircuitBreaker, FailureRun, OwnedPermit, Permit};
pub use classify::{Classify, DefaultClassifier, Outcome};
pub use clock::{Clock, ManualClock, Sleep};
pub use error::{BuildError, CallError, Rejected};
pub use events::{Event, Listener, Transition};
pub use layer::{CircuitBreakerLayer, CircuitBreakerService, ResponseFuture};
pub use limit::{Adaptive, InFlightLimit, LimitStatus};
pub use policy::{Backoff, TripPolicy, Window};
pub use registry::Registry;
pub use state::State;

/// The largest `consecutive_failures` threshold (and `half_open_max_calls`) a breaker takes.
pub const MAX_FAIL_THRESHOLD: u32 = state::MAX_A;
pub use status::Status;
