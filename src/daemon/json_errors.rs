//! Every error the API answers is JSON, `{"error": message}` (SPEC §4), including the
//! ones axum makes on its own: a wrong method (405, an empty body), a query string or
//! path segment that does not parse (400, plain text), a body over the limit (413).
//!
//! One layer over the whole router rewrites any error response that is not JSON
//! already, rather than a rejection handler per extractor: a route added later gets
//! the same shape without anyone remembering to ask for it. Handlers' own errors are
//! JSON already and pass through untouched.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

/// The most of a non-JSON error body kept as the message: axum's rejections are one
/// line, and an error message is no place for a page of text.
const MAX_MESSAGE: usize = 4096;

pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_json(response.headers())
        || is_page(response.headers())
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match to_bytes(body, MAX_MESSAGE).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => not_allowed(&method, &path, &parts.headers),
        _ if text.is_empty() => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
        _ => text,
    };
    let body = json!({ "error": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// A page for a person (the dashboard's login form with its error), not an API answer.
fn is_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"))
}

/// "POST is not allowed on /v1/members/m-1; allowed: GET,HEAD" (axum keeps the
/// `Allow` header, which says the same to a machine).
fn not_allowed(method: &Method, path: &str, headers: &HeaderMap) -> String {
    let allowed = headers
        .get(header::ALLOW)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty());
    match allowed {
        Some(allowed) => format!("{method} is not allowed on {path}; allowed: {allowed}"),
        None => format!("{method} is not allowed on {path}"),
    }
}
