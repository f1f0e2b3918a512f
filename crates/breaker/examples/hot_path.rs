//! The breaker's hot paths in a plain loop, for instruction-level profiling (criterion's
//! harness hides them in its own code):
//!
//! ```text
//! cargo build --release -p breaker --example hot_path
//! valgrind --tool=callgrind target/release/examples/hot_path 1000000
//! callgrind_annotate --auto=yes callgrind.out.*
//! ```
//!
//! Also prints rough per-call times, including what a clock read costs on this machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use breaker::{CircuitBreaker, Clock};

#[inline(never)]
fn work(x: u64) -> Result<u64, ()> {
    Ok(black_box(x).wrapping_add(1))
}

fn per_call(label: &str, n: u64, mut f: impl FnMut()) {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    eprintln!(
        "{label:>24}: {:6.2} ns",
        started.elapsed().as_nanos() as f64 / n as f64
    );
}

fn breaker(clock: Clock) -> CircuitBreaker {
    CircuitBreaker::builder("hot")
        .reset_timeout(Duration::from_secs(3600))
        .clock(clock)
        .build()
        .expect("valid settings")
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50_000_000);
    let tsc = quanta::Clock::new();
    per_call("quanta::Clock::now", n, || {
        black_box(tsc.now());
    });
    per_call("std::time::Instant::now", n, || {
        black_box(Instant::now());
    });
    per_call("bare call", n, || {
        let _ = black_box(work(black_box(1)));
    });
    for (label, clock) in [
        ("closed (precise)", Clock::system()),
        ("closed (coarse)", Clock::coarse()),
    ] {
        let closed = breaker(clock);
        per_call(label, n, || {
            let _ = black_box(closed.call_sync(|| work(black_box(1))));
        });
    }
    for (label, clock) in [
        ("rejected (precise)", Clock::system()),
        ("rejected (coarse)", Clock::coarse()),
    ] {
        let open = breaker(clock);
        for _ in 0..5 {
            let _ = open.call_sync(|| Err::<(), ()>(()));
        }
        per_call(label, n, || {
            let _ = black_box(open.call_sync(|| work(black_box(1))));
        });
    }
}
