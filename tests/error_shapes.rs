//! Every error the API answers is JSON `{"error": ...}` (SPEC §4) — also the ones axum
//! makes on its own: unknown routes, wrong methods, query strings and path segments
//! that do not parse. A daemon in this process, over real HTTP.

mod support;

use std::sync::Arc;

use rally::clock::SystemClock;
use serde_json::Value;
use support::live::Live;

const RULES: &str = r#"
rules:
  - id: checkin-points
    trigger: { event: checkin }
    actions:
      - points: 5
"#;

/// Sends `method path` and checks the answer is `status` with a JSON error; returns
/// the message and the response's headers.
async fn json_error(
    live: &Live,
    method: reqwest::Method,
    path: &str,
    status: u16,
) -> (String, reqwest::header::HeaderMap) {
    let response = live
        .http
        .request(method.clone(), format!("{}{path}", live.base))
        .send()
        .await
        .expect("the daemon answers");
    let headers = response.headers().clone();
    assert_eq!(response.status().as_u16(), status, "{method} {path}");
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{method} {path}: {content_type}"
    );
    let text = response.text().await.expect("a body");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path}: no error message in {body}"))
        .to_string();
    assert!(!message.is_empty(), "{method} {path}");
    (message, headers)
}

async fn live() -> (Live, tempfile::TempDir, tempfile::TempDir) {
    let rules = support::daemon::rules_dir(RULES);
    let data = tempfile::tempdir().unwrap();
    let live = Live::start(rules.path(), data.path(), Arc::new(SystemClock)).await;
    (live, rules, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_route_is_a_json_404() {
    let (live, _rules, _data) = live().await;
    for path in ["/nope", "/v1", "/v1/members", "/v1/members/m-1/nope"] {
        json_error(&live, reqwest::Method::GET, path, 404).await;
    }
    json_error(&live, reqwest::Method::POST, "/v1/nope", 404).await;
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_a_json_405_that_names_the_allowed_ones() {
    let (live, _rules, _data) = live().await;
    let cases = [
        (reqwest::Method::GET, "/v1/events", "POST"),
        (reqwest::Method::DELETE, "/v1/events", "POST"),
        (reqwest::Method::POST, "/v1/members/m-1", "GET"),
        (reqwest::Method::PUT, "/v1/tickets", "GET"),
        (reqwest::Method::GET, "/v1/tickets/T-1/ack", "POST"),
        (reqwest::Method::POST, "/healthz", "GET"),
        (reqwest::Method::POST, "/metrics", "GET"),
    ];
    for (method, path, allowed) in cases {
        let (message, headers) = json_error(&live, method.clone(), path, 405).await;
        assert!(message.contains(allowed), "{method} {path}: {message}");
        let allow = headers.get("allow").and_then(|v| v.to_str().ok());
        assert!(
            allow.is_some_and(|a| a.contains(allowed)),
            "{method} {path}: Allow {allow:?}"
        );
    }
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_string_or_path_that_does_not_parse_is_a_json_400() {
    let (live, _rules, _data) = live().await;
    let (status, _) = live
        .post(
            "/v1/events",
            r#"{"id":"e-1","type":"checkin","member":"m-1"}"#,
        )
        .await;
    assert_eq!(status, 200);
    for path in [
        "/v1/members/m-1/history?limit=many",
        "/v1/members/m-1/history?limit=-1",
        "/v1/tickets?status=bogus",
        // Not UTF-8 once percent-decoded: the path segment cannot be a String.
        "/v1/members/%FF",
    ] {
        let (message, _) = json_error(&live, reqwest::Method::GET, path, 400).await;
        assert!(!message.contains('<'), "{path}: {message}");
    }
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_error_from_a_handler_passes_through_unchanged() {
    let (live, _rules, _data) = live().await;
    let (message, _) = json_error(&live, reqwest::Method::GET, "/v1/members/nobody", 404).await;
    assert_eq!(message, r#"no member "nobody""#);
    let (message, _) = json_error(&live, reqwest::Method::GET, "/v1/tickets?status=x", 400).await;
    assert!(message.contains("is not a ticket status"), "{message}");
    live.stop().await;
}
