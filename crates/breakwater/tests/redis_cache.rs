//! Redis as the shared answer cache, end to end: real servers (replicas with their own
//! SQLite files and their own `fake-llm`) on one real Redis at `REDIS_TEST_URL` (default
//! `redis://127.0.0.1:6379`).
//!
//! Without a Redis answering there, the tests that need one say so and pass, except with
//! `CI=true`, where they fail: CI starts Redis, so a skip there would hide a broken setup.
//! Every test uses its own user ids, so parallel tests and reruns never share keys.

mod http_common;
mod process_common;

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use breakwater::cache::{CacheKey, RedisCache};
use breakwater::user::UserId;
use fake_llm::Fault;
use http_common::{TestServer, json};
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";
const QUESTION: &str = "When does a breaker open?";
/// Nothing listens on port 1: connections are refused at once.
const DEAD_REDIS: &str = "redis://127.0.0.1:1";

/// The URL of the test Redis and a connection to it; `None` (after saying why) when it does
/// not answer and this is not CI.
async fn test_redis() -> Option<(String, MultiplexedConnection)> {
    let url = std::env::var("REDIS_TEST_URL").unwrap_or_else(|_| DEFAULT_REDIS.to_owned());
    match connect(&url).await {
        Ok(connection) => Some((url, connection)),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Redis at {url} does not answer ({why}); with CI=true the Redis tests must run")
        }
        Err(why) => {
            // Straight to stderr: libtest hides what a passing test prints with eprintln!.
            let _ = writeln!(
                std::io::stderr(),
                "skipping: Redis at {url} does not answer ({why}); start redis-server or set \
                 REDIS_TEST_URL"
            );
            None
        }
    }
}

async fn connect(url: &str) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let attempt = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<()>(&mut connection)
            .await?;
        Ok::<_, redis::RedisError>(connection)
    };
    match tokio::time::timeout(Duration::from_secs(1), attempt).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within 1 s".to_owned()),
    }
}

/// A user id no other test, parallel or earlier, has used.
fn unique_user(name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{name}-{}-{started}-{n}", std::process::id())
}

/// A replica on the shared Redis at `url`.
/// A replica on the shared test Redis. Its LLM breaker stays its own: these tests are about
/// the answer cache, and on a Redis every test shares, a shared `huggingface` breaker would
/// let one test's injected failures open the circuit of another's (tests/cluster.rs tests
/// the shared breaker, on a Redis of its own).
async fn replica(url: &str) -> TestServer {
    TestServer::start_with(&[("REDIS_URL", url), ("CIRCUIT_BREAKER_SHARED", "false")]).await
}

async fn with_note(s: &TestServer, user: &str) {
    s.create_note(
        user,
        "Circuit breakers",
        "A breaker opens after five failures in a row.",
    )
    .await;
}

async fn ask(s: &TestServer, user: &str, query: &str) -> Value {
    let response = s
        .post_json(
            "/api/assistant/query",
            &json!({"query": query, "user_id": user}),
        )
        .await;
    assert_eq!(response.status(), 200, "answered");
    json(response).await
}

fn source(answer: &Value) -> &str {
    answer["metadata"]["source"].as_str().unwrap_or("?")
}

/// The cache key of `answer`, given to `user` at notes generation `generation`.
fn key_of(answer: &Value, user: &str, generation: u64) -> CacheKey {
    let user = UserId::parse(user).expect("valid user id");
    let model = answer["metadata"]["model"].as_str().expect("a model");
    CacheKey::new(&user, QUESTION, model, generation)
}

/// Waits for the background write of `redis_key` to land; returns its time to live in ms.
async fn wait_for_key(connection: &mut MultiplexedConnection, redis_key: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(redis_key)
            .query_async(connection)
            .await
            .expect("PTTL answered");
        // -2: no such key (yet).
        if ttl != -2 {
            return ttl;
        }
        assert!(Instant::now() < deadline, "{redis_key} never written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Deletes what a test wrote (the keys expire anyway; this keeps a dev Redis tidy).
async fn forget(connection: &mut MultiplexedConnection, keys: &[CacheKey]) {
    for key in keys {
        let _: () = redis::cmd("DEL")
            .arg(RedisCache::fresh_key(key))
            .arg(RedisCache::latest_key(key))
            .query_async(connection)
            .await
            .expect("DEL answered");
    }
}

/// The status of the breaker called `name`.
async fn breaker(s: &TestServer, name: &str) -> Value {
    let health = s.circuit().await;
    let breakers = health["breakers"].as_array().expect("breakers");
    breakers
        .iter()
        .find(|b| b["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no breaker {name} in {health}"))
}

#[tokio::test]
async fn an_answer_made_on_one_replica_is_a_cache_hit_on_another() {
    let Some((url, mut redis)) = test_redis().await else {
        return;
    };
    let (a, b) = (replica(&url).await, replica(&url).await);
    let user = unique_user("alice");
    // The same notes on both replicas: the same notes generation, so the same fresh key.
    with_note(&a, &user).await;
    with_note(&b, &user).await;

    let made = ask(&a, &user, QUESTION).await;
    assert_eq!(source(&made), "llm");
    let key = key_of(&made, &user, 1);
    let fresh_ttl = wait_for_key(&mut redis, &RedisCache::fresh_key(&key)).await;
    assert!((3_590_000..=3_600_000).contains(&fresh_ttl), "{fresh_ttl}");
    let latest_ttl = wait_for_key(&mut redis, &RedisCache::latest_key(&key)).await;
    assert!(latest_ttl > 86_390_000, "the stale horizon: {latest_ttl}");

    let shared = ask(&b, &user, QUESTION).await;
    assert_eq!(source(&shared), "cache");
    assert_eq!(shared["answer"], made["answer"]);
    assert_eq!(shared["sources"], made["sources"]);
    assert_eq!(b.upstream.llm.calls(), 0, "B never asked its LLM");
    forget(&mut redis, &[key]).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn another_user_never_gets_an_answer_shared_through_redis() {
    let Some((url, mut redis)) = test_redis().await else {
        return;
    };
    let (a, b) = (replica(&url).await, replica(&url).await);
    let (alice, bob, carol) = (
        unique_user("alice"),
        unique_user("bob"),
        unique_user("carol"),
    );
    for user in [&alice, &bob, &carol] {
        with_note(if user == &alice { &a } else { &b }, user).await;
    }
    let made = ask(&a, &alice, QUESTION).await;
    wait_for_key(
        &mut redis,
        &RedisCache::latest_key(&key_of(&made, &alice, 1)),
    )
    .await;

    let own = ask(&b, &bob, QUESTION).await;
    assert_eq!(source(&own), "llm", "not alice's fresh answer");
    assert_eq!(b.upstream.llm.calls(), 1);

    b.upstream.llm.set_fault(Fault::error(503));
    let fallback = ask(&b, &carol, QUESTION).await;
    assert_eq!(
        source(&fallback),
        "excerpts",
        "not alice's answer, even stale"
    );
    let written = [key_of(&made, &alice, 1), key_of(&own, &bob, 1)];
    wait_for_key(&mut redis, &RedisCache::latest_key(&written[1])).await;
    forget(&mut redis, &written).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_replica_whose_llm_is_down_serves_another_replicas_answer_stale_until_its_note_goes() {
    let Some((url, mut redis)) = test_redis().await else {
        return;
    };
    // Two replicas on one notes database (as in cluster mode) and one Redis.
    let a = replica(&url).await;
    let db = a.dir.path().join("notes.db").display().to_string();
    let b = TestServer::start_with(&[
        ("REDIS_URL", &url),
        ("BREAKWATER_DB", &db),
        ("CIRCUIT_BREAKER_SHARED", "false"),
    ])
    .await;
    let user = unique_user("alice");
    with_note(&a, &user).await;
    let made = ask(&a, &user, QUESTION).await;
    assert_eq!(source(&made), "llm");
    let key = key_of(&made, &user, 1);
    wait_for_key(&mut redis, &RedisCache::latest_key(&key)).await;
    // Another note moves the generation: only the latest answer matches now, and B has it
    // only through Redis.
    let other = b
        .create_note(&user, "Retries", "Retry with jittered exponential backoff.")
        .await;

    b.upstream.llm.set_fault(Fault::error(503));
    let stale = ask(&b, &user, QUESTION).await;
    assert_eq!(source(&stale), "stale_cache");
    assert_eq!(stale["metadata"]["degraded"], true);
    assert_eq!(stale["answer"], made["answer"]);

    // The note it rests on is deleted (on B): neither B (its own memory and Redis) nor A
    // (its memory) serves that answer again, nor the note's text.
    let note_id = made["sources"][0]["note_id"]
        .as_str()
        .expect("a source")
        .to_owned();
    let deleted = b
        .client
        .delete(b.url(&format!("/api/notes/{note_id}?user_id={user}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), 204);
    a.upstream.llm.set_fault(Fault::error(503));
    for replica in [&b, &a] {
        let response = replica
            .post_json(
                "/api/assistant/query",
                &json!({"query": QUESTION, "user_id": user}),
            )
            .await;
        let text = response.text().await.expect("body");
        assert!(!text.contains("five failures in a row"), "{text}");
        assert!(!text.contains("stale_cache"), "{text}");
    }
    assert!(other["id"].is_string());
    forget(&mut redis, &[key]).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn with_redis_down_answers_stay_fast_and_its_circuit_opens() {
    let s = replica(DEAD_REDIS).await;
    let user = unique_user("alice");
    with_note(&s, &user).await;
    let timed = |query: &'static str| {
        let (s, user) = (&s, &user);
        async move {
            let started = Instant::now();
            let answer = ask(s, user, query).await;
            let took = started.elapsed();
            assert!(took < Duration::from_millis(500), "{query}: {took:?}");
            answer
        }
    };

    assert_eq!(source(&timed(QUESTION).await), "llm");
    assert_eq!(
        source(&timed(QUESTION).await),
        "cache",
        "from the in-process cache"
    );
    // The first question's read and write failed; this read is the third failure.
    assert_eq!(source(&timed("Where do breakers open?").await), "llm");
    let deadline = Instant::now() + Duration::from_secs(1);
    while breaker(&s, "redis").await["state"] != "open" {
        assert!(Instant::now() < deadline, "{}", breaker(&s, "redis").await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let redis = breaker(&s, "redis").await;
    assert!(redis["failures"].as_u64() >= Some(3), "{redis}");
    assert_eq!(breaker(&s, "huggingface").await["state"], "closed");

    // Open: Redis is skipped, the answer comes as before.
    assert_eq!(source(&timed("What opens a breaker?").await), "llm");
    assert!(breaker(&s, "redis").await["rejected"].as_u64() >= Some(1));
    let metrics = s.get("/metrics").await.text().await.expect("metrics text");
    assert!(
        metrics.contains(r#"breakwater_circuit_breaker_state{breaker="redis",state="open"} 1"#),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_a_request_at_most_the_deadline() {
    // Accepts connections and never says a word: the worst kind of outage.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!("redis://{}", listener.local_addr().expect("an address"));
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let s = replica(&url).await;
    let user = unique_user("alice");
    with_note(&s, &user).await;

    // The first request also pays what happens once (the index's first commit, whose fsync
    // can stall for seconds on a busy disk; the first connections): only the later ones are
    // held to a bound. Each still waits on the silent Redis until the circuit opens.
    assert_eq!(source(&ask(&s, &user, QUESTION).await), "llm");
    for query in ["Where do breakers open?", "What opens a breaker?"] {
        let started = Instant::now();
        assert_eq!(source(&ask(&s, &user, query).await), "llm");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(500), "{query}: {took:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while breaker(&s, "redis").await["state"] != "open" {
        assert!(Instant::now() < deadline, "{}", breaker(&s, "redis").await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rejected = breaker(&s, "redis").await["rejected"].clone();
    assert_eq!(
        source(&ask(&s, &user, "Why do breakers open?").await),
        "llm"
    );
    assert!(
        breaker(&s, "redis").await["rejected"].as_u64() > rejected.as_u64(),
        "open: Redis skipped, not waited for"
    );
    s.stop().await;
    silent.abort();
}

#[tokio::test]
async fn breakwater_ingest_tells_the_replicas_the_new_notes_generation() {
    // A replica whose notes store is down answers only from the cache of the newest
    // generation any replica knows: an ingest run outside the replicas must raise it too.
    let Some((url, _)) = test_redis().await else {
        return;
    };
    let dir = tempfile::TempDir::new().expect("temp dir");
    let notes = dir.path().join("notes");
    std::fs::create_dir(&notes).expect("notes dir");
    std::fs::write(notes.join("kettle.md"), "# Kettle\nDescale it monthly.").expect("note");
    let user = unique_user("ingest");
    let shared = || {
        let redis = RedisCache::new(&url).expect("a valid URL");
        breakwater::cache::AnswerCache::new(16, Duration::from_secs(60)).with_redis(redis)
    };
    let id = UserId::parse(&user).expect("a valid user");
    assert_eq!(shared().known_generation(&id).await, None);

    let output = process_common::isolated(env!("CARGO_BIN_EXE_breakwater"))
        .env("REDIS_URL", &url)
        .arg("--env-dir")
        .arg(dir.path())
        .arg("--db")
        .arg(dir.path().join("notes.db"))
        .args(["ingest", "--no-progress", "--user", &user])
        .arg(&notes)
        .output()
        .await
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(shared().known_generation(&id).await >= Some(1));
}
