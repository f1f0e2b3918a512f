//! The two upstream APIs' wire formats, one type each: the request body, a whole answer,
//! and one event of a streamed answer.

use std::fmt;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{LlmError, Prompt};
use crate::config::ApiMode;

/// Longest answer asked for, in tokens.
const MAX_NEW_TOKENS: u32 = 512;
/// Longest upstream error text kept for logs and errors.
pub(crate) const MAX_DETAIL: usize = 300;

/// One event of a streamed answer, read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// The piece of the answer it carries (often empty in bookkeeping events).
    pub text: String,
    /// True for the stream's end marker: the answer is complete.
    pub end: bool,
}

/// An upstream API: how to ask it and how to read what it says.
pub(crate) trait Dialect: Send + Sync + fmt::Debug {
    /// The request body asking `model` for an answer to `prompt`, streamed or whole.
    fn body(&self, model: &str, prompt: &Prompt, stream: bool) -> Value;
    /// The answer in a whole 2xx body, untrimmed.
    fn answer(&self, body: &[u8]) -> Result<String, LlmError>;
    /// What one streamed event's `data` says: a piece of text, the end, or a failure (an
    /// error object, or data that does not parse).
    fn chunk(&self, data: &str) -> Result<Chunk, LlmError>;
}

/// The dialect of `mode`.
pub(crate) fn of(mode: ApiMode) -> &'static dyn Dialect {
    match mode {
        ApiMode::Chat => &ChatCompletions,
        ApiMode::Text => &TextGeneration,
    }
}

/// OpenAI-style chat completions (HF's router, TGI's Messages API, vLLM, …).
#[derive(Debug)]
struct ChatCompletions;

/// HF's text-generation task (TGI's native API when streamed).
#[derive(Debug)]
struct TextGeneration;

impl Dialect for ChatCompletions {
    fn body(&self, model: &str, prompt: &Prompt, stream: bool) -> Value {
        json!({
            "model": model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "max_tokens": MAX_NEW_TOKENS,
            "temperature": 0.2,
            "stream": stream,
        })
    }

    fn answer(&self, body: &[u8]) -> Result<String, LlmError> {
        #[derive(Deserialize)]
        struct Completion {
            choices: Vec<Choice>,
        }
        #[derive(Deserialize)]
        struct Choice {
            message: Message,
        }
        #[derive(Deserialize)]
        struct Message {
            content: Option<String>,
        }
        let completion: Completion = serde_json::from_slice(body)
            .map_err(|e| LlmError::Malformed(format!("not a chat completion: {e}")))?;
        completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| LlmError::Malformed("no choice with content".to_owned()))
    }

    fn chunk(&self, data: &str) -> Result<Chunk, LlmError> {
        #[derive(Deserialize)]
        struct Delta {
            #[serde(default)]
            choices: Vec<Choice>,
            error: Option<Value>,
        }
        #[derive(Deserialize)]
        struct Choice {
            delta: Option<Content>,
        }
        #[derive(Deserialize)]
        struct Content {
            content: Option<String>,
        }
        if data.trim() == "[DONE]" {
            return Ok(Chunk {
                text: String::new(),
                end: true,
            });
        }
        let delta: Delta = serde_json::from_str(data)
            .map_err(|e| LlmError::Malformed(format!("not a chat completion chunk: {e}")))?;
        if let Some(error) = delta.error.filter(|e| !e.is_null()) {
            return Err(LlmError::InStream(error_text(&error)));
        }
        let text = delta
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.delta)
            .and_then(|d| d.content)
            .unwrap_or_default();
        Ok(Chunk { text, end: false })
    }
}

impl Dialect for TextGeneration {
    fn body(&self, _model: &str, prompt: &Prompt, stream: bool) -> Value {
        json!({
            "inputs": prompt.as_text(),
            "parameters": {
                "max_new_tokens": MAX_NEW_TOKENS,
                "temperature": 0.2,
                "return_full_text": false,
            },
            "stream": stream,
        })
    }

    fn answer(&self, body: &[u8]) -> Result<String, LlmError> {
        #[derive(Deserialize)]
        struct Generated {
            generated_text: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Reply {
            Many(Vec<Generated>),
            One(Generated),
        }
        match serde_json::from_slice::<Reply>(body) {
            Ok(Reply::Many(list)) => list
                .into_iter()
                .next()
                .map(|g| g.generated_text)
                .ok_or_else(|| LlmError::Malformed("empty generation list".to_owned())),
            Ok(Reply::One(one)) => Ok(one.generated_text),
            Err(e) => Err(LlmError::Malformed(format!("not a text generation: {e}"))),
        }
    }

    fn chunk(&self, data: &str) -> Result<Chunk, LlmError> {
        #[derive(Deserialize)]
        struct Streamed {
            token: Option<Token>,
            generated_text: Option<String>,
            error: Option<Value>,
        }
        #[derive(Deserialize)]
        struct Token {
            #[serde(default)]
            text: String,
            #[serde(default)]
            special: bool,
        }
        let streamed: Streamed = serde_json::from_str(data)
            .map_err(|e| LlmError::Malformed(format!("not a text-generation chunk: {e}")))?;
        if let Some(error) = streamed.error.filter(|e| !e.is_null()) {
            return Err(LlmError::InStream(error_text(&error)));
        }
        // A special token (`</s>`, `<|eot_id|>`) is not part of the answer.
        let text = streamed
            .token
            .filter(|t| !t.special)
            .map(|t| t.text)
            .unwrap_or_default();
        // TGI's last chunk is the one that carries the whole `generated_text`.
        let end = streamed.generated_text.is_some();
        Ok(Chunk { text, end })
    }
}

/// An error object (`{"message": …}`) or string as one line for logs and errors.
pub(crate) fn error_text(error: &Value) -> String {
    let text = match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("message") {
            Some(Value::String(m)) => m.clone(),
            _ => error.to_string(),
        },
        other => other.to_string(),
    };
    text.chars().take(MAX_DETAIL).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(data: &str) -> Result<Chunk, LlmError> {
        ChatCompletions.chunk(data)
    }

    fn text(data: &str) -> Result<Chunk, LlmError> {
        TextGeneration.chunk(data)
    }

    fn piece(text: &str, end: bool) -> Chunk {
        Chunk {
            text: text.to_owned(),
            end,
        }
    }

    #[test]
    fn reads_a_chat_completion() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"}}]}"#;
        assert_eq!(ChatCompletions.answer(body).expect("valid"), "Hi");
        for broken in [&b"{\"choices\": ["[..], br#"{"choices":[]}"#] {
            assert!(matches!(
                ChatCompletions.answer(broken),
                Err(LlmError::Malformed(_))
            ));
        }
    }

    #[test]
    fn reads_a_text_generation_list_or_object() {
        let answer = |body: &[u8]| TextGeneration.answer(body);
        assert_eq!(answer(br#"[{"generated_text":"A"}]"#).expect("valid"), "A");
        assert_eq!(answer(br#"{"generated_text":"B"}"#).expect("valid"), "B");
        assert!(matches!(answer(b"[]"), Err(LlmError::Malformed(_))));
    }

    #[test]
    fn reads_chat_chunks_and_the_done_marker() {
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#;
        assert_eq!(chat(role).expect("valid"), piece("", false));
        let token = r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#;
        assert_eq!(chat(token).expect("valid"), piece("Hel", false));
        let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(chat(last).expect("valid"), piece("", false));
        assert_eq!(
            chat(r#"{"choices":[],"usage":{}}"#).expect("valid"),
            piece("", false)
        );
        assert_eq!(chat("[DONE]").expect("valid"), piece("", true));
    }

    #[test]
    fn reads_tgi_tokens_skipping_special_ones_and_the_final_chunk() {
        let token = r#"{"token":{"id":1,"text":" world","logprob":-0.1,"special":false},"generated_text":null,"details":null}"#;
        assert_eq!(text(token).expect("valid"), piece(" world", false));
        let last = r#"{"token":{"id":2,"text":"</s>","special":true},"generated_text":"Hello world","details":{"finish_reason":"eos_token"}}"#;
        assert_eq!(text(last).expect("valid"), piece("", true));
    }

    #[test]
    fn an_error_in_the_stream_or_an_unreadable_chunk_is_a_failure() {
        assert!(matches!(
            chat(r#"{"error":{"message":"overloaded","type":"server_error"}}"#),
            Err(LlmError::InStream(m)) if m == "overloaded"
        ));
        assert!(matches!(
            text(r#"{"error":"Request failed during generation","error_type":"generation"}"#),
            Err(LlmError::InStream(m)) if m == "Request failed during generation"
        ));
        for broken in ["{\"choices\": [", "not json", "[1,2]"] {
            assert!(
                matches!(chat(broken), Err(LlmError::Malformed(_))),
                "{broken}"
            );
            assert!(
                matches!(text(broken), Err(LlmError::Malformed(_))),
                "{broken}"
            );
        }
    }
}
