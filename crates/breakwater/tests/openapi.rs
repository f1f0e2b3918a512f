//! `GET /api/openapi.json`: an OpenAPI 3.1 document generated from the handlers, covering
//! every route, status and error body, with `Retry-After` on the 503s.

mod http_common;

use http_common::{TestServer, json};
use serde_json::Value;

/// The routes the server answers, as (method, path) in OpenAPI's spelling.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/assistant/query"),
    ("get", "/api/assistant/health/circuit-breaker"),
    ("get", "/api/assistant/circuit-breakers/{name}"),
    ("post", "/api/assistant/circuit-breakers/{name}/state"),
    ("post", "/api/notes"),
    ("get", "/api/notes"),
    ("delete", "/api/notes"),
    ("get", "/api/notes/{id}"),
    ("put", "/api/notes/{id}"),
    ("delete", "/api/notes/{id}"),
    ("get", "/api/openapi.json"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/status"),
    ("get", "/api/assistant/status"),
];

#[tokio::test]
async fn the_document_is_openapi_3_1_and_covers_every_route() {
    // With an API token set: the document itself needs none.
    let server = TestServer::start_with(&[("BREAKWATER_API_TOKEN", "secret-token")]).await;
    let response = server.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = json(response).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in ROUTES {
        let operation = &paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is documented"))[*method];
        assert!(operation.is_object(), "{method} {path} is documented");
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} lists its responses"
        );
    }
    let documented: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |o| o.len()))
        .sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "no route documented that the server lacks"
    );

    // The 503 of a question: the error body and its Retry-After.
    let unavailable = &paths["/api/assistant/query"]["post"]["responses"]["503"];
    assert!(
        unavailable["headers"]["Retry-After"].is_object(),
        "{unavailable}"
    );
    assert_eq!(
        unavailable["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    // Streamed, the same 200 is an event stream of the documented events.
    let query = &paths["/api/assistant/query"]["post"];
    let answered = &query["responses"]["200"]["content"];
    assert_eq!(
        answered["text/event-stream"]["schema"]["$ref"],
        "#/components/schemas/ServerSentEvent"
    );
    let envelope = &doc["components"]["schemas"]["ServerSentEvent"];
    assert_eq!(
        envelope["properties"]["data"]["contentMediaType"],
        "application/json"
    );
    let names = &doc["components"]["schemas"]["EventName"]["enum"];
    assert_eq!(
        names,
        &serde_json::json!(["sources", "delta", "fallback", "done", "error"])
    );
    assert_eq!(
        answered["application/json"]["schema"]["$ref"],
        "#/components/schemas/Answer"
    );
    let events = doc["components"]["schemas"]["StreamEvent"]["oneOf"]
        .as_array()
        .expect("the events are alternatives");
    let described: Vec<&str> = events
        .iter()
        .filter_map(|e| e["description"].as_str())
        .collect();
    for name in ["sources", "delta", "fallback", "done", "error"] {
        assert!(
            described
                .iter()
                .any(|d| d.starts_with(&format!("`event: {name}`"))),
            "{name} in {described:?}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["QueryRequest"]["properties"]["stream"]["type"],
        "boolean"
    );
    for name in [
        "Answer",
        "AnswerMetadata",
        "Excerpt",
        "Note",
        "ErrorBody",
        "Status",
        "CircuitHealth",
    ] {
        assert!(schemas[name].is_object(), "schema {name}");
    }
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    server.stop().await;
}

#[tokio::test]
async fn an_error_body_has_the_documented_fields() {
    let server = TestServer::start().await;
    let doc: Value = json(server.get("/api/openapi.json").await).await;
    let documented = doc["components"]["schemas"]["ErrorBody"]["properties"]
        .as_object()
        .expect("ErrorBody's properties")
        .clone();
    let response = server
        .post_json("/api/assistant/query", &serde_json::json!({"query": ""}))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = json(response).await;
    for key in body.as_object().expect("an object").keys() {
        assert!(documented.contains_key(key), "{key} is documented");
    }
    for required in doc["components"]["schemas"]["ErrorBody"]["required"]
        .as_array()
        .expect("required fields")
    {
        assert!(
            body.get(required.as_str().expect("a name")).is_some(),
            "{required}"
        );
    }
    server.stop().await;
}
