//! JWT mode over real sockets: the user is the token's `sub`; `exp` always, `aud` and `iss`
//! when configured, are checked; a request naming another user is `403`; the shared bearer
//! token still serves a trusted backend. Keys in `tests/fixtures/` are for these tests only.

mod http_common;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use http_common::{TestServer, expect_error, json};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const SECRET: &str = "jwt-test-secret-of-a-decent-length";
const SHARED: &str = "backend-token";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A token with `claims`, signed with the HS256 test secret.
fn hs256(claims: &Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("signed")
}

fn valid(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + 3600})
}

async fn send(
    app: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("answered")
}

#[tokio::test]
async fn the_token_names_the_user_and_another_user_id_is_forbidden() {
    let app = TestServer::start_with(&[
        ("BREAKWATER_JWT_SECRET", SECRET),
        ("BREAKWATER_API_TOKEN", SHARED),
    ])
    .await;
    let alice = hs256(&valid("alice"));
    let body = json!({"title": "Bread", "body": "Flour, water, salt."});
    let created = send(
        &app,
        reqwest::Method::POST,
        "/api/notes",
        &alice,
        Some(body),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    assert_eq!(created["user_id"], "alice", "no user_id given: the token's");

    let listed = json(send(&app, reqwest::Method::GET, "/api/notes", &alice, None).await).await;
    assert_eq!(listed["user_id"], "alice");
    assert_eq!(listed["notes"].as_array().map(Vec::len), Some(1));
    let same = send(
        &app,
        reqwest::Method::GET,
        "/api/notes?user_id=alice",
        &alice,
        None,
    )
    .await;
    assert_eq!(same.status(), 200, "naming oneself is fine");

    for (method, path, body) in [
        (reqwest::Method::GET, "/api/notes?user_id=bob", None),
        (
            reqwest::Method::POST,
            "/api/notes",
            Some(json!({"user_id": "bob", "title": "t", "body": "b"})),
        ),
        (
            reqwest::Method::POST,
            "/api/assistant/query",
            Some(json!({"query": "bread", "user_id": "bob"})),
        ),
        (reqwest::Method::DELETE, "/api/notes?user_id=bob", None),
    ] {
        let response = send(&app, method.clone(), path, &alice, body).await;
        let err = expect_error(response, 403, "forbidden").await;
        assert!(
            err["detail"].as_str().unwrap_or("").contains("bob"),
            "{method} {path}: {err}"
        );
    }
    let answer = send(
        &app,
        reqwest::Method::POST,
        "/api/assistant/query",
        &alice,
        Some(json!({"query": "flour bread"})),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let answer = json(answer).await;
    assert_eq!(answer["sources"][0]["title"], "Bread", "alice's own notes");

    // The shared token is a trusted backend: it names the user itself.
    let backend = send(
        &app,
        reqwest::Method::GET,
        "/api/notes?user_id=bob",
        SHARED,
        None,
    )
    .await;
    assert_eq!(backend.status(), 200);
    assert_eq!(json(backend).await["user_id"], "bob");
    app.stop().await;
}

#[tokio::test]
async fn expired_forged_and_claimless_tokens_are_refused() {
    let app = TestServer::start_with(&[("BREAKWATER_JWT_SECRET", SECRET)]).await;
    let expired = hs256(&json!({"sub": "alice", "exp": now() - 3600}));
    let no_exp = hs256(&json!({"sub": "alice"}));
    let no_sub = hs256(&json!({"exp": now() + 3600}));
    let bad_sub = hs256(&json!({"sub": "", "exp": now() + 3600}));
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &valid("alice"),
        &EncodingKey::from_secret(b"another-secret"),
    )
    .expect("signed");
    for (token, says) in [
        (expired.as_str(), "expired"),
        (no_exp.as_str(), "no exp"),
        (no_sub.as_str(), "no sub"),
        (bad_sub.as_str(), "sub"),
        (forged.as_str(), "not valid"),
        ("not.a.jwt", "not valid"),
    ] {
        let response = send(&app, reqwest::Method::GET, "/api/notes", token, None).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let err = expect_error(response, 401, "unauthorized").await;
        assert!(
            err["detail"].as_str().unwrap_or("").contains(says),
            "{says}: {err}"
        );
    }
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200, "liveness needs no token");
    app.stop().await;
}

#[tokio::test]
async fn audience_and_issuer_are_checked_when_configured() {
    let app = TestServer::start_with(&[
        ("BREAKWATER_JWT_SECRET", SECRET),
        ("BREAKWATER_JWT_AUDIENCE", "breakwater"),
        ("BREAKWATER_JWT_ISSUER", "https://id.example"),
    ])
    .await;
    let exp = now() + 3600;
    let cases = [
        (json!({"sub": "alice", "exp": exp}), 401),
        (
            json!({"sub": "alice", "exp": exp, "aud": "breakwater"}),
            401,
        ),
        (
            json!({"sub": "alice", "exp": exp, "aud": "other", "iss": "https://id.example"}),
            401,
        ),
        (
            json!({"sub": "alice", "exp": exp, "aud": "breakwater", "iss": "https://evil"}),
            401,
        ),
        (
            json!({"sub": "alice", "exp": exp, "aud": "breakwater", "iss": "https://id.example"}),
            200,
        ),
    ];
    for (claims, status) in cases {
        let response = send(
            &app,
            reqwest::Method::GET,
            "/api/notes",
            &hs256(&claims),
            None,
        )
        .await;
        assert_eq!(response.status().as_u16(), status, "{claims}");
    }
    app.stop().await;
}

#[tokio::test]
async fn rs256_and_es256_tokens_are_checked_against_a_public_key_file() {
    for (public, private, algorithm) in [
        ("jwt-test-rsa.pub", "jwt-test-rsa.key", Algorithm::RS256),
        ("jwt-test-ec.pub", "jwt-test-ec.key", Algorithm::ES256),
    ] {
        let key_file = fixture(public).display().to_string();
        let app = TestServer::start_with(&[("BREAKWATER_JWT_PUBLIC_KEY", &key_file)]).await;
        let pem = std::fs::read(fixture(private)).expect("fixture");
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            _ => EncodingKey::from_ec_pem(&pem),
        }
        .expect("a private key");
        let token =
            jsonwebtoken::encode(&Header::new(algorithm), &valid("carol"), &key).expect("signed");
        let listed = send(&app, reqwest::Method::GET, "/api/notes", &token, None).await;
        assert_eq!(listed.status(), 200, "{algorithm:?}");
        assert_eq!(json(listed).await["user_id"], "carol");
        // An HS256 token made with the public key as its secret must not pass (key confusion).
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &valid("mallory"),
            &EncodingKey::from_secret(&std::fs::read(fixture(public)).expect("fixture")),
        )
        .expect("signed");
        let refused = send(&app, reqwest::Method::GET, "/api/notes", &confused, None).await;
        expect_error(refused, 401, "unauthorized").await;
        app.stop().await;
    }
}

#[tokio::test]
async fn a_public_key_file_that_cannot_be_read_stops_start_up_naming_the_variable() {
    let mut vars = std::collections::HashMap::new();
    vars.insert("BREAKWATER_ADDR".to_owned(), "127.0.0.1:0".to_owned());
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("notes.db").display().to_string();
    vars.insert("BREAKWATER_DB".to_owned(), db);
    for (file, says) in [
        (dir.path().join("missing.pem"), "No such file"),
        (
            fixture("jwt-test-rsa.key").with_extension("nope"),
            "No such file",
        ),
        (
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
            "not a PEM",
        ),
    ] {
        vars.insert(
            "BREAKWATER_JWT_PUBLIC_KEY".to_owned(),
            file.display().to_string(),
        );
        let config = breakwater::config::Config::from_map(&vars).expect("parses");
        let err = breakwater::server::spawn(config)
            .await
            .expect_err("refused at start-up");
        let text = format!("{err:#}");
        assert!(text.contains("BREAKWATER_JWT_PUBLIC_KEY="), "{text}");
        assert!(text.contains(says), "{text}");
    }
}
