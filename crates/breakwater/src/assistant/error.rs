//! What can stop the assistant from answering.

use std::time::Duration;

use breaker::Rejected;

use crate::llm::LlmError;
use crate::notes::NotesError;

/// The assistant had no answer to give.
#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    /// The question itself is wrong; nothing was retrieved or called.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The request field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The LLM is unavailable and no fallback had anything to give.
    #[error("{detail}")]
    Unavailable {
        /// Whole seconds until the breaker's next trial (at least 1).
        retry_after_seconds: u64,
        /// Why, for the caller.
        detail: String,
        /// The primary upstream's breaker status at that moment.
        circuit: Box<breaker::Status>,
        /// Every upstream tried, in order, and why each gave no answer.
        attempts: Vec<super::Attempt>,
    },
    /// The notes store failed.
    #[error(transparent)]
    Notes(#[from] NotesError),
}

/// The assistant could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum AssistantBuildError {
    /// The breaker settings are invalid.
    #[error(transparent)]
    Breaker(#[from] breaker::BuildError),
    /// The LLM client could not be built.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// The shared cache's Redis client could not be built from `REDIS_URL`.
    #[error(transparent)]
    Redis(#[from] crate::cache::RedisCacheError),
    /// The shared breaker state could not be set up from `REDIS_URL`.
    #[error(transparent)]
    Shared(#[from] crate::cluster::SharedBreakerError),
}

/// Why the LLM gave no answer this time (the cause the fallback chain reports).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unanswered {
    #[error("no LLM is configured (HF_API_TOKEN is unset and no BREAKWATER_CONFIG)")]
    NoLlm,
    #[error("the LLM circuit is {}: calls are not being made", .0.state)]
    CircuitOpen(Rejected),
    /// The circuit is closed but the bound on LLM calls in flight is reached (the upstream
    /// runs late): this request falls back at once instead of joining the wait.
    #[error("too many LLM calls in flight (the upstream is running late): request shed")]
    Shed(Rejected),
    /// This request's call was under way when the upstream was found stalled: the request
    /// stopped waiting (the call goes on until it answers or times out).
    #[error("the LLM stopped answering (calls far past their usual time): gave up waiting")]
    Stalled,
    #[error("the LLM did not answer within {:.1}s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The request's deadline left no time to ask this upstream.
    #[error("no time left in the request's deadline to ask this upstream")]
    OutOfTime,
    #[error("{0}")]
    Failed(LlmError),
}

impl Unanswered {
    /// The upstream refused this request itself (an ignored `4xx`), rather than failing.
    pub(crate) fn is_request_fault(&self) -> bool {
        matches!(self, Self::Failed(e) if e.outcome() == breaker::Outcome::Ignored)
    }

    /// How long the upstream asked us to wait, if it said.
    pub(crate) fn upstream_hint(&self) -> Option<Duration> {
        match self {
            Self::Failed(LlmError::Status { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }
}
