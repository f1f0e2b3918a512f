//! A streamed answer as it comes: Server-Sent Events read with `eventsource-stream`, each
//! event read by the upstream's dialect.

use std::pin::Pin;

use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};

use super::LlmError;
use super::client::{MAX_BODY, transport_error};
use super::dialect::{Chunk, Dialect, MAX_DETAIL, error_text};

type Events = Pin<
    Box<dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<LlmError>>> + Send>,
>;

/// The pieces of a streamed answer. Dropping it drops the upstream connection.
pub struct TokenStream {
    source: Source,
}

enum Source {
    Events {
        events: Events,
        dialect: &'static dyn Dialect,
    },
    /// The server answered whole: one piece, then the end.
    Whole(Option<String>),
    /// The end marker was read (or the stream failed): nothing more.
    Finished,
}

impl std::fmt::Debug for TokenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStream").finish_non_exhaustive()
    }
}

impl TokenStream {
    /// Reads `response`'s body as an event stream in `dialect`.
    pub(crate) fn new(response: reqwest::Response, dialect: &'static dyn Dialect) -> Self {
        // A broken upstream must not make us buffer without bound: the events together
        // are capped like a whole answer.
        let mut read = 0usize;
        let bytes = response.bytes_stream().map(move |chunk| {
            // A body that breaks off (a reset, a connection closed mid-chunk) is a stream
            // cut short; a timeout stays a timeout.
            let chunk = chunk.map_err(|e| match transport_error(e) {
                LlmError::Connect(_) => LlmError::Cut,
                other => other,
            })?;
            read += chunk.len();
            if read > MAX_BODY {
                return Err(LlmError::Malformed(format!(
                    "stream larger than {MAX_BODY} bytes"
                )));
            }
            Ok(chunk)
        });
        Self {
            source: Source::Events {
                events: Box::pin(bytes.eventsource()),
                dialect,
            },
        }
    }

    /// A whole answer, as a stream of one piece.
    pub(crate) fn whole(text: String) -> Self {
        Self {
            source: Source::Whole(Some(text)),
        }
    }

    /// The next piece of text, or the end marker (`end`, perhaps with a last piece).
    /// Events that carry no text are skipped. A stream that ends without its end marker,
    /// carries an error or cannot be read is an `Err`; after the end or an error nothing
    /// more is read.
    pub async fn next(&mut self) -> Result<Chunk, LlmError> {
        let result = self.read().await;
        if !matches!(result, Ok(Chunk { end: false, .. })) {
            self.source = Source::Finished;
        }
        result
    }

    async fn read(&mut self) -> Result<Chunk, LlmError> {
        let (events, dialect) = match &mut self.source {
            Source::Events { events, dialect } => (events, *dialect),
            Source::Whole(text) => {
                return Ok(Chunk {
                    text: text.take().unwrap_or_default(),
                    end: true,
                });
            }
            Source::Finished => return Err(LlmError::Cut),
        };
        loop {
            let event = match events.next().await {
                None => return Err(LlmError::Cut),
                Some(Ok(event)) => event,
                Some(Err(EventStreamError::Transport(e))) => return Err(e),
                Some(Err(e)) => {
                    return Err(LlmError::Malformed(format!("not an event stream: {e}")));
                }
            };
            if event.event == "error" {
                // The data is the error itself or, as in a chunk, an object holding it.
                let detail = serde_json::from_str::<serde_json::Value>(&event.data)
                    .map(|v| error_text(v.get("error").unwrap_or(&v)))
                    .unwrap_or_else(|_| event.data.chars().take(MAX_DETAIL).collect());
                return Err(LlmError::InStream(detail));
            }
            let chunk = dialect.chunk(&event.data)?;
            if chunk.end || !chunk.text.is_empty() {
                return Ok(chunk);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiMode;

    /// A chat-completions stream whose body is `body`, as reqwest hands it over.
    fn chat_stream(body: impl Into<reqwest::Body>) -> TokenStream {
        let response = axum::http::Response::builder()
            .header("content-type", "text/event-stream")
            .body(body.into())
            .expect("a response");
        TokenStream::new(response.into(), super::super::dialect::of(ApiMode::Chat))
    }

    fn delta(text: &str) -> String {
        format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n")
    }

    #[tokio::test]
    async fn an_error_event_is_a_failure_with_its_message_and_ends_the_stream() {
        let cases = [
            (r#"{"error":{"message":"overloaded"}}"#, "overloaded"),
            (r#"{"message":"busy"}"#, "busy"),
            // Not JSON: the text itself is the message.
            ("the model is loading", "the model is loading"),
        ];
        for (data, detail) in cases {
            let mut stream = chat_stream(format!("{}event: error\ndata: {data}\n\n", delta("Hi")));
            assert_eq!(stream.next().await.expect("a piece").text, "Hi");
            let err = stream.next().await.expect_err("the error event");
            assert!(
                matches!(&err, LlmError::InStream(d) if d == detail),
                "{err:?}"
            );
            // Nothing more is read after a failure.
            assert!(matches!(stream.next().await, Err(LlmError::Cut)));
        }
    }

    #[tokio::test]
    async fn a_stream_without_its_end_marker_is_cut() {
        let mut stream = chat_stream(delta("Hi"));
        assert_eq!(stream.next().await.expect("a piece").text, "Hi");
        assert!(matches!(stream.next().await, Err(LlmError::Cut)));
    }

    #[tokio::test]
    async fn a_body_that_is_not_text_or_over_the_cap_is_malformed() {
        let cases: [(Vec<u8>, &str); 2] = [
            (b"data: \xff\xfe\n\n".to_vec(), "not an event stream"),
            // One event that never ends: without the cap it would be buffered without bound.
            (
                format!("data: {}", "x".repeat(MAX_BODY + 1)).into_bytes(),
                "larger than",
            ),
        ];
        for (body, message) in cases {
            let err = chat_stream(body).next().await.expect_err("malformed");
            assert!(
                matches!(&err, LlmError::Malformed(m) if m.contains(message)),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_whole_answer_is_one_last_piece() {
        let mut stream = TokenStream::whole("All of it".to_owned());
        let chunk = stream.next().await.expect("the answer");
        assert_eq!((chunk.text.as_str(), chunk.end), ("All of it", true));
        assert!(matches!(stream.next().await, Err(LlmError::Cut)));
        assert!(format!("{stream:?}").starts_with("TokenStream"));
    }
}
