//! The assistant pipeline: validate, cache, retrieve, generate through the breaker, fall back.
//!
//! 1. Validate the question (a clear error; never reaches the breaker).
//! 2. A fresh cache hit for (user, query, model, the user's notes generation) answers at
//!    once: reading the generation is all it costs.
//! 3. Otherwise retrieve the top-k excerpts of this user's notes and ask the LLM through the
//!    circuit breaker; an answer is cached.
//! 4. If the LLM is unavailable (open circuit, timeout, connection error, 5xx, 429, no
//!    token), the answer falls back to the latest cached answer for this user and query
//!    (`stale_cache`), then the top excerpts (`excerpts`), then
//!    [`AssistantError::Unavailable`] with the seconds until the breaker's next trial.
//!    When the breaker refuses the call up front, the stale answer is looked up before any
//!    search, so answering while open costs a cache lookup.

mod answer;
mod error;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use breaker::{CallError, CircuitBreaker, Outcome, OwnedPermit, Registry};
use tracing::Instrument;

pub use answer::{Answer, AnswerMetadata, AnswerSource, Question};
use error::Unanswered;
pub use error::{AssistantBuildError, AssistantError};
pub use stream::{AnswerStream, StreamEvent};

use crate::cache::{AnswerCache, CacheKey, CachedAnswer, RedisCache};
use crate::cluster::{SharedBreaker, SharedSettings};
use crate::config::Config;
use crate::llm::{LlmClient, LlmError, Prompt};
use crate::metrics::{self, BreakerMetrics};
use crate::notes::{Excerpt, MAX_SEARCH_RESULTS, NotesError, SearchResult, SharedNotes};
use crate::user::UserId;

/// Longest question accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 4_000;
/// Excerpts the `excerpts` fallback returns at most.
pub const FALLBACK_EXCERPTS: usize = 3;
/// Slack the HTTP client's own timeout leaves past the breaker's call timeout, so the
/// breaker's deadline is the one that fires (and counts the failure).
const CLIENT_TIMEOUT_SLACK: Duration = Duration::from_secs(5);

/// Answers questions from a user's notes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Assistant {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    notes: SharedNotes,
    llm: Option<LlmClient>,
    breaker: CircuitBreaker,
    /// Cluster mode: the breaker's state shared through Redis.
    shared: Option<SharedBreaker>,
    registry: Registry,
    cache: AnswerCache,
    model: String,
    top_k: usize,
    /// A stream with no first piece by then is a failure.
    first_token_timeout: Duration,
    /// A longer gap between a stream's pieces is a failure.
    stream_idle_timeout: Duration,
    /// One request's whole budget (a stream's too).
    request_timeout: Duration,
}

/// What the pipeline produced: a whole answer, or a stream whose first piece is in.
enum Reply {
    Whole(Answer),
    Live(Box<stream::Live>),
}

/// The excerpts for the `excerpts` fallback: already retrieved, or to retrieve if the
/// stale answer does not serve (an open circuit skips the search until then).
enum Retrieval<'a> {
    Done(Vec<Excerpt>),
    Later { query: &'a str, wanted: usize },
}

impl Assistant {
    /// Builds the pipeline from the configuration: the breaker (registered under
    /// `CIRCUIT_BREAKER_NAME`), the LLM client (none without a token: excerpts-only mode)
    /// and the answer cache.
    pub fn new(config: &Config, notes: SharedNotes) -> Result<Self, AssistantBuildError> {
        let settings = &config.breaker;
        let mut builder = settings.builder().listener(Arc::new(BreakerMetrics));
        let shared = match &config.redis_url {
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
        let registry = Registry::new();
        let mut cache = AnswerCache::new(config.cache.capacity, config.cache.ttl);
        if let Some(url) = &config.redis_url {
            let redis = RedisCache::new(url)?;
            registry.insert(redis.breaker().clone());
            cache = cache.with_redis(redis);
        }
        registry.insert(breaker.clone());
        if let Some(store) = notes.breaker() {
            registry.insert(store.clone());
        }
        let llm = match &config.llm.api_token {
            Some(token) => Some(LlmClient::new(
                &config.llm,
                token,
                settings.call_timeout + CLIENT_TIMEOUT_SLACK,
                config.server.request_timeout + CLIENT_TIMEOUT_SLACK,
            )?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                notes,
                llm,
                breaker,
                shared,
                registry,
                cache,
                model: config.llm.model.clone(),
                top_k: config.notes.top_k,
                first_token_timeout: config
                    .llm
                    .first_token_timeout
                    .unwrap_or(settings.call_timeout),
                stream_idle_timeout: config.llm.stream_idle_timeout,
                request_timeout: config.server.request_timeout,
            }),
        })
    }

    /// Every breaker the assistant uses, by name.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// False when `CIRCUIT_BREAKER_ENABLED=false`: calls go straight through.
    pub fn breaker_enabled(&self) -> bool {
        self.inner.breaker.state() != breaker::State::Disabled
    }

    /// True when no LLM is configured: every answer comes from the notes themselves.
    pub fn excerpts_only(&self) -> bool {
        self.inner.llm.is_none()
    }

    /// Answers `question`, falling back as far as needed.
    pub async fn answer(&self, question: Question) -> Result<Answer, AssistantError> {
        let span =
            tracing::info_span!("answer", user = %question.user, source = tracing::field::Empty);
        match self.reply(question, false).instrument(span).await? {
            Reply::Whole(answer) => Ok(answer),
            Reply::Live(_) => unreachable!("a whole answer was asked for"),
        }
    }

    /// Answers `question` as a stream of events (see [`StreamEvent`]). Returns once the
    /// first piece of the answer is in: an LLM that fails before its first token falls
    /// back as [`Self::answer`] does, and with nothing to give this is the same error.
    pub async fn answer_stream(&self, question: Question) -> Result<AnswerStream, AssistantError> {
        let span =
            tracing::info_span!("answer", user = %question.user, source = tracing::field::Empty);
        match self.reply(question, true).instrument(span.clone()).await? {
            Reply::Whole(answer) => Ok(stream::whole(answer)),
            Reply::Live(live) => Ok(span.in_scope(|| live.into_events())),
        }
    }

    async fn reply(&self, question: Question, streamed: bool) -> Result<Reply, AssistantError> {
        let started = Instant::now();
        let (query, k) = validate(&question, self.inner.top_k)?;
        let user = &question.user;
        // A fresh hit needs only the notes generation, not a search.
        let generation = match self.inner.notes.generation(user).await {
            Ok(generation) => generation,
            Err(err @ NotesError::Unavailable { .. }) => {
                let answer = self.without_notes(user, query, k, err, started).await?;
                return Ok(Reply::Whole(answer));
            }
            Err(err) => return Err(err.into()),
        };
        self.inner
            .cache
            .saw_generation(user, generation, false)
            .await;
        let key = CacheKey::new(user, query, &self.inner.model, generation);
        if let Some(hit) = self.inner.cache.fresh(&key).await {
            let answer = self.respond(AnswerSource::Cache, &hit.answer, &hit.sources, k, started);
            return Ok(Reply::Whole(answer));
        }
        // The prompt always rests on the configured top-k, so a cached answer does not
        // depend on how many sources a request asks to see; `k` only trims the sources.
        let wanted = self.inner.top_k.max(k);
        let (why, retrieval) = match self.ask_permission().await {
            // The LLM will not be asked: a stale answer needs no search either.
            Err(why) => (why, Retrieval::Later { query, wanted }),
            Ok(permit) => {
                let retrieved = self.retrieve(user, query, wanted).await?;
                let asked = if streamed {
                    self.start_stream(permit, query, retrieved, &key, user, k, started)
                        .await
                        .map(|live| Reply::Live(Box::new(live)))
                } else {
                    self.generate(permit, query, &retrieved, user)
                        .await
                        .map(|text| {
                            let excerpts = &retrieved.excerpts;
                            Reply::Whole(self.respond(
                                AnswerSource::Llm,
                                &text,
                                excerpts,
                                k,
                                started,
                            ))
                        })
                        .map_err(|why| (why, retrieved.excerpts))
                };
                match asked {
                    Ok(reply) => return Ok(reply),
                    Err((why, excerpts)) => (why, Retrieval::Done(excerpts)),
                }
            }
        };
        let answer = self
            .fall_back(&key, user, &why, retrieval, k, started)
            .await?;
        Ok(Reply::Whole(answer))
    }

    /// The fallback chain past the LLM, top to bottom: the latest cached answer to this
    /// question (`stale_cache`), the top excerpts (`excerpts`), else the `503`.
    async fn fall_back(
        &self,
        key: &CacheKey,
        user: &UserId,
        why: &Unanswered,
        retrieval: Retrieval<'_>,
        k: usize,
        started: Instant,
    ) -> Result<Answer, AssistantError> {
        if let Some(answer) = self.stale(key, user, why, k, started).await {
            return Ok(answer);
        }
        let excerpts = match retrieval {
            Retrieval::Done(excerpts) => excerpts,
            Retrieval::Later { query, wanted } => {
                self.retrieve(user, query, wanted).await?.excerpts
            }
        };
        let top = &excerpts[..excerpts.len().min(FALLBACK_EXCERPTS)];
        if !top.is_empty() {
            let text = excerpts_answer(top);
            return Ok(self.respond(AnswerSource::Excerpts, &text, top, k, started));
        }
        metrics::record_answer("unavailable");
        tracing::Span::current().record("source", "unavailable");
        Err(self.unavailable(why))
    }

    /// Leave to call the LLM, or why not (no LLM configured, or the circuit refuses).
    /// In cluster mode a trial call must also win the open period's lease.
    async fn ask_permission(&self) -> Result<OwnedPermit, Unanswered> {
        if self.inner.llm.is_none() {
            return Err(Unanswered::NoLlm);
        }
        let refused = |rejected: breaker::Rejected| {
            if rejected.is_shed() {
                Unanswered::Shed(rejected)
            } else {
                Unanswered::CircuitOpen(rejected)
            }
        };
        let permit = self.inner.breaker.try_acquire_owned().map_err(refused)?;
        let Some(shared) = &self.inner.shared else {
            return Ok(permit);
        };
        match shared.admit(permit).await {
            Some(permit) => Ok(permit),
            // Another replica runs the trial: this one is held open meanwhile.
            None => self.inner.breaker.try_acquire_owned().map_err(refused),
        }
    }

    /// The first fallback: the latest answer to this question, from any notes generation.
    async fn stale(
        &self,
        key: &CacheKey,
        user: &UserId,
        why: &Unanswered,
        k: usize,
        started: Instant,
    ) -> Option<Answer> {
        if why.is_request_fault() {
            // Not an outage: the upstream refused this request (a bad token, a prompt it
            // will not take). Still answer from the fallbacks, but make it loud.
            tracing::error!(reason = %why, "the LLM refused the request; falling back");
        } else {
            tracing::warn!(reason = %why, "LLM unavailable; falling back");
        }
        let stale = self.inner.cache.latest(key).await?;
        // Only while every note it rests on is still there, unchanged: a deleted or edited
        // note's text must not come back from memory (this replica's, or Redis's). A failed
        // check serves nothing rather than something that may be gone.
        let current = self.inner.notes.still_current(user, &stale.rests_on).await;
        if !matches!(current, Ok(true)) {
            tracing::debug!("the stale answer rests on a note deleted or edited since");
            return None;
        }
        Some(self.respond(
            AnswerSource::StaleCache,
            &stale.answer,
            &stale.sources,
            k,
            started,
        ))
    }

    /// Tells the cache that `user`'s notes were just written here, so that every replica
    /// knows the generation moved (see [`Self::without_notes`]). Best effort: a store that
    /// cannot be read now is the next question's concern.
    pub async fn notes_written(&self, user: &UserId) {
        if let Ok(generation) = self.inner.notes.generation(user).await {
            self.inner
                .cache
                .saw_generation(user, generation, true)
                .await;
        }
    }

    /// The notes store is down: the answer cached for the newest notes generation seen for
    /// this user (here, or by any replica through Redis) is still the answer a fresh hit
    /// would give (`cache`). An answer from an older generation is not served: whether the
    /// notes it rests on still exist cannot be checked now. Nothing cached: the store's
    /// `503`.
    async fn without_notes(
        &self,
        user: &UserId,
        query: &str,
        k: usize,
        err: NotesError,
        started: Instant,
    ) -> Result<Answer, AssistantError> {
        tracing::warn!(reason = %err, "notes store unavailable; answering from the cache");
        if let Some(seen) = self.inner.cache.known_generation(user).await {
            let key = CacheKey::new(user, query, &self.inner.model, seen);
            if let Some(hit) = self.inner.cache.fresh(&key).await {
                return Ok(self.respond(
                    AnswerSource::Cache,
                    &hit.answer,
                    &hit.sources,
                    k,
                    started,
                ));
            }
        }
        metrics::record_answer("notes_unavailable");
        Err(err.into())
    }

    async fn retrieve(
        &self,
        user: &UserId,
        query: &str,
        k: usize,
    ) -> Result<SearchResult, AssistantError> {
        Ok(self.inner.notes.search(user, query, k).await?)
    }

    /// Opens a stream from the LLM under the breaker's permit and waits for its first
    /// piece (within the first-token deadline). A failure before then is recorded and
    /// handed back with the excerpts, for the fallback chain.
    #[expect(
        clippy::too_many_arguments,
        reason = "the request's parts, passed on to the stream"
    )]
    async fn start_stream(
        &self,
        permit: OwnedPermit,
        query: &str,
        retrieved: SearchResult,
        key: &CacheKey,
        user: &UserId,
        k: usize,
        started: Instant,
    ) -> Result<stream::Live, (Unanswered, Vec<Excerpt>)> {
        let Some(llm) = self.inner.llm.clone() else {
            return Err((Unanswered::NoLlm, retrieved.excerpts));
        };
        let grounding = &retrieved.excerpts[..retrieved.excerpts.len().min(self.inner.top_k)];
        let prompt = Prompt::grounded(query, grounding);
        let limit = self.inner.first_token_timeout;
        let call_started = Instant::now();
        let opened = tokio::time::timeout(limit, async {
            let mut tokens = llm.stream(&prompt).await?;
            let first = tokens.next().await?;
            if first.end && first.text.trim().is_empty() {
                return Err(LlmError::Malformed("empty answer".to_owned()));
            }
            Ok((tokens, first))
        })
        .await
        .unwrap_or(Err(LlmError::FirstTokenLate(limit)));
        let seconds = call_started.elapsed().as_secs_f64();
        match opened {
            Ok((tokens, first)) => {
                metrics::record_first_token(seconds);
                // Answering now: the in-flight bound is for calls still waiting.
                permit.responded();
                Ok(stream::Live {
                    assistant: self.clone(),
                    permit,
                    tokens,
                    first,
                    retrieved,
                    key: *key,
                    user: user.clone(),
                    k,
                    started,
                    call_started,
                    deadline: tokio::time::Instant::from_std(started + self.inner.request_timeout),
                })
            }
            Err(e) => {
                permit.record(e.outcome());
                let outcome = if matches!(e, LlmError::FirstTokenLate(_)) {
                    "timeout"
                } else {
                    "error"
                };
                metrics::record_llm(outcome, seconds);
                Err((Unanswered::Failed(e), retrieved.excerpts))
            }
        }
    }

    /// Asks the LLM under the breaker's permit.
    async fn generate(
        &self,
        permit: OwnedPermit,
        query: &str,
        retrieved: &SearchResult,
        user: &UserId,
    ) -> Result<String, Unanswered> {
        let llm = self.inner.llm.clone().ok_or(Unanswered::NoLlm)?;
        let grounding = &retrieved.excerpts[..retrieved.excerpts.len().min(self.inner.top_k)];
        let prompt = Prompt::grounded(query, grounding);
        let key = CacheKey::new(user, query, &self.inner.model, retrieved.generation);
        let (cache, sources, generation, rests_on) = (
            self.inner.cache.clone(),
            retrieved.excerpts.clone(),
            retrieved.generation,
            retrieved.versions.clone(),
        );
        let call = async move {
            let started = Instant::now();
            let classify = |result: &Result<String, LlmError>| match result {
                Ok(_) => Outcome::Success,
                Err(e) => e.outcome(),
            };
            let result = permit.run(llm.generate(&prompt), classify).await;
            let seconds = started.elapsed().as_secs_f64();
            let result = match result {
                Ok(text) => {
                    metrics::record_llm("success", seconds);
                    Ok(text)
                }
                Err(CallError::Rejected(rejected)) => Err(Unanswered::CircuitOpen(rejected)),
                Err(CallError::Timeout(limit)) => {
                    metrics::record_llm("timeout", seconds);
                    Err(Unanswered::Timeout(limit))
                }
                Err(CallError::Inner(e)) => {
                    metrics::record_llm("error", seconds);
                    Err(Unanswered::Failed(e))
                }
            };
            // Cached here, so an answer that comes after its request gave up still serves
            // the next one. The prompt rests on the top-k whatever `max_sources` asked.
            if let Ok(text) = &result {
                let entry = CachedAnswer {
                    answer: text.clone(),
                    sources,
                    generation,
                    rests_on,
                };
                cache.insert(&key, entry).await;
            }
            result
        };
        // The call runs on a task of its own: a request that stops waiting (the upstream
        // stalled) leaves it to finish or time out, and the breaker still learns how it
        // ended. A request that is dropped leaves it running too.
        let task = tokio::spawn(call.in_current_span());
        tokio::select! {
            biased;
            joined = task => match joined {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_cancelled) => Err(Unanswered::Stalled),
            },
            () = self.inner.breaker.stalled() => {
                metrics::record_abandoned();
                Err(Unanswered::Stalled)
            }
        }
    }

    fn respond(
        &self,
        source: AnswerSource,
        text: &str,
        sources: &[Excerpt],
        k: usize,
        started: Instant,
    ) -> Answer {
        metrics::record_answer(source.as_str());
        tracing::Span::current().record("source", source.as_str());
        Answer {
            answer: text.to_owned(),
            sources: sources.iter().take(k).cloned().collect(),
            metadata: AnswerMetadata {
                source,
                degraded: source.is_degraded(),
                circuit_state: self.inner.breaker.state(),
                model: self.inner.model.clone(),
                latency_ms: started.elapsed().as_secs_f64() * 1_000.0,
            },
        }
    }

    /// The 503: why, and the whole seconds until the breaker lets a trial through.
    fn unavailable(&self, why: &Unanswered) -> AssistantError {
        let status = self.inner.breaker.status();
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
        // Closed or disabled: the next call may go at once; forced open or no LLM at all:
        // nothing is scheduled, so the base open time is the honest guess.
        let wait = match (wait, why) {
            (Some(w), _) => w,
            (None, Unanswered::NoLlm) => status.reset_timeout_seconds,
            (None, _) if status.state == breaker::State::ForcedOpen => status.reset_timeout_seconds,
            (None, _) => 0.0,
        };
        AssistantError::Unavailable {
            retry_after_seconds: (wait.ceil() as u64).max(1),
            detail: format!("{why}, and no cached answer or matching note is available"),
            circuit: Box::new(status),
        }
    }
}

/// Checks the question; returns the trimmed query and the number of sources wanted.
fn validate(question: &Question, top_k: usize) -> Result<(&str, usize), AssistantError> {
    let query = question.query.trim();
    let invalid = |field, reason: &str| AssistantError::Invalid {
        field,
        reason: reason.to_owned(),
    };
    if query.is_empty() {
        return Err(invalid("query", "must not be empty"));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid("query", "must be at most 4000 characters"));
    }
    let k = match question.max_sources {
        None => top_k,
        Some(n) if (1..=MAX_SEARCH_RESULTS).contains(&n) => n,
        Some(_) => return Err(invalid("max_sources", "must be between 1 and 20")),
    };
    Ok((query, k))
}

/// The `excerpts` answer: the passages themselves, said to be such.
fn excerpts_answer(excerpts: &[Excerpt]) -> String {
    let mut text = String::from(
        "The assistant cannot reach its language model right now. \
         These passages from your notes match your question:",
    );
    for (i, e) in excerpts.iter().enumerate() {
        text.push_str(&format!("\n\n[{}] {}: {}", i + 1, e.title, e.excerpt));
    }
    text
}
