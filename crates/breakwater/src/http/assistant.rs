//! `POST /api/assistant/query`: a question answered from the user's notes.

use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;

use super::auth::Identity;
use super::extract::acting_user;
use super::{ApiError, ApiJson, AppState};
use crate::assistant::{Answer, Question};

/// The request body; unknown fields are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct QueryRequest {
    /// The question, 1 to 4,000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    query: String,
    /// Whose notes to search (default `default`; in JWT mode the token's subject).
    #[serde(default)]
    user_id: Option<String>,
    /// How many sources to return, 1 to 20 (default the configured top-k).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 20)]
    max_sources: Option<usize>,
}

/// Answers with `200` and the [`Answer`], or the assistant's error (`422`, `503`).
#[utoipa::path(
    post,
    path = "/api/assistant/query",
    tag = "assistant",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The answer, its sources and where it came from", body = Answer),
        (status = 400, description = "Not JSON (`invalid_json`)", body = super::ErrorBody),
        (status = 401, description = "A bearer token is needed (`unauthorized`)", body = super::ErrorBody),
        (status = 403, description = "The token does not allow this user (`forbidden`)", body = super::ErrorBody),
        (status = 413, description = "The body is too large (`payload_too_large`)", body = super::ErrorBody),
        (status = 415, description = "Not `application/json` (`unsupported_media_type`)", body = super::ErrorBody),
        (status = 422, description = "A field is invalid (`invalid_request`, naming `field`)", body = super::ErrorBody),
        (status = 503, description = "Nothing to answer with (`service_unavailable`), the notes store is down (`notes_unavailable`) or the request ran out of time (`request_timeout`)",
            body = super::ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds until a retry can succeed"))),
    )
)]
pub(super) async fn query(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    ApiJson(request): ApiJson<QueryRequest>,
) -> Result<Json<Answer>, ApiError> {
    let question = Question {
        user: acting_user(&identity, request.user_id.as_deref())?,
        query: request.query,
        max_sources: request.max_sources,
    };
    Ok(Json(state.assistant.answer(question).await?))
}
