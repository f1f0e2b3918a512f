//! The HTTP API over a real socket: notes CRUD, questions, health and metrics.

mod http_common;

use http_common::{TestServer, expect_error, json};
use serde_json::json;

#[tokio::test]
async fn notes_can_be_created_read_listed_updated_and_deleted() {
    let app = TestServer::start().await;

    let response = app
        .post_json(
            "/api/notes",
            &json!({"user_id": "alice", "title": "Bread", "body": "Flour, water, salt."}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let created = json(response).await;
    let id = created["id"].as_str().expect("an id").to_owned();
    assert_eq!(location, format!("/api/notes/{id}?user_id=alice"));
    assert_eq!(created["title"], "Bread");

    let read = json(app.get(&location).await).await;
    assert_eq!(read, created);

    let updated = app
        .client
        .put(app.url(&location))
        .json(&json!({"title": "Sourdough"}))
        .send()
        .await
        .expect("PUT is answered");
    assert_eq!(updated.status(), 200);
    let updated = json(updated).await;
    assert_eq!(updated["title"], "Sourdough");
    assert_eq!(updated["body"], "Flour, water, salt.");

    let page = json(app.get("/api/notes?user_id=alice").await).await;
    assert_eq!(page["user_id"], "alice");
    assert_eq!(page["notes"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["notes"][0]["title"], "Sourdough");

    let deleted = app
        .client
        .delete(app.url(&location))
        .send()
        .await
        .expect("DELETE is answered");
    assert_eq!(deleted.status(), 204);
    expect_error(app.get(&location).await, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn another_users_note_is_not_found_and_stays_unchanged() {
    let app = TestServer::start().await;
    let note = app.create_note("alice", "Private", "Only for Alice.").await;
    let id = note["id"].as_str().expect("an id");
    let as_bob = format!("/api/notes/{id}?user_id=bob");

    expect_error(app.get(&as_bob).await, 404, "not_found").await;
    let put = app
        .client
        .put(app.url(&as_bob))
        .json(&json!({"body": "Bob was here."}))
        .send()
        .await
        .expect("PUT is answered");
    expect_error(put, 404, "not_found").await;
    let delete = app
        .client
        .delete(app.url(&as_bob))
        .send()
        .await
        .expect("DELETE is answered");
    expect_error(delete, 404, "not_found").await;
    // Without user_id the request acts for "default", who does not own it either.
    expect_error(app.get(&format!("/api/notes/{id}")).await, 404, "not_found").await;

    let still = json(app.get(&format!("/api/notes/{id}?user_id=alice")).await).await;
    assert_eq!(still["body"], "Only for Alice.");
    let bobs = json(app.get("/api/notes?user_id=bob").await).await;
    assert_eq!(bobs["notes"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn list_pages_with_limit_and_offset_newest_first() {
    let app = TestServer::start().await;
    for n in 1..=3 {
        app.create_note("default", &format!("Note {n}"), "text")
            .await;
    }

    let page = json(app.get("/api/notes?limit=2&offset=1").await).await;

    assert_eq!(page["limit"], 2);
    assert_eq!(page["offset"], 1);
    let titles: Vec<&str> = page["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|note| note["title"].as_str())
        .collect();
    assert_eq!(titles, ["Note 2", "Note 1"]);
    app.stop().await;
}

#[tokio::test]
async fn a_question_is_answered_from_the_users_notes() {
    let app = TestServer::start().await;
    app.create_note("alice", "Breaker", "The breaker opens after five failures.")
        .await;

    let response = app
        .post_json(
            "/api/assistant/query",
            &json!({"query": "When does the breaker open?", "user_id": "alice", "extra": 1}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let answer = json(response).await;
    assert!(answer["answer"].as_str().is_some_and(|a| !a.is_empty()));
    assert_eq!(answer["sources"][0]["title"], "Breaker");
    assert_eq!(answer["metadata"]["source"], "llm");
    assert_eq!(answer["metadata"]["circuit_state"], "closed");
    assert!(answer["metadata"]["latency_ms"].is_number());
    app.stop().await;
}

#[tokio::test]
async fn healthz_is_ok() {
    let app = TestServer::start().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await, json!({"status": "ok"}));
    app.stop().await;
}

#[tokio::test]
async fn circuit_breaker_health_lists_every_breaker() {
    let app = TestServer::start().await;

    let health = app.circuit().await;

    assert_eq!(health["enabled"], true);
    assert_eq!(health["healthy"], true);
    assert_eq!(health["excerpts_only"], false);
    let breaker = &health["breakers"][0];
    assert_eq!(breaker["name"], "huggingface");
    assert_eq!(breaker["state"], "closed");
    for field in [
        "consecutive_failures",
        "fail_threshold",
        "reset_timeout_seconds",
        "calls",
        "successes",
        "failures",
        "rejected",
        "ignored",
    ] {
        assert!(breaker[field].is_number(), "{field} in {breaker}");
    }
    for field in ["opened_at", "retry_after_seconds"] {
        assert!(breaker.get(field).is_some(), "{field} in {breaker}");
    }
    app.stop().await;
}

#[tokio::test]
async fn circuit_breaker_health_says_when_there_is_no_llm_token() {
    let app = TestServer::start_with(&[("HF_API_TOKEN", "")]).await;
    let health = app.circuit().await;
    assert_eq!(health["excerpts_only"], true);
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_breakwater_series_after_a_query() {
    let app = TestServer::start().await;
    app.create_note("default", "Tea", "Green tea steeps for two minutes.")
        .await;
    let answered = app
        .post_json("/api/assistant/query", &json!({"query": "tea steeping"}))
        .await;
    assert_eq!(answered.status(), 200);

    let response = app.get("/metrics").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    let text = response.text().await.expect("text");
    assert!(
        text.contains("breakwater_http_request_duration_seconds"),
        "{text}"
    );
    assert!(text.contains(r#"route="/api/assistant/query""#), "{text}");
    assert!(text.contains("breakwater_circuit_breaker_state"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = TestServer::start().await;
    // The recorder is per process, shared with the other tests here: count this one's.
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("breakwater_http_request_duration_seconds_count"))
            .filter(|l| l.contains(r#"method="other""#))
            .count()
    };
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).expect("token");
        let sent = app
            .client
            .request(method, app.url(&format!("/pot/{i}")))
            .send()
            .await
            .expect("sent");
        assert!(sent.status().is_client_error());
    }
    let long = reqwest::Method::from_bytes("X".repeat(8_000).as_bytes()).expect("token");
    let _ = app.client.request(long, app.url("/healthz")).send().await;
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(
        !text.contains("BREW"),
        "made-up methods must not become labels"
    );
    assert!(!text.contains("XXXX"), "nor a long one");
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(!text.contains("/pot/"), "paths are never labels");
    // Made-up methods on two routes: no route, and /healthz (one per status).
    assert!(series(&text) <= 3, "{} series:\n{text}", series(&text));
    app.stop().await;
}
