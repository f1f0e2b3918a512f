//! The time source: a cheap monotonic clock that tests can drive by hand.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// Tick of the [`Clock::coarse`] clock.
const COARSE_TICK: Duration = Duration::from_millis(1);

/// A monotonic clock, read in nanoseconds since the clock was made.
///
/// The system clock reads the CPU's time-stamp counter through [`quanta`] (a few
/// nanoseconds, versus ~20 ns for `Instant::now` in a VM), which keeps the open-state
/// rejection path fast. [`Clock::manual`] gives a clock that only moves when told to, so
/// state-machine tests are deterministic and never sleep.
#[derive(Clone, Debug)]
pub struct Clock {
    source: quanta::Clock,
    origin: quanta::Instant,
    wall_origin: SystemTime,
    /// Read the time kept by a background thread instead of the CPU counter.
    coarse: bool,
}

/// The handle that moves a [`Clock::manual`] clock forward.
#[derive(Clone, Debug)]
pub struct ManualClock {
    mock: Arc<quanta::Mock>,
}

impl Clock {
    /// The real monotonic clock.
    pub fn system() -> Self {
        Self::from_source(quanta::Clock::new())
    }

    /// The monotonic clock as last read by a background thread every `COARSE_TICK`
    /// (1 ms): reading it is a memory load (~1 ns) instead of a time-stamp counter read
    /// (~12 ns in a VM), which makes rejections while open about three times cheaper, at
    /// the price of trials starting up to a tick late. The thread is started once per
    /// process, on first use, and runs until the process ends.
    pub fn coarse() -> Self {
        static UPKEEP: OnceLock<Option<quanta::Handle>> = OnceLock::new();
        let running = UPKEEP
            .get_or_init(|| quanta::Upkeep::new(COARSE_TICK).start().ok())
            .is_some();
        Self {
            // Without the thread (it could not start) the coarse time would never move:
            // fall back to the precise clock.
            coarse: running,
            ..Self::system()
        }
    }

    /// A clock that stands still until [`ManualClock::advance`] moves it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (clock, hand) = breaker::Clock::manual();
    /// hand.advance(Duration::from_secs(3));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(3));
    /// ```
    pub fn manual() -> (Self, ManualClock) {
        let (source, mock) = quanta::Clock::mock();
        (Self::from_source(source), ManualClock { mock })
    }

    fn from_source(source: quanta::Clock) -> Self {
        let origin = source.now();
        Self {
            source,
            origin,
            wall_origin: SystemTime::now(),
            coarse: false,
        }
    }

    /// Time since this clock was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    /// Nanoseconds since this clock was made; the unit every breaker timestamp uses.
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        let now = if self.coarse {
            self.source.recent()
        } else {
            self.source.now()
        };
        // Saturating: the coarse time may trail the origin read at construction.
        // u64 nanoseconds last 584 years: truncation cannot happen in practice.
        now.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// The wall-clock time of a timestamp taken from this clock (for status reports).
    pub(crate) fn wall_time(&self, nanos: u64) -> SystemTime {
        self.wall_origin + Duration::from_nanos(nanos)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.mock.increment(by);
    }
}
