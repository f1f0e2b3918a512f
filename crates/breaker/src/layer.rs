//! The breaker as tower middleware.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

use crate::breaker::{CircuitBreaker, OwnedPermit};
use crate::classify::{Classify, DefaultClassifier, Outcome};
use crate::clock::Sleep;
use crate::error::{CallError, Rejected};

/// Wraps a service so every request goes through a [`CircuitBreaker`].
///
/// The breaker's call timeout applies here as in [`CircuitBreaker::call`]: a request past
/// it is abandoned with [`CallError::Timeout`] and counted as a failure.
///
/// ```
/// use tower::{Service, ServiceBuilder, ServiceExt};
/// use breaker::{CircuitBreaker, CircuitBreakerLayer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let breaker = CircuitBreaker::builder("echo").build().expect("valid");
/// let mut svc = ServiceBuilder::new()
///     .layer(CircuitBreakerLayer::new(breaker))
///     .service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x + 1) });
/// let answer = svc.ready().await.expect("ready").call(41).await.expect("closed");
/// assert_eq!(answer, 42);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<C = DefaultClassifier> {
    breaker: CircuitBreaker,
    classify: C,
}

impl CircuitBreakerLayer {
    /// A layer where `Ok` responses are successes and errors are failures.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            classify: DefaultClassifier,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// A layer with its own classification (e.g. an HTTP `4xx` response is ignored, a
    /// `5xx` response is a failure).
    pub fn with_classifier(breaker: CircuitBreaker, classify: C) -> Self {
        Self { breaker, classify }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// A service whose calls go through a [`CircuitBreaker`]; built by [`CircuitBreakerLayer`].
#[derive(Clone, Debug)]
pub struct CircuitBreakerService<S, C = DefaultClassifier> {
    inner: S,
    breaker: CircuitBreaker,
    classify: C,
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = CallError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the inner service's; the breaker decides per call, in `call`, so
        // that a rejection is an immediate response rather than back-pressure.
        self.inner.poll_ready(cx).map_err(CallError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let state = match self.breaker.try_acquire_owned() {
            Ok(permit) => Inner::Running {
                limit: self.breaker.call_timeout().unwrap_or_default(),
                deadline: self
                    .breaker
                    .call_timeout()
                    .map(|d| self.breaker.clock().sleep(d)),
                future: self.inner.call(request),
                permit: Some(permit),
                classify: self.classify.clone(),
            },
            Err(rejected) => Inner::Rejected {
                rejected: Some(rejected),
            },
        };
        ResponseFuture { state }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`CircuitBreakerService`]. Dropping it before it completes
    /// releases the call's permit.
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: Inner<F, C>,
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner<F, C> {
        Running {
            #[pin] future: F,
            #[pin] deadline: Option<Sleep>,
            limit: Duration,
            permit: Option<OwnedPermit>,
            classify: C,
        },
        Rejected { rejected: Option<Rejected> },
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, CallError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            InnerProj::Rejected { rejected } => match rejected.take() {
                Some(r) => Poll::Ready(Err(CallError::Rejected(r))),
                None => panic!("ResponseFuture polled after completion"),
            },
            InnerProj::Running {
                future,
                deadline,
                limit,
                permit,
                classify,
            } => {
                let Poll::Ready(result) = future.poll(cx) else {
                    let timed_out = deadline.as_pin_mut().is_some_and(|d| d.poll(cx).is_ready());
                    if timed_out {
                        if let Some(permit) = permit.take() {
                            permit.record(Outcome::Failure);
                        }
                        return Poll::Ready(Err(CallError::Timeout(*limit)));
                    }
                    return Poll::Pending;
                };
                if let Some(permit) = permit.take() {
                    permit.record(classify.classify(&result));
                }
                Poll::Ready(result.map_err(CallError::Inner))
            }
        }
    }
}
