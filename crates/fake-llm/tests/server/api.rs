//! The two LLM endpoints when healthy.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{post_chat, start};

#[tokio::test]
async fn chat_completion_answers_in_openai_shape_quoting_the_last_user_message()
-> anyhow::Result<()> {
    let (upstream, client) = start().await?;

    let response = post_chat(&client, &upstream, "When is the   quarterly\nreport due?").await?;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "fake/model");
    assert!(body["id"].is_string());
    assert!(body["created"].is_u64());
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        "Based on your notes: When is the quarterly report due?"
    );
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap_or(0)
                + usage["completion_tokens"].as_u64().unwrap_or(0)
        )
    );
    Ok(())
}

#[tokio::test]
async fn text_generation_answers_generated_text_on_both_model_paths() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;

    for path in [
        "/hf-inference/models/meta-llama/Llama-3.2-1B-Instruct",
        "/models/some-org/some-model",
    ] {
        let response = client
            .post(format!("{}{path}", upstream.base_url()))
            .json(&json!({"inputs": "Notes: the garden needs water.", "parameters": {"max_new_tokens": 64}}))
            .send()
            .await?;

        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await?;
        assert_eq!(
            body,
            json!([{"generated_text": "Based on your notes: Notes: the garden needs water."}]),
            "{path}"
        );
    }
    assert_eq!(upstream.llm.stats().text_calls, 2);
    Ok(())
}

#[tokio::test]
async fn chat_under_a_model_path_is_answered_as_chat() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;

    let response = client
        .post(format!(
            "{}/hf-inference/models/org/model/v1/chat/completions",
            upstream.base_url()
        ))
        .json(&crate::common::chat_body("what about bees?"))
        .send()
        .await?;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Based on your notes: what about bees?"
    );
    assert_eq!(upstream.llm.stats().chat_calls, 1);
    Ok(())
}

#[tokio::test]
async fn body_that_does_not_fit_the_endpoint_is_rejected_with_422() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    let base = upstream.base_url();
    let cases = [
        ("/v1/chat/completions", "not json".to_owned()),
        ("/v1/chat/completions", json!({"model": "m"}).to_string()),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": []}).to_string(),
        ),
        ("/models/m", json!({"inputs": 42}).to_string()),
        (
            "/models/m",
            json!({"inputs": "x", "parameters": "y"}).to_string(),
        ),
    ];

    for (path, body) in cases {
        let response = client
            .post(format!("{base}{path}"))
            .body(body.clone())
            .send()
            .await?;

        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}"
        );
        let error: Value = response.json().await?;
        assert_eq!(error["error"], "invalid_request", "{path} {body}");
        assert!(error["detail"].is_string(), "{path} {body}");
    }
    Ok(())
}

#[tokio::test]
async fn llm_calls_are_counted_per_endpoint_but_admin_calls_are_not() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    let base = upstream.base_url();

    post_chat(&client, &upstream, "one").await?;
    post_chat(&client, &upstream, "two").await?;
    client
        .post(format!("{base}/models/m"))
        .json(&json!({"inputs": "three"}))
        .send()
        .await?;
    client.get(format!("{base}/admin/stats")).send().await?;
    client.get(format!("{base}/admin/fault")).send().await?;
    client.get(format!("{base}/healthz")).send().await?;

    assert_eq!(upstream.llm.calls(), 3);
    let stats: Value = client
        .get(format!("{base}/admin/stats"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        stats,
        json!({"calls": 3, "chat_calls": 2, "text_calls": 1, "failures_injected": 0,
               "streams": 0, "streams_finished": 0, "streams_dropped": 0})
    );
    Ok(())
}
