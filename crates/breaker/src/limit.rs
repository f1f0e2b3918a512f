//! A bound on calls in flight, so a hung upstream holds a handful of calls, not all of them.
//!
//! The breaker only learns of a hang when calls time out, one call timeout after it began;
//! until then every arriving call would join the wait. The bound sheds calls beyond it at
//! once (they count as rejected, not as failures), and the adaptive bound tightens as soon
//! as calls run late:
//!
//! - while fewer than `floor` calls in flight are older than `stall_factor` × the usual
//!   latency (mean plus three deviations of recent successes; and at least 100 ms past
//!   it), nothing is shed: a healthy
//!   upstream, however busy, a load that ramps up, or one long answer are never held back;
//! - once `floor` calls are late, the bound is Little's law with headroom: `headroom` × the success
//!   throughput of the last half second × the usual latency, plus `floor`. A slow upstream keeps
//!   what it serves; a stalled one, whose throughput falls to nothing, is held to `floor`.
//!
//! Calls in flight are kept in a small map under a mutex: LLM calls take milliseconds and
//! arrive by the hundreds per second, so the lock costs nothing that shows, and the
//! breaker's own closed path (with no bound) does not take it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::Notify;

/// How many calls the breaker lets be in flight at once.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum InFlightLimit {
    /// No bound (the default).
    #[default]
    Off,
    /// At most this many.
    Fixed(u32),
    /// A bound that follows the upstream's observed latency and throughput.
    Adaptive(Adaptive),
}

/// Settings of [`InFlightLimit::Adaptive`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adaptive {
    /// Calls always allowed, however stalled the upstream (default 4).
    pub floor: u32,
    /// The largest bound (default 1,000).
    pub max: u32,
    /// A call older than this many usual latencies means the upstream runs late
    /// (default 1.25).
    pub stall_factor: f64,
    /// Multiplier on Little's law when late (default 2).
    pub headroom: f64,
}

impl Default for Adaptive {
    fn default() -> Self {
        Self {
            floor: 4,
            max: 1_000,
            stall_factor: 1.25,
            headroom: 2.0,
        }
    }
}

/// Successes needed before the latency estimate is trusted (until then nothing is shed).
const WARM_UP: u32 = 10;
/// The success throughput is counted in buckets of this width ...
const BUCKET_NANOS: u64 = 100_000_000;
const BUCKETS: usize = 5;
/// ... over the last `RATE_BUCKETS` of them (half a second: short, so that a stall shows
/// soon; the bucket being filled counts as a whole one, so the rate errs high).
const RATE_BUCKETS: u64 = 5;
/// Weight of each new latency sample in the running mean and deviation: a longer latency
/// is learnt fast (so a slower but healthy upstream stops looking late after a few
/// answers), a shorter one slowly.
const ALPHA_UP: f64 = 0.3;
const ALPHA_DOWN: f64 = 0.05;
/// The usual latency never counts as shorter than this (fast upstreams jitter in ms).
const MIN_USUAL_NANOS: f64 = 20_000_000.0;
/// A call is late only once it is this much past the usual latency, too: a near-constant
/// latency has almost no deviation, and the caller's own scheduling jitter (tens of ms on
/// a busy machine) must not read as a stall.
const MIN_SLACK_NANOS: f64 = 100_000_000.0;

/// The state of a bound, for the status snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitStatus {
    /// `fixed` or `auto`.
    pub mode: &'static str,
    /// The bound now.
    pub limit: u32,
    /// Calls in flight now.
    pub in_flight: u32,
    /// Calls shed since the breaker was built.
    pub shed: u64,
    /// The usual latency the adaptive bound works from, in seconds (mean + 3 deviations).
    pub usual_latency_seconds: Option<f64>,
}

pub(crate) struct Limiter {
    kind: InFlightLimit,
    shed: AtomicU64,
    state: Mutex<Flights>,
    /// Woken when the upstream is found stalled (the bound turns from open to tight).
    stall: Notify,
}

struct Flights {
    /// Admission time of each call in flight, by its number.
    started: BTreeMap<u64, u64>,
    next: u64,
    samples: u32,
    mean: f64,
    deviation: f64,
    /// Successes per bucket, and the bucket number each slot holds.
    buckets: [(u64, u32); BUCKETS],
    /// Whether the last admission found enough calls late (the stall is announced once,
    /// when this turns true).
    late: bool,
}

impl Limiter {
    pub(crate) fn new(kind: InFlightLimit) -> Option<Self> {
        (kind != InFlightLimit::Off).then(|| Self {
            kind,
            shed: AtomicU64::new(0),
            state: Mutex::new(Flights {
                started: BTreeMap::new(),
                next: 0,
                samples: 0,
                mean: 0.0,
                deviation: 0.0,
                buckets: [(0, 0); BUCKETS],
                late: false,
            }),
            stall: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Flights> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place for a call admitted at `now`, or `None` when the bound is reached.
    pub(crate) fn admit(&self, now: u64) -> Option<u64> {
        let mut flights = self.lock();
        let (bound, late) = self.bound(&flights, now);
        if late && !std::mem::replace(&mut flights.late, true) {
            // Everyone waiting on a call may stop: the upstream has stalled.
            self.stall.notify_waiters();
        }
        flights.late = late;
        if flights.started.len() as u64 >= u64::from(bound) {
            drop(flights);
            self.shed.fetch_add(1, Relaxed);
            return None;
        }
        let id = flights.next;
        flights.next += 1;
        flights.started.insert(id, now);
        Some(id)
    }

    /// Gives back the place of call `id`; a success feeds the latency and throughput.
    pub(crate) fn release(&self, id: u64, now: u64, success: bool) {
        let mut flights = self.lock();
        let Some(started) = flights.started.remove(&id) else {
            return;
        };
        if success {
            flights.sample(now.saturating_sub(started) as f64, now);
        }
    }

    /// Completes at the next stall (see [`crate::CircuitBreaker::stalled`]).
    pub(crate) async fn stalled(&self) {
        self.stall.notified().await;
    }

    /// The bound at `now`, and whether enough calls are late for it to be tight.
    fn bound(&self, flights: &Flights, now: u64) -> (u32, bool) {
        match self.kind {
            InFlightLimit::Off => (u32::MAX, false),
            InFlightLimit::Fixed(n) => (n, false),
            InFlightLimit::Adaptive(a) => {
                let Some(usual) = flights.usual() else {
                    return (a.max, false);
                };
                // Places are numbered in admission order, so the late calls come first.
                let late_after = (a.stall_factor * usual).max(usual + MIN_SLACK_NANOS);
                let late = flights
                    .started
                    .values()
                    .take_while(|&&t| now.saturating_sub(t) as f64 > late_after)
                    .take(a.floor as usize)
                    .count();
                if late < a.floor as usize {
                    return (a.max, false);
                }
                let little = a.headroom * flights.throughput(now) * usual / 1e9;
                let bound = (little.ceil() as u32).saturating_add(a.floor).min(a.max);
                (bound, true)
            }
        }
    }

    pub(crate) fn status(&self, now: u64) -> LimitStatus {
        let flights = self.lock();
        LimitStatus {
            mode: match self.kind {
                InFlightLimit::Adaptive(_) => "auto",
                _ => "fixed",
            },
            limit: self.bound(&flights, now).0,
            in_flight: flights.started.len() as u32,
            shed: self.shed.load(Relaxed),
            usual_latency_seconds: flights.usual().map(|n| n / 1e9),
        }
    }
}

impl Flights {
    fn sample(&mut self, latency: f64, now: u64) {
        if self.samples == 0 {
            self.mean = latency;
        } else {
            let alpha = if latency > self.mean {
                ALPHA_UP
            } else {
                ALPHA_DOWN
            };
            self.deviation += alpha * ((latency - self.mean).abs() - self.deviation);
            self.mean += alpha * (latency - self.mean);
        }
        self.samples = self.samples.saturating_add(1);
        let bucket = now / BUCKET_NANOS;
        let slot = &mut self.buckets[(bucket % BUCKETS as u64) as usize];
        if slot.0 != bucket {
            *slot = (bucket, 0);
        }
        slot.1 += 1;
    }

    /// Mean plus three deviations of recent successes, in ns, once there are enough.
    fn usual(&self) -> Option<f64> {
        (self.samples >= WARM_UP).then(|| (self.mean + 3.0 * self.deviation).max(MIN_USUAL_NANOS))
    }

    /// Successes per second over the last half second.
    fn throughput(&self, now: u64) -> f64 {
        let current = now / BUCKET_NANOS;
        let recent = |&&(bucket, _): &&(u64, u32)| current.saturating_sub(bucket) < RATE_BUCKETS;
        let count: u32 = self.buckets.iter().filter(recent).map(|&(_, n)| n).sum();
        f64::from(count) * 1e9 / (RATE_BUCKETS * BUCKET_NANOS) as f64
    }
}

impl InFlightLimit {
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        match *self {
            Self::Fixed(0) => Err("a fixed bound must be at least 1 (use Off for none)"),
            Self::Adaptive(a) if a.floor == 0 || a.max < a.floor => {
                Err("adaptive bound needs 1 <= floor <= max")
            }
            Self::Adaptive(a) if !(a.stall_factor >= 1.0 && a.stall_factor.is_finite()) => {
                Err("stall_factor must be a finite number >= 1")
            }
            Self::Adaptive(a) if !(a.headroom >= 1.0 && a.headroom.is_finite()) => {
                Err("headroom must be a finite number >= 1")
            }
            _ => Ok(()),
        }
    }
}

/// For doc and status: the bound as configured.
impl std::fmt::Display for InFlightLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Fixed(n) => write!(f, "{n}"),
            Self::Adaptive(_) => f.write_str("auto"),
        }
    }
}
