//! The HTTP API: routes, handlers, the one error type and the middleware around them.
//!
//! [`router`] builds the whole application from an [`AppState`], so tests can serve it on
//! any listener; [`crate::server`] builds the state from a [`crate::config::Config`] and
//! serves it with graceful shutdown.
//!
//! Every error, including the ones axum would answer in plain text (a malformed body, an
//! unknown route, a wrong method, a panic), is a JSON body `{"error": "<code>", "detail":
//! "..."}` built by [`ApiError`]. A caller's mistake is always a 4xx and never reaches the
//! circuit breaker.

mod assistant;
mod auth;
mod error;
mod extract;
mod health;
mod middleware;
mod notes;
mod openapi;
mod operator;
mod routes;
mod state;
mod status;

pub use auth::{BearerToken, Identity, JwtVerifier};
pub use error::{ApiError, ErrorBody};
pub use extract::{ApiJson, ApiPath, ApiQuery, BodyLimit};
pub use health::CircuitHealth;
pub use openapi::document as openapi_document;
pub use routes::router;
pub use state::AppState;
