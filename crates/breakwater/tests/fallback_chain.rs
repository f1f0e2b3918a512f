//! The fallback chain and the circuit, end to end: a real server on a loopback port,
//! `fake-llm` as the upstream with faults switched at run time, reqwest as the client.

mod http_common;

use std::time::Duration;

use fake_llm::Fault;
use http_common::{TestServer, json};
use serde_json::{Value, json};

const ALICE: &str = "alice";

/// A server whose circuit opens after `threshold` failures and stays open `reset` seconds.
async fn server(threshold: &str, reset: &str) -> TestServer {
    TestServer::start_with(&[
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", threshold),
        ("CIRCUIT_BREAKER_RESET_TIMEOUT", reset),
    ])
    .await
}

async fn with_notes(s: &TestServer) {
    s.create_note(
        ALICE,
        "Circuit breakers",
        "A breaker opens after five failures in a row.",
    )
    .await;
    s.create_note(
        ALICE,
        "Retries",
        "Retries with jittered backoff avoid thundering herds.",
    )
    .await;
}

async fn ask(s: &TestServer, user: &str, query: &str) -> (u16, Value) {
    let response = s
        .post_json(
            "/api/assistant/query",
            &json!({"query": query, "user_id": user}),
        )
        .await;
    let status = response.status().as_u16();
    (status, json(response).await)
}

async fn ask_ok(s: &TestServer, user: &str, query: &str) -> Value {
    let (status, body) = ask(s, user, query).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn source(answer: &Value) -> &str {
    answer["metadata"]["source"].as_str().unwrap_or("?")
}

async fn breaker(s: &TestServer) -> Value {
    s.circuit().await["breakers"][0].clone()
}

/// Fails `n` questions against a failing upstream, so the circuit sees `n` failures.
async fn fail(s: &TestServer, n: usize) {
    s.upstream.llm.set_fault(Fault::error(503));
    for i in 0..n {
        ask(s, ALICE, &format!("breaker failure {i}")).await;
    }
}

#[tokio::test]
async fn a_healthy_upstream_answers_with_sources_and_the_answer_is_cached() {
    let s = server("3", "60").await;
    with_notes(&s).await;
    let first = ask_ok(&s, ALICE, "When does a breaker open?").await;
    assert_eq!(source(&first), "llm");
    assert_eq!(first["metadata"]["degraded"], false);
    assert_eq!(first["metadata"]["circuit_state"], "closed");
    assert!(
        first["answer"]
            .as_str()
            .is_some_and(|a| a.contains("breaker opens"))
    );
    assert_eq!(first["sources"][0]["title"], "Circuit breakers");

    let again = ask_ok(&s, ALICE, "  when does a BREAKER open ").await;
    assert_eq!(source(&again), "cache");
    assert_eq!(again["answer"], first["answer"]);
    assert_eq!(
        s.upstream.llm.calls(),
        1,
        "a cache hit makes no upstream call"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_circuit_opens_after_the_threshold_and_then_fails_fast_without_calling() {
    let s = server("3", "60").await;
    with_notes(&s).await;
    fail(&s, 2).await;
    assert_eq!(breaker(&s).await["state"], "closed");
    fail(&s, 1).await;
    let status = breaker(&s).await;
    assert_eq!(status["state"], "open");
    assert_eq!(status["failures"], 3);
    assert_eq!(s.circuit().await["healthy"], false);

    let calls = s.upstream.llm.calls();
    let answer = ask_ok(&s, ALICE, "jittered backoff").await;
    assert_eq!(source(&answer), "excerpts");
    assert_eq!(answer["metadata"]["circuit_state"], "open");
    assert_eq!(s.upstream.llm.calls(), calls, "open: no upstream call");
    assert_eq!(breaker(&s).await["rejected"], 1);
    s.stop().await;
}

#[tokio::test]
async fn an_answer_to_older_notes_is_served_stale_while_the_llm_is_down() {
    let s = server("5", "60").await;
    with_notes(&s).await;
    let fresh = ask_ok(&s, ALICE, "When does a breaker open?").await;
    // A new note moves the notes generation: the cached answer is no longer fresh.
    s.create_note(ALICE, "Bulkheads", "Bulkheads isolate pools.")
        .await;
    s.upstream.llm.set_fault(Fault::error(500));
    let stale = ask_ok(&s, ALICE, "When does a breaker open?").await;
    assert_eq!(source(&stale), "stale_cache");
    assert_eq!(stale["metadata"]["degraded"], true);
    assert_eq!(stale["answer"], fresh["answer"]);
    s.stop().await;
}

#[tokio::test]
async fn without_a_cached_answer_the_top_excerpts_are_the_answer() {
    let s = server("5", "60").await;
    with_notes(&s).await;
    for i in 0..5 {
        s.create_note(
            ALICE,
            &format!("Breaker note {i}"),
            "breaker breaker breaker",
        )
        .await;
    }
    s.upstream.llm.set_fault(Fault::malformed());
    let answer = ask_ok(&s, ALICE, "breaker").await;
    assert_eq!(source(&answer), "excerpts");
    assert_eq!(answer["metadata"]["degraded"], true);
    let sources = answer["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 3, "the excerpt fallback gives at most three");
    assert!(
        answer["answer"]
            .as_str()
            .is_some_and(|a| a.contains("Breaker note"))
    );
    s.stop().await;
}

#[tokio::test]
async fn with_nothing_to_give_it_is_503_with_an_honest_retry_after() {
    let s = server("1", "30").await;
    fail(&s, 1).await;
    let (status, body) = ask(&s, "nobody", "anything at all").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "service_unavailable");
    let retry = body["retry_after_seconds"].as_u64().expect("seconds");
    assert!((29..=30).contains(&retry), "retry after {retry}");
    assert_eq!(body["circuit"]["state"], "open");

    let response = s
        .post_json(
            "/api/assistant/query",
            &json!({"query": "more", "user_id": "nobody"}),
        )
        .await;
    let header = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        header.parse::<u64>().is_ok_and(|h| (29..=30).contains(&h)),
        "{header}"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_upstream_retry_after_keeps_the_circuit_open_that_long() {
    let s = server("1", "5").await;
    s.upstream
        .llm
        .set_fault(Fault::error(429).with_retry_after_seconds(120));
    ask(&s, "nobody", "rate limited").await;
    let (status, body) = ask(&s, "nobody", "rate limited again").await;
    assert_eq!(status, 503);
    let retry = body["retry_after_seconds"].as_u64().expect("seconds");
    assert!(
        (119..=120).contains(&retry),
        "the upstream's 120 s, not our 5 s: {retry}"
    );
    s.stop().await;
}

#[tokio::test]
async fn half_open_lets_one_trial_through_among_ten_concurrent_requests_and_recovers() {
    let s = server("1", "0.3").await;
    with_notes(&s).await;
    fail(&s, 1).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    // The upstream is back, slowly: the trial is still in flight while the others arrive.
    s.upstream.llm.set_fault(Fault::ok().with_latency_ms(800));
    let calls = s.upstream.llm.calls();
    let answers = futures::future::join_all(
        (0..10).map(|i| ask(&s, ALICE, ["breaker opens", "jittered retries"][i % 2])),
    )
    .await;
    assert_eq!(s.upstream.llm.calls(), calls + 1, "exactly one trial call");
    let sources: Vec<&str> = answers.iter().map(|(_, a)| source(a)).collect();
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
    assert_eq!(
        breaker(&s).await["state"],
        "closed",
        "the trial's success closes"
    );

    let after = ask_ok(&s, ALICE, "five failures").await;
    assert_eq!(source(&after), "llm");
    s.stop().await;
}

#[tokio::test]
async fn a_failed_trial_reopens_the_circuit() {
    let s = server("1", "0.2").await;
    with_notes(&s).await;
    fail(&s, 1).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let calls = s.upstream.llm.calls();
    let answer = ask_ok(&s, ALICE, "breaker").await;
    assert_eq!(source(&answer), "excerpts");
    assert_eq!(s.upstream.llm.calls(), calls + 1, "one trial");
    let status = breaker(&s).await;
    assert_eq!(status["state"], "open");
    assert_eq!(status["last_transition"], "trial_failed");
    s.stop().await;
}

#[tokio::test]
async fn upstream_timeouts_count_as_failures() {
    let s = TestServer::start_with(&[
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "2"),
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "0.2"),
    ])
    .await;
    with_notes(&s).await;
    s.upstream.llm.set_fault(Fault::hang());
    for query in ["breaker", "retries"] {
        let answer = ask_ok(&s, ALICE, query).await;
        assert_eq!(source(&answer), "excerpts");
    }
    let status = breaker(&s).await;
    assert_eq!(status["state"], "open");
    assert_eq!(status["failures"], 2);
    s.stop().await;
}

#[tokio::test]
async fn request_faults_from_the_upstream_are_ignored_by_the_breaker() {
    let s = server("2", "60").await;
    with_notes(&s).await;
    s.upstream.llm.set_fault(Fault::error(400));
    for i in 0..5 {
        let answer = ask_ok(&s, ALICE, &format!("breaker {i}")).await;
        assert_eq!(source(&answer), "excerpts", "still a fallback for the user");
    }
    let status = breaker(&s).await;
    assert_eq!(status["state"], "closed");
    assert_eq!(
        (status["ignored"].as_u64(), status["failures"].as_u64()),
        (Some(5), Some(0))
    );
    s.stop().await;
}

#[tokio::test]
async fn another_user_never_receives_a_cached_answer_or_an_excerpt() {
    let s = server("1", "60").await;
    with_notes(&s).await;
    let alice = ask_ok(&s, ALICE, "When does a breaker open?").await;
    assert_eq!(source(&alice), "llm");
    s.create_note("bob", "Bob's garden", "Tomatoes need sun.")
        .await;

    // Healthy: Bob's answer is built from Bob's notes only.
    let bob = ask_ok(&s, "bob", "When does a breaker open?").await;
    assert_eq!(source(&bob), "llm", "not Alice's cached answer");
    assert!(
        bob["sources"].as_array().is_some_and(Vec::is_empty),
        "{bob}"
    );

    // Down: Bob gets neither Alice's cached answer nor her excerpts.
    fail(&s, 1).await;
    let (status, body) = ask(&s, "bob", "When does a breaker open?").await;
    assert_eq!(status, 200, "Bob's own cached answer");
    assert_eq!(source(&body), "cache");
    assert_eq!(body["answer"], bob["answer"]);
    let (status, body) = ask(&s, "carol", "When does a breaker open?").await;
    assert_eq!(status, 503, "Carol has nothing: {body}");
    let answer = ask_ok(&s, "bob", "tomatoes").await;
    assert!(
        answer["sources"]
            .as_array()
            .is_some_and(|v| v.iter().all(|e| e["title"] == "Bob's garden"))
    );
    s.stop().await;
}

#[tokio::test]
async fn with_the_breaker_disabled_every_request_calls_the_failing_upstream() {
    let s = TestServer::start_with(&[
        ("CIRCUIT_BREAKER_ENABLED", "false"),
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "1"),
    ])
    .await;
    with_notes(&s).await;
    fail(&s, 4).await;
    assert_eq!(s.upstream.llm.calls(), 4);
    let status = s.circuit().await;
    assert_eq!(status["enabled"], false);
    assert_eq!(status["breakers"][0]["state"], "disabled");
    assert_eq!(status["breakers"][0]["failures"], 4, "still counted");
    s.stop().await;
}

#[tokio::test]
async fn without_a_token_it_answers_from_the_notes_and_never_calls_the_upstream() {
    let s = TestServer::start_with(&[("HF_API_TOKEN", "")]).await;
    with_notes(&s).await;
    let answer = ask_ok(&s, ALICE, "breaker").await;
    assert_eq!(source(&answer), "excerpts");
    assert_eq!(s.upstream.llm.calls(), 0);
    assert_eq!(s.circuit().await["excerpts_only"], true);
    s.stop().await;
}

#[tokio::test]
async fn the_text_generation_api_works_like_chat() {
    let s = TestServer::start_with(&[("HF_API_MODE", "text")]).await;
    with_notes(&s).await;
    let answer = ask_ok(&s, ALICE, "When does a breaker open?").await;
    assert_eq!(source(&answer), "llm");
    assert_eq!(
        s.upstream.llm.stats().text_calls,
        1,
        "asked over the text API"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_upstream_wait_below_the_threshold_still_sets_retry_after() {
    let s = server("5", "5").await;
    s.upstream
        .llm
        .set_fault(Fault::error(503).with_estimated_time(20.0));
    let (status, body) = ask(&s, "nobody", "is the model loaded").await;
    assert_eq!(status, 503);
    assert_eq!(body["circuit"]["state"], "closed", "one failure of five");
    assert_eq!(
        body["retry_after_seconds"], 20,
        "the model's own loading time"
    );
    s.stop().await;
}

#[tokio::test]
async fn max_sources_trims_the_sources_but_not_what_the_answer_rests_on() {
    let s = server("5", "60").await;
    with_notes(&s).await;
    let query = "breaker retries backoff";
    let one = s
        .post_json(
            "/api/assistant/query",
            &json!({"query": query, "user_id": ALICE, "max_sources": 1}),
        )
        .await;
    let one = json(one).await;
    assert_eq!(source(&one), "llm");
    assert_eq!(one["sources"].as_array().map(Vec::len), Some(1));
    let all = ask_ok(&s, ALICE, query).await;
    assert_eq!(
        source(&all),
        "cache",
        "the same answer, whatever max_sources"
    );
    assert_eq!(all["sources"].as_array().map(Vec::len), Some(2));
    s.stop().await;
}

#[tokio::test]
async fn metrics_export_the_breakers_calls_state_and_answers_by_level() {
    let s = TestServer::start_with(&[
        ("CIRCUIT_BREAKER_NAME", "metrics-probe"),
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "2"),
    ])
    .await;
    with_notes(&s).await;
    fail(&s, 3).await;
    let text = s.get("/metrics").await.text().await.expect("text");
    let line = |name: &str| text.lines().any(|l| l == name);
    assert!(
        line(
            r#"breakwater_circuit_breaker_calls_total{breaker="metrics-probe",outcome="failure"} 2"#
        ),
        "{text}"
    );
    assert!(line(
        r#"breakwater_circuit_breaker_calls_total{breaker="metrics-probe",outcome="rejected"} 1"#
    ));
    assert!(line(
        r#"breakwater_circuit_breaker_state{breaker="metrics-probe",state="open"} 1"#
    ));
    assert!(text.contains(r#"breakwater_circuit_breaker_transitions_total{breaker="metrics-probe",to="open",reason="consecutive_failures"} 1"#));
    assert!(text.contains(r#"breakwater_answers_total{source="excerpts"}"#));
    s.stop().await;
}

#[tokio::test]
async fn beyond_the_in_flight_bound_a_request_falls_back_at_once_and_is_counted_as_shed() {
    let s = TestServer::start_with(&[
        ("CIRCUIT_BREAKER_NAME", "bounded"),
        ("CIRCUIT_BREAKER_MAX_IN_FLIGHT", "1"),
    ])
    .await;
    with_notes(&s).await;
    s.upstream.llm.set_fault(Fault::hang());
    // One request takes the only place and waits on the hung upstream.
    let (client, url) = (s.client.clone(), s.url("/api/assistant/query"));
    let waiting = tokio::spawn(async move {
        let body = json!({"query": "breaker failures", "user_id": ALICE});
        client.post(url).json(&body).send().await
    });
    while s.upstream.llm.calls() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The next one does not join the wait: it answers from the notes, now.
    let shed = ask_ok(&s, ALICE, "jittered backoff retries").await;
    assert_eq!(source(&shed), "excerpts");
    assert_eq!(shed["metadata"]["degraded"], true);
    assert_eq!(shed["metadata"]["circuit_state"], "closed");
    assert_eq!(
        s.upstream.llm.calls(),
        1,
        "the shed request never reached the upstream"
    );
    let status = breaker(&s).await;
    assert_eq!(status["failures"], 0, "shedding is not failing");
    assert_eq!(status["rejected"], 1);
    assert_eq!(
        status["in_flight_limit"],
        json!({"mode": "fixed", "limit": 1, "in_flight": 1, "shed": 1, "usual_latency_seconds": null})
    );
    let text = s.get("/metrics").await.text().await.expect("text");
    assert!(
        text.contains(r#"breakwater_circuit_breaker_shed_total{breaker="bounded"} 1"#),
        "{text}"
    );
    s.upstream.llm.set_fault(Fault::ok());
    s.stop().await;
    let _ = waiting.await;
}

#[tokio::test]
async fn the_health_entry_shows_every_breaker_setting() {
    let s = TestServer::start_with(&[
        ("CIRCUIT_BREAKER_FAILURE_RATE", "0.5"),
        ("CIRCUIT_BREAKER_WINDOW_SECONDS", "30"),
        ("CIRCUIT_BREAKER_MIN_CALLS", "20"),
        ("CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", "2"),
        ("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "3"),
        ("CIRCUIT_BREAKER_SLOW_CALL_SECONDS", "4.5"),
        ("CIRCUIT_BREAKER_RESET_TIMEOUT", "2"),
        ("CIRCUIT_BREAKER_MAX_RESET_TIMEOUT", "60"),
    ])
    .await;
    let b = breaker(&s).await;
    assert_eq!(b["fail_threshold"], 5);
    assert_eq!(b["failure_rate_threshold"], 0.5);
    assert_eq!(b["failure_rate_window_seconds"], 30.0);
    assert_eq!(b["failure_rate_min_calls"], 20);
    assert_eq!(b["half_open_max_calls"], 2);
    assert_eq!(b["success_threshold"], 3);
    assert_eq!(b["slow_call_seconds"], 4.5);
    assert_eq!(b["reset_timeout_seconds"], 2.0);
    assert_eq!(b["max_reset_timeout_seconds"], 60.0);
    assert_eq!(b["call_timeout_seconds"], 5.0);
    assert_eq!(b["in_flight_limit"]["mode"], "auto");
    s.stop().await;
}

#[tokio::test]
async fn requests_waiting_on_a_stalled_upstream_stop_waiting_and_fall_back() {
    let s = TestServer::start_with(&[("CIRCUIT_BREAKER_NAME", "stalls")]).await;
    with_notes(&s).await;
    // The adaptive bound learns the upstream's usual latency from a few answers.
    for i in 0..12 {
        assert_eq!(
            source(&ask_ok(&s, ALICE, &format!("breaker warm {i}")).await),
            "llm"
        );
    }
    s.upstream.llm.set_fault(Fault::hang());
    let waiting: Vec<_> = (0..4)
        .map(|i| {
            let (client, url) = (s.client.clone(), s.url("/api/assistant/query"));
            tokio::spawn(async move {
                let body = json!({"query": format!("breaker hung {i}"), "user_id": ALICE});
                let response = client.post(url).json(&body).send().await.expect("sent");
                json(response).await
            })
        })
        .collect();
    // Later requests find those four calls late and are shed; that look also tells the
    // four to stop waiting. Keep asking new questions until they are back (each would
    // otherwise wait out the 5 s call timeout).
    let mut later = Vec::new();
    for i in 0.. {
        if waiting.iter().all(|w| w.is_finished()) {
            break;
        }
        assert!(i < 200, "the waiting requests were not released");
        let (client, url) = (s.client.clone(), s.url("/api/assistant/query"));
        later.push(tokio::spawn(async move {
            let body = json!({"query": format!("retries later {i}"), "user_id": ALICE});
            json(client.post(url).json(&body).send().await.expect("sent")).await
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in waiting {
        let answer = w.await.expect("no panic");
        assert_eq!(source(&answer), "excerpts", "{answer}");
        assert_eq!(answer["metadata"]["circuit_state"], "closed");
    }
    let status = breaker(&s).await;
    assert_eq!(
        status["failures"], 0,
        "the abandoned calls have not timed out yet"
    );
    assert!(
        status["in_flight_limit"]["shed"].as_u64() >= Some(1),
        "{status}"
    );
    let text = s.get("/metrics").await.text().await.expect("text");
    let abandoned: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("breakwater_llm_abandoned_total "))
        .and_then(|n| n.parse().ok())
        .expect("the abandoned counter");
    // The four, and the later ones admitted before the calls were found late.
    assert!(abandoned >= 4, "{text}");
    for answer in later {
        let answer = answer.await.expect("no panic");
        assert_eq!(
            source(&answer),
            "excerpts",
            "every later one falls back: {answer}"
        );
    }
    s.upstream.llm.set_fault(Fault::ok());
    s.stop().await;
}

/// Deletes `path` on `s`; returns the status and the body (empty for a 204).
async fn delete(s: &TestServer, path: &str) -> (u16, String) {
    let response = s.client.delete(s.url(path)).send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn a_stale_answer_is_served_only_while_the_notes_it_rests_on_are_unchanged() {
    let s = server("1", "60").await;
    let (breakers, retries) = (
        s.create_note(
            ALICE,
            "Circuit breakers",
            "A breaker opens after five failures in a row.",
        )
        .await,
        s.create_note(
            ALICE,
            "Retries",
            "Retries with jittered backoff avoid thundering herds.",
        )
        .await,
    );
    let breaker_id = breakers["id"].as_str().expect("id").to_owned();
    let q_breakers = "When does a breaker open after failures?";
    let q_retries = "Why jittered backoff for retries?";
    assert_eq!(source(&ask_ok(&s, ALICE, q_breakers).await), "llm");
    assert_eq!(source(&ask_ok(&s, ALICE, q_retries).await), "llm");

    // An unrelated note changes the generation: both answers are stale, both still true.
    s.create_note(ALICE, "Tea", "Green tea steeps for two minutes.")
        .await;
    fail(&s, 1).await;
    assert_eq!(breaker(&s).await["state"], "open");
    assert_eq!(source(&ask_ok(&s, ALICE, q_breakers).await), "stale_cache");
    assert_eq!(source(&ask_ok(&s, ALICE, q_retries).await), "stale_cache");

    // Deleted: its answer, and its text, are gone for good (the circuit is open: this is
    // the path that looks up the stale answer before any search).
    let (status, _) = delete(&s, &format!("/api/notes/{breaker_id}?user_id={ALICE}")).await;
    assert_eq!(status, 204);
    let (status, body) = ask(&s, ALICE, q_breakers).await;
    assert_ne!(body["metadata"]["source"], "stale_cache", "{body}");
    assert!(
        !body.to_string().contains("five failures"),
        "{status} {body}"
    );

    // Edited: the answer built on the old text is not served either.
    let retries_id = retries["id"].as_str().expect("id");
    let edited = s
        .client
        .put(s.url(&format!("/api/notes/{retries_id}?user_id={ALICE}")))
        .json(&json!({"body": "Retries need a budget."}))
        .send()
        .await
        .expect("sent");
    assert_eq!(edited.status(), 200);
    let (_, body) = ask(&s, ALICE, q_retries).await;
    assert_ne!(body["metadata"]["source"], "stale_cache", "{body}");
    assert!(!body.to_string().contains("thundering herds"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn deleting_all_of_a_users_notes_needs_the_user_and_leaves_nothing_to_answer_from() {
    let s = server("1", "60").await;
    with_notes(&s).await;
    s.create_note("bob", "Bob's", "A breaker of bob's own.")
        .await;
    let query = "When does a breaker open?";
    assert_eq!(source(&ask_ok(&s, ALICE, query).await), "llm");

    let (status, body) = delete(&s, "/api/notes").await;
    assert_eq!(status, 422, "user_id is required: {body}");
    assert!(body.contains("user_id"), "{body}");
    let (status, body) = delete(&s, &format!("/api/notes?user_id={ALICE}")).await;
    assert_eq!(status, 200);
    let deleted: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(deleted, json!({"user_id": ALICE, "deleted": 2}));

    fail(&s, 1).await;
    let (status, body) = ask(&s, ALICE, query).await;
    assert_eq!(status, 503, "no notes, no answer from them: {body}");
    assert!(!body.to_string().contains("five failures"), "{body}");
    let listed = json(s.get(&format!("/api/notes?user_id={ALICE}")).await).await;
    assert_eq!(
        listed["notes"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let bobs = json(s.get("/api/notes?user_id=bob").await).await;
    assert_eq!(
        bobs["notes"].as_array().map(Vec::len),
        Some(1),
        "others keep theirs"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_hung_upstream_is_cut_at_the_request_deadline_and_the_answer_falls_back_within_it() {
    let s = TestServer::start_with(&[
        ("BREAKWATER_REQUEST_TIMEOUT_SECONDS", "0.5"),
        ("CIRCUIT_BREAKER_MAX_IN_FLIGHT", "0"),
    ])
    .await;
    with_notes(&s).await;
    s.upstream.llm.set_fault(Fault::hang());
    let started = std::time::Instant::now();
    let answer = ask_ok(&s, ALICE, "breaker failures").await;
    // Its call timeout is 5 s: the request's 0.5 s deadline is the one that counted.
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(source(&answer), "excerpts");
    let attempts = &answer["metadata"]["attempts"];
    assert_eq!(attempts[0]["outcome"], "failed", "{attempts}");
    assert!(
        attempts[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("request deadline")),
        "{attempts}"
    );
    // The request ran out of its own budget: the upstream is not blamed for it.
    assert_eq!(breaker(&s).await["failures"], 0);
    s.upstream.llm.set_fault(Fault::ok());
    s.stop().await;
}
