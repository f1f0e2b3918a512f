//! `POST /api/assistant/query`: a question answered from the user's notes.

use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;

use super::auth::Identity;
use super::extract::acting_user;
use super::{ApiError, ApiJson, AppState};
use crate::assistant::{Answer, Question};

/// The request body; unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub(super) struct QueryRequest {
    query: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    max_sources: Option<usize>,
}

/// Answers with `200` and the [`Answer`], or the assistant's error (`422`, `503`).
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
