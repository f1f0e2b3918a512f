//! What the assistant is asked and what it answers.

use serde::Serialize;

use crate::notes::Excerpt;
use crate::user::UserId;

/// A question from one user.
#[derive(Clone, Debug)]
pub struct Question {
    /// Whose notes to search.
    pub user: UserId,
    /// The question, as typed.
    pub query: String,
    /// How many sources to return at most (default: the configured top-k).
    pub max_sources: Option<usize>,
}

/// The level of the fallback chain that produced an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// The LLM answered just now.
    Llm,
    /// A cached LLM answer to the notes as they are.
    Cache,
    /// The LLM is unavailable: a cached answer to an older version of the notes.
    StaleCache,
    /// The LLM is unavailable and nothing is cached: the most relevant excerpts.
    Excerpts,
}

impl AnswerSource {
    /// The name used in JSON, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Cache => "cache",
            Self::StaleCache => "stale_cache",
            Self::Excerpts => "excerpts",
        }
    }

    /// True for the levels that stand in for a live answer.
    pub fn is_degraded(self) -> bool {
        matches!(self, Self::StaleCache | Self::Excerpts)
    }
}

/// An answer with its sources and where it came from.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Answer {
    /// The answer text.
    pub answer: String,
    /// The excerpts the answer rests on.
    pub sources: Vec<Excerpt>,
    /// Where the answer came from.
    pub metadata: AnswerMetadata,
}

/// Where an answer came from, said truthfully.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AnswerMetadata {
    /// The fallback level that answered.
    pub source: AnswerSource,
    /// True when the answer stands in for a live one (`stale_cache`, `excerpts`).
    pub degraded: bool,
    /// The breaker's state when the answer left.
    pub circuit_state: breaker::State,
    /// The model the answer is from (for `excerpts`, the primary upstream's).
    pub model: String,
    /// The upstream that gave the answer (for `cache` and `stale_cache`, the one that gave
    /// it then); `null` for `excerpts`.
    pub upstream: Option<String>,
    /// Each upstream tried for this request, in order, with its outcome (empty for a
    /// fresh cache hit): why an answer is degraded, or who was skipped.
    pub attempts: Vec<super::Attempt>,
    /// Time spent answering, in milliseconds.
    pub latency_ms: f64,
}
