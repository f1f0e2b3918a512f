//! [`ApiError`]: every way a request can fail, and the one place that turns it into a
//! status code and a JSON body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::assistant::AssistantError;
use crate::notes::NotesError;

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `invalid_json`, `invalid_query`, `unsupported_media_type`,
    /// `payload_too_large`, `invalid_request`, `unauthorized`, `forbidden`, `body_timeout`,
    /// `request_timeout`, `not_found`, `method_not_allowed`, `service_unavailable`,
    /// `notes_unavailable`, `internal`.
    pub error: &'static str,
    /// What went wrong, for a person.
    pub detail: String,
    /// The request field at fault (`invalid_request`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Whole seconds until a retry can succeed (`service_unavailable`, `notes_unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// The LLM breaker's status (`service_unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit: Option<Box<breaker::Status>>,
    /// Each upstream tried, with its outcome and reason (`service_unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<crate::assistant::Attempt>>,
}

/// An error answered to an HTTP client.
///
/// The body is always `{"error": "<code>", "detail": "..."}` (plus `field` when one input
/// field is at fault, and the circuit for `503`). Caller mistakes are 4xx; only failures of
/// the server itself are 5xx, and their detail never leaks internals (they are logged).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `400 invalid_json`: the body is not syntactically valid JSON.
    #[error("{0}")]
    InvalidJson(String),
    /// `400 invalid_query`: the query string does not fit the endpoint's parameters.
    #[error("{0}")]
    InvalidQuery(String),
    /// `415 unsupported_media_type`: the body is not declared as `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// `413 payload_too_large`: the body is larger than `BREAKWATER_MAX_BODY_BYTES`.
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// `422 invalid_request`: well-formed JSON or parameters with a value that is not
    /// accepted (a wrong type, a missing field, an empty query, a bad user id).
    #[error("{detail}")]
    Invalid {
        /// The field at fault, when known.
        field: Option<String>,
        /// What is wrong, naming the field.
        detail: String,
    },
    /// `401 unauthorized`: `/api/*` needs `Authorization: Bearer <token>`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// `404 not_found`: no such route, or no such note for this user.
    #[error("{0}")]
    NotFound(String),
    /// `405 method_not_allowed`: the route exists, the method does not.
    #[error("this route does not accept the request's method")]
    MethodNotAllowed,
    /// `503 service_unavailable`: the assistant had nothing to answer with.
    #[error("{detail}")]
    Unavailable {
        /// Whole seconds until the breaker lets a trial call through (`Retry-After`).
        retry_after_seconds: u64,
        /// What happened, for the caller.
        detail: String,
        /// The breaker's status at the time, so the caller sees why.
        circuit: Box<breaker::Status>,
        /// Every upstream tried, and why each gave no answer.
        attempts: Vec<crate::assistant::Attempt>,
    },
    /// `503 notes_unavailable`: the notes store (PostgreSQL) is down or slow and no cached
    /// answer could stand in; nothing was written.
    #[error("{detail}")]
    NotesUnavailable {
        /// Whole seconds until the store's breaker lets a trial through (`Retry-After`).
        retry_after_seconds: u64,
        /// What happened.
        detail: String,
    },
    /// `503 request_timeout` (`Retry-After: 1`): the request ran past
    /// `BREAKWATER_REQUEST_TIMEOUT_SECONDS`.
    #[error("the request ran past its deadline (BREAKWATER_REQUEST_TIMEOUT_SECONDS)")]
    RequestTimeout,
    /// `408 body_timeout`: the body did not arrive within `BREAKWATER_BODY_TIMEOUT_SECONDS`.
    #[error("the request body did not arrive in time (BREAKWATER_BODY_TIMEOUT_SECONDS)")]
    BodyTimeout,
    /// `403 forbidden`: the credential does not allow this request.
    #[error("{0}")]
    Forbidden(String),
    /// `500 internal`: the server failed; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A `422 invalid_request` naming `field`.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        ApiError::Invalid {
            detail: format!("{field}: {reason}"),
            field: Some(field),
        }
    }

    /// A `500 internal` for `cause`, which is logged but not sent to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    /// The HTTP status this error is answered with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_) | ApiError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::RequestTimeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable { .. } | ApiError::NotesUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code in the body's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Invalid { .. } => "invalid_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::NotesUnavailable { .. } => "notes_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The JSON body every error response carries (also printed by `breakwater ask --json`).
    pub fn body(&self) -> Value {
        serde_json::to_value(self.error_body()).unwrap_or(Value::Null)
    }

    /// The body as its type (what the OpenAPI document describes).
    pub fn error_body(&self) -> ErrorBody {
        let mut body = ErrorBody {
            error: self.code(),
            detail: self.to_string(),
            field: None,
            retry_after_seconds: None,
            circuit: None,
            attempts: None,
        };
        match self {
            ApiError::Invalid {
                field: Some(field), ..
            } => body.field = Some(field.clone()),
            ApiError::Unavailable {
                retry_after_seconds,
                circuit,
                attempts,
                ..
            } => {
                body.retry_after_seconds = Some(*retry_after_seconds);
                body.circuit = Some(circuit.clone());
                body.attempts = Some(attempts.clone());
            }
            ApiError::NotesUnavailable {
                retry_after_seconds,
                ..
            } => body.retry_after_seconds = Some(*retry_after_seconds),
            ApiError::Internal(_) => {
                // The cause may hold paths or SQL: it goes to the log, not to the client.
                body.detail = "internal error; the cause is in the server log".to_owned();
            }
            _ => {}
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let mut response = (self.status_code(), Json(self.body())).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable {
                retry_after_seconds,
                ..
            }
            | ApiError::NotesUnavailable {
                retry_after_seconds,
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            ApiError::RequestTimeout => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl From<NotesError> for ApiError {
    fn from(err: NotesError) -> Self {
        match err {
            NotesError::NotFound => ApiError::NotFound("the note was not found".to_owned()),
            NotesError::Invalid { field, reason } => ApiError::invalid(field, reason),
            err @ NotesError::Unavailable {
                retry_after_seconds,
                ..
            } => ApiError::NotesUnavailable {
                retry_after_seconds,
                detail: err.to_string(),
            },
            other => ApiError::internal(other),
        }
    }
}

impl From<AssistantError> for ApiError {
    fn from(err: AssistantError) -> Self {
        match err {
            AssistantError::Invalid { field, reason } => ApiError::invalid(field, reason),
            AssistantError::Unavailable {
                retry_after_seconds,
                detail,
                circuit,
                attempts,
            } => ApiError::Unavailable {
                retry_after_seconds,
                detail,
                circuit,
                attempts,
            },
            AssistantError::Notes(err) => err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_mistakes_are_never_5xx() {
        let errors = [
            ApiError::InvalidJson(String::new()),
            ApiError::InvalidQuery(String::new()),
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::invalid("query", "empty"),
            ApiError::Unauthorized("no token"),
            ApiError::NotFound(String::new()),
            ApiError::MethodNotAllowed,
        ];
        for err in errors {
            assert!(err.status_code().is_client_error(), "{err:?}");
        }
    }

    #[test]
    fn invalid_names_the_field_in_detail_and_body() {
        let body = ApiError::invalid("user_id", "bad").body();
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["field"], "user_id");
        assert_eq!(body["detail"], "user_id: bad");
    }

    #[test]
    fn internal_detail_is_generic() {
        let body = ApiError::internal("disk I/O error at /secret/path").body();
        assert_eq!(body["error"], "internal");
        assert!(!body["detail"].to_string().contains("/secret"));
    }

    #[test]
    fn unauthorized_carries_the_challenge() {
        let response = ApiError::Unauthorized("missing token").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
