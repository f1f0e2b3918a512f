//! [`router`]: every route and the middleware around them.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::{RequestBodyDeadlineLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::middleware::{
    panic_response, record_metrics, reject_oversized_body, request_span, request_timeout_as_json,
};
use super::{ApiError, AppState, assistant, auth, health, notes, openapi, operator, status};

/// The whole HTTP application, ready to serve.
///
/// | route | |
/// | --- | --- |
/// | `POST /api/assistant/query` | answer a question |
/// | `GET /api/assistant/health/circuit-breaker` | breaker status (always `200`) |
/// | `POST /api/notes`, `GET /api/notes` | create, list |
/// | `GET`/`PUT`/`DELETE /api/notes/{id}` | read, update, delete |
/// | `GET /api/assistant/circuit-breakers/{name}` | one breaker's status |
/// | `POST /api/assistant/circuit-breakers/{name}/state` | operator: force open, close, disable (admin token) |
/// | `DELETE /api/notes?user_id=` | delete every note of a user (and so their cached answers) |
/// | `GET /metrics` | Prometheus text |
/// | `GET /healthz` | liveness |
/// | `GET /api/openapi.json` | the OpenAPI 3.1 document (no token needed) |
/// | `GET /status` | the live status page (no token needed; it asks for one) |
/// | `GET /api/assistant/status` | what the page shows: breakers, transitions, answers, latency |
///
/// Around every route, outermost first: a tracing span per request, the request-duration
/// metric, the whole-request deadline (`503`, as JSON), the
/// body-read deadline, `500` JSON on a panic, bearer auth for `/api/*`, and the body limit.
/// Header-read and idle deadlines and the connection cap are the listener's
/// ([`crate::listen`]).
///
/// ```no_run
/// # async fn demo(config: breakwater::config::Config) -> anyhow::Result<()> {
/// let state = breakwater::server::build_state(&config).await?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let limits = breakwater::listen::default_limits(std::time::Duration::from_secs(10));
/// let router = breakwater::http::router(state);
/// breakwater::listen::serve(listener, router, limits, std::future::pending()).await;
/// # Ok(())
/// # }
/// ```
pub fn router(state: AppState) -> Router {
    let middleware = ServiceBuilder::new()
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // A 503 is the fallback chain working and a 500 is logged by ApiError:
                // the response line above is enough, without a second ERROR line.
                .on_failure(()),
        )
        .layer(from_fn(record_metrics))
        // The deadline's own answer has no body: give it the JSON every error has.
        .layer(from_fn(request_timeout_as_json))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.request_timeout,
        ))
        // A whole-body deadline, not a per-chunk one: a slow drip must not reset it.
        .layer(RequestBodyDeadlineLayer::new(state.body_timeout))
        .map_request(|request: axum::http::Request<_>| request.map(axum::body::Body::new))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(state.clone(), auth::require_token))
        .layer(from_fn_with_state(state.clone(), reject_oversized_body))
        .layer(DefaultBodyLimit::max(state.max_body_bytes));

    Router::new()
        .route("/api/assistant/query", post(assistant::query))
        .route(
            "/api/assistant/health/circuit-breaker",
            get(health::circuit_breaker),
        )
        .route(
            "/api/assistant/circuit-breakers/{name}",
            get(operator::status),
        )
        .route(
            "/api/assistant/circuit-breakers/{name}/state",
            post(operator::set_state),
        )
        .route(
            "/api/notes",
            post(notes::create)
                .get(notes::list)
                .delete(notes::delete_all),
        )
        .route(
            "/api/notes/{id}",
            get(notes::get).put(notes::update).delete(notes::delete),
        )
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/assistant/status", get(status::view))
        .route("/status", get(status::page))
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no route for this path".to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
