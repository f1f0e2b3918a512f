//! The admin endpoints: read and switch the fault, read and reset the counters, read each
//! stream's wait for its first piece, liveness.
//!
//! Faults never apply here, so a test can always bring a "down" upstream back.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

use crate::error::ApiError;
use crate::fault::{Fault, InvalidFault};
use crate::server::AppState;
use crate::state::{FirstPiece, Stats};

/// `GET /admin/fault`: the fault in force.
pub(crate) async fn get_fault(State(state): State<AppState>) -> Json<Fault> {
    Json(state.llm.fault())
}

/// `PUT /admin/fault`: replaces the fault and echoes it back.
///
/// The body is parsed by hand (not with the `Json` extractor) so that every bad fault —
/// broken JSON, a wrong type, an unknown field, an out-of-range value — gets the same
/// `422 {"error":"invalid_fault"}`.
pub(crate) async fn put_fault(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Fault>, ApiError> {
    let fault: Fault = serde_json::from_slice(&body).map_err(|err| InvalidFault {
        detail: err.to_string(),
    })?;
    state.llm.try_set_fault(fault.clone())?;
    Ok(Json(fault))
}

/// `POST /admin/reset`: healthy again, counters zeroed.
pub(crate) async fn reset(State(state): State<AppState>) -> StatusCode {
    state.llm.reset();
    StatusCode::NO_CONTENT
}

/// `GET /admin/stats`: the counters.
pub(crate) async fn stats(State(state): State<AppState>) -> Json<Stats> {
    Json(state.llm.stats())
}

/// `GET /admin/first-pieces`: each streamed call's wait for its first piece since the last
/// read, which this read clears.
pub(crate) async fn first_pieces(State(state): State<AppState>) -> Json<Vec<FirstPiece>> {
    Json(state.llm.take_first_pieces())
}

/// `GET /healthz`: liveness, whatever the fault.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}
