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
//! Lock- and allocation-free, since every call on a closed circuit passes here: admission is
//! a compare-and-swap of the count in flight against a bound that the first call of each
//! tick (2^24 ns, ~17 ms) recomputes; calls in flight are counted by the tick they were
//! admitted in, which is all "how many are late" needs. The latency estimate is updated
//! with plain loads and stores: two successes finishing at once may drop one sample, which
//! an estimate can afford.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

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
const WARM_UP: u64 = 10;
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

/// Calls in flight are counted by admission tick: 2^24 ns (~17 ms), the granularity of
/// "late" (and of the bound's recomputation) ...
const TICK_SHIFT: u32 = 24;
/// ... over a ring of this many ticks (~69 s). A call older than the ring counts in the slot
/// of a newer tick: it can only look younger than it is.
const RING: usize = 4096;
/// Bits of a throughput bucket's word that hold its count (the rest: the bucket's number).
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

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
    in_flight: AtomicU32,
    /// Calls in flight by admission tick, modulo [`RING`].
    by_tick: Box<[AtomicU32]>,
    /// The tick the adaptive bound was last computed in ...
    tick: AtomicU64,
    /// ... and what it came to: the bound << 1 | whether enough calls were late.
    bound: AtomicU64,
    samples: AtomicU64,
    /// Running mean and deviation of successes' latency, in ns (`f64` bits).
    mean: AtomicU64,
    deviation: AtomicU64,
    /// Successes per bucket: the bucket's number << [`COUNT_BITS`] | its count.
    buckets: [AtomicU64; BUCKETS],
    /// Woken when the upstream is found stalled (the bound turns from open to tight).
    stall: Notify,
}

impl Limiter {
    pub(crate) fn new(kind: InFlightLimit) -> Option<Self> {
        let open = match kind {
            InFlightLimit::Off => return None,
            InFlightLimit::Fixed(n) => n,
            InFlightLimit::Adaptive(a) => a.max,
        };
        Some(Self {
            kind,
            shed: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            by_tick: (0..RING).map(|_| AtomicU32::new(0)).collect(),
            tick: AtomicU64::new(0),
            bound: AtomicU64::new(u64::from(open) << 1),
            samples: AtomicU64::new(0),
            mean: AtomicU64::new(0),
            deviation: AtomicU64::new(0),
            buckets: Default::default(),
            stall: Notify::new(),
        })
    }

    /// Takes a place for a call admitted at `now`; false when the bound is reached.
    pub(crate) fn admit(&self, now: u64) -> bool {
        let bound = match self.kind {
            InFlightLimit::Off => u32::MAX,
            InFlightLimit::Fixed(n) => n,
            InFlightLimit::Adaptive(a) => self.adaptive_bound(a, now),
        };
        let taken = self
            .in_flight
            .fetch_update(Relaxed, Relaxed, |n| (n < bound).then_some(n + 1));
        if taken.is_err() {
            self.shed.fetch_add(1, Relaxed);
            return false;
        }
        self.by_tick[ring_slot(now)].fetch_add(1, Relaxed);
        true
    }

    /// Gives back the place of a call admitted at `started`; a success feeds the latency
    /// and throughput.
    pub(crate) fn release(&self, started: u64, now: u64, success: bool) {
        self.in_flight.fetch_sub(1, Relaxed);
        self.by_tick[ring_slot(started)].fetch_sub(1, Relaxed);
        if success {
            self.sample(now.saturating_sub(started) as f64, now);
        }
    }

    /// Completes at the next stall (see [`crate::CircuitBreaker::stalled`]).
    pub(crate) async fn stalled(&self) {
        self.stall.notified().await;
    }

    /// The adaptive bound at `now`: recomputed by the first call of each tick.
    fn adaptive_bound(&self, a: Adaptive, now: u64) -> u32 {
        let tick = now >> TICK_SHIFT;
        let seen = self.tick.load(Relaxed);
        if seen != tick
            && self
                .tick
                .compare_exchange(seen, tick, Relaxed, Relaxed)
                .is_ok()
        {
            let (bound, late) = self.compute(a, now);
            let was = self
                .bound
                .swap(u64::from(bound) << 1 | u64::from(late), Relaxed);
            if late && was & 1 == 0 {
                // Everyone waiting on a call may stop: the upstream has stalled.
                self.stall.notify_waiters();
            }
        }
        (self.bound.load(Relaxed) >> 1) as u32
    }

    /// The adaptive bound at `now`, and whether enough calls are late for it to be tight.
    fn compute(&self, a: Adaptive, now: u64) -> (u32, bool) {
        let Some(usual) = self.usual() else {
            return (a.max, false);
        };
        let late_after = (a.stall_factor * usual).max(usual + MIN_SLACK_NANOS);
        // The young are counted (a tick that is only partly late counts as young), the
        // rest are late.
        let young_ticks = (late_after as u64 >> TICK_SHIFT) as usize + 1;
        let young: u32 = if young_ticks >= RING {
            u32::MAX
        } else {
            let tick = (now >> TICK_SHIFT) as usize;
            (0..young_ticks)
                .map(|back| self.by_tick[tick.wrapping_sub(back) % RING].load(Relaxed))
                .sum()
        };
        let late = self.in_flight.load(Relaxed).saturating_sub(young);
        if late < a.floor {
            return (a.max, false);
        }
        let little = a.headroom * self.throughput(now) * usual / 1e9;
        let bound = (little.ceil() as u32).saturating_add(a.floor).min(a.max);
        (bound, true)
    }

    pub(crate) fn status(&self, now: u64) -> LimitStatus {
        let (mode, limit) = match self.kind {
            InFlightLimit::Adaptive(a) => ("auto", self.compute(a, now).0),
            InFlightLimit::Fixed(n) => ("fixed", n),
            InFlightLimit::Off => ("off", u32::MAX),
        };
        LimitStatus {
            mode,
            limit,
            in_flight: self.in_flight.load(Relaxed),
            shed: self.shed.load(Relaxed),
            usual_latency_seconds: self.usual().map(|n| n / 1e9),
        }
    }

    fn sample(&self, latency: f64, now: u64) {
        let load = |x: &AtomicU64| f64::from_bits(x.load(Relaxed));
        if self.samples.fetch_add(1, Relaxed) == 0 {
            self.mean.store(latency.to_bits(), Relaxed);
        } else {
            let (mut mean, mut deviation) = (load(&self.mean), load(&self.deviation));
            let alpha = if latency > mean { ALPHA_UP } else { ALPHA_DOWN };
            deviation += alpha * ((latency - mean).abs() - deviation);
            mean += alpha * (latency - mean);
            self.mean.store(mean.to_bits(), Relaxed);
            self.deviation.store(deviation.to_bits(), Relaxed);
        }
        let bucket = now / BUCKET_NANOS;
        let slot = &self.buckets[(bucket % BUCKETS as u64) as usize];
        let _ = slot.fetch_update(Relaxed, Relaxed, |word| {
            Some(match word >> COUNT_BITS == bucket {
                true if word & COUNT_MASK == COUNT_MASK => word,
                true => word + 1,
                false => bucket << COUNT_BITS | 1,
            })
        });
    }

    /// Mean plus three deviations of recent successes, in ns, once there are enough.
    fn usual(&self) -> Option<f64> {
        let load = |x: &AtomicU64| f64::from_bits(x.load(Relaxed));
        (self.samples.load(Relaxed) >= WARM_UP)
            .then(|| (load(&self.mean) + 3.0 * load(&self.deviation)).max(MIN_USUAL_NANOS))
    }

    /// Successes per second over the last half second.
    fn throughput(&self, now: u64) -> f64 {
        let current = now / BUCKET_NANOS;
        let count: u64 = self
            .buckets
            .iter()
            .map(|slot| slot.load(Relaxed))
            .filter(|word| current.saturating_sub(word >> COUNT_BITS) < RATE_BUCKETS)
            .map(|word| word & COUNT_MASK)
            .sum();
        count as f64 * 1e9 / (RATE_BUCKETS * BUCKET_NANOS) as f64
    }
}

fn ring_slot(nanos: u64) -> usize {
    (nanos >> TICK_SHIFT) as usize % RING
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
