//! Operator controls: one breaker's status, and holding a breaker in a state by hand.
//!
//! `GET /api/assistant/circuit-breakers/{name}` follows the API token rule like the health
//! endpoint. `POST /api/assistant/circuit-breakers/{name}/state` needs
//! `Authorization: Bearer $BREAKWATER_ADMIN_TOKEN`; without that variable the controls are
//! off (`403`). Every change is logged with the state it replaced.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use breaker::{CircuitBreaker, Status};
use serde::{Deserialize, Serialize};

use super::auth::bearer_of;
use super::{ApiError, ApiJson, ApiPath, AppState};

/// The body of a state change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StateChange {
    /// Any JSON value: checked below, so that a number is a `422` naming the field rather
    /// than serde's "expected value" (which reads as broken JSON).
    #[schema(value_type = String, pattern = "^(forced_open|closed|disabled)$", example = "forced_open")]
    state: serde_json::Value,
}

/// What a change did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Changed {
    name: String,
    previous_state: breaker::State,
    state: breaker::State,
    breaker: Status,
}

fn find(state: &AppState, name: &str) -> Result<CircuitBreaker, ApiError> {
    state
        .assistant
        .registry()
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no circuit breaker is named {name:?}")))
}

/// `GET /api/assistant/circuit-breakers/{name}` → `200` with its status, or `404`.
#[utoipa::path(get, path = "/api/assistant/circuit-breakers/{name}", tag = "operator",
    params(("name" = String, Path, description = "The breaker's name")),
    responses(
        (status = 200, description = "The breaker's status", body = Status),
        (status = 401, description = "A bearer token is needed", body = super::ErrorBody),
        (status = 404, description = "No breaker has this name", body = super::ErrorBody),
    ))]
pub(super) async fn status(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Status>, ApiError> {
    Ok(Json(find(&state, &name)?.status()))
}

/// `POST /api/assistant/circuit-breakers/{name}/state` `{"state": ...}` → `200` with the
/// previous and the new state.
#[utoipa::path(post, path = "/api/assistant/circuit-breakers/{name}/state", tag = "operator",
    params(("name" = String, Path, description = "The breaker's name")),
    request_body = StateChange,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The breaker now holds the state", body = Changed),
        (status = 400, description = "Not JSON", body = super::ErrorBody),
        (status = 401, description = "The admin token is missing or wrong", body = super::ErrorBody),
        (status = 403, description = "Operator controls are off (no BREAKWATER_ADMIN_TOKEN)", body = super::ErrorBody),
        (status = 404, description = "No breaker has this name", body = super::ErrorBody),
        (status = 413, description = "The body is too large", body = super::ErrorBody),
        (status = 415, description = "Not `application/json`", body = super::ErrorBody),
        (status = 422, description = "Not one of forced_open, closed, disabled", body = super::ErrorBody),
    ))]
pub(super) async fn set_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    ApiJson(change): ApiJson<StateChange>,
) -> Result<Json<Changed>, ApiError> {
    let Some(admin) = &state.admin_token else {
        return Err(ApiError::Forbidden(
            "operator controls are off: start the server with BREAKWATER_ADMIN_TOKEN set to \
             turn them on"
                .to_owned(),
        ));
    };
    if !bearer_of(&headers).is_some_and(|token| admin.matches(token)) {
        return Err(ApiError::Unauthorized(
            "this control needs Authorization: Bearer <BREAKWATER_ADMIN_TOKEN>",
        ));
    }
    // forced_open: every call rejected (the upstream isolated) until closed again;
    // closed: failures and trips forgotten; disabled: calls straight through.
    let apply: fn(&CircuitBreaker) = match change.state.as_str() {
        Some("forced_open") => CircuitBreaker::force_open,
        Some("closed") => CircuitBreaker::reset,
        Some("disabled") => CircuitBreaker::disable,
        _ => {
            return Err(ApiError::invalid(
                "state",
                format!(
                    "must be \"forced_open\", \"closed\" or \"disabled\", not {}",
                    change.state
                ),
            ));
        }
    };
    let breaker = find(&state, &name)?;
    let previous = breaker.state();
    apply(&breaker);
    let status = breaker.status();
    tracing::warn!(
        breaker = %name, from = %previous, to = %status.state,
        "operator changed the circuit state"
    );
    Ok(Json(Changed {
        name,
        previous_state: previous,
        state: status.state,
        breaker: status,
    }))
}
