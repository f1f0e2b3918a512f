//! Operator controls over real sockets: auth, unknown names, bad states, and the breaker
//! following the state it is put in.

mod http_common;

use http_common::{TestServer, expect_error, json};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token";
const API: &str = "api-token";

async fn set(s: &TestServer, name: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = s
        .client
        .post(s.url(&format!("/api/assistant/circuit-breakers/{name}/state")))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("answered")
}

async fn ask(s: &TestServer, token: &str) -> Value {
    let response = s
        .client
        .post(s.url("/api/assistant/query"))
        .bearer_auth(token)
        .json(&json!({"query": "When does a breaker open?", "user_id": "alice"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    json(response).await
}

#[tokio::test]
async fn controls_are_off_without_an_admin_token() {
    let s = TestServer::start().await;
    let err = expect_error(
        set(
            &s,
            "huggingface",
            Some("anything"),
            &json!({"state": "forced_open"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert!(
        err["detail"]
            .as_str()
            .unwrap_or("")
            .contains("BREAKWATER_ADMIN_TOKEN"),
        "{err}"
    );
    // Reading one breaker's status is not a control.
    let one = json(s.get("/api/assistant/circuit-breakers/huggingface").await).await;
    assert_eq!(one["name"], "huggingface");
    assert_eq!(one["state"], "closed");
    s.stop().await;
}

#[tokio::test]
async fn an_operator_forces_a_circuit_open_and_closes_it_again() {
    let s = TestServer::start_with(&[
        ("BREAKWATER_ADMIN_TOKEN", ADMIN),
        ("BREAKWATER_API_TOKEN", API),
    ])
    .await;
    s.client
        .post(s.url("/api/notes"))
        .bearer_auth(API)
        .json(&json!({"user_id": "alice", "title": "Breakers", "body": "A breaker opens after five failures."}))
        .send()
        .await
        .expect("created");
    let open = json(
        set(
            &s,
            "huggingface",
            Some(ADMIN),
            &json!({"state": "forced_open"}),
        )
        .await,
    )
    .await;
    assert_eq!(open["previous_state"], "closed");
    assert_eq!(open["state"], "forced_open");
    assert_eq!(open["breaker"]["state"], "forced_open");

    // Forced open: no call to the upstream, the answer falls back at once.
    let answer = ask(&s, API).await;
    assert_eq!(answer["metadata"]["source"], "excerpts");
    assert_eq!(answer["metadata"]["circuit_state"], "forced_open");
    assert_eq!(s.upstream.llm.calls(), 0);

    let closed = json(set(&s, "huggingface", Some(ADMIN), &json!({"state": "closed"})).await).await;
    assert_eq!(closed["previous_state"], "forced_open");
    assert_eq!(ask(&s, API).await["metadata"]["source"], "llm");
    assert_eq!(s.upstream.llm.calls(), 1);

    let disabled = json(
        set(
            &s,
            "huggingface",
            Some(ADMIN),
            &json!({"state": "disabled"}),
        )
        .await,
    )
    .await;
    assert_eq!(disabled["state"], "disabled");
    let status = s
        .client
        .get(s.url("/api/assistant/circuit-breakers/huggingface"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        json(status).await["state"],
        "disabled",
        "the admin token reads too"
    );
    s.stop().await;
}

#[tokio::test]
async fn controls_refuse_other_tokens_unknown_names_and_bad_states() {
    let s = TestServer::start_with(&[
        ("BREAKWATER_ADMIN_TOKEN", ADMIN),
        ("BREAKWATER_API_TOKEN", API),
    ])
    .await;
    let body = json!({"state": "forced_open"});
    expect_error(
        set(&s, "huggingface", None, &body).await,
        401,
        "unauthorized",
    )
    .await;
    expect_error(
        set(&s, "huggingface", Some(API), &body).await,
        401,
        "unauthorized",
    )
    .await;
    expect_error(
        set(&s, "no-such", Some(ADMIN), &body).await,
        404,
        "not_found",
    )
    .await;
    for bad in [
        json!({"state": "open"}),
        json!({"state": "half_open"}),
        json!({"state": 1}),
        json!({}),
        json!({"state": "closed", "extra": true}),
    ] {
        expect_error(
            set(&s, "huggingface", Some(ADMIN), &bad).await,
            422,
            "invalid_request",
        )
        .await;
    }
    let unknown = s
        .client
        .get(s.url("/api/assistant/circuit-breakers/no-such"))
        .bearer_auth(API)
        .send()
        .await
        .expect("answered");
    expect_error(unknown, 404, "not_found").await;
    // Nothing above changed the breaker.
    let one = s
        .client
        .get(s.url("/api/assistant/circuit-breakers/huggingface"))
        .bearer_auth(API)
        .send()
        .await
        .expect("answered");
    assert_eq!(json(one).await["state"], "closed");
    s.stop().await;
}
