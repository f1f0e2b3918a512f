//! A real Breakwater server for tests: a temporary SQLite file, `fake-llm` as the upstream,
//! port 0 on loopback, reqwest as the client.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this support"
)]

use std::collections::HashMap;

use breakwater::config::Config;
use breakwater::server::{self, RunningServer};
use fake_llm::{FakeLlm, RunningFakeLlm};
use reqwest::{Client, Response};
use serde_json::Value;
use tempfile::TempDir;

/// The request-body limit the test servers run with (the smallest the config accepts).
pub const MAX_BODY_BYTES: usize = 1024;

/// A running server with its upstream and its database directory.
pub struct TestServer {
    pub server: RunningServer,
    pub upstream: RunningFakeLlm,
    pub client: Client,
    pub dir: TempDir,
}

impl TestServer {
    /// A server with an LLM token, pointed at a fresh `fake-llm`.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Like [`TestServer::start`], with extra variables (an empty value removes one).
    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        let upstream = FakeLlm::new().spawn().await.expect("fake-llm starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("notes.db");
        let mut vars: HashMap<String, String> = [
            ("BREAKWATER_ADDR", "127.0.0.1:0".to_owned()),
            ("BREAKWATER_DB", db.display().to_string()),
            ("BREAKWATER_MAX_BODY_BYTES", MAX_BODY_BYTES.to_string()),
            ("HF_API_BASE", upstream.base_url()),
            ("HF_API_TOKEN", "test".to_owned()),
            ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "5".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        for (name, value) in extra {
            if value.is_empty() {
                vars.remove(*name);
            } else {
                vars.insert((*name).to_owned(), (*value).to_owned());
            }
        }
        let config = Config::from_map(&vars).expect("valid test configuration");
        let server = server::spawn(config).await.expect("server starts");
        Self {
            server,
            upstream,
            client: Client::new(),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET is answered")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST is answered")
    }

    /// `POST` with a raw body and content type.
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: &str) -> Response {
        let mut request = self.client.post(self.url(path)).body(body.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("POST is answered")
    }

    /// The circuit-breaker health document.
    pub async fn circuit(&self) -> Value {
        json(self.get("/api/assistant/health/circuit-breaker").await).await
    }

    /// Creates a note and returns its JSON.
    pub async fn create_note(&self, user: &str, title: &str, body: &str) -> Value {
        let response = self
            .post_json(
                "/api/notes",
                &serde_json::json!({"user_id": user, "title": title, "body": body}),
            )
            .await;
        assert_eq!(response.status(), 201, "note created");
        json(response).await
    }

    pub async fn stop(self) {
        self.server.shutdown().await.expect("server stops cleanly");
        self.upstream.shutdown().await.expect("fake-llm stops");
    }
}

/// The response's `Content-Type` (empty when absent).
pub fn content_type(response: &Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The body as JSON, asserting the content type says so.
pub async fn json(response: Response) -> Value {
    let content_type = content_type(&response);
    assert!(
        content_type.starts_with("application/json"),
        "expected JSON, got {content_type:?}"
    );
    response.json().await.expect("a JSON body")
}

/// Asserts the status and the `error` code of an error response; returns the body.
pub async fn expect_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status for {code}");
    let body = json(response).await;
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}
