//! The state machine: closed → open → half-open → closed, in one atomic word.
//!
//! Everything a call needs on its way in and out lives in a single `AtomicU64`: the state,
//! a generation that every transition bumps, and two counts whose meaning depends on the
//! state (closed: failures in a row; half-open: trials in flight and trial successes).
//! Admitting a call and recording its outcome are a load and, at most, a compare-exchange:
//! no lock, no allocation. Transitions are rare and take a mutex, which serialises them
//! and guards the little history kept beside the word (trips in a row, when it opened).
//! Listeners are called after that mutex is released.
//!
//! The generation makes late outcomes harmless: a call admitted before a transition
//! carries the old generation, and its outcome no longer moves the state (gobreaker).

use std::fmt;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed},
};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::classify::Outcome;
use crate::clock::Clock;
use crate::counters::{Count, Counters};
use crate::error::Rejected;
use crate::events::{Event, Listener, Transition};
use crate::limit::{InFlightLimit, Limiter};
use crate::policy::{Backoff, TripPolicy};
use crate::run::Run;
use crate::window::SlidingWindow;

/// The state of a circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls pass; failures are counted.
    Closed = 0,
    /// Calls are rejected until the open time runs out.
    Open = 1,
    /// A limited number of trial calls pass; the rest are rejected.
    HalfOpen = 2,
    /// An operator holds the circuit open: every call is rejected.
    ForcedOpen = 3,
    /// An operator switched the breaker off: every call passes, nothing trips.
    Disabled = 4,
}

impl State {
    /// The name used in JSON, metrics and logs (`closed`, `half_open`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
        }
    }

    fn from_tag(tag: u64) -> Self {
        match tag {
            0 => Self::Closed,
            1 => Self::Open,
            2 => Self::HalfOpen,
            3 => Self::ForcedOpen,
            _ => Self::Disabled,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Word layout, low to high: state (3 bits) | a (24 bits) | b (16 bits) | generation (21 bits).
const TAG_BITS: u32 = 3;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
const A_BITS: u32 = 24;
const B_BITS: u32 = 16;
const A_SHIFT: u32 = TAG_BITS;
const B_SHIFT: u32 = A_SHIFT + A_BITS;
const GEN_SHIFT: u32 = B_SHIFT + B_BITS;
/// Largest failure threshold and half-open permit count the word can hold.
pub(crate) const MAX_A: u32 = (1 << A_BITS) - 1;
/// Largest success threshold the word can hold.
pub(crate) const MAX_B: u32 = (1 << B_BITS) - 1;
/// The state tag and the `a` count: zero in both = closed with no failures counted.
const CLOSED_CLEAN_MASK: u64 = TAG_MASK | (MAX_A as u64) << A_SHIFT;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Word(u64);

impl Word {
    fn new(state: State, generation: u64) -> Self {
        Self((state as u64) | (generation << GEN_SHIFT))
    }
    fn state(self) -> State {
        State::from_tag(self.0 & TAG_MASK)
    }
    #[inline]
    fn state_is(self, state: State) -> bool {
        self.0 & TAG_MASK == state as u64
    }
    fn generation(self) -> u64 {
        self.0 >> GEN_SHIFT
    }
    /// Closed: failures in a row. Half-open: trials in flight.
    fn a(self) -> u32 {
        ((self.0 >> A_SHIFT) & u64::from(MAX_A)) as u32
    }
    /// Half-open: trials that succeeded. Zero in every other state.
    fn b(self) -> u32 {
        ((self.0 >> B_SHIFT) & u64::from(MAX_B)) as u32
    }
    fn with_a(self, a: u32) -> Self {
        let a = u64::from(a.min(MAX_A));
        Self((self.0 & !(u64::from(MAX_A) << A_SHIFT)) | (a << A_SHIFT))
    }
    fn with_b(self, b: u32) -> Self {
        let b = u64::from(b.min(MAX_B));
        Self((self.0 & !(u64::from(MAX_B) << B_SHIFT)) | (b << B_SHIFT))
    }
    /// Same state and generation: only the counts may differ.
    fn same_epoch(self, other: Self) -> bool {
        self.state() == other.state() && self.generation() == other.generation()
    }
    fn next(self, state: State) -> Self {
        // The generation wraps after 2^21 transitions; only equality with a ticket's
        // generation matters, and no call lives through two million transitions.
        Self::new(
            state,
            (self.generation() + 1) & ((1 << (64 - GEN_SHIFT)) - 1),
        )
    }
}

/// How a breaker behaves; fixed when it is built.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub policy: TripPolicy,
    pub reset_timeout: Duration,
    pub backoff: Backoff,
    pub half_open_max_calls: u32,
    pub success_threshold: u32,
    /// Zero when slow calls are not tracked.
    pub slow_call_nanos: u64,
    pub call_timeout: Option<Duration>,
    pub max_retry_hint: Duration,
    pub in_flight: InFlightLimit,
}

/// What admitted a call; handed back with its outcome. Two words, so it travels in
/// registers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    /// Low to high: the `TicketKind` (2 bits), whether the in-flight bound holds a place
    /// for the call (1 bit), whether the failure run tracks it (1 bit), the generation
    /// (21 bits), the failure run's slot for it (39 bits).
    id: u64,
    /// When the call was admitted: a precise reading when slow calls are timed, else an
    /// admission stamp ([`Clock::stamp_nanos`]); orders calls for the failure run.
    started: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
enum TicketKind {
    Closed = 0,
    Trial = 1,
    /// The breaker is disabled: the outcome is only counted.
    Passthrough = 2,
}

const LIMITED: u64 = 1 << 2;
const TRACKED: u64 = 1 << 3;
/// The ticket bits that send an outcome off the fast path.
const SLOW_TICKET: u64 = 3 | LIMITED | TRACKED;
const TICKET_GEN_SHIFT: u32 = 4;
const TICKET_GEN_MASK: u64 = (1 << (64 - GEN_SHIFT)) - 1;
const SLOT_SHIFT: u32 = TICKET_GEN_SHIFT + (64 - GEN_SHIFT);

impl Ticket {
    fn new(kind: TicketKind, word: Word, started: u64) -> Self {
        Self {
            id: word.generation() << TICKET_GEN_SHIFT | kind as u64,
            started,
        }
    }
    /// The ticket of a call that holds a place under the in-flight bound ...
    fn limited(self) -> Self {
        Self {
            id: self.id | LIMITED,
            ..self
        }
    }
    /// ... and of one that no longer does.
    fn unlimited(self) -> Self {
        Self {
            id: self.id & !LIMITED,
            ..self
        }
    }
    fn is_limited(self) -> bool {
        self.id & LIMITED != 0
    }
    /// The ticket of a call admitted while a failure run was under way, which holds
    /// `slot` of the run's table.
    fn tracked(self, slot: usize) -> Self {
        Self {
            id: self.id | TRACKED | (slot as u64) << SLOT_SHIFT,
            ..self
        }
    }
    fn tracked_slot(self) -> Option<usize> {
        (self.id & TRACKED != 0).then_some((self.id >> SLOT_SHIFT) as usize)
    }
    /// A half-open circuit's trial call.
    pub(crate) fn is_trial(self) -> bool {
        matches!(self.kind(), TicketKind::Trial)
    }
    fn kind(self) -> TicketKind {
        match self.id & 3 {
            0 => TicketKind::Closed,
            1 => TicketKind::Trial,
            _ => TicketKind::Passthrough,
        }
    }
    fn generation(self) -> u64 {
        (self.id >> TICKET_GEN_SHIFT) & TICKET_GEN_MASK
    }
}

/// Rarely-changing facts kept beside the word, guarded by the transition mutex.
struct History {
    /// Trips since the circuit last closed (drives the backoff).
    trips: u32,
    opened_at: Option<u64>,
    failures_at_trip: u32,
    last_transition: Option<Transition>,
    rng: u64,
}

impl History {
    /// A uniform number in `[0, 1)` for the backoff's jitter (splitmix64).
    fn next_unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How long a transition to open keeps the circuit open.
#[derive(Clone, Copy, Debug)]
enum OpenTime {
    /// As the backoff policy says, lengthened to the upstream's hint (capped), if any.
    Policy(Option<Duration>),
    /// Exactly this long (a state shared from another replica).
    Exactly(Duration),
}

/// A consistent reading of the machine, for the status snapshot.
pub(crate) struct Reading {
    pub state: State,
    pub consecutive_failures: u32,
    pub half_open_in_flight: u32,
    pub retry_after: Option<Duration>,
    pub opened_at: Option<u64>,
    pub last_transition: Option<Transition>,
}

pub(crate) struct Machine {
    pub name: Box<str>,
    pub settings: Settings,
    pub clock: Clock,
    pub counters: Counters,
    word: AtomicU64,
    /// Clock reading at which an open circuit admits its first trial.
    open_until: AtomicU64,
    /// The current failure run (closed state), in admission order.
    run: Run,
    window: Option<SlidingWindow>,
    /// No slow-call timing and no window: a success on a clean closed circuit needs no
    /// work beyond counting.
    plain_success: bool,
    history: Mutex<History>,
    listeners: Box<[Arc<dyn Listener>]>,
    /// The bound on calls in flight, when there is one.
    pub(crate) limiter: Option<Limiter>,
}

impl Machine {
    pub(crate) fn new(
        name: String,
        settings: Settings,
        clock: Clock,
        listeners: Vec<Arc<dyn Listener>>,
        initial: State,
    ) -> Self {
        let window = settings
            .policy
            .rate()
            .map(|(_, window, _)| SlidingWindow::new(window));
        // Replicas must not share a jitter sequence (they would trial in lock-step):
        // std's per-process random hasher keys are the seed.
        let seed = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            &name,
        );
        let plain_success = settings.slow_call_nanos == 0 && window.is_none();
        let limiter = Limiter::new(settings.in_flight);
        Self {
            limiter,
            plain_success,
            name: name.into_boxed_str(),
            settings,
            clock,
            counters: Counters::new(),
            word: AtomicU64::new(Word::new(initial, 0).0),
            open_until: AtomicU64::new(0),
            run: Run::default(),
            window,
            history: Mutex::new(History {
                trips: 0,
                opened_at: None,
                failures_at_trip: 0,
                last_transition: None,
                rng: seed,
            }),
            listeners: listeners.into_boxed_slice(),
        }
    }

    /// Admits a call or says why not.
    ///
    /// Always inlined (measured: left to itself the compiler keeps it out of line in the
    /// caller's crate, doubling the closed-state cost); everything but the closed check
    /// is out of line.
    #[inline(always)]
    pub(crate) fn acquire(&self) -> Result<Ticket, Rejected> {
        // Acquire pairs with the transition's release, so an `Open` word is read with
        // the `open_until` that was stored before it.
        let current = Word(self.word.load(Acquire));
        // Closed with no failure run under way (state tag and count both zero), no bound.
        if current.0 & CLOSED_CLEAN_MASK == 0 && self.limiter.is_none() {
            return Ok(self.ticket(TicketKind::Closed, current));
        }
        self.acquire_not_closed(current)
    }

    /// A call on a closed circuit, within the in-flight bound if there is one.
    #[inline(never)]
    fn acquire_closed(&self, current: Word) -> Result<Ticket, Rejected> {
        let mut ticket = self.ticket(TicketKind::Closed, current);
        if let Some(limiter) = &self.limiter {
            if !limiter.admit(ticket.started) {
                // Shed, not failed: the circuit stays closed and the caller falls back.
                return Err(self.reject(State::Closed, Some(Duration::ZERO)));
            }
            ticket = ticket.limited();
        }
        if current.a() > 0 && self.settings.policy.consecutive().is_some() {
            if let Some(slot) = self.run.track(ticket.started) {
                ticket = ticket.tracked(slot);
            }
        }
        Ok(ticket)
    }

    #[inline(never)]
    fn acquire_not_closed(&self, current: Word) -> Result<Ticket, Rejected> {
        // The common open case, ahead of the general loop (measured: a third cheaper).
        // Must agree with the `State::Open` arm of `acquire_slow`.
        if current.state_is(State::Open) {
            // While open, rejecting must stay as cheap as admitting: no call, one clock read.
            let now = self.clock.now_nanos();
            let until = self.open_until.load(Relaxed);
            if now < until {
                return Err(self.reject(State::Open, Some(Duration::from_nanos(until - now))));
            }
        }
        self.acquire_slow(current)
    }

    #[inline(never)]
    fn acquire_slow(&self, mut current: Word) -> Result<Ticket, Rejected> {
        loop {
            match current.state() {
                State::Closed => return self.acquire_closed(current),
                State::Disabled => return Ok(self.ticket(TicketKind::Passthrough, current)),
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None)),
                State::Open => {
                    let now = self.clock.now_nanos();
                    let until = self.open_until.load(Relaxed);
                    if now < until {
                        let wait = Duration::from_nanos(until - now);
                        return Err(self.reject(State::Open, Some(wait)));
                    }
                    // The open time is over: the first caller here turns the circuit
                    // half-open and carries its first trial.
                    let to_half_open = (State::HalfOpen, Transition::ResetTimeoutElapsed);
                    if let Some(word) =
                        self.transition(current, to_half_open, 1, OpenTime::Policy(None))
                    {
                        return Ok(self.ticket(TicketKind::Trial, word));
                    }
                    current = Word(self.word.load(Acquire));
                }
                State::HalfOpen => {
                    if current.a() >= self.settings.half_open_max_calls {
                        return Err(self.reject(State::HalfOpen, Some(Duration::ZERO)));
                    }
                    let taken = current.with_a(current.a() + 1);
                    match self
                        .word
                        .compare_exchange_weak(current.0, taken.0, AcqRel, Acquire)
                    {
                        Ok(_) => return Ok(self.ticket(TicketKind::Trial, current)),
                        Err(actual) => current = Word(actual),
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn ticket(&self, kind: TicketKind, word: Word) -> Ticket {
        Ticket::new(kind, word, self.stamp())
    }

    /// A time on the tickets' scale: precise when slow calls are timed, else the stamp.
    #[inline(always)]
    fn stamp(&self) -> u64 {
        if self.settings.slow_call_nanos > 0 {
            self.start_time()
        } else {
            self.clock.stamp_nanos()
        }
    }

    #[cold]
    #[inline(never)]
    fn start_time(&self) -> u64 {
        self.clock.now_nanos()
    }

    #[inline]
    fn reject(&self, state: State, retry_after: Option<Duration>) -> Rejected {
        self.counters.add(Count::Rejected);
        if !self.listeners.is_empty() {
            self.emit(&Event::Rejected { state });
        }
        Rejected { state, retry_after }
    }

    /// Records how an admitted call ended. Always inlined, like [`Machine::acquire`].
    #[inline(always)]
    pub(crate) fn complete(&self, ticket: Ticket, outcome: Outcome) {
        // The common case, kept small enough to inline: a success on a closed circuit
        // with no failures to forget and nothing timed or windowed changes no state.
        if outcome == Outcome::Success
            && ticket.id & SLOW_TICKET == TicketKind::Closed as u64
            && self.plain_success
            && Word(self.word.load(Acquire)) == Word::new(State::Closed, ticket.generation())
        {
            self.counters.add(Count::Success);
            if !self.listeners.is_empty() {
                self.emit(&Event::Success);
            }
            return;
        }
        self.complete_any(ticket, outcome);
    }

    /// The call began answering (a stream's first piece): its place under the in-flight
    /// bound is given back now, with the time so far as its latency. Its outcome is still
    /// to come, on the ticket returned, which holds no place.
    pub(crate) fn responded(&self, ticket: Ticket) -> Ticket {
        if let (Some(limiter), true) = (&self.limiter, ticket.is_limited()) {
            limiter.release(ticket.started, self.stamp(), true);
        }
        ticket.unlimited()
    }

    #[inline(never)]
    fn complete_any(&self, ticket: Ticket, outcome: Outcome) {
        let outcome = self.slow_call_is_failure(ticket, outcome);
        if let (Some(limiter), true) = (&self.limiter, ticket.is_limited()) {
            limiter.release(ticket.started, self.stamp(), outcome == Outcome::Success);
        }
        let (count, event) = match outcome {
            Outcome::Success => (Count::Success, Event::Success),
            Outcome::Failure | Outcome::RetryAfter(_) => (Count::Failure, Event::Failure),
            Outcome::Ignored => (Count::Ignored, Event::Ignored),
        };
        self.counters.add(count);
        self.emit(&event);
        match ticket.kind() {
            TicketKind::Closed => self.complete_closed(ticket, outcome),
            TicketKind::Trial => self.complete_trial(ticket.generation(), outcome),
            TicketKind::Passthrough => {}
        }
    }

    fn slow_call_is_failure(&self, ticket: Ticket, outcome: Outcome) -> Outcome {
        let threshold = self.settings.slow_call_nanos;
        if threshold > 0
            && outcome == Outcome::Success
            && self.clock.now_nanos().saturating_sub(ticket.started) > threshold
        {
            Outcome::Failure
        } else {
            outcome
        }
    }

    fn complete_closed(&self, ticket: Ticket, outcome: Outcome) {
        let generation = ticket.generation();
        let tracked = ticket.tracked_slot();
        if let Some(slot) = tracked {
            self.run.untrack(slot, ticket.started);
        }
        let counted = match outcome {
            Outcome::Ignored => None,
            _ if outcome.is_failure() => self.count_failure(ticket),
            _ => self.count_success(ticket).map(|word| (word, false)),
        };
        let Some((after, trips)) = counted else {
            // Not counted, but a tracked call that finished may decide a pending run.
            if tracked.is_some() {
                self.trip_if_decided(generation);
            }
            return;
        };
        let failed = outcome.is_failure();
        let policy = self.settings.policy;
        let in_a_row = trips.then(|| Transition::ConsecutiveFailures(after.a()));
        let rate = match (policy.rate(), &self.window) {
            (Some((threshold, _, min_calls)), Some(window)) => {
                let now = self.clock.now_nanos();
                window.record(now, failed);
                // A success cannot raise the rate: only a failure needs the tally.
                let tally = failed.then(|| window.tally(now));
                tally
                    .filter(|t| t.calls >= min_calls && t.rate() >= threshold)
                    .map(|t| Transition::FailureRate {
                        rate: t.rate(),
                        calls: t.calls,
                    })
            }
            _ => None,
        };
        match in_a_row.or(rate) {
            Some(reason) => {
                self.transition(
                    after,
                    (State::Open, reason),
                    0,
                    OpenTime::Policy(retry_hint(outcome)),
                );
            }
            None if tracked.is_some() && !failed => self.trip_if_decided(generation),
            None => {}
        }
    }

    /// Counts a failure into the run. `None` when it came too late (the state moved on);
    /// else the new word and whether the run now trips.
    fn count_failure(&self, ticket: Ticket) -> Option<(Word, bool)> {
        let held = self.run.lock();
        let mut current = Word(self.word.load(Acquire));
        let after = loop {
            if current.state() != State::Closed || current.generation() != ticket.generation() {
                return None; // admitted before a transition: too late to count
            }
            self.run.failed(&held, ticket.started, current.a() == 0);
            let next = current.with_a(current.a() + 1);
            match self
                .word
                .compare_exchange_weak(current.0, next.0, AcqRel, Acquire)
            {
                Ok(_) => break next,
                Err(actual) => current = Word(actual),
            }
        };
        let long_enough = self
            .settings
            .policy
            .consecutive()
            .is_some_and(|n| after.a() >= n);
        let trips = long_enough && !self.run.undecided();
        Some((after, trips))
    }

    /// Counts a success: it ends the run if admitted no earlier than the run's first
    /// failure. `None` when it changes nothing (and no rate window needs it).
    fn count_success(&self, ticket: Ticket) -> Option<Word> {
        let mut current = Word(self.word.load(Acquire));
        loop {
            if current.state() != State::Closed || current.generation() != ticket.generation() {
                return None;
            }
            if current.a() == 0 || !self.run.ended_by(ticket.started) {
                // Nothing to reset, or a call admitted before every failure of the run: it
                // says nothing about the upstream since. Still counted by a rate window.
                // Not writing keeps the word's cache line shared between cores.
                return self.window.is_some().then_some(current);
            }
            let next = current.with_a(0);
            match self
                .word
                .compare_exchange_weak(current.0, next.0, AcqRel, Acquire)
            {
                Ok(_) => return Some(next),
                Err(actual) => current = Word(actual),
            }
        }
    }

    /// A run held back by calls still in flight trips once none are left.
    fn trip_if_decided(&self, generation: u64) {
        let current = Word(self.word.load(Acquire));
        let Some(n) = self.settings.policy.consecutive() else {
            return;
        };
        if current.state() != State::Closed
            || current.generation() != generation
            || current.a() < n
            || self.run.undecided()
        {
            return;
        }
        let reason = Transition::ConsecutiveFailures(current.a());
        // No upstream hint here: the failures that made the run have come and gone.
        self.transition(current, (State::Open, reason), 0, OpenTime::Policy(None));
    }

    fn complete_trial(&self, generation: u64, outcome: Outcome) {
        let mut current = Word(self.word.load(Acquire));
        loop {
            if current.state() != State::HalfOpen || current.generation() != generation {
                return;
            }
            let in_flight = current.a().saturating_sub(1);
            let next = match outcome {
                Outcome::Failure | Outcome::RetryAfter(_) => {
                    let to = (State::Open, Transition::TrialFailed);
                    if self
                        .transition(current, to, 0, OpenTime::Policy(retry_hint(outcome)))
                        .is_some()
                    {
                        return;
                    }
                    current = Word(self.word.load(Acquire));
                    continue;
                }
                Outcome::Success if current.b() + 1 >= self.settings.success_threshold => {
                    let to = (State::Closed, Transition::TrialsSucceeded);
                    if self
                        .transition(current, to, 0, OpenTime::Policy(None))
                        .is_some()
                    {
                        return;
                    }
                    current = Word(self.word.load(Acquire));
                    continue;
                }
                Outcome::Success => current.with_a(in_flight).with_b(current.b() + 1),
                // Gives the permit back without counting: an excluded error says nothing
                // about whether the upstream recovered.
                Outcome::Ignored => current.with_a(in_flight),
            };
            match self
                .word
                .compare_exchange_weak(current.0, next.0, AcqRel, Acquire)
            {
                Ok(_) => return,
                Err(actual) => current = Word(actual),
            }
        }
    }

    /// Moves from `expected`'s state and generation to `to`, with `a` set to `in_flight`.
    /// Returns the new word, or `None` if another transition got there first.
    #[cold]
    fn transition(
        &self,
        expected: Word,
        (to, reason): (State, Transition),
        in_flight: u32,
        open_time: OpenTime,
    ) -> Option<Word> {
        let from = expected.state();
        let new = expected.next(to).with_a(in_flight);
        {
            let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            let mut current = self.word.load(Acquire);
            // Only transitions change state or generation, and they hold this lock: once
            // the epoch matches here it stays; lock-free paths may still move the counts.
            if !Word(current).same_epoch(expected) {
                return None;
            }
            let now = self.clock.now_nanos();
            match to {
                State::Open => {
                    history.trips = history.trips.saturating_add(1);
                    history.failures_at_trip = match from {
                        State::Closed => Word(current).a(),
                        _ => history.failures_at_trip.saturating_add(1),
                    };
                    let unit = history.next_unit();
                    let s = &self.settings;
                    let open_for = match open_time {
                        OpenTime::Exactly(open_for) => open_for,
                        OpenTime::Policy(hint) => {
                            let open_for =
                                s.backoff.open_time(s.reset_timeout, history.trips, unit);
                            hint.map_or(open_for, |hint| open_for.max(hint.min(s.max_retry_hint)))
                        }
                    };
                    let until = now.saturating_add(open_for.as_nanos() as u64);
                    // Relaxed: published by the release of the word's exchange below.
                    self.open_until.store(until, Relaxed);
                    history.opened_at = Some(now);
                }
                State::ForcedOpen => history.opened_at = Some(now),
                State::Closed | State::Disabled => {
                    history.trips = 0;
                    history.opened_at = None;
                    history.failures_at_trip = 0;
                    self.run.clear();
                    if let Some(window) = &self.window {
                        window.clear();
                    }
                }
                State::HalfOpen => {}
            }
            history.last_transition = Some(reason);
            while let Err(actual) = self.word.compare_exchange(current, new.0, AcqRel, Acquire) {
                current = actual;
            }
        }
        if from != to {
            self.emit(&Event::StateChanged { from, to, reason });
        }
        Some(new)
    }

    /// Opens the circuit for exactly `open_for`, from whatever state it is in: the state
    /// another replica decided, applied here.
    pub(crate) fn open_shared(&self, open_for: Duration) {
        self.force_for(
            (State::Open, Transition::Shared),
            OpenTime::Exactly(open_for),
        );
    }

    /// An operator's transition: from whatever state the circuit is in.
    pub(crate) fn force(&self, to: State, reason: Transition) {
        self.force_for((to, reason), OpenTime::Policy(None));
    }

    /// Moves to `to` from whatever state the circuit is in, retrying past concurrent
    /// transitions.
    fn force_for(&self, to: (State, Transition), open_time: OpenTime) {
        loop {
            let current = Word(self.word.load(Acquire));
            if self.transition(current, to, 0, open_time).is_some() {
                return;
            }
        }
    }

    pub(crate) fn state(&self) -> State {
        Word(self.word.load(Acquire)).state()
    }

    /// The closed circuit's failure run: how many failures, and whether it is settled (no
    /// call admitted within it still in flight, so a success can no longer break it up).
    /// One atomic load when no run is under way.
    pub(crate) fn failure_run(&self) -> Option<(u32, bool)> {
        let current = Word(self.word.load(Acquire));
        if current.state() != State::Closed || current.a() == 0 {
            return None;
        }
        let settled = !self.run.undecided();
        Some((current.a(), settled))
    }

    pub(crate) fn read(&self) -> Reading {
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let word = Word(self.word.load(Acquire));
        let state = word.state();
        let retry_after = match state {
            State::Open => {
                let left = self.open_until.load(Relaxed);
                Some(Duration::from_nanos(
                    left.saturating_sub(self.clock.now_nanos()),
                ))
            }
            State::HalfOpen => Some(Duration::ZERO),
            _ => None,
        };
        Reading {
            state,
            consecutive_failures: match state {
                State::Closed => word.a(),
                State::Open | State::HalfOpen => history.failures_at_trip,
                State::ForcedOpen | State::Disabled => 0,
            },
            half_open_in_flight: if state == State::HalfOpen {
                word.a()
            } else {
                0
            },
            retry_after,
            opened_at: history.opened_at,
            last_transition: history.last_transition,
        }
    }

    #[inline(never)]
    fn emit(&self, event: &Event) {
        for listener in self.listeners.iter() {
            listener.on_event(&self.name, event);
        }
    }
}

fn retry_hint(outcome: Outcome) -> Option<Duration> {
    match outcome {
        Outcome::RetryAfter(hint) => Some(hint),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_fields_round_trip_without_touching_each_other() {
        let w = Word::new(State::HalfOpen, 77).with_a(MAX_A).with_b(3);
        assert_eq!(w.state(), State::HalfOpen);
        assert_eq!(w.generation(), 77);
        assert_eq!((w.a(), w.b()), (MAX_A, 3));
        let w = w.with_a(1).with_b(MAX_B);
        assert_eq!(
            (w.state(), w.generation(), w.a(), w.b()),
            (State::HalfOpen, 77, 1, MAX_B)
        );
    }

    #[test]
    fn next_bumps_the_generation_and_clears_counts() {
        let w = Word::new(State::Closed, 5).with_a(4).next(State::Open);
        assert_eq!(
            (w.state(), w.generation(), w.a(), w.b()),
            (State::Open, 6, 0, 0)
        );
    }

    #[test]
    fn generation_wraps_instead_of_spilling() {
        let top = (1u64 << (64 - GEN_SHIFT)) - 1;
        let w = Word::new(State::Closed, top).next(State::Open);
        assert_eq!((w.state(), w.generation()), (State::Open, 0));
    }
}
