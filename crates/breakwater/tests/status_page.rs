//! `GET /status` (the page) and `GET /api/assistant/status` (what it polls), over real
//! sockets. The page's behaviour in a browser is scripts/browser-test's.

mod http_common;

use fake_llm::Fault;
use http_common::{TestServer, json};
use serde_json::json;

#[tokio::test]
async fn the_page_is_public_and_self_contained_and_its_data_follows_the_token_rule() {
    let s = TestServer::start_with(&[("BREAKWATER_API_TOKEN", "api-token")]).await;
    let page = s.get("/status").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    let html = page.text().await.expect("html");
    assert!(html.contains("/api/assistant/status") && html.contains("sessionStorage"));
    assert!(!html.contains("api-token"), "the page holds no secret");

    assert_eq!(s.get("/api/assistant/status").await.status(), 401);
    let with_token = s
        .client
        .get(s.url("/api/assistant/status"))
        .bearer_auth("api-token")
        .send()
        .await
        .expect("answered");
    assert_eq!(with_token.status(), 200);
    let view = json(with_token).await;
    assert_eq!(view["health"]["breakers"][0]["name"], "huggingface");
    assert_eq!(
        view["activity"]["answers"].as_array().map(Vec::len),
        Some(15)
    );
    s.stop().await;
}

#[tokio::test]
async fn the_status_shows_transitions_answers_by_source_and_latency() {
    let s = TestServer::start_with(&[("CIRCUIT_BREAKER_FAIL_THRESHOLD", "2")]).await;
    s.create_note("alice", "Breakers", "A breaker opens after two failures.")
        .await;
    let s = &s;
    let ask = |q: &'static str| async move {
        let body = json!({"query": q, "user_id": "alice"});
        s.post_json("/api/assistant/query", &body).await
    };
    ask("breaker one").await;
    s.upstream.llm.set_fault(Fault::error(503));
    ask("breaker two").await;
    ask("breaker three").await;
    ask("breaker four").await;
    let view = json(s.get("/api/assistant/status").await).await;
    let last = &view["activity"]["transitions"][0];
    assert_eq!(
        (
            &last["breaker"],
            &last["from"],
            &last["to"],
            &last["reason"]
        ),
        (
            &json!("huggingface"),
            &json!("closed"),
            &json!("open"),
            &json!("consecutive_failures")
        )
    );
    let minutes = view["activity"]["answers"].as_array().expect("minutes");
    let total = |source: &str| -> u64 {
        minutes
            .iter()
            .map(|m| m["answers"][source].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!((total("llm"), total("excerpts")), (1, 3));
    let latency = &view["activity"]["latency"][0];
    assert_eq!(latency["upstream"], "huggingface");
    assert_eq!(latency["samples"], 1);
    assert_eq!(view["health"]["breakers"][0]["state"], "open");
}
