//! The web dashboard at `/`: a static page and its assets, embedded in the binary so
//! it works with no internet access, and the login form that opens a browser session.
//!
//! The page holds no data: its script reads the API (`/v1/report`, `/v1/members/..`)
//! with the session cookie. So `/` and `/assets/..` are public; with a token set, `/`
//! shows the login form until the browser has a session. The token travels only in
//! the body of `POST /login`, never in a URL.
//!
//! Every answer carries a strict Content-Security-Policy: scripts and styles from this
//! origin only, no inline script, no other origin at all.

use std::hash::Hasher;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::guard::{read_body_within, BodyTimeout, Token};

/// Scripts, styles and fetches from this origin only; forms post only here; no frames.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self'; connect-src 'self'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

const DASHBOARD: &str = include_str!("../../assets/dashboard/index.html");
const LOGIN: &str = include_str!("../../assets/dashboard/login.html");
/// Where the login page says what went wrong.
const LOGIN_ERROR_SLOT: &str = "<!--error-->";

/// The files under `/assets/`: path, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "dashboard/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/app.js"),
    ),
    (
        "dashboard/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/dashboard/app.css"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/uPlot.min.css"),
    ),
];

/// The dashboard's routes; `token` is the daemon's, if one is set. The login form's
/// body is read within `body_timeout`, like the API's.
pub fn routes<S: Clone + Send + Sync + 'static>(
    token: Option<Token>,
    body_timeout: BodyTimeout,
) -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/assets/{*file}", get(asset))
        .route("/favicon.ico", get(no_icon))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route_layer(from_fn_with_state(body_timeout, read_body_within))
        .with_state(token)
}

/// The dashboard, or the login form while a token is set and the browser has no
/// session.
async fn page(State(token): State<Option<Token>>, headers: HeaderMap) -> Response {
    match token {
        Some(token) if !token.sessions().admits(&headers) => html(StatusCode::OK, LOGIN),
        _ => html(StatusCode::OK, DASHBOARD),
    }
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

/// The form's token: right, a session cookie and back to `/`; wrong, the form again
/// with the error (401).
async fn login(State(token): State<Option<Token>>, Form(form): Form<Login>) -> Response {
    let Some(token) = token else {
        // Nothing to log in to: the dashboard is open.
        return to_dashboard(None);
    };
    if token.is(&form.token) {
        return to_dashboard(Some(token.sessions().open()));
    }
    tracing::warn!("dashboard login refused: wrong token");
    let page = LOGIN.replace(
        LOGIN_ERROR_SLOT,
        r#"<p class="error" role="alert" id="login-error">Wrong token.</p>"#,
    );
    html(StatusCode::UNAUTHORIZED, &page)
}

async fn logout(State(token): State<Option<Token>>, headers: HeaderMap) -> Response {
    to_dashboard(token.map(|token| token.sessions().close(&headers)))
}

/// 303 to `/`, setting `cookie` if given.
fn to_dashboard(cookie: Option<HeaderValue>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    guarded(response)
}

fn html(status: StatusCode, body: &str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        // Which page `/` is depends on the session: never reuse one.
        (header::CACHE_CONTROL, "no-store"),
    ];
    guarded((status, headers, body.to_string()).into_response())
}

/// Browsers ask for an icon on every page; the dashboard has none, and a 404 would
/// be noise in every browser console.
async fn no_icon() -> Response {
    guarded(StatusCode::NO_CONTENT.into_response())
}

/// An embedded asset. Its URL does not change when a new binary changes it, so
/// browsers revalidate every time (`no-cache`) and the ETag spares the download.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(path, _, _)| *path == file) else {
        return super::api::error(StatusCode::NOT_FOUND, format!("no asset {file:?}"));
    };
    let etag = etag(bytes);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let common = [
        (header::CACHE_CONTROL, "no-cache".to_string()),
        (header::ETAG, etag),
    ];
    let response = if fresh {
        (StatusCode::NOT_MODIFIED, common).into_response()
    } else {
        (
            common,
            [(header::CONTENT_TYPE, content_type.to_string())],
            *bytes,
        )
            .into_response()
    };
    guarded(response)
}

/// A strong validator for `bytes`: the same bytes, the same tag, in every process.
fn etag(bytes: &[u8]) -> String {
    let mut hasher = siphasher::sip::SipHasher24::new();
    hasher.write(bytes);
    format!("\"{:016x}\"", hasher.finish())
}

/// Adds the security headers every dashboard answer carries.
fn guarded(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_has_a_slot_for_the_error() {
        assert!(LOGIN.contains(LOGIN_ERROR_SLOT));
    }

    #[test]
    fn the_pages_load_no_script_inline_nor_from_another_origin() {
        for page in [DASHBOARD, LOGIN] {
            assert!(!page.contains("<script>"), "inline script");
            assert!(!page.contains("http://") && !page.contains("https://"));
            assert!(!page.contains(" style="), "inline style");
        }
    }

    #[test]
    fn every_asset_the_dashboard_names_is_served() {
        for (path, _, _) in ASSETS {
            assert!(DASHBOARD.contains(&format!("/assets/{path}")), "{path}");
        }
    }

    #[test]
    fn the_etag_changes_with_the_bytes() {
        assert_eq!(etag(b"a"), etag(b"a"));
        assert_ne!(etag(b"a"), etag(b"b"));
    }
}
