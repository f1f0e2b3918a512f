//! The LLM upstreams in order, each behind its own breaker, and the record of each stage a
//! request tried (`metadata.attempts`, and the `503`'s `Retry-After`).

use std::sync::Arc;
use std::time::Duration;

use breaker::{CircuitBreaker, OwnedPermit, Rejected};
use serde::Serialize;

use super::AssistantBuildError;
use super::error::Unanswered;
use crate::cache::CachedAnswer;
use crate::cluster::{SharedBreaker, SharedSettings};
use crate::config::UpstreamConfig;
use crate::llm::{LlmClient, LlmProvider};
use crate::metrics::BreakerMetrics;
use crate::notes::SearchResult;

/// Slack the HTTP client's own timeout leaves past the breaker's call timeout, so the
/// breaker's deadline is the one that fires (and counts the failure).
const CLIENT_TIMEOUT_SLACK: Duration = Duration::from_secs(5);

/// One LLM upstream: who to ask and the breaker in front of it.
#[derive(Debug)]
pub(super) struct Upstream {
    /// Its name (its breaker's).
    pub(super) name: String,
    pub(super) model: String,
    pub(super) provider: Arc<dyn LlmProvider>,
    pub(super) breaker: CircuitBreaker,
    /// Cluster mode: the breaker's state shared through Redis.
    pub(super) shared: Option<SharedBreaker>,
    /// A stream with no first piece by then is a failure.
    pub(super) first_token_timeout: Duration,
    /// A longer gap between a stream's pieces is a failure.
    pub(super) stream_idle_timeout: Duration,
}

impl Upstream {
    /// The upstream `config` describes, its breaker shared through `redis_url` when set.
    pub(super) fn new(
        config: &UpstreamConfig,
        redis_url: Option<&str>,
        request_timeout: Duration,
        activity: Arc<super::Activity>,
    ) -> Result<Self, AssistantBuildError> {
        let settings = &config.breaker;
        let mut builder = settings
            .builder()
            .listener(Arc::new(BreakerMetrics))
            .listener(activity);
        let shared = match redis_url {
            Some(url) if settings.shared && settings.enabled => {
                let (link, listener) = SharedBreaker::new(
                    url,
                    &settings.name,
                    SharedSettings {
                        fail_threshold: settings.fail_threshold,
                        reset_timeout: settings.reset_timeout,
                        call_timeout: settings.call_timeout,
                        failure_window: settings.window,
                    },
                )?;
                builder = builder.listener(listener);
                Some(link)
            }
            _ => None,
        };
        let breaker = builder.build()?;
        if let Some(link) = &shared {
            // The link's task needs a runtime; without one (a synchronous embedding) the
            // breaker simply stays local.
            if tokio::runtime::Handle::try_current().is_ok() {
                link.attach(breaker.clone());
            }
        }
        let client = LlmClient::new(
            &config.llm,
            config.llm.api_token.as_deref(),
            settings.call_timeout + CLIENT_TIMEOUT_SLACK,
            request_timeout + CLIENT_TIMEOUT_SLACK,
        )?;
        Ok(Self {
            name: settings.name.clone(),
            model: config.llm.model.clone(),
            provider: Arc::new(client),
            breaker,
            shared,
            first_token_timeout: config
                .llm
                .first_token_timeout
                .unwrap_or(settings.call_timeout),
            stream_idle_timeout: config.llm.stream_idle_timeout,
        })
    }

    /// Leave to call this upstream, or why not. In cluster mode a trial call must also
    /// win the open period's lease.
    pub(super) async fn permit(&self) -> Result<OwnedPermit, Unanswered> {
        let refused = |rejected: Rejected| {
            if rejected.is_shed() {
                Unanswered::Shed(rejected)
            } else {
                Unanswered::CircuitOpen(rejected)
            }
        };
        let permit = self.breaker.try_acquire_owned().map_err(refused)?;
        let Some(shared) = &self.shared else {
            return Ok(permit);
        };
        match shared.admit(permit).await {
            Some(permit) => Ok(permit),
            // Another replica runs the trial: this one is held open meanwhile.
            None => self.breaker.try_acquire_owned().map_err(refused),
        }
    }

    /// The cache entry of `answer`, given by this upstream on the excerpts `found`.
    pub(super) fn cached(&self, found: &SearchResult, answer: String) -> CachedAnswer {
        CachedAnswer {
            answer,
            sources: found.excerpts.clone(),
            generation: found.generation,
            rests_on: found.versions.clone(),
            upstream: self.name.clone(),
            model: self.model.clone(),
        }
    }

    /// Whole seconds until this upstream may be asked again, given why it was not.
    pub(super) fn wait_after(&self, why: &Unanswered) -> f64 {
        let status = self.breaker.status();
        let wait = match (why, status.retry_after_seconds) {
            (Unanswered::CircuitOpen(rejected) | Unanswered::Shed(rejected), _) => {
                rejected.retry_after.map(|d| d.as_secs_f64())
            }
            (_, scheduled) => scheduled,
        };
        // The upstream's own wait (Retry-After, a model still loading) holds even when
        // this failure did not open the circuit.
        let wait = match (wait, why.upstream_hint()) {
            (Some(w), Some(hint)) => Some(w.max(hint.as_secs_f64())),
            (None, Some(hint)) => Some(hint.as_secs_f64()),
            (w, None) => w,
        };
        // Closed or disabled: the next call may go at once; forced open: nothing is
        // scheduled, so the base open time is the honest guess.
        match wait {
            Some(w) => w,
            None if status.state == breaker::State::ForcedOpen => status.reset_timeout_seconds,
            None => 0.0,
        }
    }
}

/// What one stage of the chain did for a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// The upstream (its breaker's name).
    pub upstream: String,
    /// `ok`, `rejected` (its circuit refused the call: no cost) or `failed`.
    pub outcome: AttemptOutcome,
    /// Why it was rejected or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a stage ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// It answered.
    Ok,
    /// Its breaker refused the call (open, or the in-flight bound): nothing was sent.
    Rejected,
    /// It was called and did not answer.
    Failed,
}

/// The stages a request went through, with each one's error kept for the `503`.
#[derive(Debug, Default)]
pub(super) struct Stages {
    pub(super) attempts: Vec<Attempt>,
    /// Each upstream that did not answer, by index, and why.
    pub(super) misses: Vec<(usize, Unanswered)>,
}

impl Stages {
    pub(super) fn missed(&mut self, index: usize, upstream: &Upstream, why: Unanswered) {
        let outcome = match why {
            Unanswered::CircuitOpen(_) | Unanswered::Shed(_) => AttemptOutcome::Rejected,
            _ => AttemptOutcome::Failed,
        };
        self.attempts.push(Attempt {
            upstream: upstream.name.clone(),
            outcome,
            reason: Some(why.to_string()),
        });
        self.misses.push((index, why));
    }

    pub(super) fn answered(&mut self, upstream: &Upstream) {
        self.attempts.push(Attempt {
            upstream: upstream.name.clone(),
            outcome: AttemptOutcome::Ok,
            reason: None,
        });
    }

    /// The last reason an upstream gave (the chain's own when there is none).
    pub(super) fn last_reason(&self) -> &Unanswered {
        self.misses
            .last()
            .map_or(&Unanswered::NoLlm, |(_, why)| why)
    }
}
