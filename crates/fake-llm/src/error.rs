//! Every non-answer the fake upstream sends, and how each maps to a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::fault::InvalidFault;

/// A response other than an answer: a client error, an injected failure, or shutdown.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// The request body is not valid for the endpoint (422, like real inference servers).
    InvalidRequest(String),
    /// A fault sent to `PUT /admin/fault` cannot be applied (422).
    InvalidFault(InvalidFault),
    /// A failure injected by [`FaultMode::Error`](crate::FaultMode::Error).
    Injected {
        status: u16,
        retry_after_seconds: Option<u64>,
        estimated_time: Option<f64>,
    },
    /// The server is stopping while the call hung or slept its latency (503).
    ShuttingDown,
}

impl From<InvalidFault> for ApiError {
    fn from(err: InvalidFault) -> Self {
        Self::InvalidFault(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::InvalidRequest(detail) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "invalid_request", "detail": detail})),
            )
                .into_response(),
            Self::InvalidFault(err) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "invalid_fault", "detail": err.detail})),
            )
                .into_response(),
            Self::Injected {
                status,
                retry_after_seconds,
                estimated_time,
            } => {
                // The status was validated when the fault was set; 503 is only a backstop.
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                // HF's cold-start error: clients read `estimated_time` as a retry hint.
                let body = match estimated_time {
                    Some(t) => json!({"error": "Model is currently loading", "estimated_time": t}),
                    None => json!({"error": "injected failure"}),
                };
                let mut response = (status, Json(body)).into_response();
                if let Some(seconds) = retry_after_seconds {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
            Self::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "shutting_down"})),
            )
                .into_response(),
        }
    }
}
