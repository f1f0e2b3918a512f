//! Any request the HTTP stack lets through reaches the handlers' extractors: whatever its
//! method, path, query, headers and body, the answer is never a 500, and every error
//! carries a JSON body.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Request, header};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;

struct Fixture {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let vars = HashMap::from([
        (
            "BREAKWATER_DB".to_owned(),
            dir.path().join("notes.db").display().to_string(),
        ),
        ("RUST_LOG".to_owned(), "off".to_owned()),
    ]);
    let config = breakwater::config::Config::from_map(&vars).expect("valid");
    let state = runtime
        .block_on(breakwater::server::build_state(&config))
        .expect("a state");
    let router = breakwater::http::router(state);
    Fixture {
        _dir: dir,
        runtime,
        router,
    }
});

const PATHS: [&str; 8] = [
    "/api/assistant/query",
    "/api/notes",
    "/api/notes/abc",
    "/api/assistant/health/circuit-breaker",
    "/api/assistant/circuit-breakers/huggingface",
    "/api/assistant/circuit-breakers/huggingface/state",
    "/metrics",
    "/healthz",
];
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fuzz_target!(|data: &[u8]| {
    // [method, path, query length, query..., content-type selector, body...]
    let [method, path, query_len, rest @ ..] = data else {
        return;
    };
    let split = usize::from(*query_len).min(rest.len());
    let (query, rest) = rest.split_at(split);
    let Some((&json, body)) = rest.split_first() else {
        return;
    };
    let query = String::from_utf8_lossy(query);
    let uri = format!("{}?{}", PATHS[usize::from(*path) % PATHS.len()], query);
    let mut request = Request::builder().method(METHODS[usize::from(*method) % METHODS.len()]);
    if json & 1 == 1 {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let Ok(request) = request.uri(uri).body(Body::from(body.to_vec())) else {
        return;
    };
    let f = &*FIXTURE;
    let response = f
        .runtime
        .block_on(f.router.clone().oneshot(request))
        .expect("infallible");
    let status = response.status();
    assert_ne!(status.as_u16(), 500, "a 500 for {data:?}");
    if status.is_client_error() || status.is_server_error() {
        let content_type = response.headers().get(header::CONTENT_TYPE);
        assert!(
            content_type.is_some_and(|v| v.as_bytes().starts_with(b"application/json")),
            "{status} without a JSON body"
        );
    }
});
