//! `/api/notes`: create, list, read, update and delete a user's notes.
//!
//! The acting user comes from `user_id` (in the body for writes, in the query string
//! otherwise; `"default"` when absent), or in JWT mode from the token (a different
//! `user_id` is `403`). Another user's note is `404`, exactly like a note
//! that does not exist.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::auth::Identity;
use super::extract::acting_user;
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState};
use crate::notes::Note;
use crate::user::UserId;

/// Notes per page when the request names no `limit`.
const DEFAULT_LIMIT: usize = 50;
/// The largest page: bounds the work and the response of one request.
const MAX_LIMIT: usize = 500;
/// The largest `offset` (as documented): past it a page is always empty anyway.
const MAX_OFFSET: usize = u32::MAX as usize;

/// `?user_id=` of the single-note routes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UserParam {
    /// Whose note (default `default`; in JWT mode the token's subject).
    #[param(pattern = "^[A-Za-z0-9_.@:-]{1,128}$")]
    user_id: Option<String>,
}

/// `?user_id=&limit=&offset=` of `GET /api/notes`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Whose notes (default `default`).
    #[param(pattern = "^[A-Za-z0-9_.@:-]{1,128}$")]
    user_id: Option<String>,
    /// Notes per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// Notes to skip.
    #[param(minimum = 0, maximum = 4294967295_u64)]
    offset: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct CreateNote {
    /// Whose note (default `default`; in JWT mode the token's subject).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.@:-]{1,128}$")]
    user_id: Option<String>,
    /// 1 to 300 characters, not blank (stored trimmed).
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    title: String,
    /// Up to 1,000,000 bytes, not blank.
    #[schema(min_length = 1, max_length = 1000000, pattern = "\\S")]
    body: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct UpdateNote {
    /// Whose note; must agree with `?user_id=` when both are given. Not in the document:
    /// `?user_id=` says the same, without a rule across two places that a schema cannot
    /// state.
    #[serde(default)]
    #[schema(ignore)]
    user_id: Option<String>,
    /// A new title (kept when absent).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    title: Option<String>,
    /// A new body (kept when absent).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000000, pattern = "\\S")]
    body: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct NotesPage {
    notes: Vec<Note>,
    user_id: UserId,
    limit: usize,
    offset: usize,
}

/// `POST /api/notes` → `201` with the note and its `Location`.
#[utoipa::path(post, path = "/api/notes", tag = "notes", request_body = CreateNote,
    responses(
        (status = 201, description = "Created", body = Note,
            headers(("Location" = String, description = "Where the note can be read"))),
        (status = 400, description = "Not JSON, or a bad query string (`invalid_json`, `invalid_query`)", body = super::ErrorBody),
        (status = 413, description = "The body is too large (`payload_too_large`)", body = super::ErrorBody),
        (status = 415, description = "Not `application/json` (`unsupported_media_type`)", body = super::ErrorBody),
        (status = 422, description = "A field is invalid (`invalid_request`, naming `field`)", body = super::ErrorBody),
        (status = 401, description = "A bearer token is needed (`unauthorized`)", body = super::ErrorBody),
        (status = 403, description = "The token does not allow this user (`forbidden`)", body = super::ErrorBody),
        (status = 503, description = "The notes store is down (`notes_unavailable`) or the request ran out of time (`request_timeout`)", body = super::ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds until a retry can succeed"))),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    ApiJson(request): ApiJson<CreateNote>,
) -> Result<Response, ApiError> {
    let user = acting_user(&identity, request.user_id.as_deref())?;
    let note = state
        .notes
        .create(&user, &request.title, &request.body)
        .await?;
    state.assistant.notes_written(&user).await;
    let location = location(&note.id, &user);
    let mut response = (StatusCode::CREATED, Json(note)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Where a created note can be read back; names the user unless it is the default one.
fn location(id: &str, user: &UserId) -> String {
    // A note id is hex and a user id is `A-Za-z0-9_.@:-`: neither needs percent-encoding.
    if *user == UserId::default() {
        format!("/api/notes/{id}")
    } else {
        format!("/api/notes/{id}?user_id={user}")
    }
}

/// `GET /api/notes` → one page of the user's notes, newest first.
#[utoipa::path(get, path = "/api/notes", tag = "notes", params(ListParams),
    responses(
        (status = 200, description = "One page, newest first", body = NotesPage),
        (status = 400, description = "A parameter does not parse (`invalid_query`)", body = super::ErrorBody),
        (status = 422, description = "A parameter is invalid (`invalid_request`, naming `field`)", body = super::ErrorBody),
        (status = 401, description = "A bearer token is needed (`unauthorized`)", body = super::ErrorBody),
        (status = 403, description = "The token does not allow this user (`forbidden`)", body = super::ErrorBody),
        (status = 503, description = "The notes store is down (`notes_unavailable`) or the request ran out of time (`request_timeout`)", body = super::ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds until a retry can succeed"))),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<NotesPage>, ApiError> {
    let user = acting_user(&identity, params.user_id.as_deref())?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("expected a whole number from 1 to {MAX_LIMIT}, got {limit}"),
        ));
    }
    let offset = params.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::invalid(
            "offset",
            format!("expected a whole number from 0 to {MAX_OFFSET}, got {offset}"),
        ));
    }
    let notes = state.notes.list(&user, limit, offset).await?;
    Ok(Json(NotesPage {
        notes,
        user_id: user,
        limit,
        offset,
    }))
}

/// `GET /api/notes/{id}`.
#[utoipa::path(get, path = "/api/notes/{id}", tag = "notes",
    params(("id" = String, Path, description = "The note's id"), UserParam),
    responses(
        (status = 200, description = "The note", body = Note),
        (status = 400, description = "A parameter does not parse (`invalid_query`)", body = super::ErrorBody),
        (status = 422, description = "A parameter is invalid (`invalid_request`, naming `field`)", body = super::ErrorBody),
        (status = 404, description = "No such note for this user (`not_found`)", body = super::ErrorBody),
        (status = 401, description = "A bearer token is needed (`unauthorized`)", body = super::ErrorBody),
        (status = 403, description = "The token does not allow this user (`forbidden`)", body = super::ErrorBody),
        (status = 503, description = "The notes store is down (`notes_unavailable`) or the request ran out of time (`request_timeout`)", body = super::ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds until a retry can succeed"))),
    ))]
pub(super) async fn get(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<UserParam>,
) -> Result<Json<Note>, ApiError> {
    let user = acting_user(&identity, params.user_id.as_deref())?;
    let note = state.notes.get(&user, &id).await?;
    Ok(Json(note))
}

/// `PUT /api/notes/{id}`: changes the fields given; the others stay.
#[utoipa::path(put, path = "/api/notes/{id}", tag = "notes", request_body = UpdateNote,
    params(("id" = String, Path, description = "The note's id"), UserParam),
    responses(
        (status = 200, description = "The note as it is now", body = Note),
        (status = 400, description = "Not JSON, or a bad query string (`invalid_json`, `invalid_query`)", body = super::ErrorBody),
        (status = 413, description = "The body is too large (`payload_too_large`)", body = super::ErrorBody),
        (status = 415, description = "Not `application/json` (`unsupported_media_type`)", body = super::ErrorBody),
        (status = 422, description = "A field is invalid (`invalid_request`, naming `field`)", body = super::ErrorBody),
        (status = 404, description = "No such note for this user (`not_found`)", body = super::ErrorBody),
        (status = 401, description = "A bearer token is needed (`unauthorized`)", body = super::ErrorBody),
        (status = 403, description = "The token does not allow this user (`forbidden`)", body = super::ErrorBody),
        (status = 503, description = "The notes store is down (`notes_unavailable`) or the request ran out of time (`request_timeout`)", body = super::ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds until a retry can succeed"))),
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<UserParam>,
    ApiJson(request): ApiJson<UpdateNote>,
) -> Result<Json<Note>, ApiError> {
    let user = match (request.user_id.as_deref(), params.user_id.as_deref()) {
        (Some(body), Some(query)) if body != query => {
            return Err(ApiError::invalid(
                "user_id",
                "the body and the query string name different users",
            ));
        }
        (body, query) => acting_user(&identity, body.or(query))?,
    };
    let note = state
        .notes
        .update(
            &user,
            &id,
            request.title.as_deref(),
            request.body.as_deref(),
        )
        .await?;
    state.assistant.notes_written(&user).await;
    Ok(Json(note))
}

/// `DELETE /api/notes?user_id=U` → `200 {"user_id", "deleted": n}`: every note of `U`,
/// and so every answer cached from them (they rest on notes that are gone). `user_id` is
/// required here: deleting the default user's notes by leaving it out would be a trap.
#[utoipa::path(delete, path = "/api/notes", tag = "notes",
    params(("user_id" = String, Query, description = "Whose notes (required; in JWT mode the token's subject)",
        pattern = "^[A-Za-z0-9_.@:-]{1,128}$")),
    responses(
        (status = 200, description = "How many notes were deleted", body = DeletedAll),
        (status = 400, description = "A parameter does not parse (`invalid_query`)", body = super::ErrorBody),
        (status = 422, description = "A parameter is invalid (`invalid_request`, naming `field`)", body = super::ErrorBody),
        (status = 401, description = "A bearer token is needed (`unauthorized`)", body = super::ErrorBody),
        (status = 403, description = "The token does not allow this user (`forbidden`)", body = super::ErrorBody),
        (status = 503, description = "The notes store is down (`notes_unavailable`) or the request ran out of time (`request_timeout`)", body = super::ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds until a retry can succeed"))),
    ))]
pub(super) async fn delete_all(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    ApiQuery(params): ApiQuery<UserParam>,
) -> Result<Json<DeletedAll>, ApiError> {
    // In JWT mode the token names the user; otherwise it must be said.
    if identity.is_none() && params.user_id.is_none() {
        return Err(ApiError::invalid(
            "user_id",
            "is required to delete all of a user's notes",
        ));
    }
    let user = acting_user(&identity, params.user_id.as_deref())?;
    let deleted = state.notes.delete_all(&user).await?;
    state.assistant.notes_written(&user).await;
    Ok(Json(DeletedAll {
        user_id: user,
        deleted,
    }))
}

/// The answer of `DELETE /api/notes?user_id=`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DeletedAll {
    /// The user whose notes were deleted.
    user_id: UserId,
    /// How many there were.
    deleted: u64,
}

/// `DELETE /api/notes/{id}` → `204`.
#[utoipa::path(delete, path = "/api/notes/{id}", tag = "notes",
    params(("id" = String, Path, description = "The note's id"), UserParam),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A parameter does not parse (`invalid_query`)", body = super::ErrorBody),
        (status = 422, description = "A parameter is invalid (`invalid_request`, naming `field`)", body = super::ErrorBody),
        (status = 404, description = "No such note for this user (`not_found`)", body = super::ErrorBody),
        (status = 401, description = "A bearer token is needed (`unauthorized`)", body = super::ErrorBody),
        (status = 403, description = "The token does not allow this user (`forbidden`)", body = super::ErrorBody),
        (status = 503, description = "The notes store is down (`notes_unavailable`) or the request ran out of time (`request_timeout`)", body = super::ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds until a retry can succeed"))),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<UserParam>,
) -> Result<StatusCode, ApiError> {
    let user = acting_user(&identity, params.user_id.as_deref())?;
    state.notes.delete(&user, &id).await?;
    state.assistant.notes_written(&user).await;
    Ok(StatusCode::NO_CONTENT)
}
