//! The admin endpoints' validation and resets, and stopping the server.

use std::time::Duration;

use fake_llm::{Fault, FaultMode};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{post_chat, put_fault, start};

#[tokio::test]
async fn partial_fault_json_takes_defaults_for_the_rest() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;

    let response = put_fault(&client, &upstream, json!({"mode": "error"})).await?;

    assert_eq!(response.status(), StatusCode::OK);
    let fault: Value = response.json().await?;
    assert_eq!(
        fault,
        json!({"mode": "error", "status": 503, "latency_ms": 0, "failure_rate": 1.0,
               "retry_after_seconds": null, "estimated_time": null,
               "stream": {"mode": "ok", "after_chunks": 3, "chunk_delay_ms": 0, "chunks": null}})
    );
    Ok(())
}

#[tokio::test]
async fn invalid_fault_is_rejected_with_422_and_the_fault_is_unchanged() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    let invalid = [
        json!({"mode": "error", "failure_rate": 1.5}),
        json!({"mode": "error", "failure_rate": -0.5}),
        json!({"mode": "error", "status": 200}),
        json!({"mode": "error", "status": 600}),
        json!({"mode": "sideways"}),
        json!({"latency": 100}),
        json!("error"),
    ];

    for fault in invalid {
        let response = put_fault(&client, &upstream, fault.clone()).await?;

        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fault}"
        );
        let body: Value = response.json().await?;
        assert_eq!(body["error"], "invalid_fault", "{fault}");
        assert!(body["detail"].is_string(), "{fault}");
    }
    assert_eq!(upstream.llm.fault(), Fault::ok());
    Ok(())
}

#[tokio::test]
async fn reset_restores_a_healthy_upstream_and_zeroes_counters() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    upstream.llm.set_fault(Fault::error(500));
    post_chat(&client, &upstream, "fails").await?;

    let response = client
        .post(format!("{}/admin/reset", upstream.base_url()))
        .send()
        .await?;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(upstream.llm.fault(), Fault::ok());
    assert_eq!(upstream.llm.stats(), fake_llm::Stats::default());
    assert_eq!(
        post_chat(&client, &upstream, "works").await?.status(),
        StatusCode::OK
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_releases_hung_calls_and_stops_listening() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    upstream.llm.set_fault(Fault::hang());
    let url = format!("{}/v1/chat/completions", upstream.base_url());
    let hung = tokio::spawn(
        client
            .post(url)
            .json(&crate::common::chat_body("hi"))
            .send(),
    );
    wait_until(|| upstream.llm.calls() == 1).await?;
    let addr = upstream.addr;

    tokio::time::timeout(Duration::from_secs(2), upstream.shutdown()).await??;

    let response = hung.await??;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    Ok(())
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() -> anyhow::Result<()> {
    let (upstream, _) = start().await?;
    let addr = upstream.addr;
    assert_eq!(upstream.llm.fault().mode, FaultMode::Ok);

    drop(upstream);

    // The stop happens in the background: give it a moment.
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "still accepting connections on {addr}");
    Ok(())
}

async fn wait_until(condition: impl Fn() -> bool) -> anyhow::Result<()> {
    for _ in 0..100 {
        if condition() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("condition not met within 1 s")
}
