//! Health: `GET /healthz` (liveness), `GET /api/assistant/health/circuit-breaker` (the
//! breakers) and `GET /metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use breaker::{State as CircuitState, Status};

/// The body of `GET /api/assistant/health/circuit-breaker`.
///
/// Always served with `200`: a replica whose upstream is down still answers from its cache
/// and the notes, so a load balancer must not take it out; `healthy` tells monitoring.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CircuitHealth {
    /// `CIRCUIT_BREAKER_ENABLED`.
    pub enabled: bool,
    /// True when every breaker is closed (or switched off).
    pub healthy: bool,
    /// True when there is no LLM token: answers are excerpts only.
    pub excerpts_only: bool,
    /// Where the notes live: `sqlite` or `postgres` (behind the breaker `postgres`).
    pub notes: &'static str,
    /// Every breaker's status, by name.
    pub breakers: Vec<Status>,
}

impl CircuitHealth {
    /// The health of the assistant's breakers right now.
    pub fn of(state: &AppState) -> Self {
        let breakers = state.assistant.registry().statuses();
        let healthy = breakers
            .iter()
            .all(|status| matches!(status.state, CircuitState::Closed | CircuitState::Disabled));
        Self {
            enabled: state.assistant.breaker_enabled(),
            healthy,
            excerpts_only: state.assistant.excerpts_only(),
            notes: state.notes.backend(),
            breakers,
        }
    }
}

#[utoipa::path(get, path = "/api/assistant/health/circuit-breaker", tag = "health",
    responses(
        (status = 200, description = "Every breaker's status (always 200)", body = CircuitHealth),
        (status = 401, description = "A bearer token is needed (`unauthorized`)", body = super::ErrorBody),
    ))]
pub(super) async fn circuit_breaker(State(state): State<AppState>) -> Json<CircuitHealth> {
    Json(CircuitHealth::of(&state))
}

#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process is up", body = Object,
        example = json!({"status": "ok"}))))]
pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

#[utoipa::path(get, path = "/metrics", tag = "health", security(()),
    responses((status = 200, description = "Prometheus text exposition", body = String,
        content_type = "text/plain")))]
pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(state.assistant.registry());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROMETHEUS_TEXT),
        )],
        body,
    )
}
