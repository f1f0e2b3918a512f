//! The time source: a cheap monotonic clock that tests can drive by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

/// Tick of the [`Clock::coarse`] clock.
const COARSE_TICK: Duration = Duration::from_millis(1);

/// A monotonic clock, read in nanoseconds since the clock was made.
///
/// The system clock reads the CPU's time-stamp counter through [`quanta`] (~12
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
    /// Admission stamps may come from the background thread's time (it is running).
    stamps_coarse: bool,
    /// A manual clock's hand, which wakes the clock's sleepers when it moves.
    hand: Option<ManualClock>,
}

/// The handle that moves a [`Clock::manual`] clock forward.
#[derive(Clone, Debug)]
pub struct ManualClock {
    mock: Arc<quanta::Mock>,
    moved: Arc<Notify>,
}

impl Clock {
    /// The real monotonic clock: every read is a time-stamp counter read (~12 ns in a
    /// VM), and no thread runs beside the program.
    ///
    /// [`Clock::coarse`] makes a closed call about three times cheaper, but its thread
    /// wakes 1,000 times a second whether the program is busy or idle; next to a
    /// latency-bound server on few cores those wake-ups cost more than the counter reads
    /// they save, so it is opt-in.
    pub fn system() -> Self {
        Self::from_source(quanta::Clock::new())
    }

    /// The monotonic clock as last read by a background thread every `COARSE_TICK`
    /// (1 ms): reading it is a memory load (~1 ns) instead of a time-stamp counter read
    /// (~12 ns in a VM), which makes rejections while open about three times cheaper, at
    /// the price of trials starting up to a tick late. The thread is started once per
    /// process, on first use, and runs until the process ends.
    pub fn coarse() -> Self {
        // Without the thread (it could not start) the coarse time would never move:
        // fall back to the precise clock.
        let running = upkeep_running();
        Self {
            coarse: running,
            stamps_coarse: running,
            ..Self::from_source(quanta::Clock::new())
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
        let hand = ManualClock {
            mock,
            moved: Arc::new(Notify::new()),
        };
        let clock = Self {
            // A mock's recent time is its time.
            stamps_coarse: true,
            hand: Some(hand.clone()),
            ..Self::from_source(source)
        };
        (clock, hand)
    }

    fn from_source(source: quanta::Clock) -> Self {
        let origin = source.now();
        Self {
            source,
            origin,
            wall_origin: SystemTime::now(),
            coarse: false,
            stamps_coarse: false,
            hand: None,
        }
    }

    /// Time since this clock was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    /// Nanoseconds since this clock was made; the unit every breaker timestamp uses.
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        self.read(self.coarse)
    }

    /// An admission stamp, for ordering calls by when they were admitted: precise on the
    /// system clock, within one `COARSE_TICK` (and a memory load) on the coarse one.
    #[inline]
    pub(crate) fn stamp_nanos(&self) -> u64 {
        self.read(self.stamps_coarse)
    }

    #[inline]
    fn read(&self, coarse: bool) -> u64 {
        let now = if coarse {
            self.source.recent()
        } else {
            self.source.now()
        };
        // Saturating: the coarse time may trail the origin read at construction.
        // u64 nanoseconds last 584 years: truncation cannot happen in practice.
        now.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// A future that completes once `duration` has passed on this clock: a tokio timer
    /// (which tokio's paused time drives in tests), or, on a manual clock, when
    /// [`ManualClock::advance`] moves it past the deadline. Call timeouts use it, so they
    /// run on the same clock as the rest of the breaker.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        let inner = match &self.hand {
            None => SleepInner::Timer {
                timer: tokio::time::sleep(duration),
            },
            Some(hand) => {
                let (clock, moved) = (self.clone(), Arc::clone(&hand.moved));
                let deadline = self.now_nanos().saturating_add(duration.as_nanos() as u64);
                SleepInner::Manual {
                    wait: Box::pin(async move {
                        loop {
                            // Registered before the check, so an advance in between wakes it.
                            let moved = moved.notified();
                            tokio::pin!(moved);
                            moved.as_mut().enable();
                            if clock.now_nanos() >= deadline {
                                return;
                            }
                            moved.await;
                        }
                    }),
                }
            }
        };
        Sleep { inner }
    }

    /// Runs `future` until it completes (`Some`) or `limit` passes on this clock (`None`).
    pub async fn timeout<F: Future>(&self, limit: Duration, future: F) -> Option<F::Output> {
        let sleep = self.sleep(limit);
        tokio::pin!(future, sleep);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            sleep.as_mut().poll(cx).map(|()| None)
        })
        .await
    }

    /// The wall-clock time of a timestamp taken from this clock (for status reports).
    pub(crate) fn wall_time(&self, nanos: u64) -> SystemTime {
        self.wall_origin + Duration::from_nanos(nanos)
    }
}

/// Starts the process-wide thread that keeps the coarse time, once; whether it runs.
fn upkeep_running() -> bool {
    static UPKEEP: OnceLock<Option<quanta::Handle>> = OnceLock::new();
    UPKEEP
        .get_or_init(|| quanta::Upkeep::new(COARSE_TICK).start().ok())
        .is_some()
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl ManualClock {
    /// Moves the clock forward, waking whatever sleeps on it.
    pub fn advance(&self, by: Duration) {
        self.mock.increment(by);
        self.moved.notify_waiters();
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Clock::sleep`].
    pub struct Sleep {
        #[pin]
        inner: SleepInner,
    }
}

pin_project_lite::pin_project! {
    #[project = SleepProj]
    enum SleepInner {
        Timer { #[pin] timer: tokio::time::Sleep },
        Manual { wait: Pin<Box<dyn Future<Output = ()> + Send + Sync>> },
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project().inner.project() {
            SleepProj::Timer { timer } => timer.poll(cx),
            SleepProj::Manual { wait } => wait.as_mut().poll(cx),
        }
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sleep")
    }
}
