//! PostgreSQL down or slow, through a real server: the `postgres` breaker opens, questions
//! already answered are answered from the cache, others get `503 notes_unavailable` with
//! `Retry-After`, writes get `503` and nothing acknowledged is lost or half-written.

mod http_common;
mod pg_common;

use http_common::{TestServer, expect_error, json};
use pg_common::{Gate, TestDatabase};
use serde_json::json;

async fn ask(server: &TestServer, query: &str) -> reqwest::Response {
    server
        .post_json(
            "/api/assistant/query",
            &json!({"user_id": "alice", "query": query}),
        )
        .await
}

fn postgres_state(health: &serde_json::Value) -> String {
    health["breakers"]
        .as_array()
        .expect("breakers")
        .iter()
        .find(|b| b["name"] == "postgres")
        .map(|b| b["state"].as_str().unwrap_or_default().to_owned())
        .expect("a breaker named postgres")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_postgres_is_answered_from_the_cache_or_with_503_and_loses_nothing() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let gate = Gate::start().await;
    let url = gate.url_for(database.url());
    let server = TestServer::start_with(&[
        ("DATABASE_URL", url.as_str()),
        ("BREAKWATER_DB_TIMEOUT_SECONDS", "0.5"),
    ])
    .await;
    let health = server.circuit().await;
    assert_eq!(postgres_state(&health), "closed", "{health}");
    assert_eq!(health["notes"], "postgres", "{health}");

    server
        .create_note("alice", "Sourdough", "Feed the starter twice a day.")
        .await;
    let first = json(ask(&server, "How often do I feed the starter?").await).await;
    assert_eq!(first["metadata"]["source"], "llm", "{first}");

    gate.stall();

    // The question already answered is answered again, from the cache, within the deadline.
    let cached = json(ask(&server, "How often do I feed the starter?").await).await;
    assert_eq!(cached["metadata"]["source"], "cache", "{cached}");
    assert_eq!(cached["answer"], first["answer"]);

    // A new question needs the notes: 503 with the store's error and a Retry-After.
    let response = ask(&server, "Where are my kayaks?").await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in whole seconds");
    assert!(retry_after >= 1);
    let body = expect_error(response, 503, "notes_unavailable").await;
    assert!(body["retry_after_seconds"].as_u64().is_some(), "{body}");

    // A write is refused, not left hanging.
    let write = server
        .post_json(
            "/api/notes",
            &json!({"user_id": "alice", "title": "Kayak", "body": "The kayak is red."}),
        )
        .await;
    expect_error(write, 503, "notes_unavailable").await;

    // Three failures in a row opened the store's circuit: calls now fail at once.
    let health = server.circuit().await;
    assert_eq!(postgres_state(&health), "open", "{health}");
    assert_eq!(health["healthy"], false);
    // The status page's record has the store's trip too.
    let view = json(server.get("/api/assistant/status").await).await;
    let trip = &view["activity"]["transitions"][0];
    assert_eq!(
        (&trip["breaker"], &trip["to"]),
        (&json!("postgres"), &json!("open")),
        "{view}"
    );
    let listed = server.get("/api/notes?user_id=alice").await;
    expect_error(listed, 503, "notes_unavailable").await;

    // Once PostgreSQL answers again, the refused write is not there (nothing half-written)
    // and the acknowledged note is.
    gate.open();
    let store =
        breakwater::notes::PgNotes::connect(database.url(), std::time::Duration::from_secs(5))
            .await
            .expect("direct connection");
    let alice = breakwater::user::UserId::parse("alice").expect("user");
    let notes = breakwater::notes::Notes::list(&store, &alice, 10, 0)
        .await
        .expect("list");
    let titles: Vec<&str> = notes.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(titles, ["Sourdough"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_breaker_opens_on_failures_and_closes_after_a_good_trial() {
    use std::sync::Arc;
    use std::time::Duration;

    use breakwater::notes::{Guarded, Notes, NotesError, PgNotes};

    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let gate = Gate::start().await;
    let store = PgNotes::connect(&gate.url_for(database.url()), Duration::from_secs(5))
        .await
        .expect("connect");
    let (clock, hand) = breaker::Clock::manual();
    let breaker = breaker::CircuitBreaker::builder("postgres")
        .trip_policy(breaker::TripPolicy::consecutive_failures(3))
        .reset_timeout(Duration::from_secs(5))
        .clock(clock)
        .build()
        .expect("breaker");
    let notes = Guarded::with_breaker(Arc::new(store), breaker);
    let alice = breakwater::user::UserId::parse("alice").expect("user");
    notes.create(&alice, "t", "b").await.expect("create");
    // A missing note is the store answering, not failing.
    for _ in 0..5 {
        let missing = notes.get(&alice, "0123").await;
        assert!(matches!(missing, Err(NotesError::NotFound)), "{missing:?}");
    }

    gate.cut();
    for _ in 0..3 {
        let failed = notes.count(&alice).await;
        assert!(
            matches!(failed, Err(NotesError::Postgres(_) | NotesError::Pool(_))),
            "{failed:?}"
        );
    }
    match notes.count(&alice).await {
        Err(NotesError::Unavailable {
            retry_after_seconds,
            ..
        }) => assert_eq!(retry_after_seconds, 5),
        other => panic!("expected the open circuit, got {other:?}"),
    }

    gate.open();
    hand.advance(Duration::from_secs(5));
    assert_eq!(notes.count(&alice).await.expect("the trial succeeds"), 1);
    let status = Notes::breaker(&notes).expect("a breaker").status();
    assert_eq!(status.state, breaker::State::Closed);
}

/// The test Redis (`REDIS_TEST_URL`), or `None` when it does not answer and this is not CI.
async fn test_redis() -> Option<String> {
    let url =
        std::env::var("REDIS_TEST_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let answered = async {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .ok()
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), answered).await {
        Ok(Some(_)) => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Redis at {url} does not answer; with CI=true these tests must run")
        }
        _ => {
            eprintln!("skipped: Redis at {url} does not answer");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_deleted_on_another_replica_is_not_served_from_the_cache_while_postgres_is_down() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let Some(redis) = test_redis().await else {
        return;
    };
    let gate = Gate::start().await;
    let url = gate.url_for(database.url());
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("REDIS_URL", redis.as_str()),
        // The LLM breaker stays per replica on the Redis every test shares.
        ("CIRCUIT_BREAKER_SHARED", "false"),
        ("BREAKWATER_DB_TIMEOUT_SECONDS", "0.5"),
    ];
    let (a, b) = (
        TestServer::start_with(&env).await,
        TestServer::start_with(&env).await,
    );
    // A user of this run only: the Redis is shared with other tests.
    let user = format!("dora{}", std::process::id());
    let note = a.create_note(&user, "Safe", "The safe code is 4321.").await;
    let question = json!({"user_id": user, "query": "What is the safe code?"});
    let first = json(a.post_json("/api/assistant/query", &question).await).await;
    assert_eq!(first["metadata"]["source"], "llm", "{first}");

    // Deleted on the other replica: the generation moved, and Redis knows it.
    let id = note["id"].as_str().expect("id");
    let deleted = b
        .client
        .delete(b.url(&format!("/api/notes/{id}?user_id={user}")))
        .send()
        .await
        .expect("DELETE answered");
    assert_eq!(deleted.status(), 204);

    gate.stall();
    let response = a.post_json("/api/assistant/query", &question).await;
    let body = expect_error(response, 503, "notes_unavailable").await;
    assert!(
        !body.to_string().contains("4321"),
        "the deleted note's answer is not served: {body}"
    );
    gate.open();
    a.stop().await;
    b.stop().await;
}
