//! The breaker handle: building one, calling through it, operating it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::classify::{Classify, DefaultClassifier, Outcome};
use crate::clock::Clock;
use crate::error::{BuildError, CallError, Rejected};
use crate::events::{Listener, Transition};
use crate::limit::InFlightLimit;
use crate::policy::{Backoff, TripPolicy, Window};
use crate::state::{MAX_A, MAX_B, Machine, Settings, State, Ticket};
use crate::status::Status;

/// A circuit breaker: guards calls to one upstream, fails fast while it is down.
///
/// Cheap to clone (an `Arc` inside); clones share one state. Build with
/// [`CircuitBreaker::builder`].
///
/// ```
/// use std::time::Duration;
/// use breaker::{CallError, CircuitBreaker, State, TripPolicy};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let breaker = CircuitBreaker::builder("upstream")
///     .trip_policy(TripPolicy::consecutive_failures(2))
///     .reset_timeout(Duration::from_secs(30))
///     .build()
///     .expect("valid settings");
///
/// for _ in 0..2 {
///     let r: Result<(), _> = breaker.call(async { Err::<(), _>("503") }).await;
///     assert!(matches!(r, Err(CallError::Inner("503"))));
/// }
/// // Open: the next call is refused at once, with the time until the next trial.
/// let r = breaker.call(async { Ok::<_, &str>(1) }).await;
/// match r {
///     Err(CallError::Rejected(rejected)) => {
///         assert_eq!(rejected.state, State::Open);
///         assert!(rejected.retry_after.expect("scheduled") <= Duration::from_secs(30));
///     }
///     other => panic!("expected a rejection, got {other:?}"),
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    machine: Arc<Machine>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name())
            .field("state", &self.state())
            .finish()
    }
}

impl CircuitBreaker {
    /// Starts building a breaker with the given name (used in status, events, metrics).
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder::new(name.into())
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.machine.name
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.machine.state()
    }

    /// The per-call deadline [`call`](Self::call) applies, if any.
    pub fn call_timeout(&self) -> Option<Duration> {
        self.machine.settings.call_timeout
    }

    /// The base open time.
    pub fn reset_timeout(&self) -> Duration {
        self.machine.settings.reset_timeout
    }

    /// The clock this breaker reads.
    pub fn clock(&self) -> &Clock {
        &self.machine.clock
    }

    /// Asks to make a call. The returned [`Permit`] must be given the call's outcome with
    /// [`Permit::record`]; a permit dropped without one (the call was cancelled or
    /// panicked) gives its place back as [`Outcome::Ignored`], so a half-open circuit can
    /// never be left waiting for a trial that will not report.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let ticket = self.machine.acquire()?;
        Ok(Permit {
            machine: &self.machine,
            ticket,
        })
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a handle to the
    /// breaker (for futures that must be `'static`, such as a tower service's).
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, Rejected> {
        let ticket = self.machine.acquire()?;
        Ok(OwnedPermit {
            machine: Arc::clone(&self.machine),
            ticket: Some(ticket),
        })
    }

    /// Runs `future` through the breaker: `Ok` is a success, `Err` a failure.
    ///
    /// Rejected at once while open; abandoned (and counted as a failure) after the call
    /// timeout when one is set; if this future is dropped mid-call, the call counts as
    /// ignored and its permit is released.
    pub async fn call<F, T, E>(&self, future: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_with(future, DefaultClassifier).await
    }

    /// Runs `future` through the breaker, with `classify` deciding what its result means.
    pub async fn call_with<F, T, E, C>(&self, future: F, classify: C) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        self.try_acquire()?.run(future, classify).await
    }

    /// Runs a blocking call through the breaker: `Ok` is a success, `Err` a failure.
    ///
    /// The call timeout cannot interrupt a blocking call; use a slow-call threshold to
    /// count slow ones as failures.
    #[inline]
    pub fn call_sync<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_sync_with(f, DefaultClassifier)
    }

    /// Runs a blocking call through the breaker, with `classify` deciding what its result
    /// means.
    #[inline]
    pub fn call_sync_with<T, E, C>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        classify: C,
    ) -> Result<T, CallError<E>>
    where
        C: Classify<T, E>,
    {
        let permit = self.try_acquire()?;
        let result = f();
        permit.record(classify.classify(&result));
        result.map_err(CallError::Inner)
    }

    /// Completes when the in-flight bound finds the upstream stalled (calls far past the
    /// usual latency). A caller waiting on a call may then stop waiting and fall back,
    /// leaving the call to finish, or time out, on its own. Never completes without an
    /// adaptive bound.
    pub async fn stalled(&self) {
        match &self.machine.limiter {
            Some(limiter) => limiter.stalled().await,
            None => std::future::pending().await,
        }
    }

    /// A snapshot of the state and counters, for health endpoints and logs.
    pub fn status(&self) -> Status {
        Status::read(&self.machine)
    }

    /// Operator: hold the circuit open (every call rejected) until [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.machine
            .force(State::ForcedOpen, Transition::ForcedOpen);
    }

    /// Operator: let every call through and never trip, until [`reset`](Self::reset).
    pub fn disable(&self) {
        self.machine.force(State::Disabled, Transition::Disabled);
    }

    /// Operator: close the circuit and forget failures and trips.
    pub fn reset(&self) {
        self.machine.force(State::Closed, Transition::Reset);
    }

    /// The closed circuit's current run of failures in admission order, if one is under way:
    /// its length, and whether it is *settled* (no call admitted within it is still in
    /// flight, so no late success can break it up). Cheap (one atomic load) when there is
    /// no run. Cluster mode adds the settled runs of every replica.
    pub fn failure_run(&self) -> Option<FailureRun> {
        self.machine
            .failure_run()
            .map(|(failures, settled)| FailureRun { failures, settled })
    }

    /// Cluster: opens the circuit for exactly `open_for`, as another replica decided
    /// (reason [`Transition::Shared`]). Each such open counts as a trip for the backoff.
    pub fn open_shared(&self, open_for: Duration) {
        self.machine.open_shared(open_for);
    }

    /// Cluster: closes the circuit, as a trial on another replica succeeded (reason
    /// [`Transition::Shared`]).
    pub fn close_shared(&self) {
        self.machine.force(State::Closed, Transition::Shared);
    }
}

/// A closed circuit's run of failures, from [`CircuitBreaker::failure_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureRun {
    /// Failures in the run, in admission order.
    pub failures: u32,
    /// No call admitted within the run is still in flight.
    pub settled: bool,
}

/// Leave to make one call. Record its outcome with [`Permit::record`]; dropping it
/// unrecorded counts the call as ignored and releases the permit.
#[must_use = "a permit must be given its call's outcome"]
pub struct Permit<'a> {
    machine: &'a Machine,
    ticket: Ticket,
}

impl Permit<'_> {
    /// Runs the call this permit was acquired for, under the breaker's call timeout, and
    /// records its outcome as `classify` says. For callers that acquire first and prepare
    /// the call afterwards (e.g. skip costly preparation when the circuit is open); otherwise
    /// [`CircuitBreaker::call_with`] does both.
    pub async fn run<F, T, E, C>(self, future: F, classify: C) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        let result = within_call_timeout(self.machine, future).await;
        self.record(classified(&result, classify));
        flatten(result)
    }

    /// Reports how the call ended.
    #[inline]
    pub fn record(self, outcome: Outcome) {
        let (machine, ticket) = (self.machine, self.ticket);
        // The permit holds nothing to free: forgetting it only skips the drop-time report.
        std::mem::forget(self);
        machine.complete(ticket, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.machine.complete(self.ticket, Outcome::Ignored);
    }
}

/// Runs `future` under the breaker's call timeout: `Err(limit)` when it ran out.
async fn within_call_timeout<F: Future>(
    machine: &Machine,
    future: F,
) -> Result<F::Output, Duration> {
    match machine.settings.call_timeout {
        None => Ok(future.await),
        Some(limit) => machine.clock.timeout(limit, future).await.ok_or(limit),
    }
}

fn classified<T, E, C: Classify<T, E>>(result: &Result<Result<T, E>, Duration>, c: C) -> Outcome {
    match result {
        Ok(result) => c.classify(result),
        Err(_timed_out) => Outcome::Failure,
    }
}

fn flatten<T, E>(result: Result<Result<T, E>, Duration>) -> Result<T, CallError<E>> {
    match result {
        Ok(result) => result.map_err(CallError::Inner),
        Err(limit) => Err(CallError::Timeout(limit)),
    }
}

/// A [`Permit`] that owns a handle to its breaker.
#[must_use = "a permit must be given its call's outcome"]
pub struct OwnedPermit {
    machine: Arc<Machine>,
    ticket: Option<Ticket>,
}

impl OwnedPermit {
    /// True for a half-open circuit's trial call (cluster mode takes a lease for it).
    pub fn is_trial(&self) -> bool {
        self.ticket.is_some_and(|ticket| ticket.is_trial())
    }

    /// The call has begun to answer — a stream's first piece is in — though its outcome
    /// is still to come. Its place under the in-flight bound is given back now (the bound
    /// contains calls waiting on an upstream that may be stalled; a stream that is
    /// answering is guarded by its own idle deadline), and the time so far is the latency
    /// the adaptive bound learns from.
    pub fn responded(&mut self) {
        if let Some(ticket) = self.ticket {
            self.ticket = Some(self.machine.responded(ticket));
        }
    }

    /// Like [`Permit::run`], for a future that must be `'static` (a spawned task's).
    pub async fn run<F, T, E, C>(self, future: F, classify: C) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        let result = within_call_timeout(&self.machine, future).await;
        self.record(classified(&result, classify));
        flatten(result)
    }

    /// Reports how the call ended.
    pub fn record(mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.machine.complete(ticket, outcome);
        }
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.machine.complete(ticket, Outcome::Ignored);
        }
    }
}

/// Settings for a new [`CircuitBreaker`].
#[must_use]
pub struct Builder {
    name: String,
    settings: Settings,
    clock: Clock,
    listeners: Vec<Arc<dyn Listener>>,
    enabled: bool,
}

impl Builder {
    fn new(name: String) -> Self {
        Self {
            name,
            settings: Settings {
                policy: TripPolicy::default(),
                reset_timeout: Duration::from_secs(60),
                backoff: Backoff::Constant,
                half_open_max_calls: 1,
                success_threshold: 1,
                slow_call_nanos: 0,
                call_timeout: None,
                max_retry_hint: Duration::from_secs(300),
                in_flight: InFlightLimit::Off,
            },
            clock: Clock::system(),
            listeners: Vec::new(),
            enabled: true,
        }
    }

    /// When to open (default: 5 consecutive failures).
    pub fn trip_policy(mut self, policy: TripPolicy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// How long the circuit stays open before a trial (default 60 s).
    pub fn reset_timeout(mut self, timeout: Duration) -> Self {
        self.settings.reset_timeout = timeout;
        self
    }

    /// How the open time grows over repeated trips (default: constant).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Trial calls allowed at once while half-open (default 1).
    pub fn half_open_max_calls(mut self, n: u32) -> Self {
        self.settings.half_open_max_calls = n;
        self
    }

    /// Successful trials that close the circuit (default 1).
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.settings.success_threshold = n;
        self
    }

    /// A successful call slower than this counts as a failure (default: off).
    pub fn slow_call_threshold(mut self, threshold: Duration) -> Self {
        self.settings.slow_call_nanos = (threshold.as_nanos() as u64).max(1);
        self
    }

    /// Deadline for each [`CircuitBreaker::call`]; a call past it is a failure
    /// (default: none).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.settings.call_timeout = Some(timeout);
        self
    }

    /// Longest open time an upstream's [`Outcome::RetryAfter`] hint may impose
    /// (default 5 min).
    pub fn max_retry_hint(mut self, cap: Duration) -> Self {
        self.settings.max_retry_hint = cap;
        self
    }

    /// A bound on calls in flight on a closed circuit (default: none). A call beyond it
    /// is rejected at once ([`Rejected::is_shed`]), counted as rejected, not as a failure.
    /// Trial calls are bounded by `half_open_max_calls` instead.
    pub fn max_in_flight(mut self, limit: InFlightLimit) -> Self {
        self.settings.in_flight = limit;
        self
    }

    /// The time source (default: the system's monotonic clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a listener for this breaker's events.
    pub fn listener(mut self, listener: Arc<dyn Listener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// `false` builds the breaker in the `disabled` state: calls go straight through and
    /// are only counted (default `true`).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Checks the settings and builds the breaker.
    pub fn build(self) -> Result<CircuitBreaker, BuildError> {
        self.validate()?;
        let initial = if self.enabled {
            State::Closed
        } else {
            State::Disabled
        };
        let machine = Machine::new(
            self.name,
            self.settings,
            self.clock,
            self.listeners,
            initial,
        );
        Ok(CircuitBreaker {
            machine: Arc::new(machine),
        })
    }

    fn validate(&self) -> Result<(), BuildError> {
        let s = &self.settings;
        let fail = |setting, reason: &str| {
            Err(BuildError {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.name.is_empty() {
            return fail("name", "must not be empty");
        }
        if let Some(n) = s.policy.consecutive()
            && (n == 0 || n > MAX_A)
        {
            return fail("trip_policy", "consecutive failures must be 1..=16777215");
        }
        if let Some((threshold, window, min_calls)) = s.policy.rate() {
            if !(threshold > 0.0 && threshold <= 1.0) {
                return fail("trip_policy", "failure-rate threshold must be in (0, 1]");
            }
            if min_calls == 0 {
                return fail("trip_policy", "min_calls must be at least 1");
            }
            match window {
                Window::Count(n) if n == 0 || n > 1 << 20 => {
                    return fail("trip_policy", "a count window holds 1..=1048576 calls");
                }
                Window::Time(period) if period < Duration::from_millis(10) => {
                    return fail("trip_policy", "a time window must be at least 10 ms");
                }
                _ => {}
            }
        }
        if s.half_open_max_calls == 0 || s.half_open_max_calls > MAX_A {
            return fail("half_open_max_calls", "must be 1..=16777215");
        }
        if s.success_threshold == 0 || s.success_threshold > MAX_B {
            return fail("success_threshold", "must be 1..=65535");
        }
        if let Err(reason) = s.in_flight.validate() {
            return fail("max_in_flight", reason);
        }
        if s.call_timeout == Some(Duration::ZERO) {
            return fail("call_timeout", "must be longer than zero");
        }
        if let Backoff::Exponential {
            multiplier, jitter, ..
        } = s.backoff
        {
            if !(multiplier >= 1.0 && multiplier.is_finite()) {
                return fail("backoff", "multiplier must be a finite number ≥ 1");
            }
            if !(0.0..=1.0).contains(&jitter) {
                return fail("backoff", "jitter must be in [0, 1]");
            }
        }
        Ok(())
    }
}
