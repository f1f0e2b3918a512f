//! The middleware around every route: body limit, request metrics, request spans and the
//! JSON answer to a panic.

use std::any::Any;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Span;

use super::{ApiError, AppState};
use crate::metrics;

/// The `route` label of requests that matched no route: one value, so labels stay bounded.
const UNMATCHED: &str = "unmatched";

/// Answers `413` before reading a body whose `Content-Length` is over the limit.
///
/// A body without a length (chunked) is cut off while it is read instead, by axum's
/// `DefaultBodyLimit`, and answered `413` by [`super::ApiJson`].
pub(super) async fn reject_oversized_body(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let limit = state.max_body_bytes;
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return ApiError::PayloadTooLarge { limit }.into_response();
    }
    next.run(request).await
}

/// Records every request's duration in `breakwater_http_request_duration_seconds`, labelled
/// by method, matched route pattern and status.
pub(super) async fn record_metrics(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = route_of(&request).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::record_http(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// tower-http's whole-request deadline answers a bare `503`; every other error of ours is
/// an [`ApiError`] already. This turns that one into [`ApiError::RequestTimeout`].
pub(super) async fn request_timeout_as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let bare = !response.headers().contains_key(header::CONTENT_TYPE);
    if response.status() == StatusCode::SERVICE_UNAVAILABLE && bare {
        return ApiError::RequestTimeout.into_response();
    }
    response
}

/// The span of one request: method and route pattern (never the raw path, which holds ids).
pub(super) fn request_span(request: &Request) -> Span {
    tracing::info_span!(
        "request",
        method = method_label(request.method()),
        route = route_of(request),
    )
}

/// The method as a label: HTTP's standard methods by name, anything a client makes up as
/// `other`, so that no caller can grow the label set (or a log line) at will.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

fn route_of(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
}

/// The `500` JSON answer to a handler that panicked; the connection stays usable.
pub(super) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    ApiError::internal(format!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::routing::get;
    use tower::ServiceExt as _;
    use tower_http::catch_panic::CatchPanicLayer;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_json() {
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response));
        let request = Request::get("/boom")
            .body(Body::empty())
            .expect("valid request");

        let response = app.oneshot(request).await.expect("infallible");

        assert_eq!(response.status(), 500);
        let body = to_bytes(response.into_body(), 1024).await.expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["error"], "internal");
        assert!(!body["detail"].to_string().contains("boom"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_its_whole_deadline_is_a_json_503_with_retry_after() {
        let app = Router::new()
            .route("/slow", get(std::future::pending::<&'static str>))
            // Router layers wrap what came before: the deadline inside, the conversion out.
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                std::time::Duration::from_secs(60),
            ))
            .layer(axum::middleware::from_fn(request_timeout_as_json));
        let request = Request::get("/slow")
            .body(Body::empty())
            .expect("valid request");

        let response = app.oneshot(request).await.expect("infallible");

        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        let body = to_bytes(response.into_body(), 1024).await.expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["error"], "request_timeout", "{body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("BREAKWATER_REQUEST_TIMEOUT_SECONDS"),
            "{detail}"
        );
    }
}
