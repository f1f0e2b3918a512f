//! What the breaker costs per call, against a bare call and the `failsafe` crate, measured
//! in one run: closed-state overhead (plain, under the adaptive in-flight bound, and while a
//! failure run is under way), rejection while open, and two threads on one breaker.
//!
//! `cargo bench -p breaker --bench overhead` prints criterion's figures, then the ratios.

use std::hint::black_box;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use breaker::{Adaptive, CircuitBreaker, Clock, InFlightLimit, Outcome, TripPolicy};
use criterion::{Criterion, criterion_group};
use failsafe::{CircuitBreaker as _, Config, backoff, failure_policy};

const LONG: Duration = Duration::from_secs(3600);

fn ours() -> CircuitBreaker {
    ours_with(Clock::system())
}

fn ours_with(clock: Clock) -> CircuitBreaker {
    ours_limited(clock, InFlightLimit::Off)
}

fn ours_limited(clock: Clock, limit: InFlightLimit) -> CircuitBreaker {
    CircuitBreaker::builder("bench")
        .trip_policy(TripPolicy::consecutive_failures(5))
        .reset_timeout(LONG)
        .max_in_flight(limit)
        .clock(clock)
        .build()
        .expect("valid")
}

fn theirs() -> impl failsafe::CircuitBreaker + Clone + Send + Sync {
    // failsafe's exponential backoff panics below 1 s: constant is its fair equivalent.
    Config::new()
        .failure_policy(failure_policy::consecutive_failures(
            5,
            backoff::constant(LONG),
        ))
        .build()
}

#[inline(never)]
fn work(x: u64) -> Result<u64, ()> {
    Ok(black_box(x).wrapping_add(1))
}

fn closed(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed");
    // Each returns whether the call succeeded, so all three hand back the same value.
    g.bench_function("bare", |b| b.iter(|| work(black_box(1)).is_ok()));
    let breaker = ours();
    g.bench_function("breaker", |b| {
        b.iter(|| breaker.call_sync(|| work(black_box(1))).is_ok())
    });
    let fs = theirs();
    g.bench_function("failsafe", |b| {
        b.iter(|| fs.call(|| work(black_box(1))).is_ok())
    });
    let coarse = ours_with(Clock::coarse());
    g.bench_function("breaker_coarse", |b| {
        b.iter(|| coarse.call_sync(|| work(black_box(1))).is_ok())
    });
    // The service's default: the adaptive bound on calls in flight.
    let bounded = ours_limited(
        Clock::system(),
        InFlightLimit::Adaptive(Adaptive::default()),
    );
    g.bench_function("breaker_bound", |b| {
        b.iter(|| bounded.call_sync(|| work(black_box(1))).is_ok())
    });
    // A failure run under way: every call is tracked until it finishes. Ignored outcomes
    // keep the run going (a success admitted after the failure would end it).
    let in_run = ours();
    let _ = in_run.call_sync(|| Err::<(), _>(()));
    assert!(in_run.failure_run().is_some());
    g.bench_function("breaker_in_run", |b| {
        b.iter(|| {
            let permit = in_run.try_acquire().expect("closed");
            let ok = work(black_box(1)).is_ok();
            permit.record(Outcome::Ignored);
            ok
        })
    });
    g.finish();
}

fn rejected(c: &mut Criterion) {
    let mut g = c.benchmark_group("rejected");
    for (name, clock) in [
        ("breaker", Clock::system()),
        ("breaker_coarse", Clock::coarse()),
    ] {
        let breaker = ours_with(clock);
        for _ in 0..5 {
            let _ = breaker.call_sync(|| Err::<(), _>(()));
        }
        assert!(breaker.try_acquire().is_err());
        g.bench_function(name, |b| {
            b.iter(|| breaker.call_sync(|| work(black_box(1))))
        });
    }
    let fs = theirs();
    for _ in 0..5 {
        let _ = fs.call(|| Err::<(), _>(()));
    }
    assert!(!fs.is_call_permitted());
    g.bench_function("failsafe", |b| b.iter(|| fs.call(|| work(black_box(1)))));
    g.finish();
}

/// Runs `iters` calls on each of `threads` threads at once; returns the wall time.
fn parallel(threads: usize, iters: u64, call: &(dyn Fn() + Sync)) -> Duration {
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                start.wait();
                for _ in 0..iters {
                    call();
                }
            });
        }
        start.wait();
        let t0 = Instant::now();
        // Scope end joins the workers; the time includes the last one finishing.
        t0
    })
    .elapsed()
}

fn threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("threads");
    let breaker = ours();
    let fs = theirs();
    for n in [1usize, 2] {
        // Per-thread iterations: time per iteration is the time for `n` calls at once.
        g.bench_function(format!("breaker/{n}"), |b| {
            b.iter_custom(|iters| {
                parallel(n, iters, &|| {
                    let _ = black_box(breaker.call_sync(|| work(black_box(1))));
                })
            })
        });
        g.bench_function(format!("failsafe/{n}"), |b| {
            b.iter_custom(|iters| {
                parallel(n, iters, &|| {
                    let _ = black_box(fs.call(|| work(black_box(1))));
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = closed, rejected, threads
}

/// Mean time per iteration of one benchmark, from criterion's report of this run.
fn mean_ns(id: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    let mut path = Path::new(&dir).join("criterion");
    if !path.exists() {
        path = Path::new("../../target/criterion").to_path_buf();
    }
    let text = std::fs::read_to_string(path.join(id).join("new/estimates.json")).ok()?;
    // {"mean":{"confidence_interval":{...},"point_estimate":12.3,...},...}
    let rest = &text[text.find("\"mean\"")?..];
    let point = &rest[rest.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    point.split([',', '}']).next()?.parse().ok()
}

fn ratios() {
    let get = |id: &str| mean_ns(id).unwrap_or(f64::NAN);
    let (bare, ours_closed, fs_closed) = (
        get("closed/bare"),
        get("closed/breaker"),
        get("closed/failsafe"),
    );
    let (ours_rej, fs_rej) = (get("rejected/breaker"), get("rejected/failsafe"));
    let coarse_rej = get("rejected/breaker_coarse");
    let (bound, in_run) = (get("closed/breaker_bound"), get("closed/breaker_in_run"));
    let coarse_closed = get("closed/breaker_coarse");
    let scale = |one: f64, two: f64| 2.0 * one / two;
    let lines = [
        format!(
            "closed:   breaker adds {:.1} ns to a {bare:.1} ns call; failsafe adds {:.1} ns  → {:.1}× less overhead (precise clock)",
            ours_closed - bare,
            fs_closed - bare,
            (fs_closed - bare) / (ours_closed - bare)
        ),
        format!(
            "closed:   breaker {ours_closed:.1} ns vs failsafe {fs_closed:.1} ns per call → {:.1}× faster (precise clock)",
            fs_closed / ours_closed
        ),
        format!(
            "closed:   breaker {coarse_closed:.1} ns vs failsafe {fs_closed:.1} ns per call → {:.1}× faster (coarse clock)",
            fs_closed / coarse_closed
        ),
        format!(
            "closed:   {bound:.1} ns under the adaptive bound, {in_run:.1} ns in a failure run (plain: {ours_closed:.1} ns)"
        ),
        format!(
            "rejected: breaker {ours_rej:.1} ns vs failsafe {fs_rej:.1} ns per call → {:.1}× faster (precise clock)",
            fs_rej / ours_rej
        ),
        format!(
            "rejected: breaker {coarse_rej:.1} ns vs failsafe {fs_rej:.1} ns per call → {:.1}× faster (coarse clock)",
            fs_rej / coarse_rej
        ),
        format!(
            "threads:  2 threads give {:.2}× one thread's throughput (failsafe: {:.2}×)",
            scale(get("threads/breaker_1"), get("threads/breaker_2")),
            scale(get("threads/failsafe_1"), get("threads/failsafe_2"))
        ),
    ];
    eprintln!("\n== ratios (same run) ==");
    for line in lines {
        eprintln!("{line}");
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
