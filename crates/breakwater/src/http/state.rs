//! [`AppState`]: what every handler shares, built once at start-up.

use std::sync::Arc;

use axum::extract::FromRef;

use super::auth::{BearerToken, JwtVerifier};
use super::extract::BodyLimit;
use crate::assistant::Assistant;
use crate::metrics::Metrics;
use crate::notes::SharedNotes;

/// The application state: cheap to clone, every field a shared handle.
#[derive(Clone)]
pub struct AppState {
    /// The question-answering pipeline (breakers, cache, LLM client).
    pub assistant: Assistant,
    /// The notes of every user.
    pub notes: SharedNotes,
    /// The Prometheus recorder behind `GET /metrics`.
    pub metrics: Metrics,
    /// `BREAKWATER_API_TOKEN`: when set, `/api/*` needs it as a bearer token.
    pub api_token: Option<Arc<BearerToken>>,
    /// `BREAKWATER_MAX_BODY_BYTES`: the largest accepted request body.
    pub max_body_bytes: usize,
    /// JWT mode (`BREAKWATER_JWT_*`): the user is the token's subject.
    pub jwt: Option<Arc<JwtVerifier>>,
    /// `BREAKWATER_ADMIN_TOKEN`: operator controls on, behind this token.
    pub admin_token: Option<Arc<BearerToken>>,
    /// `BREAKWATER_BODY_TIMEOUT_SECONDS`: a request body must arrive within this.
    pub body_timeout: std::time::Duration,
    /// `BREAKWATER_REQUEST_TIMEOUT_SECONDS`: one request's whole budget.
    pub request_timeout: std::time::Duration,
}

impl AppState {
    /// A state serving `assistant` and `notes`; `api_token` turns on bearer auth for `/api/*`.
    pub fn new(
        assistant: Assistant,
        notes: SharedNotes,
        metrics: Metrics,
        api_token: Option<&str>,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            assistant,
            notes,
            metrics,
            api_token: api_token.map(|token| Arc::new(BearerToken::new(token))),
            max_body_bytes,
            jwt: None,
            admin_token: None,
            body_timeout: std::time::Duration::from_secs(30),
            request_timeout: std::time::Duration::from_secs(60),
        }
    }

    /// Sets the body-read and whole-request deadlines.
    pub fn with_timeouts(
        mut self,
        body: std::time::Duration,
        request: std::time::Duration,
    ) -> Self {
        self.body_timeout = body;
        self.request_timeout = request;
        self
    }

    /// Turns on the operator controls, behind `token`.
    pub fn with_admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(Arc::new(BearerToken::new(token)));
        self
    }

    /// Turns on JWT mode with `verifier`.
    pub fn with_jwt(mut self, verifier: JwtVerifier) -> Self {
        self.jwt = Some(Arc::new(verifier));
        self
    }
}

impl FromRef<AppState> for BodyLimit {
    fn from_ref(state: &AppState) -> Self {
        BodyLimit(state.max_body_bytes)
    }
}
