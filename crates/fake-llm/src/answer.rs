//! The two request formats and the deterministic, prompt-quoting answer.

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// What every answer starts with; the rest quotes the prompt so tests can check grounding.
const ANSWER_PREFIX: &str = "Based on your notes:";
/// How much of the prompt the answer quotes, in characters.
const QUOTED_CHARS: usize = 200;

/// An OpenAI-style chat-completion request.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    pub(crate) model: String,
    pub(crate) messages: Vec<ChatMessage>,
    // Accepted so that a wrongly typed value is rejected, as a real server would; the
    // answer does not depend on them.
    pub(crate) max_tokens: Option<u32>,
    pub(crate) temperature: Option<f64>,
    #[serde(default)]
    pub(crate) stream: bool,
}

/// One chat message.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatMessage {
    pub(crate) role: String,
    /// `null` is allowed (assistant messages with tool calls have no content).
    pub(crate) content: Option<MessageContent>,
}

/// A message's content: a plain string or OpenAI's list of typed parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One part of a multi-part message; only text parts contribute to the prompt.
#[derive(Debug, Deserialize)]
pub(crate) struct ContentPart {
    pub(crate) text: Option<String>,
}

/// An HF text-generation request.
#[derive(Debug, Deserialize)]
pub(crate) struct TextRequest {
    pub(crate) inputs: String,
    /// Generation parameters; must be an object when present, otherwise unused.
    pub(crate) parameters: Option<Map<String, Value>>,
    /// Stream the answer as TGI does.
    #[serde(default)]
    pub(crate) stream: bool,
}

impl MessageContent {
    fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|part| part.text.as_deref())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

impl ChatRequest {
    /// The text the answer quotes: the last user message, else the last message.
    pub(crate) fn prompt(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .or_else(|| self.messages.last())
            .and_then(|m| m.content.as_ref())
            .map(MessageContent::text)
            .unwrap_or_default()
    }

    /// Whitespace-separated words over all messages: a stand-in for prompt tokens.
    fn prompt_words(&self) -> usize {
        self.messages
            .iter()
            .filter_map(|m| m.content.as_ref())
            .map(|c| word_count(&c.text()))
            .sum()
    }
}

/// The answer to `prompt`: the prefix, then up to 200 characters of the prompt with its
/// whitespace collapsed to single spaces.
pub(crate) fn grounded_answer(prompt: &str) -> String {
    let collapsed = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    let quote: String = collapsed.chars().take(QUOTED_CHARS).collect();
    if quote.is_empty() {
        ANSWER_PREFIX.to_owned()
    } else {
        format!("{ANSWER_PREFIX} {quote}")
    }
}

/// The body of a chat completion that answers `request`; `number` makes the id unique.
pub(crate) fn chat_completion(request: &ChatRequest, number: u64, created: u64) -> Value {
    let answer = grounded_answer(&request.prompt());
    let prompt_tokens = request.prompt_words();
    let completion_tokens = word_count(&answer);
    json!({
        "id": format!("chatcmpl-fake-{number}"),
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer},
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })
}

/// The body of a text generation that answers `request`.
pub(crate) fn text_generation(request: &TextRequest) -> Value {
    json!([{"generated_text": grounded_answer(&request.inputs)}])
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_quotes_the_prompt_with_whitespace_collapsed() {
        let answer = grounded_answer("  the  quarterly\n\treport is due  ");
        assert_eq!(answer, "Based on your notes: the quarterly report is due");
    }

    #[test]
    fn answer_quotes_at_most_200_characters_of_the_prompt() {
        let answer = grounded_answer(&"é".repeat(500));
        assert_eq!(answer.chars().count(), ANSWER_PREFIX.len() + 1 + 200);
    }

    #[test]
    fn chat_prompt_is_the_last_user_message_even_in_parts() {
        let request: ChatRequest = serde_json::from_value(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": null},
                {"role": "user", "content": [{"type": "text", "text": "second question"}]},
                {"role": "assistant", "content": "thinking"},
            ],
        }))
        .expect("valid chat request");
        assert_eq!(request.prompt(), "second question");
    }
}
