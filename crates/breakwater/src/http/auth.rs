//! Bearer-token authentication for `/api/*`.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// The expected API token, kept only as its SHA-256 digest.
///
/// Comparing digests in constant time hides both the token's bytes and its length from a
/// caller timing the answers.
pub struct BearerToken {
    digest: [u8; 32],
}

impl BearerToken {
    /// Expects `token`.
    pub fn new(token: &str) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// True when `candidate` is the token; takes the same time whatever `candidate` is.
    pub fn matches(&self, candidate: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        let difference = self
            .digest
            .iter()
            .zip(candidate)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        difference == 0
    }
}

/// Rejects `/api/*` requests without the configured bearer token (`401` + `WWW-Authenticate:
/// Bearer`); other paths (`/healthz`, `/metrics`) and servers without a token pass.
pub(super) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.api_token else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if path != "/api" && !path.starts_with("/api/") {
        return next.run(request).await;
    }
    match bearer(&request) {
        None => ApiError::Unauthorized("this endpoint needs Authorization: Bearer <token>")
            .into_response(),
        Some(token) if expected.matches(token) => next.run(request).await,
        Some(_) => ApiError::Unauthorized("the bearer token is not valid").into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_exact_token() {
        let token = BearerToken::new("s3cret");
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cret "));
        assert!(!token.matches(""));
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let request = Request::builder()
            .header(header::AUTHORIZATION, "bearer abc")
            .body(axum::body::Body::empty())
            .expect("valid request");
        assert_eq!(bearer(&request), Some("abc"));
    }
}
