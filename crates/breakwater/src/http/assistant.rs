//! `POST /api/assistant/query`: a question answered from the user's notes.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use serde::Deserialize;

use super::auth::Identity;
use super::extract::acting_user;
use super::{ApiError, ApiJson, AppState};
use crate::assistant::{Answer, Question, ServerSentEvent};

/// The request body; unknown fields are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct QueryRequest {
    /// The question, 1 to 4,000 characters.
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    query: String,
    /// Whose notes to search (default `default`; in JWT mode the token's subject).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.@:-]{1,128}$")]
    user_id: Option<String>,
    /// How many sources to return, 1 to 20 (default the configured top-k).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 20)]
    max_sources: Option<usize>,
    /// Answer as Server-Sent Events (as does `Accept: text/event-stream`).
    #[serde(default)]
    stream: bool,
}

/// A JSON integer, also written as a float with no fraction (`3.0`), as JSON Schema's
/// `integer` allows.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| usize::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {n}")))
}

/// Answers with `200` and the [`Answer`], or the assistant's error (`422`, `503`).
///
/// Streamed (`"stream": true`, or `Accept: text/event-stream`), the `200` is an event
/// stream — `sources`, `delta`s, then `done`; `fallback` when the LLM breaks mid-answer;
/// `error` when nothing is left — and its headers wait for the first piece of the
/// answer, so a failure before it is the same error a plain request gets.
#[utoipa::path(
    post,
    path = "/api/assistant/query",
    tag = "assistant",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The answer, its sources and where it came from; streamed, a `text/event-stream` whose events (`sources`, `delta`, `fallback`, `done`, `error`) each carry one JSON object as `data`",
            content((Answer = "application/json"), (ServerSentEvent = "text/event-stream"))),
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
    headers: HeaderMap,
    ApiJson(request): ApiJson<QueryRequest>,
) -> Result<Response, ApiError> {
    let streamed = request.stream || accepts_event_stream(&headers);
    let question = Question {
        user: acting_user(&identity, request.user_id.as_deref())?,
        query: request.query,
        max_sources: request.max_sources,
    };
    if !streamed {
        return Ok(Json(state.assistant.answer(question).await?).into_response());
    }
    let events = state.assistant.answer_stream(question).await?.map(|event| {
        let sse = ServerSentEvent::from(&event);
        Ok::<_, Infallible>(Event::default().event(sse.event.as_str()).data(sse.data))
    });
    // Comments every 15 s keep proxies from closing a quiet stream, and let a write find
    // a client that left.
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// True when the `Accept` header names `text/event-stream`.
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let media = range.split(';').next().unwrap_or_default().trim();
            media.eq_ignore_ascii_case("text/event-stream")
        })
}
