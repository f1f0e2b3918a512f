//! Bad requests: each kind gets its status and JSON error code, and none of them reaches the
//! upstream or moves the circuit breaker.

mod http_common;

use http_common::{MAX_BODY_BYTES, TestServer, expect_error};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const QUERY: &str = "/api/assistant/query";

/// Sends every kind of bad request once; returns how many were sent.
async fn send_bad_requests(app: &TestServer) -> usize {
    let json_type = Some("application/json");
    let cases = [
        (
            app.post_raw(QUERY, json_type, r#"{"query": "#).await,
            400,
            "invalid_json",
        ),
        (
            app.post_raw(QUERY, json_type, "").await,
            400,
            "invalid_json",
        ),
        (
            app.post_raw(QUERY, None, r#"{"query": "hi"}"#).await,
            415,
            "unsupported_media_type",
        ),
        (
            app.post_raw(QUERY, Some("text/plain"), r#"{"query": "hi"}"#)
                .await,
            415,
            "unsupported_media_type",
        ),
        (
            app.post_json(QUERY, &json!({"query": 5})).await,
            422,
            "invalid_request",
        ),
        (
            app.post_json(QUERY, &json!({})).await,
            422,
            "invalid_request",
        ),
        (
            app.post_json(QUERY, &json!({"query": ""})).await,
            422,
            "invalid_request",
        ),
        (
            app.post_json(QUERY, &json!({"query": "  "})).await,
            422,
            "invalid_request",
        ),
        (
            app.post_json(QUERY, &json!(["query"])).await,
            422,
            "invalid_request",
        ),
        (
            app.post_json(QUERY, &json!({"query": "hi", "user_id": "bad user"}))
                .await,
            422,
            "invalid_request",
        ),
        (
            app.post_json(QUERY, &json!({"query": "hi", "max_sources": -1}))
                .await,
            422,
            "invalid_request",
        ),
        (
            app.post_json(QUERY, &json!({"query": "x".repeat(2 * MAX_BODY_BYTES)}))
                .await,
            413,
            "payload_too_large",
        ),
        (app.get("/api/notes?limit=abc").await, 400, "invalid_query"),
        (app.get("/api/notes?limit=0").await, 422, "invalid_request"),
        (
            app.get("/api/notes?offset=4294967296").await,
            422,
            "invalid_request",
        ),
        (
            app.client
                .put(app.url("/api/notes/1?user_id=alice"))
                .json(&json!({"user_id": "bob", "title": "t", "body": "b"}))
                .send()
                .await
                .expect("an answer"),
            422,
            "invalid_request",
        ),
        // A note id that is not UTF-8 once decoded.
        (app.get("/api/notes/%FF").await, 400, "invalid_query"),
        (
            app.get("/api/notes?user_id=a%20b").await,
            422,
            "invalid_request",
        ),
        (
            app.post_json("/api/notes", &json!({"body": "b"})).await,
            422,
            "invalid_request",
        ),
        (
            app.post_json("/api/notes", &json!({"title": " ", "body": "b"}))
                .await,
            422,
            "invalid_request",
        ),
        (app.get("/api/nothing-here").await, 404, "not_found"),
        (app.get(QUERY).await, 405, "method_not_allowed"),
    ];
    let count = cases.len();
    for (response, status, code) in cases {
        expect_error(response, status, code).await;
    }
    count
}

#[tokio::test]
async fn bad_requests_get_4xx_json_and_never_touch_the_breaker() {
    let app = TestServer::start().await;

    let mut sent = 0;
    while sent < 20 {
        sent += send_bad_requests(&app).await;
    }

    let breaker = &app.circuit().await["breakers"][0];
    assert_eq!(breaker["state"], "closed");
    assert_eq!(breaker["consecutive_failures"], 0);
    assert_eq!(breaker["failures"], 0);
    assert_eq!(
        app.upstream.llm.calls(),
        0,
        "no bad request reached the LLM"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_wrongly_typed_field_is_named() {
    let app = TestServer::start().await;

    let wrong_type = expect_error(
        app.post_json(QUERY, &json!({"query": 5})).await,
        422,
        "invalid_request",
    )
    .await;
    let missing = expect_error(
        app.post_json("/api/notes", &json!({"body": "text"})).await,
        422,
        "invalid_request",
    )
    .await;
    let bad_user = expect_error(
        app.post_json(QUERY, &json!({"query": "q", "user_id": "a/b"}))
            .await,
        422,
        "invalid_request",
    )
    .await;

    assert_eq!(wrong_type["field"], "query", "{wrong_type}");
    assert_eq!(missing["field"], "title", "{missing}");
    assert_eq!(bad_user["field"], "user_id", "{bad_user}");
    assert!(
        bad_user["detail"]
            .as_str()
            .is_some_and(|d| d.contains("user_id"))
    );
    app.stop().await;
}

#[tokio::test]
async fn wrong_method_lists_the_allowed_ones() {
    let app = TestServer::start().await;
    let response = app
        .client
        .patch(app.url("/api/notes"))
        .send()
        .await
        .expect("answered");
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    expect_error(response, 405, "method_not_allowed").await;
    assert!(
        allow.contains("POST") && allow.contains("GET") && allow.contains("DELETE"),
        "{allow}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_json() {
    let app = TestServer::start().await;
    let mut stream = TcpStream::connect(app.server.addr).await.expect("connect");
    let head = format!(
        "POST {QUERY} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.server.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let chunk = "x".repeat(256);
    let mut body = String::from(r#"{"query": ""#);
    while body.len() <= 2 * MAX_BODY_BYTES {
        body.push_str(&chunk);
    }
    body.push_str(r#""}"#);
    for piece in body.as_bytes().chunks(256) {
        let framed = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
        // The server may answer and close before reading everything: that is allowed.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;

    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);

    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains(r#""error":"payload_too_large""#),
        "{response}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_accepted() {
    let app = TestServer::start().await;
    let padding = "x".repeat(MAX_BODY_BYTES - 100);
    let response = app
        .post_json("/api/notes", &json!({"title": "Big", "body": padding}))
        .await;
    assert_eq!(response.status(), 201);
    app.stop().await;
}

/// The exception the README names: what hyper cannot parse it answers itself, before the
/// router, with an empty body. If hyper ever hands these to us, this test says so.
#[tokio::test]
async fn requests_hyper_cannot_parse_get_its_own_4xx_and_are_closed() {
    let app = TestServer::start().await;
    let many_headers: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
    let cases = [
        (
            "POST /api/notes HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_owned(),
            "HTTP/1.1 400",
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)),
            "HTTP/1.1 414",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"),
            "HTTP/1.1 431",
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(600_000)
            ),
            "HTTP/1.1 431",
        ),
    ];
    for (request, status) in cases {
        let mut stream = TcpStream::connect(app.server.addr).await.expect("connect");
        // The server may answer and close before reading it all.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with(status), "{status}: {response}");
        assert!(response.contains("content-length: 0"), "{response}");
    }
    app.stop().await;
}
