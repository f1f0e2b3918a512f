//! The operator's live view: `GET /status`, a page served from the binary, and
//! `GET /api/assistant/status`, the JSON it polls every second.
//!
//! The page is public (it holds no data); what it shows comes from the JSON, which follows
//! the API token rule. When a token is needed, the page asks for it and keeps it in the
//! tab's `sessionStorage`, sending it as `Authorization: Bearer`: never in a URL. Its
//! buttons change a breaker's state through the operator route with the admin token.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde::Serialize;

use super::{AppState, CircuitHealth};
use crate::assistant::ActivitySnapshot;

/// The page: plain HTML, CSS and JavaScript, embedded at build time (no build step).
const PAGE: &str = include_str!("status.html");

/// The body of `GET /api/assistant/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct StatusView {
    /// Every breaker, as the health endpoint shows them.
    health: CircuitHealth,
    /// Transitions, answers by source over 15 minutes, upstream latency.
    activity: ActivitySnapshot,
}

#[utoipa::path(get, path = "/status", tag = "health", security(()),
    responses((status = 200, description = "The live status page (HTML)", content_type = "text/html")))]
pub(super) async fn page() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // Everything is inline; nothing may load from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:",
            ),
        ],
        Html(PAGE),
    )
}

#[utoipa::path(get, path = "/api/assistant/status", tag = "health",
    responses(
        (status = 200, description = "What the status page shows", body = StatusView),
        (status = 401, description = "A bearer token is needed (`unauthorized`)", body = super::ErrorBody),
    ))]
pub(super) async fn view(State(state): State<AppState>) -> Json<StatusView> {
    Json(StatusView {
        health: CircuitHealth::of(&state),
        activity: state.assistant.activity(),
    })
}
