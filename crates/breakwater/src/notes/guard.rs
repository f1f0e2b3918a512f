//! [`Guarded`]: a notes store behind its own circuit breaker and deadline.
//!
//! A networked store (PostgreSQL) can be down or slow. Every call then goes through a breaker
//! named after the store (`postgres`) with a per-call deadline: a call never waits past the
//! deadline, and once the breaker is open calls fail at once with
//! [`NotesError::Unavailable`] and the seconds until the next trial, which the HTTP layer
//! answers as `503 notes_unavailable` with `Retry-After`. Only the store failing counts: a
//! note that is not found or a field that is invalid is the store answering.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use breaker::{CallError, CircuitBreaker, Outcome, TripPolicy};

use super::backend::{BatchReport, Notes, SharedNotes};
use super::files::NoteFile;
use super::{Note, NoteVersion, NotesError, SearchResult};
use crate::user::UserId;

/// Failures in a row that open the store's circuit.
const FAIL_THRESHOLD: u32 = 3;
/// How long the store is left alone once its circuit opened.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// `inner` behind a breaker named `name` and a per-call `deadline`.
#[derive(Debug)]
pub struct Guarded {
    inner: SharedNotes,
    breaker: CircuitBreaker,
}

impl Guarded {
    /// Guards `inner`; `listener` receives the breaker's events (metrics).
    ///
    /// # Errors
    ///
    /// When the breaker cannot be built (a zero deadline).
    pub fn new(
        inner: SharedNotes,
        name: &str,
        deadline: Duration,
        listeners: Vec<Arc<dyn breaker::Listener>>,
    ) -> Result<Self, breaker::BuildError> {
        let mut builder = CircuitBreaker::builder(name)
            .trip_policy(TripPolicy::consecutive_failures(FAIL_THRESHOLD))
            .reset_timeout(RESET_TIMEOUT)
            .call_timeout(deadline);
        for listener in listeners {
            builder = builder.listener(listener);
        }
        let breaker = builder.build()?;
        Ok(Self::with_breaker(inner, breaker))
    }

    /// Guards `inner` with a breaker built elsewhere (another policy, a manual clock).
    pub fn with_breaker(inner: SharedNotes, breaker: CircuitBreaker) -> Self {
        Self { inner, breaker }
    }

    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, NotesError>>,
    ) -> Result<T, NotesError> {
        let permit = self.breaker.try_acquire().map_err(|rejected| {
            unavailable(
                rejected.retry_after,
                format!(
                    "its circuit `{}` is {}",
                    self.breaker.name(),
                    rejected.state
                ),
            )
        })?;
        match permit.run(call, classify).await {
            Ok(value) => Ok(value),
            Err(CallError::Inner(err)) => Err(err),
            Err(CallError::Timeout(limit)) => Err(unavailable(
                Some(self.breaker.reset_timeout()),
                format!("it did not answer within {:.1} s", limit.as_secs_f64()),
            )),
            Err(CallError::Rejected(rejected)) => Err(unavailable(
                rejected.retry_after,
                format!(
                    "its circuit `{}` is {}",
                    self.breaker.name(),
                    rejected.state
                ),
            )),
        }
    }
}

/// The store answered (even "not found") unless the database itself failed.
fn classify<T>(result: &Result<T, NotesError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(NotesError::Postgres(_) | NotesError::Pool(_) | NotesError::Db(_)) => Outcome::Failure,
        Err(_) => Outcome::Success,
    }
}

fn unavailable(retry_after: Option<Duration>, reason: String) -> NotesError {
    let seconds = retry_after.map_or(1, |d| d.as_secs_f64().ceil() as u64);
    NotesError::Unavailable {
        retry_after_seconds: seconds.max(1),
        reason,
    }
}

#[async_trait]
impl Notes for Guarded {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn breaker(&self) -> Option<&CircuitBreaker> {
        Some(&self.breaker)
    }

    async fn create(&self, user: &UserId, title: &str, body: &str) -> Result<Note, NotesError> {
        self.call(self.inner.create(user, title, body)).await
    }

    async fn get(&self, user: &UserId, id: &str) -> Result<Note, NotesError> {
        self.call(self.inner.get(user, id)).await
    }

    async fn update(
        &self,
        user: &UserId,
        id: &str,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<Note, NotesError> {
        self.call(self.inner.update(user, id, title, body)).await
    }

    async fn delete(&self, user: &UserId, id: &str) -> Result<(), NotesError> {
        self.call(self.inner.delete(user, id)).await
    }

    async fn delete_all(&self, user: &UserId) -> Result<u64, NotesError> {
        self.call(self.inner.delete_all(user)).await
    }

    async fn list(
        &self,
        user: &UserId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Note>, NotesError> {
        self.call(self.inner.list(user, limit, offset)).await
    }

    async fn count(&self, user: &UserId) -> Result<u64, NotesError> {
        self.call(self.inner.count(user)).await
    }

    async fn generation(&self, user: &UserId) -> Result<u64, NotesError> {
        self.call(self.inner.generation(user)).await
    }

    async fn still_current(
        &self,
        user: &UserId,
        versions: &[NoteVersion],
    ) -> Result<bool, NotesError> {
        self.call(self.inner.still_current(user, versions)).await
    }

    async fn search(
        &self,
        user: &UserId,
        query: &str,
        k: usize,
    ) -> Result<SearchResult, NotesError> {
        self.call(self.inner.search(user, query, k)).await
    }

    async fn upsert_files(
        &self,
        user: &UserId,
        files: Vec<NoteFile>,
    ) -> Result<BatchReport, NotesError> {
        self.call(self.inner.upsert_files(user, files)).await
    }
}
