//! Bearer-token auth: `/api/*` needs the token when one is configured; `/healthz` and
//! `/metrics` never do.

mod http_common;

use http_common::{TestServer, expect_error};

const TOKEN: &str = "s3cret-token";

#[tokio::test]
async fn api_routes_need_the_bearer_token_when_configured() {
    let app = TestServer::start_with(&[("BREAKWATER_API_TOKEN", TOKEN)]).await;

    for path in [
        "/api/notes",
        "/api/assistant/health/circuit-breaker",
        "/api/no-such-route",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{path}");
        expect_error(response, 401, "unauthorized").await;
    }
    let wrong = app
        .client
        .get(app.url("/api/notes"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("answered");
    expect_error(wrong, 401, "unauthorized").await;
    let basic = app
        .client
        .get(app.url("/api/notes"))
        .basic_auth("user", Some(TOKEN))
        .send()
        .await
        .expect("answered");
    expect_error(basic, 401, "unauthorized").await;

    let right = app
        .client
        .get(app.url("/api/notes"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(right.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn liveness_and_metrics_stay_open_with_a_token() {
    let app = TestServer::start_with(&[("BREAKWATER_API_TOKEN", TOKEN)]).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/metrics").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn without_a_token_configured_the_api_is_open() {
    let app = TestServer::start().await;
    assert_eq!(app.get("/api/notes").await.status(), 200);
    app.stop().await;
}
