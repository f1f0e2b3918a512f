//! Faults switched at run time change what the LLM endpoints do, and only them.

use std::time::{Duration, Instant};

use fake_llm::{Fault, FaultMode};
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};

use crate::common::{post_chat, put_fault, start};

#[tokio::test]
async fn error_fault_answers_its_status_with_retry_after() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    put_fault(
        &client,
        &upstream,
        json!({"mode": "error", "status": 429, "retry_after_seconds": 7}),
    )
    .await?
    .error_for_status()?;

    let response = post_chat(&client, &upstream, "anyone there?").await?;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.as_bytes()),
        Some(&b"7"[..])
    );
    let body: Value = response.json().await?;
    assert_eq!(body, json!({"error": "injected failure"}));
    assert_eq!(upstream.llm.stats().failures_injected, 1);
    Ok(())
}

#[tokio::test]
async fn error_fault_with_estimated_time_looks_like_model_loading() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    put_fault(
        &client,
        &upstream,
        json!({"mode": "error", "estimated_time": 12.5}),
    )
    .await?
    .error_for_status()?;

    let response = client
        .post(format!("{}/models/m", upstream.base_url()))
        .json(&json!({"inputs": "hello"}))
        .send()
        .await?;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get(header::RETRY_AFTER).is_none());
    let body: Value = response.json().await?;
    assert_eq!(
        body,
        json!({"error": "Model is currently loading", "estimated_time": 12.5})
    );
    Ok(())
}

#[tokio::test]
async fn malformed_fault_answers_200_with_truncated_json() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    put_fault(&client, &upstream, json!({"mode": "malformed"}))
        .await?
        .error_for_status()?;

    let response = post_chat(&client, &upstream, "hello").await?;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let text = response.text().await?;
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "body parsed: {text}"
    );
    Ok(())
}

#[tokio::test]
async fn latency_fault_delays_the_answer() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    put_fault(&client, &upstream, json!({"latency_ms": 150}))
        .await?
        .error_for_status()?;

    let started = Instant::now();
    let response = post_chat(&client, &upstream, "slowly").await?;

    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn failure_rate_half_fails_exactly_five_of_ten_calls() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    put_fault(
        &client,
        &upstream,
        json!({"mode": "error", "failure_rate": 0.5}),
    )
    .await?
    .error_for_status()?;

    let mut failures = 0;
    for i in 0..10 {
        let status = post_chat(&client, &upstream, &format!("call {i}"))
            .await?
            .status();
        match status {
            StatusCode::SERVICE_UNAVAILABLE => failures += 1,
            StatusCode::OK => {}
            other => anyhow::bail!("unexpected status {other}"),
        }
    }

    assert_eq!(failures, 5);
    assert_eq!(upstream.llm.stats().failures_injected, 5);
    Ok(())
}

#[tokio::test]
async fn hang_fault_never_answers_until_the_client_times_out() -> anyhow::Result<()> {
    let (upstream, _) = start().await?;
    upstream.llm.set_fault(Fault::hang());
    let impatient = Client::builder()
        .timeout(Duration::from_millis(200))
        .build()?;

    let result = post_chat(&impatient, &upstream, "hello?").await;

    let err = result
        .err()
        .ok_or_else(|| anyhow::anyhow!("a hung call got an answer"))?;
    assert!(err.is_timeout(), "{err}");
    // Counted on arrival, although it never finished.
    assert_eq!(upstream.llm.calls(), 1);
    Ok(())
}

#[tokio::test]
async fn freeze_also_stops_the_calls_on_their_way_where_hang_lets_them_finish() -> anyhow::Result<()>
{
    let (upstream, _) = start().await?;
    let client = Client::builder().timeout(Duration::from_secs(3)).build()?;
    for (fault, answers) in [(Fault::hang(), true), (Fault::freeze(), false)] {
        upstream.llm.reset();
        upstream.llm.set_fault(Fault::ok().with_latency_ms(1_000));
        let (result, ()) = tokio::join!(post_chat(&client, &upstream, "still there?"), async {
            while upstream.llm.calls() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The call is sleeping its second of latency when the fault changes.
            upstream.llm.set_fault(fault.clone());
        });
        match answers {
            true => assert_eq!(result?.status(), StatusCode::OK, "{fault:?}"),
            false => assert!(result.is_err_and(|err| err.is_timeout()), "{fault:?}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn faults_never_apply_to_admin_or_health_endpoints() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    let base = upstream.base_url();
    upstream.llm.set_fault(Fault::hang().with_latency_ms(1_000));

    let health = client.get(format!("{base}/healthz")).send().await?;
    let fault: Fault = client
        .get(format!("{base}/admin/fault"))
        .send()
        .await?
        .json()
        .await?;
    let reset = client.post(format!("{base}/admin/reset")).send().await?;

    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await?, "ok");
    assert_eq!(fault.mode, FaultMode::Hang);
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        post_chat(&client, &upstream, "back?").await?.status(),
        StatusCode::OK
    );
    Ok(())
}

#[tokio::test]
async fn fault_set_in_code_and_over_http_is_one_and_the_same() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    let base = upstream.base_url();
    let in_code = Fault::error(502)
        .with_failure_rate(0.25)
        .with_retry_after_seconds(3);

    upstream.llm.set_fault(in_code.clone());
    let seen_over_http: Fault = client
        .get(format!("{base}/admin/fault"))
        .send()
        .await?
        .json()
        .await?;
    let echoed: Fault = put_fault(
        &client,
        &upstream,
        json!({"mode": "malformed", "latency_ms": 5}),
    )
    .await?
    .json()
    .await?;

    assert_eq!(seen_over_http, in_code);
    assert_eq!(echoed, Fault::malformed().with_latency_ms(5));
    assert_eq!(upstream.llm.fault(), echoed);
    Ok(())
}
