//! Streamed answers in both protocols, with the stream fault applied after N pieces.
//!
//! - chat: OpenAI's `chat.completion.chunk` events, a last chunk with `finish_reason`,
//!   then `data: [DONE]`;
//! - text: TGI's `{"token": {...}, "generated_text": null}` events, the last one carrying
//!   the whole `generated_text` and `details.finish_reason`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::answer;
use crate::fault::StreamMode;
use crate::server::AppState;
use crate::state::{Admission, prompt_tail};

/// Which of the two stream formats to speak.
#[derive(Clone, Debug)]
pub(crate) enum Protocol {
    /// OpenAI-style chunks; the id and model echo the request.
    Chat {
        id: String,
        model: String,
        created: u64,
    },
    /// TGI's token stream.
    Text,
}

impl Protocol {
    fn piece(&self, index: usize, text: &str) -> Value {
        match self {
            Self::Chat { id, model, created } => json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}],
            }),
            Self::Text => json!({
                "index": index,
                "token": {"id": index, "text": text, "logprob": 0.0, "special": false},
                "generated_text": null,
                "details": null,
            }),
        }
    }

    /// The events that end a complete stream, after the pieces.
    fn ending(&self, pieces: usize, answer: &str) -> Vec<String> {
        match self {
            Self::Chat { id, model, created } => vec![
                json!({
                    "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                })
                .to_string(),
                "[DONE]".to_owned(),
            ],
            Self::Text => vec![
                json!({
                    "index": pieces,
                    "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": true},
                    "generated_text": answer,
                    "details": {"finish_reason": "eos_token", "generated_tokens": pieces + 1},
                })
                .to_string(),
            ],
        }
    }

    fn error(&self) -> Value {
        match self {
            Self::Chat { .. } => json!({
                "error": {"message": "fake-llm: injected error mid-stream", "type": "server_error"},
            }),
            Self::Text => json!({
                "error": "fake-llm: injected error mid-stream",
                "error_type": "generation",
            }),
        }
    }
}

/// The answer split into pieces: one per word (with its leading space), or `chunks`
/// groups of words as even as they can be.
pub(crate) fn pieces(answer: &str, chunks: Option<u32>) -> Vec<String> {
    let words: Vec<&str> = answer.split_inclusive(' ').collect();
    let groups = chunks
        .map_or(words.len(), |n| (n as usize).min(words.len()))
        .max(1);
    let mut pieces = Vec::with_capacity(groups);
    let mut start = 0;
    for group in 0..groups {
        let end = (group + 1) * words.len() / groups;
        pieces.push(words[start..end].concat());
        start = end;
    }
    pieces
}

/// The `200 text/event-stream` answer to the call `admission` let in, whose prompt is
/// `prompt`, behaving as the stream fault it arrived under says.
pub(crate) fn respond(
    state: &AppState,
    protocol: Protocol,
    prompt: &str,
    admission: &Admission,
) -> Response {
    let answer = answer::grounded_answer(prompt);
    let fault = admission.fault.stream.clone();
    let (llm, shutdown, arrived) = (state.llm.clone(), state.shutdown.clone(), admission.arrived);
    let mut end = llm.stream_begun();
    let mut tail = Some(prompt_tail(prompt));
    let body = async_stream::stream! {
        let pieces = pieces(&answer, fault.chunks);
        let delay = Duration::from_millis(fault.chunk_delay_ms);
        let breaks = fault.mode != StreamMode::Ok && fault.mode != StreamMode::NoEnd;
        for (index, piece) in pieces.iter().enumerate() {
            if breaks && index == fault.after_chunks as usize {
                break;
            }
            if index > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if let Some(tail) = tail.take() {
                llm.first_piece(tail, arrived.elapsed());
            }
            yield Ok(event(&protocol.piece(index, piece).to_string()));
        }
        match fault.mode {
            StreamMode::Ok => {
                for data in protocol.ending(pieces.len(), &answer) {
                    yield Ok(event(&data));
                }
            }
            StreamMode::NoEnd => {}
            StreamMode::Cut => {
                // Let what was sent reach the socket first (the server flushes when the
                // body waits), then an error ends the body without its last chunk.
                tokio::task::yield_now().await;
                end.finish();
                yield Err(std::io::Error::other("fake-llm: stream cut"));
            }
            StreamMode::Stall => {
                // Silent until the client leaves (dropping this stream) or shutdown.
                shutdown.requested().await;
            }
            StreamMode::Malformed => yield Ok(event(r#"{"choices": ["#)),
            StreamMode::Error => yield Ok(event(&protocol.error().to_string())),
        }
        end.finish();
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

fn event(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_splits_into_word_pieces_or_even_groups_that_join_back() {
        let answer = "Based on your notes: a b c";
        let words = pieces(answer, None);
        assert_eq!(
            words,
            ["Based ", "on ", "your ", "notes: ", "a ", "b ", "c"]
        );
        let three = pieces(answer, Some(3));
        assert_eq!(three.len(), 3);
        assert_eq!(three.concat(), answer);
        assert_eq!(pieces(answer, Some(50)).len(), 7);
        assert_eq!(pieces("", None), [""]);
    }
}
