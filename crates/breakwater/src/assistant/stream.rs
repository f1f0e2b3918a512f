//! A streamed answer: the events a client sees, and the stream that turns an upstream's
//! pieces into them, falling back when the upstream breaks mid-answer.
//!
//! The events are `sources`, `delta`s and `done`; when the LLM fails after deltas were
//! sent, `fallback` says to discard them and the fallback answer follows as deltas, then
//! `done` with its true source; with nothing left, `error` is the last event.

use std::pin::Pin;
use std::time::Duration;

use breaker::Outcome;
use futures::Stream;
use serde::Serialize;
use tracing::Instrument;

use super::chain::Stages;
use super::error::Unanswered;
use super::{
    Answer, AnswerMetadata, AnswerSource, Assistant, AssistantError, Ctx, Opened, Retrieval,
};
use crate::llm::{Chunk, LlmError, Prompt, TokenStream};
use crate::metrics;
use crate::notes::{Excerpt, SearchResult};

/// One event of a streamed answer; serialised, it is the event's `data` (see
/// [`ServerSentEvent`] for the whole event).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StreamEvent {
    /// `event: sources` — first: the excerpts the answer rests on.
    Sources {
        /// As in the JSON answer.
        sources: Vec<Excerpt>,
    },
    /// `event: delta` — a piece of the answer, in order.
    Delta {
        /// The text to append.
        text: String,
    },
    /// `event: fallback` — the LLM failed mid-stream: every delta so far is to be
    /// discarded; the deltas that follow are the answer from `source`.
    Fallback {
        /// Why the LLM's answer was abandoned.
        reason: String,
        /// The level of the fallback chain that answers instead.
        source: AnswerSource,
        /// The excerpts the fallback answer rests on.
        sources: Vec<Excerpt>,
    },
    /// `event: done` — last event of a complete answer.
    Done {
        /// As in the JSON answer.
        metadata: AnswerMetadata,
    },
    /// `event: error` — last event when nothing was left to give after the stream started.
    Error {
        /// `service_unavailable`.
        error: &'static str,
        /// Why.
        detail: String,
        /// Whole seconds until a retry can succeed.
        retry_after_seconds: u64,
    },
}

/// One Server-Sent Event of a streamed answer as it travels (what the OpenAPI document
/// gives for `text/event-stream`): its name, and its `data`, one JSON object of the
/// [`StreamEvent`] its name says.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ServerSentEvent {
    /// The event's name.
    pub event: EventName,
    /// A [`StreamEvent`] as JSON: `sources` `{"sources"}`, `delta` `{"text"}`, `fallback`
    /// `{"reason", "source", "sources"}`, `done` `{"metadata"}`, `error` `{"error",
    /// "detail", "retry_after_seconds"}`.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

/// The names of a streamed answer's events.
#[derive(Clone, Copy, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    /// First: the excerpts.
    Sources,
    /// A piece of the answer.
    Delta,
    /// Discard the deltas so far; another source answers.
    Fallback,
    /// The end of a complete answer.
    Done,
    /// The end, with nothing to give.
    Error,
}

impl From<&StreamEvent> for ServerSentEvent {
    fn from(event: &StreamEvent) -> Self {
        Self {
            event: event.kind(),
            // Serialising our own types (strings, numbers, lists) cannot fail.
            data: serde_json::to_string(event).unwrap_or_default(),
        }
    }
}

impl EventName {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sources => "sources",
            Self::Delta => "delta",
            Self::Fallback => "fallback",
            Self::Done => "done",
            Self::Error => "error",
        }
    }
}

impl StreamEvent {
    /// The SSE event name.
    fn kind(&self) -> EventName {
        match self {
            Self::Sources { .. } => EventName::Sources,
            Self::Delta { .. } => EventName::Delta,
            Self::Fallback { .. } => EventName::Fallback,
            Self::Done { .. } => EventName::Done,
            Self::Error { .. } => EventName::Error,
        }
    }
}

/// The events of one answer, in order; dropping it (the client left) drops the upstream
/// call, which the breaker counts as ignored.
pub type AnswerStream = Pin<Box<dyn Stream<Item = StreamEvent> + Send>>;

/// An answer that is already whole (a cache hit, a fallback) as a stream: its sources, the
/// answer in one delta, done.
pub(super) fn whole(answer: Answer) -> AnswerStream {
    let events = [
        StreamEvent::Sources {
            sources: answer.sources,
        },
        StreamEvent::Delta {
            text: answer.answer,
        },
        StreamEvent::Done {
            metadata: answer.metadata,
        },
    ];
    Box::pin(futures::stream::iter(events))
}

/// A stream whose first piece is in: what it needs to go on, finish and fall back.
pub(super) struct Live {
    pub(super) assistant: Assistant,
    pub(super) opened: Opened,
    pub(super) prompt: Prompt,
    pub(super) retrieved: SearchResult,
    pub(super) ctx: Ctx,
    pub(super) stages: Stages,
}

/// Counts a stream that got under way by how it ended; one dropped before its end is a
/// client that left.
struct Ending(Option<&'static str>);

impl Drop for Ending {
    fn drop(&mut self) {
        metrics::record_stream(self.0.unwrap_or("client_left"));
    }
}

impl Live {
    /// The events: sources, the first piece and each one after it as it comes, then done.
    /// When the upstream breaks mid-answer: `fallback`, then the next upstream's answer as
    /// it comes (source `llm`), or the stale answer or the excerpts, or `error`.
    pub(super) fn into_events(self) -> AnswerStream {
        let span = tracing::Span::current();
        let Self {
            assistant,
            mut opened,
            prompt,
            retrieved,
            ctx,
            mut stages,
        } = self;
        let deadline =
            tokio::time::Instant::from_std(ctx.started + assistant.inner.request_timeout);
        let budget = assistant.inner.request_timeout;
        let shown: Vec<Excerpt> = retrieved.excerpts.iter().take(ctx.k).cloned().collect();
        let events = async_stream::stream! {
            let mut ending = Ending(None);
            yield StreamEvent::Sources { sources: shown.clone() };
            loop {
                let upstream = &assistant.inner.upstreams[opened.index];
                let idle = upstream.stream_idle_timeout;
                let mut text = String::new();
                let mut chunk = std::mem::take(&mut opened.first);
                let ended = loop {
                    if !chunk.text.is_empty() {
                        text.push_str(&chunk.text);
                        yield StreamEvent::Delta { text: std::mem::take(&mut chunk.text) };
                    }
                    if chunk.end {
                        break Ok(());
                    }
                    chunk = match next_within(&mut opened.tokens, idle, deadline, budget).await {
                        Ok(next) => next,
                        Err(e) => break Err(e),
                    };
                };
                let seconds = opened.call_started.elapsed().as_secs_f64();
                let e = match ended {
                    Ok(()) => {
                        let Opened { permit, .. } = opened;
                        permit.record(Outcome::Success);
                        metrics::record_llm("success", seconds);
                        assistant.inner.activity.called(&upstream.name, seconds);
                        // Only a complete answer is cached.
                        let entry = upstream.cached(&retrieved, text.trim().to_owned());
                        assistant.inner.cache.insert(&ctx.key, entry).await;
                        stages.answered(upstream);
                        let answer = span.in_scope(|| {
                            let origin = assistant.origin_of(upstream);
                            assistant.respond(AnswerSource::Llm, &text, &retrieved.excerpts, &ctx, origin, stages.attempts)
                        });
                        ending.0 = Some("complete");
                        yield StreamEvent::Done { metadata: answer.metadata };
                        return;
                    }
                    Err(e) => e,
                };
                let Opened { permit, index, .. } = opened;
                permit.record(e.outcome());
                metrics::record_llm(super::llm_outcome(&e), seconds);
                span.in_scope(|| {
                    tracing::warn!(upstream = %upstream.name, reason = %e, "the LLM stream broke after it began; falling back");
                });
                let reason = e.to_string();
                stages.missed(index, upstream, Unanswered::Failed(e));
                // The next upstream first, then the fallbacks past the chain.
                let next = assistant
                    .next_stream(index + 1, &prompt, &ctx, &mut stages)
                    .instrument(span.clone())
                    .await;
                if let Some(next) = next {
                    yield StreamEvent::Fallback {
                        reason,
                        source: AnswerSource::Llm,
                        sources: shown.clone(),
                    };
                    opened = next;
                    continue;
                }
                let fallback = assistant
                    .fall_back(&ctx, stages, Retrieval::Done(retrieved.excerpts))
                    .instrument(span.clone())
                    .await;
                match fallback {
                    Ok(answer) => {
                        ending.0 = Some("fallback");
                        yield StreamEvent::Fallback {
                            reason,
                            source: answer.metadata.source,
                            sources: answer.sources,
                        };
                        yield StreamEvent::Delta { text: answer.answer };
                        yield StreamEvent::Done { metadata: answer.metadata };
                    }
                    Err(err) => {
                        ending.0 = Some("error");
                        yield error_event(&err);
                    }
                }
                return;
            }
        };
        Box::pin(events)
    }
}

/// The next piece within the idle deadline and the request's deadline (`budget` long).
async fn next_within(
    tokens: &mut TokenStream,
    idle: Duration,
    deadline: tokio::time::Instant,
    budget: Duration,
) -> Result<Chunk, LlmError> {
    let idle_until = tokio::time::Instant::now() + idle;
    let (until, late) = if idle_until <= deadline {
        (idle_until, LlmError::Idle(idle))
    } else {
        (deadline, LlmError::PastDeadline(budget))
    };
    match tokio::time::timeout_at(until, tokens.next()).await {
        Ok(result) => result,
        Err(_elapsed) => Err(late),
    }
}

/// The `error` event for an answer that could not be given after the stream began.
fn error_event(err: &AssistantError) -> StreamEvent {
    match err {
        AssistantError::Unavailable {
            retry_after_seconds,
            detail,
            ..
        } => StreamEvent::Error {
            error: "service_unavailable",
            detail: detail.clone(),
            retry_after_seconds: *retry_after_seconds,
        },
        other => StreamEvent::Error {
            error: "service_unavailable",
            detail: other.to_string(),
            retry_after_seconds: 1,
        },
    }
}
