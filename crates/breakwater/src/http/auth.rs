//! Authentication for `/api/*`: a shared bearer token (a trusted backend, which names the
//! user in each request), and/or JWT mode (the user is the token's `sub`).

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::config::{JwtConfig, JwtKey};
use crate::user::UserId;

/// The user a verified JWT names; handlers act as it (see `extract::acting_user`).
#[derive(Clone, Debug)]
pub struct Identity(pub UserId);

/// Checks JWTs: signature, `exp` (always), `aud` and `iss` (when configured).
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    /// Optional here so that its absence is reported as such (it is a required claim).
    sub: Option<String>,
}

impl JwtVerifier {
    /// A verifier for `config`; reads the public key file. The error names the variable.
    pub fn new(config: &JwtConfig) -> anyhow::Result<Self> {
        let (key, algorithms) = match &config.key {
            JwtKey::Secret(secret) => (
                DecodingKey::from_secret(secret.as_bytes()),
                vec![Algorithm::HS256],
            ),
            JwtKey::PublicKeyFile(path) => {
                let named = |why: String| {
                    anyhow::anyhow!("BREAKWATER_JWT_PUBLIC_KEY={}: {why}", path.display())
                };
                let pem = std::fs::read(path).map_err(|e| named(e.to_string()))?;
                match DecodingKey::from_rsa_pem(&pem) {
                    Ok(key) => (key, vec![Algorithm::RS256]),
                    Err(_) => match DecodingKey::from_ec_pem(&pem) {
                        Ok(key) => (key, vec![Algorithm::ES256]),
                        Err(_) => {
                            return Err(named("not a PEM RSA or EC public key".to_owned()));
                        }
                    },
                }
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        // A configured claim must be present, not merely right when present.
        let mut required = vec!["exp", "sub"];
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Ok(Self { key, validation })
    }

    /// The user `token` names, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<UserId, &'static str> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidAudience => "the token is not for this audience",
                ErrorKind::InvalidIssuer => "the token is not from the expected issuer",
                ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                    "exp" => "the token has no exp claim",
                    "sub" => "the token has no sub claim",
                    "aud" => "the token has no aud claim",
                    _ => "the token has no iss claim",
                },
                _ => "the bearer token is not valid",
            },
        )?;
        let sub = data.claims.sub.ok_or("the token has no sub claim")?;
        UserId::parse(&sub).map_err(|_| "the token's sub is not a valid user id")
    }
}

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

/// Rejects `/api/*` requests without a valid credential (`401` + `WWW-Authenticate:
/// Bearer`): the shared token, or in JWT mode a valid JWT, whose user the request then acts
/// as. Other paths (`/healthz`, `/metrics`) and servers with neither pass.
pub(super) async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if state.api_token.is_none() && state.jwt.is_none() {
        return next.run(request).await;
    }
    let path = request.uri().path();
    // The API's own description is public: clients are generated from it before they
    // hold a token.
    if (path != "/api" && !path.starts_with("/api/")) || path == "/api/openapi.json" {
        return next.run(request).await;
    }
    let Some(token) = bearer_of(request.headers()) else {
        return ApiError::Unauthorized("this endpoint needs Authorization: Bearer <token>")
            .into_response();
    };
    // The admin token is at least as trusted as the shared one.
    let trusted = [&state.api_token, &state.admin_token];
    if trusted
        .iter()
        .any(|t| t.as_ref().is_some_and(|t| t.matches(token)))
    {
        return next.run(request).await;
    }
    let Some(jwt) = &state.jwt else {
        return ApiError::Unauthorized("the bearer token is not valid").into_response();
    };
    match jwt.verify(token) {
        Ok(user) => {
            request.extensions_mut().insert(Identity(user));
            next.run(request).await
        }
        Err(why) => ApiError::Unauthorized(why).into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
pub(super) fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
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
        assert_eq!(bearer_of(request.headers()), Some("abc"));
    }
}
