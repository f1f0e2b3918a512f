//! The assistant pipeline: validate, cache, retrieve, generate through the chain of
//! upstreams, fall back.
//!
//! 1. Validate the question (a clear error; never reaches a breaker).
//! 2. A fresh cache hit for (user, query, the chain's primary model, the user's notes
//!    generation) answers at once: reading the generation is all it costs. The key does
//!    not name the upstream that answered, so an answer from any upstream is a hit.
//! 3. Otherwise ask the upstreams in order, each through its own circuit breaker: one whose
//!    circuit refuses is skipped at no cost; the first that lets a call through has the
//!    excerpts retrieved for it (once per request); one that fails hands over to the next,
//!    all within the request's deadline. An answer is cached.
//! 4. No upstream answered: the latest cached answer for this user and query
//!    (`stale_cache`), then the top excerpts (`excerpts`), then
//!    [`AssistantError::Unavailable`] with the seconds until the earliest next trial among
//!    the upstreams. Every stage tried is in `metadata.attempts` (and in the error).

mod activity;
mod answer;
mod chain;
mod error;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use breaker::{CallError, CircuitBreaker, Outcome, OwnedPermit, Registry};
use tracing::Instrument;

pub use activity::{
    Activity, ActivitySnapshot, MinuteOfAnswers, TransitionRecord, UpstreamLatency,
};
pub use answer::{Answer, AnswerMetadata, AnswerSource, Question};
pub use chain::{Attempt, AttemptOutcome};
use chain::{Stages, Upstream};
use error::Unanswered;
pub use error::{AssistantBuildError, AssistantError};
pub use stream::{AnswerStream, EventName, ServerSentEvent, StreamEvent};

use crate::cache::{AnswerCache, CacheKey, CachedAnswer, RedisCache};
use crate::config::Config;
use crate::llm::{Chunk, LlmError, Prompt, TokenStream};
use crate::metrics::{self, BreakerMetrics};
use crate::notes::{Excerpt, MAX_SEARCH_RESULTS, NotesError, SearchResult, SharedNotes};
use crate::user::UserId;

/// Longest question accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 4_000;
/// Excerpts the `excerpts` fallback returns at most.
pub const FALLBACK_EXCERPTS: usize = 3;
/// What the LLM stages leave of the request's deadline for the fallbacks after them (at
/// most; a tenth of a short deadline).
const FALLBACK_RESERVE: Duration = Duration::from_secs(1);

/// Answers questions from a user's notes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Assistant {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    notes: SharedNotes,
    /// The LLM upstreams in order; none in excerpts-only mode.
    upstreams: Vec<Upstream>,
    /// The first upstream's breaker (in excerpts-only mode one that is never called): its
    /// state is the `circuit_state` of answers no upstream gave, and the `503`'s `circuit`.
    primary: CircuitBreaker,
    registry: Registry,
    cache: AnswerCache,
    /// The model in cache keys: the primary's, whichever upstream answered.
    key_model: String,
    /// Recent transitions, answers and latencies, for the status page.
    activity: Arc<Activity>,
    top_k: usize,
    /// One request's whole budget (a stream's too).
    request_timeout: Duration,
}

/// What the pipeline produced: a whole answer, or a stream whose first piece is in.
enum Reply {
    Whole(Answer),
    Live(Box<stream::Live>),
}

/// The excerpts for the `excerpts` fallback: already retrieved, or to retrieve if the
/// stale answer does not serve (when every circuit refused, the search is skipped until
/// then).
enum Retrieval {
    Done(Vec<Excerpt>),
    Later,
}

/// One question on its way through the pipeline.
#[derive(Clone, Debug)]
struct Ctx {
    user: UserId,
    query: String,
    /// Sources to show.
    k: usize,
    key: CacheKey,
    started: Instant,
    /// Until when upstreams may be asked.
    llm_deadline: Instant,
}

/// Who an answer is from.
struct Origin<'a> {
    upstream: Option<&'a str>,
    model: &'a str,
    circuit_state: breaker::State,
}

/// An upstream's stream whose first piece is in.
struct Opened {
    /// Which upstream.
    index: usize,
    permit: OwnedPermit,
    tokens: TokenStream,
    first: Chunk,
    call_started: Instant,
}

impl Assistant {
    /// Builds the pipeline from the configuration: a breaker and a client per upstream
    /// (registered under the upstream's name), the answer cache, and the notes store's
    /// breaker when it has one.
    pub fn new(config: &Config, notes: SharedNotes) -> Result<Self, AssistantBuildError> {
        Self::with_activity(config, notes, Arc::default())
    }

    /// [`Self::new`], recording into `activity` (which the notes store's breaker may
    /// already report to: see [`Config::open_notes`]).
    pub fn with_activity(
        config: &Config,
        notes: SharedNotes,
        activity: Arc<Activity>,
    ) -> Result<Self, AssistantBuildError> {
        let registry = Registry::new();
        let mut cache = AnswerCache::new(config.cache.capacity, config.cache.ttl);
        if let Some(url) = &config.redis_url {
            let redis = RedisCache::observed(url, Some(activity.clone()))?;
            registry.insert(redis.breaker().clone());
            cache = cache.with_redis(redis);
        }
        let request_timeout = config.server.request_timeout;
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| {
                let redis = config.redis_url.as_deref();
                Upstream::new(u, redis, request_timeout, activity.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let primary = match upstreams.first() {
            Some(first) => first.breaker.clone(),
            None => config
                .breaker
                .builder()
                .listener(Arc::new(BreakerMetrics))
                .listener(activity.clone())
                .build()?,
        };
        registry.insert(primary.clone());
        for upstream in upstreams.iter().skip(1) {
            registry.insert(upstream.breaker.clone());
        }
        if let Some(store) = notes.breaker() {
            registry.insert(store.clone());
        }
        let key_model = upstreams
            .first()
            .map_or_else(|| config.llm.model.clone(), |u| u.model.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                notes,
                upstreams,
                primary,
                registry,
                cache,
                key_model,
                activity,
                top_k: config.notes.top_k,
                request_timeout,
            }),
        })
    }

    /// Every breaker the assistant uses, by name.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The recent transitions, answers by source and upstream latencies.
    pub fn activity(&self) -> ActivitySnapshot {
        self.inner.activity.snapshot()
    }

    /// False when `CIRCUIT_BREAKER_ENABLED=false`: calls go straight through.
    pub fn breaker_enabled(&self) -> bool {
        self.inner.primary.state() != breaker::State::Disabled
    }

    /// True when no LLM is configured: every answer comes from the notes themselves.
    pub fn excerpts_only(&self) -> bool {
        self.inner.upstreams.is_empty()
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
    /// first piece of the answer is in: an upstream that fails before its first token hands
    /// over to the next as [`Self::answer`] does, and with nothing to give this is the same
    /// error.
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
        let key = CacheKey::new(user, query, &self.inner.key_model, generation);
        if let Some(hit) = self.inner.cache.fresh(&key).await {
            let answer = self.cached(AnswerSource::Cache, &hit, k, started, Vec::new());
            return Ok(Reply::Whole(answer));
        }
        let budget = self.inner.request_timeout;
        let ctx = Ctx {
            user: user.clone(),
            query: query.to_owned(),
            k,
            key,
            started,
            llm_deadline: started + budget - FALLBACK_RESERVE.min(budget / 10),
        };
        let mut stages = Stages::default();
        let mut retrieved: Option<(SearchResult, Prompt)> = None;
        let mut from = 0;
        while let Some((index, permit)) = self.next_permit(from, &mut stages).await {
            from = index + 1;
            let (found, prompt) = match retrieved.take() {
                Some(done) => done,
                None => {
                    let found = self.retrieve(&ctx).await?;
                    let prompt = self.prompt(&ctx.query, &found);
                    (found, prompt)
                }
            };
            let upstream = &self.inner.upstreams[index];
            if streamed {
                match self.open_stream(index, permit, &prompt, &ctx).await {
                    Ok(opened) => {
                        let live = stream::Live {
                            assistant: self.clone(),
                            opened,
                            prompt,
                            retrieved: found,
                            ctx,
                            stages,
                        };
                        return Ok(Reply::Live(Box::new(live)));
                    }
                    Err(why) => stages.missed(index, upstream, why),
                }
            } else {
                match self.generate(index, permit, &prompt, &found, &ctx).await {
                    Ok(text) => {
                        stages.answered(upstream);
                        let origin = self.origin_of(upstream);
                        let answer = self.respond(
                            AnswerSource::Llm,
                            &text,
                            &found.excerpts,
                            &ctx,
                            origin,
                            stages.attempts,
                        );
                        return Ok(Reply::Whole(answer));
                    }
                    Err(why) => stages.missed(index, upstream, why),
                }
            }
            retrieved = Some((found, prompt));
        }
        let retrieval = retrieved.map_or(Retrieval::Later, |(found, _)| {
            Retrieval::Done(found.excerpts)
        });
        let answer = self.fall_back(&ctx, stages, retrieval).await?;
        Ok(Reply::Whole(answer))
    }

    /// The next upstream from `from` on whose breaker lets a call through; each one that
    /// refuses is recorded and skipped at no cost.
    async fn next_permit(&self, from: usize, stages: &mut Stages) -> Option<(usize, OwnedPermit)> {
        for (index, upstream) in self.inner.upstreams.iter().enumerate().skip(from) {
            match upstream.permit().await {
                Ok(permit) => return Some((index, permit)),
                Err(why) => stages.missed(index, upstream, why),
            }
        }
        None
    }

    /// The next upstream from `from` on that opens a stream and sends its first piece.
    async fn next_stream(
        &self,
        from: usize,
        prompt: &Prompt,
        ctx: &Ctx,
        stages: &mut Stages,
    ) -> Option<Opened> {
        let mut from = from;
        while let Some((index, permit)) = self.next_permit(from, stages).await {
            from = index + 1;
            match self.open_stream(index, permit, prompt, ctx).await {
                Ok(opened) => return Some(opened),
                Err(why) => stages.missed(index, &self.inner.upstreams[index], why),
            }
        }
        None
    }

    /// The fallback chain past the upstreams, top to bottom: the latest cached answer to
    /// this question (`stale_cache`), the top excerpts (`excerpts`), else the `503`.
    async fn fall_back(
        &self,
        ctx: &Ctx,
        stages: Stages,
        retrieval: Retrieval,
    ) -> Result<Answer, AssistantError> {
        let why = stages.last_reason();
        if why.is_request_fault() {
            // Not an outage: the upstream refused this request (a bad token, a prompt it
            // will not take). Still answer from the fallbacks, but make it loud.
            tracing::error!(reason = %why, "the LLM refused the request; falling back");
        } else {
            tracing::warn!(reason = %why, "LLM unavailable; falling back");
        }
        if let Some(stale) = self.stale(ctx).await {
            return Ok(self.cached(
                AnswerSource::StaleCache,
                &stale,
                ctx.k,
                ctx.started,
                stages.attempts,
            ));
        }
        let excerpts = match retrieval {
            Retrieval::Done(excerpts) => excerpts,
            Retrieval::Later => self.retrieve(ctx).await?.excerpts,
        };
        let top = &excerpts[..excerpts.len().min(FALLBACK_EXCERPTS)];
        if !top.is_empty() {
            let text = excerpts_answer(top);
            let origin = self.origin_of_fallback();
            return Ok(self.respond(
                AnswerSource::Excerpts,
                &text,
                top,
                ctx,
                origin,
                stages.attempts,
            ));
        }
        metrics::record_answer("unavailable");
        self.inner.activity.answered("unavailable");
        tracing::Span::current().record("source", "unavailable");
        Err(self.unavailable(stages))
    }

    /// The latest answer to this question, from any notes generation, while every note it
    /// rests on is still there, unchanged: a deleted or edited note's text must not come
    /// back from memory (this replica's, or Redis's). A failed check serves nothing rather
    /// than something that may be gone.
    async fn stale(&self, ctx: &Ctx) -> Option<Arc<CachedAnswer>> {
        let stale = self.inner.cache.latest(&ctx.key).await?;
        let current = self
            .inner
            .notes
            .still_current(&ctx.user, &stale.rests_on)
            .await;
        if !matches!(current, Ok(true)) {
            tracing::debug!("the stale answer rests on a note deleted or edited since");
            return None;
        }
        Some(stale)
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
            let key = CacheKey::new(user, query, &self.inner.key_model, seen);
            if let Some(hit) = self.inner.cache.fresh(&key).await {
                return Ok(self.cached(AnswerSource::Cache, &hit, k, started, Vec::new()));
            }
        }
        metrics::record_answer("notes_unavailable");
        Err(err.into())
    }

    /// The excerpts for `ctx`: the prompt rests on the configured top-k whatever
    /// `max_sources` asked, so a cached answer does not depend on it; `k` trims what is shown.
    async fn retrieve(&self, ctx: &Ctx) -> Result<SearchResult, AssistantError> {
        let wanted = self.inner.top_k.max(ctx.k);
        Ok(self
            .inner
            .notes
            .search(&ctx.user, &ctx.query, wanted)
            .await?)
    }

    /// The prompt: the question grounded in the configured top-k excerpts.
    fn prompt(&self, query: &str, found: &SearchResult) -> Prompt {
        let grounding = &found.excerpts[..found.excerpts.len().min(self.inner.top_k)];
        Prompt::grounded(query, grounding)
    }

    /// What is left of the request's budget for the next upstream, or why nothing is.
    fn budget(ctx: &Ctx) -> Result<Duration, Unanswered> {
        let left = ctx.llm_deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(Unanswered::OutOfTime)
        } else {
            Ok(left)
        }
    }

    /// Opens a stream from upstream `index` under its permit and waits for its first piece
    /// (within its first-token deadline and the request's). A failure is recorded.
    async fn open_stream(
        &self,
        index: usize,
        mut permit: OwnedPermit,
        prompt: &Prompt,
        ctx: &Ctx,
    ) -> Result<Opened, Unanswered> {
        let upstream = &self.inner.upstreams[index];
        let budget = Self::budget(ctx)?;
        let (limit, late) = if upstream.first_token_timeout <= budget {
            let limit = upstream.first_token_timeout;
            (limit, LlmError::FirstTokenLate(limit))
        } else {
            (budget, LlmError::PastDeadline(self.inner.request_timeout))
        };
        let call_started = Instant::now();
        let provider = &upstream.provider;
        let opened = tokio::time::timeout(limit, async {
            let mut tokens = provider.stream(prompt).await?;
            let first = tokens.next().await?;
            if first.end && first.text.trim().is_empty() {
                return Err(LlmError::Malformed("empty answer".to_owned()));
            }
            Ok((tokens, first))
        })
        .await
        .unwrap_or(Err(late));
        let seconds = call_started.elapsed().as_secs_f64();
        match opened {
            Ok((tokens, first)) => {
                metrics::record_first_token(seconds);
                // Answering now: the in-flight bound is for calls still waiting.
                permit.responded();
                Ok(Opened {
                    index,
                    permit,
                    tokens,
                    first,
                    call_started,
                })
            }
            Err(e) => {
                permit.record(e.outcome());
                metrics::record_llm(llm_outcome(&e), seconds);
                Err(Unanswered::Failed(e))
            }
        }
    }

    /// Asks upstream `index` for a whole answer under its permit, within the request's
    /// budget; the answer is cached.
    async fn generate(
        &self,
        index: usize,
        permit: OwnedPermit,
        prompt: &Prompt,
        found: &SearchResult,
        ctx: &Ctx,
    ) -> Result<String, Unanswered> {
        let upstream = &self.inner.upstreams[index];
        let budget = Self::budget(ctx)?;
        let provider = upstream.provider.clone();
        let prompt = prompt.clone();
        let past_deadline = LlmError::PastDeadline(self.inner.request_timeout);
        let cache = self.inner.cache.clone();
        let activity = self.inner.activity.clone();
        let key = ctx.key;
        let mut entry = upstream.cached(found, String::new());
        let call = async move {
            let started = Instant::now();
            let classify = |result: &Result<String, LlmError>| match result {
                Ok(_) => Outcome::Success,
                Err(e) => e.outcome(),
            };
            let within_budget = async {
                tokio::time::timeout(budget, provider.generate(&prompt))
                    .await
                    .unwrap_or(Err(past_deadline))
            };
            let result = permit.run(within_budget, classify).await;
            let seconds = started.elapsed().as_secs_f64();
            let result = match result {
                Ok(text) => {
                    metrics::record_llm("success", seconds);
                    activity.called(&entry.upstream, seconds);
                    Ok(text)
                }
                Err(CallError::Rejected(rejected)) => Err(Unanswered::CircuitOpen(rejected)),
                Err(CallError::Timeout(limit)) => {
                    metrics::record_llm("timeout", seconds);
                    Err(Unanswered::Timeout(limit))
                }
                Err(CallError::Inner(e)) => {
                    metrics::record_llm(llm_outcome(&e), seconds);
                    Err(Unanswered::Failed(e))
                }
            };
            // Cached here, so an answer that comes after its request gave up still serves
            // the next one. The prompt rests on the top-k whatever `max_sources` asked.
            if let Ok(text) = &result {
                entry.answer.clone_from(text);
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
            () = upstream.breaker.stalled() => {
                metrics::record_abandoned();
                Err(Unanswered::Stalled)
            }
        }
    }

    fn origin_of<'a>(&'a self, upstream: &'a Upstream) -> Origin<'a> {
        Origin {
            upstream: Some(&upstream.name),
            model: &upstream.model,
            circuit_state: upstream.breaker.state(),
        }
    }

    /// Who a fallback answer is from: no upstream; the primary's model and circuit.
    fn origin_of_fallback(&self) -> Origin<'_> {
        Origin {
            upstream: None,
            model: &self.inner.key_model,
            circuit_state: self.inner.primary.state(),
        }
    }

    /// A cached answer (`cache` or `stale_cache`), said to be from the upstream that gave it.
    fn cached(
        &self,
        source: AnswerSource,
        hit: &CachedAnswer,
        k: usize,
        started: Instant,
        attempts: Vec<Attempt>,
    ) -> Answer {
        let by = self.inner.upstreams.iter().find(|u| u.name == hit.upstream);
        let origin = Origin {
            upstream: (!hit.upstream.is_empty()).then_some(hit.upstream.as_str()),
            model: if hit.model.is_empty() {
                &self.inner.key_model
            } else {
                &hit.model
            },
            circuit_state: by.map_or_else(|| self.inner.primary.state(), |u| u.breaker.state()),
        };
        let ctx = (k, started);
        self.answer_of(source, &hit.answer, &hit.sources, ctx, origin, attempts)
    }

    fn respond(
        &self,
        source: AnswerSource,
        text: &str,
        sources: &[Excerpt],
        ctx: &Ctx,
        origin: Origin<'_>,
        attempts: Vec<Attempt>,
    ) -> Answer {
        self.answer_of(
            source,
            text,
            sources,
            (ctx.k, ctx.started),
            origin,
            attempts,
        )
    }

    fn answer_of(
        &self,
        source: AnswerSource,
        text: &str,
        sources: &[Excerpt],
        (k, started): (usize, Instant),
        origin: Origin<'_>,
        attempts: Vec<Attempt>,
    ) -> Answer {
        metrics::record_answer(source.as_str());
        self.inner.activity.answered(source.as_str());
        tracing::Span::current().record("source", source.as_str());
        Answer {
            answer: text.to_owned(),
            sources: sources.iter().take(k).cloned().collect(),
            metadata: AnswerMetadata {
                source,
                degraded: source.is_degraded(),
                circuit_state: origin.circuit_state,
                model: origin.model.to_owned(),
                upstream: origin.upstream.map(str::to_owned),
                attempts,
                latency_ms: started.elapsed().as_secs_f64() * 1_000.0,
            },
        }
    }

    /// The 503: why, and the whole seconds until the earliest upstream lets a call through.
    fn unavailable(&self, stages: Stages) -> AssistantError {
        let status = self.inner.primary.status();
        let earliest = stages
            .misses
            .iter()
            .map(|(index, why)| self.inner.upstreams[*index].wait_after(why))
            .reduce(f64::min);
        // No upstream at all (excerpts-only mode): the base open time is the honest guess.
        let wait = earliest.unwrap_or(status.reset_timeout_seconds);
        let why = stages.last_reason();
        AssistantError::Unavailable {
            retry_after_seconds: (wait.ceil() as u64).max(1),
            detail: format!("{why}, and no cached answer or matching note is available"),
            circuit: Box::new(status),
            attempts: stages.attempts,
        }
    }
}

/// The `outcome` label of an LLM call that failed.
fn llm_outcome(e: &LlmError) -> &'static str {
    match e {
        LlmError::Timeout
        | LlmError::FirstTokenLate(_)
        | LlmError::Idle(_)
        | LlmError::PastDeadline(_) => "timeout",
        _ => "error",
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
