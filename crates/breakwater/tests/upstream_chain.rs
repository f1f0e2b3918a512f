//! The chain of upstreams end to end: two `fake-llm` instances listed in a
//! `BREAKWATER_CONFIG` file, each behind its own breaker, faults switched at run time.

mod http_common;

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource as _;
use fake_llm::{FakeLlm, Fault, RunningFakeLlm, StreamFault, StreamMode};
use futures::StreamExt as _;
use http_common::{TestServer, json};
use serde_json::{Value, json};

const ALICE: &str = "alice";

/// A server whose chain is `primary` (chat) then `secondary` (text), with `primary` and
/// `secondary` extra TOML lines for each.
struct Chain {
    server: TestServer,
    primary: RunningFakeLlm,
    secondary: RunningFakeLlm,
    _file: tempfile::TempDir,
}

async fn chain(primary_extra: &str, secondary_extra: &str, vars: &[(&str, &str)]) -> Chain {
    let primary = FakeLlm::new().spawn().await.expect("fake-llm starts");
    let secondary = FakeLlm::new().spawn().await.expect("fake-llm starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("upstreams.toml");
    let text = format!(
        r#"
[[upstream]]
name = "primary"
mode = "chat"
url = "{}/v1/chat/completions"
model = "big-model"
token_env = "PRIMARY_TOKEN"
{primary_extra}

[[upstream]]
name = "secondary"
mode = "text"
url = "{}/models/small-model"
model = "small-model"
{secondary_extra}
"#,
        primary.base_url(),
        secondary.base_url()
    );
    std::fs::write(&file, text).expect("write the upstreams file");
    let path = file.display().to_string();
    let mut all = vec![
        ("BREAKWATER_CONFIG", path.as_str()),
        ("PRIMARY_TOKEN", "primary-secret"),
    ];
    all.extend_from_slice(vars);
    let server = TestServer::start_with(&all).await;
    server
        .create_note(
            ALICE,
            "Circuit breakers",
            "A breaker opens after five failures in a row.",
        )
        .await;
    Chain {
        server,
        primary,
        secondary,
        _file: dir,
    }
}

impl Chain {
    async fn ask(&self, user: &str, query: &str) -> (u16, Option<String>, Value) {
        let response = self
            .server
            .post_json(
                "/api/assistant/query",
                &json!({"query": query, "user_id": user}),
            )
            .await;
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, retry, json(response).await)
    }

    async fn ask_ok(&self, query: &str) -> Value {
        let (status, _, body) = self.ask(ALICE, query).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn breaker(&self, name: &str) -> Value {
        let health = self.server.circuit().await;
        health["breakers"]
            .as_array()
            .and_then(|all| all.iter().find(|b| b["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no breaker {name} in {health}"))
    }

    async fn stop(self) {
        self.server.stop().await;
        self.primary.shutdown().await.expect("stops");
        self.secondary.shutdown().await.expect("stops");
    }
}

fn meta(answer: &Value) -> &Value {
    &answer["metadata"]
}

fn outcomes(answer: &Value) -> Vec<(String, String)> {
    meta(answer)["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| {
            (
                a["upstream"].as_str().unwrap_or("?").to_owned(),
                a["outcome"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_primary_answers_when_healthy_and_every_breaker_is_listed() {
    let c = chain("", "", &[]).await;
    let answer = c.ask_ok("When does a breaker open?").await;
    assert_eq!(meta(&answer)["source"], "llm");
    assert_eq!(meta(&answer)["upstream"], "primary");
    assert_eq!(meta(&answer)["model"], "big-model");
    assert_eq!(outcomes(&answer), pairs(&[("primary", "ok")]));
    assert_eq!((c.primary.llm.calls(), c.secondary.llm.calls()), (1, 0));
    let names: Vec<Value> = c.server.circuit().await["breakers"]
        .as_array()
        .expect("breakers")
        .iter()
        .map(|b| b["name"].clone())
        .collect();
    assert_eq!(names, [json!("primary"), json!("secondary")]);
    let metrics = c.server.get("/metrics").await.text().await.expect("text");
    for name in ["primary", "secondary"] {
        assert!(
            metrics.contains(&format!(
                "breakwater_circuit_breaker_state{{breaker=\"{name}\",state=\"closed\"}} 1"
            )),
            "{name}"
        );
    }
    c.stop().await;
}

#[tokio::test]
async fn a_failing_primary_hands_over_to_the_secondary_and_its_answer_is_a_hit_for_the_question() {
    let c = chain("fail_threshold = 100", "", &[]).await;
    c.primary.llm.set_fault(Fault::error(503));
    let answer = c.ask_ok("When does a breaker open?").await;
    assert_eq!(meta(&answer)["source"], "llm");
    assert_eq!(meta(&answer)["upstream"], "secondary");
    assert_eq!(meta(&answer)["model"], "small-model");
    assert_eq!(meta(&answer)["degraded"], false);
    assert_eq!(
        outcomes(&answer),
        pairs(&[("primary", "failed"), ("secondary", "ok")])
    );
    let reason = meta(&answer)["attempts"][0]["reason"]
        .as_str()
        .unwrap_or("");
    assert!(reason.contains("503"), "{reason}");
    // The cache key does not name who answered: the same question is a hit.
    let again = c.ask_ok("When does a breaker open?").await;
    assert_eq!(meta(&again)["source"], "cache");
    assert_eq!(meta(&again)["upstream"], "secondary");
    assert_eq!(again["answer"], answer["answer"]);
    assert_eq!((c.primary.llm.calls(), c.secondary.llm.calls()), (1, 1));
    c.stop().await;
}

#[tokio::test]
async fn an_open_primary_is_skipped_at_no_cost() {
    let c = chain("fail_threshold = 1\nreset_timeout_seconds = 60", "", &[]).await;
    c.primary.llm.set_fault(Fault::error(500));
    c.ask_ok("breaker failures").await;
    assert_eq!(c.breaker("primary").await["state"], "open");
    let calls = c.primary.llm.calls();
    for i in 0..5 {
        let answer = c.ask_ok(&format!("When does a breaker open? {i}")).await;
        assert_eq!(meta(&answer)["upstream"], "secondary");
        assert_eq!(
            outcomes(&answer),
            pairs(&[("primary", "rejected"), ("secondary", "ok")])
        );
    }
    assert_eq!(
        c.primary.llm.calls(),
        calls,
        "no call reached the open primary"
    );
    assert_eq!(c.breaker("primary").await["rejected"], 5);
    c.stop().await;
}

#[tokio::test]
async fn a_hung_primary_hands_over_within_the_request_deadline() {
    let c = chain(
        "call_timeout_seconds = 0.3",
        "",
        &[("BREAKWATER_REQUEST_TIMEOUT_SECONDS", "5")],
    )
    .await;
    c.primary.llm.set_fault(Fault::hang());
    let started = Instant::now();
    let answer = c.ask_ok("When does a breaker open?").await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(meta(&answer)["upstream"], "secondary");
    let reason = meta(&answer)["attempts"][0]["reason"]
        .as_str()
        .unwrap_or("");
    assert!(reason.contains("did not answer within 0.3s"), "{reason}");
    c.stop().await;
}

#[tokio::test]
async fn a_primary_slower_than_the_whole_deadline_leaves_the_rest_of_it_to_the_fallbacks() {
    // The primary's own timeout (30 s) is longer than the request's budget (0.5 s).
    let c = chain(
        "",
        "",
        &[
            ("BREAKWATER_REQUEST_TIMEOUT_SECONDS", "0.5"),
            ("CIRCUIT_BREAKER_MAX_IN_FLIGHT", "0"),
        ],
    )
    .await;
    c.primary.llm.set_fault(Fault::hang());
    let started = Instant::now();
    let answer = c.ask_ok("When does a breaker open?").await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(meta(&answer)["source"], "excerpts");
    let attempts = outcomes(&answer);
    assert_eq!(attempts[0], ("primary".to_owned(), "failed".to_owned()));
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    c.stop().await;
}

#[tokio::test]
async fn with_both_down_the_chain_ends_in_stale_excerpts_or_a_503_with_the_earliest_retry() {
    let c = chain(
        "fail_threshold = 1\nreset_timeout_seconds = 40",
        "fail_threshold = 1\nreset_timeout_seconds = 7",
        &[],
    )
    .await;
    let first = c.ask_ok("When does a breaker open?").await;
    assert_eq!(meta(&first)["upstream"], "primary");
    c.server
        .create_note(ALICE, "Retries", "Retries back off with jitter.")
        .await;
    c.primary.llm.set_fault(Fault::error(503));
    c.secondary.llm.set_fault(Fault::error(503));

    // Stale: the notes moved on, the answer still rests on unchanged notes.
    let stale = c.ask_ok("When does a breaker open?").await;
    assert_eq!(meta(&stale)["source"], "stale_cache");
    assert_eq!(meta(&stale)["upstream"], "primary");
    assert_eq!(
        outcomes(&stale),
        pairs(&[("primary", "failed"), ("secondary", "failed")])
    );
    // Both open now: excerpts, both rejected.
    let excerpts = c.ask_ok("jittered retries").await;
    assert_eq!(meta(&excerpts)["source"], "excerpts");
    assert_eq!(meta(&excerpts)["upstream"], Value::Null);
    assert_eq!(
        outcomes(&excerpts),
        pairs(&[("primary", "rejected"), ("secondary", "rejected")])
    );
    // Nothing to give: the 503 names every stage and the earliest trial (the secondary's).
    let (status, retry, body) = c.ask("bob", "anything").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("7"), "{body}");
    assert_eq!(body["retry_after_seconds"], 7);
    let stages: Vec<&Value> = body["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .collect();
    assert_eq!(stages.len(), 2, "{body}");
    assert!(stages.iter().all(|a| a["outcome"] == "rejected"), "{body}");
    c.stop().await;
}

#[tokio::test]
async fn a_recovered_primary_answers_again_after_its_trial() {
    let c = chain("fail_threshold = 1\nreset_timeout_seconds = 0.3", "", &[]).await;
    c.primary.llm.set_fault(Fault::error(503));
    let during = c.ask_ok("breaker failures").await;
    assert_eq!(meta(&during)["upstream"], "secondary");
    assert_eq!(c.breaker("primary").await["state"], "open");
    c.primary.llm.set_fault(Fault::ok());
    tokio::time::sleep(Duration::from_millis(350)).await;
    let after = c.ask_ok("When does a breaker open?").await;
    assert_eq!(meta(&after)["upstream"], "primary");
    assert_eq!(c.breaker("primary").await["state"], "closed");
    c.stop().await;
}

async fn stream(c: &Chain, query: &str) -> Vec<(String, Value)> {
    let response = c
        .server
        .post_json(
            "/api/assistant/query",
            &json!({"query": query, "user_id": ALICE, "stream": true}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut events = Vec::new();
    let mut parsed = response.bytes_stream().eventsource();
    while let Some(event) = parsed.next().await {
        let event = event.expect("well formed");
        events.push((
            event.event,
            serde_json::from_str(&event.data).expect("JSON"),
        ));
    }
    events
}

#[tokio::test]
async fn a_stream_hands_over_to_the_next_upstream_before_and_after_its_first_token() {
    let c = chain("fail_threshold = 100", "", &[]).await;
    // Before the first token: the stream simply starts with the secondary's answer.
    c.primary.llm.set_fault(Fault::error(503));
    let events = stream(&c, "When does a breaker open?").await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert!(!names.contains(&"fallback"), "{names:?}");
    let done = &events.last().expect("events").1["metadata"];
    assert_eq!(done["upstream"], "secondary");
    assert_eq!(done["source"], "llm");

    // Mid-stream: `fallback` to the next upstream (source llm), whose answer follows.
    let cut = StreamFault::new(StreamMode::Cut, 2);
    c.primary.llm.set_fault(Fault::streaming(cut));
    let events = stream(&c, "breaker failures in a row").await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..4],
        ["sources", "delta", "delta", "fallback"],
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"done"));
    assert_eq!(events[3].1["source"], "llm");
    let done = &events.last().expect("events").1["metadata"];
    assert_eq!(done["upstream"], "secondary");
    assert_eq!(done["source"], "llm");
    let attempts: Vec<&Value> = done["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .collect();
    assert_eq!(attempts[0]["outcome"], "failed");
    assert_eq!(attempts[1]["outcome"], "ok");
    let after: String = events[4..]
        .iter()
        .filter(|(n, _)| n == "delta")
        .filter_map(|(_, d)| d["text"].as_str())
        .collect();
    assert!(after.starts_with("Based on your notes:"), "{after}");
    c.stop().await;
}
