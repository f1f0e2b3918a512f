//! Extractors that wrap axum's and answer their rejections as [`ApiError`] JSON, so no
//! malformed request falls through to axum's plain-text responses.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::ApiError;
use super::auth::Identity;
use crate::user::UserId;

/// The largest accepted request body, in bytes: how extractors word a `413`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// A JSON request body of type `T`: a JSON object.
///
/// Like [`axum::Json`], with its rejections mapped: no or another content type → `415
/// unsupported_media_type`; broken JSON → `400 invalid_json`; JSON of the wrong shape
/// (including a top-level array, which serde would otherwise accept for a struct) → `422
/// invalid_request` naming the field; a body over the limit → `413 payload_too_large`.
/// Unknown fields are ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    BodyLimit: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON, sent with Content-Type: application/json".to_owned(),
            ));
        }
        let BodyLimit(limit) = BodyLimit::from_ref(state);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_error(&rejection, limit))?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes).map_err(json_error)?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::Invalid {
                field: None,
                detail: "the body must be a JSON object".to_owned(),
            });
        }
        Ok(ApiJson(value))
    }
}

/// Whether the body-read deadline (tower-http's) is what stopped reading the body.
fn caused_by_body_deadline(rejection: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(err) = cause {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// `application/json` or `application/<anything>+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge { limit };
    }
    if caused_by_body_deadline(rejection) {
        return ApiError::BodyTimeout;
    }
    // Reading the body failed for another reason (a broken chunked encoding, the client
    // went away): still the request's fault, not the server's.
    ApiError::InvalidJson(format!(
        "could not read the body: {}",
        rejection.body_text()
    ))
}

fn json_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(err) => data_error(&err.body_text()),
        other => ApiError::InvalidJson(format!(
            "the body is not valid JSON: {}",
            inner(&other.body_text())
        )),
    }
}

/// A `422` from serde's message, naming the field when serde's path or message does.
fn data_error(text: &str) -> ApiError {
    let message = inner(text);
    ApiError::Invalid {
        field: field_of(message),
        detail: format!("the body does not fit this request: {message}"),
    }
}

/// The message after axum's fixed prefix (`Failed to deserialize ...: <message>`).
fn inner(text: &str) -> &str {
    text.split_once(": ").map_or(text, |(_, message)| message)
}

/// `query` from `query: invalid type: ...` (a path from serde_path_to_error) or from
/// ``missing field `query` at ...``.
fn field_of(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("missing field `") {
        return rest.split('`').next().map(str::to_owned);
    }
    let (path, _) = message.split_once(": ")?;
    let is_path = !path.is_empty() && path != "." && !path.contains(char::is_whitespace);
    is_path.then(|| path.to_owned())
}

/// Query-string parameters of type `T`; a mismatch is `400 invalid_query` naming the
/// parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_error(&rejection)),
        }
    }
}

fn query_error(rejection: &QueryRejection) -> ApiError {
    ApiError::InvalidQuery(format!(
        "the query string does not fit this request: {}",
        inner(&rejection.body_text())
    ))
}

/// Path parameters of type `T`; a mismatch is `400 invalid_query`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_error(&rejection)),
        }
    }
}

fn path_error(rejection: &PathRejection) -> ApiError {
    if rejection.status().is_server_error() {
        return ApiError::internal(rejection.body_text());
    }
    ApiError::InvalidQuery(format!("the path is not valid: {}", rejection.body_text()))
}

/// The user a request names, `"default"` when it names none; a bad id is a `422` naming
/// `user_id`.
pub(super) fn user_or_default(user_id: Option<&str>) -> Result<UserId, ApiError> {
    match user_id {
        None => Ok(UserId::default()),
        Some(id) => UserId::parse(id).map_err(|err| ApiError::invalid("user_id", err)),
    }
}

/// The user a request acts as: in JWT mode the token's subject, and a `user_id` naming
/// anyone else is `403`; otherwise the `user_id` given (`"default"` when absent).
pub(super) fn acting_user(
    identity: &Option<Extension<Identity>>,
    claimed: Option<&str>,
) -> Result<UserId, ApiError> {
    let Some(Extension(Identity(subject))) = identity else {
        return user_or_default(claimed);
    };
    match claimed {
        Some(claimed) if claimed != subject.as_str() => Err(ApiError::Forbidden(format!(
            "user_id {claimed:?} is not the token's subject: a token acts only as its own user"
        ))),
        _ => Ok(subject.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_comes_from_the_path_or_the_missing_field() {
        assert_eq!(
            field_of("query: invalid type: integer `5`, expected a string at line 1 column 11"),
            Some("query".to_owned())
        );
        assert_eq!(
            field_of("missing field `title` at line 1 column 2"),
            Some("title".to_owned())
        );
        assert_eq!(field_of("invalid type: map, expected a string"), None);
    }

    #[test]
    fn json_content_types_are_recognised_with_parameters_and_suffixes() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("valid header"));
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/problem+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn data_error_keeps_serde_message_without_axum_prefix() {
        let err = data_error(
            "Failed to deserialize the JSON body into the target type: query: invalid type",
        );
        assert_eq!(
            err.to_string(),
            "the body does not fit this request: query: invalid type"
        );
    }
}
