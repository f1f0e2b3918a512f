//! deploy/'s alerting rules and Grafana dashboard name only metrics the server exports: each
//! name is in a live `/metrics` after an answer, a failure and a trip, or (for counters
//! that only appear once something happened, like shed calls) a name the code records.

mod http_common;

use std::collections::BTreeSet;
use std::path::Path;

use fake_llm::Fault;
use http_common::TestServer;
use serde_json::json;

/// Every `breakwater_…` metric name in `text`, without histogram suffixes.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("breakwater_") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        names.insert(base.to_owned());
    }
    names
}

/// The string literals of the crate's sources that look like metric names.
fn recorded_in_code() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names = BTreeSet::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let code = std::fs::read_to_string(&path).expect("source readable");
                for quoted in code.split('"').skip(1).step_by(2) {
                    if quoted.starts_with("breakwater_") && !quoted.contains(' ') {
                        names.insert(quoted.to_owned());
                    }
                }
            }
        }
    }
    names
}

#[tokio::test]
async fn the_rules_and_the_dashboard_name_only_exported_metrics() {
    let server = TestServer::start_with(&[("CIRCUIT_BREAKER_FAIL_THRESHOLD", "1")]).await;
    server
        .create_note("alice", "Bread", "Flour, water and salt make bread.")
        .await;
    let ask = json!({"user_id": "alice", "query": "what makes bread?"});
    assert_eq!(
        server
            .post_json("/api/assistant/query", &ask)
            .await
            .status(),
        200
    );
    server.upstream.llm.set_fault(Fault::error(500));
    let again = json!({"user_id": "alice", "query": "is there salt in bread?"});
    assert_eq!(
        server
            .post_json("/api/assistant/query", &again)
            .await
            .status(),
        200
    );
    let live = server
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics text");
    let exported = metric_names(&live);
    let recorded = recorded_in_code();

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    for file in ["prometheus/alerts.yml", "grafana/breakwater.json"] {
        let text = std::fs::read_to_string(root.join(file)).expect("deploy file");
        let used = metric_names(&text);
        assert!(used.len() >= 3, "{file} names metrics: {used:?}");
        for name in used {
            assert!(
                exported.contains(&name) || recorded.contains(&name),
                "{file} uses {name}, which the server does not export"
            );
        }
    }
    // The ones an alert stands on are live, not only named in the code.
    for name in [
        "breakwater_circuit_breaker_state",
        "breakwater_answers_total",
        "breakwater_http_request_duration_seconds",
    ] {
        assert!(exported.contains(name), "{name} missing from /metrics");
    }
    server.stop().await;
}
