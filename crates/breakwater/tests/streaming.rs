//! Streamed answers end to end: a real server, `fake-llm` streaming in both protocols with
//! its faults switched at run time, and the events read with an SSE parser as a client
//! would. Each fault of the streaming contract is checked for the client's event sequence,
//! the final `source`, what was cached (nothing partial) and the breaker's counts.

mod http_common;

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource as _;
use fake_llm::{Fault, StreamFault, StreamMode};
use futures::StreamExt as _;
use http_common::{TestServer, json};
use serde_json::{Value, json};

const ALICE: &str = "alice";
const MODES: [&str; 2] = ["chat", "text"];

/// A server in `mode` whose circuit stays closed through the faults a test injects.
async fn server(mode: &str, extra: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![
        ("HF_API_MODE", mode),
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "100"),
        ("HF_STREAM_IDLE_TIMEOUT_SECONDS", "0.3"),
        ("HF_FIRST_TOKEN_TIMEOUT_SECONDS", "0.5"),
    ];
    vars.extend_from_slice(extra);
    let s = TestServer::start_with(&vars).await;
    s.create_note(
        ALICE,
        "Circuit breakers",
        "A breaker opens after five failures in a row.",
    )
    .await;
    s
}

/// One streamed answer as the client saw it.
struct Streamed {
    status: u16,
    content_type: String,
    events: Vec<(String, Value)>,
}

impl Streamed {
    fn names(&self) -> Vec<&str> {
        self.events.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The text of the deltas after the last `fallback` (all of them if none).
    fn answer(&self) -> String {
        let start = self
            .events
            .iter()
            .rposition(|(name, _)| name == "fallback")
            .map_or(0, |i| i + 1);
        self.events[start..]
            .iter()
            .filter(|(name, _)| name == "delta")
            .filter_map(|(_, data)| data["text"].as_str())
            .collect()
    }

    fn last(&self) -> &Value {
        &self.events.last().expect("at least one event").1
    }

    fn event(&self, name: &str) -> &Value {
        &self
            .events
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} event in {:?}", self.names()))
            .1
    }
}

async fn stream(s: &TestServer, query: &str) -> Streamed {
    let response = s
        .post_json(
            "/api/assistant/query",
            &json!({"query": query, "user_id": ALICE, "stream": true}),
        )
        .await;
    read(response).await
}

async fn read(response: reqwest::Response) -> Streamed {
    let status = response.status().as_u16();
    let content_type = http_common::content_type(&response);
    let mut events = Vec::new();
    let mut parsed = response.bytes_stream().eventsource();
    while let Some(event) = parsed.next().await {
        let event = event.expect("a well-formed event stream");
        let data = serde_json::from_str(&event.data).expect("each event's data is JSON");
        events.push((event.event, data));
    }
    Streamed {
        status,
        content_type,
        events,
    }
}

async fn ask_json(s: &TestServer, query: &str) -> Value {
    let response = s
        .post_json(
            "/api/assistant/query",
            &json!({"query": query, "user_id": ALICE}),
        )
        .await;
    assert_eq!(response.status(), 200);
    json(response).await
}

async fn breaker(s: &TestServer) -> Value {
    s.circuit().await["breakers"][0].clone()
}

fn fault_after(mode: StreamMode, n: u32) -> Fault {
    Fault::streaming(StreamFault::new(mode, n))
}

#[tokio::test]
async fn a_stream_is_sources_then_deltas_then_done_and_the_whole_answer_is_cached() {
    for mode in MODES {
        let s = server(mode, &[]).await;
        let got = stream(&s, "When does a breaker open?").await;
        assert_eq!(got.status, 200, "{mode}");
        assert!(got.content_type.starts_with("text/event-stream"), "{mode}");
        let names = got.names();
        assert_eq!(names.first(), Some(&"sources"), "{mode} {names:?}");
        assert_eq!(names.last(), Some(&"done"), "{mode} {names:?}");
        assert!(
            names.iter().filter(|n| **n == "delta").count() > 5,
            "{mode} {names:?}"
        );
        assert_eq!(
            got.event("sources")["sources"][0]["title"],
            "Circuit breakers"
        );
        let done = &got.last()["metadata"];
        assert_eq!(done["source"], "llm", "{mode}");
        assert_eq!(done["degraded"], false);
        assert_eq!(done["circuit_state"], "closed");
        assert!(got.answer().starts_with("Based on your notes:"), "{mode}");

        // The whole answer was cached: the JSON request gets it, with the same metadata.
        let cached = ask_json(&s, "When does a breaker open?").await;
        assert_eq!(cached["metadata"]["source"], "cache", "{mode}");
        assert_eq!(cached["answer"], got.answer().trim());
        let keys = |v: &Value| {
            let mut keys: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(done), keys(&cached["metadata"]));

        // A cache hit streams at once: sources, the answer in one delta, done.
        let hit = stream(&s, "When does a breaker open?").await;
        assert_eq!(hit.names(), ["sources", "delta", "done"], "{mode}");
        assert_eq!(hit.last()["metadata"]["source"], "cache");
        assert_eq!(hit.answer(), got.answer().trim());
        assert_eq!(s.upstream.llm.calls(), 1, "{mode}: one upstream call");
        let b = breaker(&s).await;
        assert_eq!(
            (b["successes"].as_u64(), b["failures"].as_u64()),
            (Some(1), Some(0))
        );
        let stats = s.upstream.llm.stats();
        assert_eq!((stats.streams, stats.streams_finished), (1, 1), "{mode}");
        s.stop().await;
    }
}

#[tokio::test]
async fn accept_event_stream_asks_for_a_stream_and_plain_requests_are_unchanged() {
    let s = server("chat", &[]).await;
    let response = s
        .client
        .post(s.url("/api/assistant/query"))
        .header("accept", "application/json, text/event-stream;q=0.9")
        .json(&json!({"query": "breaker failures", "user_id": ALICE}))
        .send()
        .await
        .expect("answered");
    let got = read(response).await;
    assert!(got.content_type.starts_with("text/event-stream"));
    assert_eq!(got.last()["metadata"]["source"], "llm");

    let plain = ask_json(&s, "what opens the breaker").await;
    assert_eq!(plain["metadata"]["source"], "llm");
    assert!(plain["answer"].is_string());
    assert_eq!(
        s.upstream.llm.stats().streams,
        1,
        "the plain request did not stream"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_stream_broken_mid_answer_falls_back_and_caches_nothing_in_both_protocols() {
    let faults = [
        (StreamMode::Cut, "ended before its end marker"),
        (StreamMode::Malformed, "unreadable"),
        (StreamMode::Error, "carried an error"),
        (StreamMode::Stall, "paused longer than 0.3s"),
    ];
    for mode in MODES {
        let s = server(mode, &[]).await;
        for (n, (fault, reason)) in faults.into_iter().enumerate() {
            let query = format!("breaker failures, case {n}");
            s.upstream.llm.set_fault(fault_after(fault, 2));
            let started = Instant::now();
            let got = stream(&s, &query).await;
            let waited = started.elapsed();
            let context = format!("{mode} {fault:?}");
            assert_eq!(got.status, 200, "{context}");
            assert_eq!(
                got.names(),
                ["sources", "delta", "delta", "fallback", "delta", "done"],
                "{context}"
            );
            let fallback = got.event("fallback");
            assert_eq!(fallback["source"], "excerpts", "{context}");
            assert!(
                fallback["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(reason)),
                "{context}: {fallback}"
            );
            assert_eq!(fallback["sources"][0]["title"], "Circuit breakers");
            assert_eq!(got.last()["metadata"]["source"], "excerpts", "{context}");
            assert_eq!(got.last()["metadata"]["degraded"], true);
            assert!(got.answer().contains("A breaker opens after five failures"));
            // The idle deadline, not the stalled upstream, decides how long this takes.
            assert!(waited < Duration::from_secs(5), "{context}: {waited:?}");
            let b = breaker(&s).await;
            assert_eq!(b["failures"].as_u64(), Some(n as u64 + 1), "{context}");

            // Nothing partial was cached: once healthy, the LLM is asked again.
            s.upstream.llm.set_fault(Fault::ok());
            let again = ask_json(&s, &query).await;
            assert_eq!(again["metadata"]["source"], "llm", "{context}");
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn a_stream_without_its_end_marker_is_not_an_answer() {
    for mode in MODES {
        let s = server(mode, &[]).await;
        s.upstream.llm.set_fault(fault_after(StreamMode::NoEnd, 0));
        let got = stream(&s, "When does a breaker open?").await;
        let names = got.names();
        assert_eq!(
            names[names.len() - 3..],
            ["fallback", "delta", "done"],
            "{mode}"
        );
        assert!(names.iter().filter(|n| **n == "delta").count() > 5);
        assert_eq!(got.last()["metadata"]["source"], "excerpts", "{mode}");
        assert_eq!(breaker(&s).await["failures"], 1);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_failure_before_the_first_token_starts_the_stream_with_the_fallback() {
    let s = server("chat", &[]).await;
    let before_first_token = [
        Fault::error(503),
        Fault::malformed(),
        Fault::ok().with_latency_ms(2_000),
        fault_after(StreamMode::Stall, 0),
        fault_after(StreamMode::Cut, 0),
    ];
    for (n, fault) in before_first_token.into_iter().enumerate() {
        s.upstream.llm.set_fault(fault.clone());
        let started = Instant::now();
        let got = stream(&s, &format!("breaker failures {n}")).await;
        assert_eq!(got.names(), ["sources", "delta", "done"], "{fault:?}");
        assert_eq!(got.last()["metadata"]["source"], "excerpts", "{fault:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{fault:?}");
        assert_eq!(breaker(&s).await["failures"].as_u64(), Some(n as u64 + 1));
    }
    s.stop().await;
}

#[tokio::test]
async fn a_mid_stream_failure_falls_back_to_the_stale_answer_when_there_is_one() {
    let s = server("chat", &[]).await;
    let first = ask_json(&s, "When does a breaker open?").await;
    assert_eq!(first["metadata"]["source"], "llm");
    // A new note moves the generation: the cached answer is stale, and still true.
    s.create_note(ALICE, "Retries", "Retries back off with jitter.")
        .await;
    s.upstream.llm.set_fault(fault_after(StreamMode::Cut, 3));
    let got = stream(&s, "When does a breaker open?").await;
    assert_eq!(
        got.names(),
        [
            "sources", "delta", "delta", "delta", "fallback", "delta", "done"
        ]
    );
    assert_eq!(got.event("fallback")["source"], "stale_cache");
    assert_eq!(got.last()["metadata"]["source"], "stale_cache");
    assert_eq!(got.answer(), first["answer"].as_str().expect("text"));
    s.stop().await;
}

#[tokio::test]
async fn with_nothing_to_give_a_stream_ends_in_error_and_an_unstarted_one_is_a_plain_503() {
    let s = server("chat", &[("CIRCUIT_BREAKER_RESET_TIMEOUT", "30")]).await;
    // Bob has no notes: there are no excerpts to fall back on.
    let bob = json!({"query": "anything at all", "user_id": "bob", "stream": true});
    let ask_bob = || s.post_json("/api/assistant/query", &bob);
    s.upstream.llm.set_fault(fault_after(StreamMode::Error, 2));
    let got = read(ask_bob().await).await;
    assert_eq!(got.names(), ["sources", "delta", "delta", "error"]);
    assert_eq!(got.event("sources")["sources"], json!([]));
    let error = got.last();
    assert_eq!(error["error"], "service_unavailable");
    assert!(
        error["retry_after_seconds"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    assert!(error["detail"].as_str().is_some_and(|d| !d.is_empty()));

    s.upstream.llm.set_fault(Fault::error(503));
    let response = ask_bob().await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body = json(response).await;
    assert_eq!(body["error"], "service_unavailable");
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_drops_the_upstream_call_which_counts_as_ignored() {
    let s = server("chat", &[]).await;
    let drip = StreamFault::default().with_chunk_delay_ms(50);
    s.upstream.llm.set_fault(Fault::streaming(drip));
    let response = s
        .post_json(
            "/api/assistant/query",
            &json!({"query": "When does a breaker open?", "user_id": ALICE, "stream": true}),
        )
        .await;
    let mut events = response.bytes_stream().eventsource();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = events
            .next()
            .await
            .expect("events come")
            .expect("well formed");
        seen.push(event.event);
    }
    assert_eq!(seen, ["sources", "delta", "delta"]);
    drop(events);
    // The server and the upstream notice the closed connections on their own schedule.
    let mut stats = s.upstream.llm.stats();
    for _ in 0..300 {
        stats = s.upstream.llm.stats();
        if stats.streams_dropped == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!((stats.streams_dropped, stats.streams_finished), (1, 0));
    let b = breaker(&s).await;
    assert_eq!(b["ignored"], 1, "{b}");
    assert_eq!(
        (b["successes"].as_u64(), b["failures"].as_u64()),
        (Some(0), Some(0))
    );
    // Nothing partial was cached, and the permit is free for the next call.
    s.upstream.llm.set_fault(Fault::ok());
    let again = ask_json(&s, "When does a breaker open?").await;
    assert_eq!(again["metadata"]["source"], "llm");
    s.stop().await;
}

#[tokio::test]
async fn ten_concurrent_streams_in_half_open_make_exactly_one_trial() {
    let s = server(
        "chat",
        &[
            ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "1"),
            ("CIRCUIT_BREAKER_RESET_TIMEOUT", "0.3"),
        ],
    )
    .await;
    s.upstream.llm.set_fault(Fault::error(503));
    stream(&s, "breaker failures").await;
    assert_eq!(breaker(&s).await["state"], "open");
    tokio::time::sleep(Duration::from_millis(350)).await;
    // The trial stays in flight while the other nine arrive.
    let drip = StreamFault::default().with_chunk_delay_ms(30);
    s.upstream.llm.set_fault(Fault::streaming(drip));
    let calls = s.upstream.llm.calls();
    let streams = (0..10).map(|i| {
        let s = &s;
        async move { stream(s, &format!("When does a breaker open? {i}")).await }
    });
    let all = futures::future::join_all(streams).await;
    assert_eq!(s.upstream.llm.calls() - calls, 1, "exactly one trial call");
    let sources: Vec<&str> = all
        .iter()
        .map(|got| got.last()["metadata"]["source"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        sources.iter().filter(|s| **s == "llm").count(),
        1,
        "{sources:?}"
    );
    assert_eq!(
        sources.iter().filter(|s| **s == "excerpts").count(),
        9,
        "{sources:?}"
    );
    assert_eq!(breaker(&s).await["state"], "closed");
    s.stop().await;
}

#[tokio::test]
async fn a_stream_runs_no_longer_than_the_request_deadline() {
    let s = server(
        "chat",
        &[
            ("BREAKWATER_REQUEST_TIMEOUT_SECONDS", "0.5"),
            ("HF_STREAM_IDLE_TIMEOUT_SECONDS", "5"),
        ],
    )
    .await;
    // A drip that never goes idle but would take 40 × 100 ms.
    let slow = StreamFault::default()
        .with_chunk_delay_ms(100)
        .with_chunks(40);
    s.upstream.llm.set_fault(Fault::streaming(slow));
    let started = Instant::now();
    let got = stream(&s, "When does a breaker open?").await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let fallback = got.event("fallback");
    assert!(
        fallback["reason"]
            .as_str()
            .is_some_and(|r| r.contains("request deadline")),
        "{fallback}"
    );
    assert_eq!(got.last()["metadata"]["source"], "excerpts");
    s.stop().await;
}
