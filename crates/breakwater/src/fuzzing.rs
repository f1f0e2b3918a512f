//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): thin wrappers over
//! parsers that are private to the crate, so the targets reach them without widening the
//! API.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use crate::llm::client;

/// Reads an upstream's 2xx body as a chat completion (`chat`) or a text generation, as a
/// call does; the error as text.
pub fn llm_answer(chat: bool, body: &[u8]) -> Result<String, String> {
    client::parse_answer(dialect(chat), body).map_err(|e| e.to_string())
}

/// The chat dialect, or the text-generation one.
fn dialect(chat: bool) -> &'static dyn crate::llm::dialect::Dialect {
    crate::llm::dialect::of(if chat {
        crate::config::ApiMode::Chat
    } else {
        crate::config::ApiMode::Text
    })
}

/// Reads one streamed event's `data` as a chat chunk (`chat`) or a TGI chunk, as a stream
/// does: the piece of text and whether it is the end marker, or the error as text.
pub fn llm_chunk(chat: bool, data: &str) -> Result<(String, bool), String> {
    dialect(chat)
        .chunk(data)
        .map(|chunk| (chunk.text, chunk.end))
        .map_err(|e| e.to_string())
}

/// Reads an upstream's error: status, `Retry-After` header value, body. Returns the wait
/// it names (capped).
pub fn llm_error(status: u16, retry_after: &[u8], body: &[u8]) -> Option<Duration> {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(retry_after) {
        headers.insert(RETRY_AFTER, value);
    }
    let hint = client::retry_after_header(&headers);
    match client::status_error(status, hint, body) {
        crate::llm::LlmError::Status { retry_after, .. } => retry_after,
        _ => None,
    }
}
