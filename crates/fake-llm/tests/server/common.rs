//! Shared arrange steps: a running upstream, an HTTP client, request bodies.

use std::time::Duration;

use fake_llm::{FakeLlm, RunningFakeLlm};
use reqwest::{Client, Response};
use serde_json::{Value, json};

/// A fresh upstream on an ephemeral port and a client with a safety timeout.
pub async fn start() -> anyhow::Result<(RunningFakeLlm, Client)> {
    let upstream = FakeLlm::new().spawn().await?;
    // Generous: only a broken test should ever hit it.
    let client = Client::builder().timeout(Duration::from_secs(5)).build()?;
    Ok((upstream, client))
}

/// A chat-completion request whose last user message is `question`.
pub fn chat_body(question: &str) -> Value {
    json!({
        "model": "fake/model",
        "messages": [
            {"role": "system", "content": "Answer from the notes only."},
            {"role": "user", "content": question},
        ],
        "max_tokens": 256,
        "temperature": 0.2,
    })
}

/// Posts a chat completion asking `question`.
pub async fn post_chat(
    client: &Client,
    upstream: &RunningFakeLlm,
    question: &str,
) -> reqwest::Result<Response> {
    client
        .post(format!("{}/v1/chat/completions", upstream.base_url()))
        .json(&chat_body(question))
        .send()
        .await
}

/// Switches the fault over the admin endpoint, as the README demo does.
pub async fn put_fault(
    client: &Client,
    upstream: &RunningFakeLlm,
    fault: Value,
) -> reqwest::Result<Response> {
    client
        .put(format!("{}/admin/fault", upstream.base_url()))
        .json(&fault)
        .send()
        .await
}
