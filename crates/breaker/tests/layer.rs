//! The breaker as tower middleware.

use std::convert::Infallible;
use std::time::Duration;

use breaker::{CallError, CircuitBreaker, CircuitBreakerLayer, Clock, Outcome, State, TripPolicy};
use tower::{Service, ServiceBuilder, ServiceExt};

fn open_after(n: u32) -> (CircuitBreaker, breaker::ManualClock) {
    let (clock, hand) = Clock::manual();
    let b = CircuitBreaker::builder("svc")
        .trip_policy(TripPolicy::consecutive_failures(n))
        .clock(clock)
        .build()
        .expect("valid");
    (b, hand)
}

#[tokio::test]
async fn failing_responses_open_the_circuit_and_rejections_skip_the_service() {
    let (breaker, _) = open_after(2);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = calls.clone();
    let mut svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .service_fn(move |_: ()| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err::<(), _>("down") }
        });
    for _ in 0..2 {
        let r = svc.ready().await.expect("ready").call(()).await;
        assert!(matches!(r, Err(CallError::Inner("down"))));
    }
    let r = svc.ready().await.expect("ready").call(()).await;
    assert!(matches!(r, Err(CallError::Rejected(rej)) if rej.state == State::Open));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_custom_classifier_can_ignore_errors() {
    let (breaker, _) = open_after(1);
    let classify = |r: &Result<u16, Infallible>| match r {
        Ok(status) if *status >= 500 => Outcome::Failure,
        Ok(status) if *status >= 400 => Outcome::Ignored,
        _ => Outcome::Success,
    };
    let mut svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::with_classifier(
            breaker.clone(),
            classify,
        ))
        .service_fn(|status: u16| async move { Ok::<_, Infallible>(status) });
    assert_eq!(
        svc.ready()
            .await
            .expect("ready")
            .call(404)
            .await
            .expect("ran"),
        404
    );
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(
        svc.ready()
            .await
            .expect("ready")
            .call(503)
            .await
            .expect("ran"),
        503
    );
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test]
async fn dropping_a_response_future_releases_the_trial_permit() {
    let (breaker, hand) = open_after(1);
    breaker
        .try_acquire()
        .expect("closed")
        .record(Outcome::Failure);
    hand.advance(Duration::from_secs(60));
    let mut svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .service_fn(|hang: bool| async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Ok::<_, Infallible>(())
        });
    let hung = svc.ready().await.expect("ready").call(true);
    assert_eq!(breaker.status().half_open_in_flight, 1);
    drop(hung);
    assert_eq!(breaker.status().half_open_in_flight, 0);
    svc.ready()
        .await
        .expect("ready")
        .call(false)
        .await
        .expect("trial admitted");
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_breakers_call_timeout_applies_to_the_layer_and_counts_as_a_failure() {
    let breaker = CircuitBreaker::builder("svc")
        .trip_policy(TripPolicy::consecutive_failures(1))
        .call_timeout(Duration::from_secs(2))
        .build()
        .expect("valid");
    let mut svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .service_fn(|_: ()| std::future::pending::<Result<(), Infallible>>());
    let r = svc.ready().await.expect("ready").call(()).await;
    assert!(matches!(r, Err(CallError::Timeout(d)) if d == Duration::from_secs(2)));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.status().failures, 1);
}
