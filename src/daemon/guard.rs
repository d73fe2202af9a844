//! What stands between the network and the daemon: the bearer token, the time a body
//! may take, and the global rate limit. (The body size limit is a layer on the router;
//! connections and headers are bounded in [`super::serve`].)

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::api::error;
use super::ingest::{MAX_BATCH, MAX_BODY_BYTES};
use super::session::Sessions;

/// The secret clients must present, and the dashboard's browser sessions opened with
/// it. Its `Debug` hides it, so it cannot reach a log.
#[derive(Clone)]
pub struct Token(Arc<str>, Arc<Sessions>);

impl Token {
    pub fn new(secret: &str) -> Token {
        Token(Arc::from(secret), Arc::default())
    }

    /// The browser sessions opened by logging in with this token.
    pub fn sessions(&self) -> &Sessions {
        &self.1
    }

    /// Whether `given` (typed into the login form) is the token, in constant time.
    pub fn is(&self, given: &str) -> bool {
        bool::from(given.trim().as_bytes().ct_eq(self.0.as_bytes()))
    }

    /// Whether an `Authorization` header value carries this token, compared in constant
    /// time (only the length can leak, and the length is not the secret).
    fn admits(&self, header: Option<&HeaderValue>) -> bool {
        let Some(value) = header.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, given)) = value.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && self.is(given)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Middleware: 401 unless the request carries the token, or is a read from a browser
/// logged in to the dashboard. The session cookie admits reads only: the dashboard
/// changes nothing, so a forged cross-site POST has nothing to ride on.
pub async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    if token.admits(request.headers().get(header::AUTHORIZATION))
        || (is_read(request.method()) && token.sessions().admits(request.headers()))
    {
        return next.run(request).await;
    }
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token: send `Authorization: Bearer <RALLY_TOKEN>`",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// How long a client has to send a request's body once its headers are in
/// (`RALLY_BODY_TIMEOUT_MS`).
#[derive(Clone, Copy, Debug)]
pub struct BodyTimeout(pub Duration);

/// Middleware: reads the whole body (up to [`MAX_BODY_BYTES`]) within the timeout, so a
/// client trickling a body cannot keep a connection, and the slot it holds while its
/// request is in a handler, forever. It runs after the token check: an unauthenticated
/// client never makes the daemon buffer anything.
pub async fn read_body_within(
    State(BodyTimeout(limit)): State<BodyTimeout>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) if is_over_the_limit(&e) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over the limit of {MAX_BODY_BYTES} bytes: split the batch"),
        ),
        Ok(Err(e)) => error(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {e}"),
        ),
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} ms (RALLY_BODY_TIMEOUT_MS)",
                limit.as_millis()
            ),
        ),
    }
}

fn is_over_the_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A token bucket over events, shared by every client: `rate` events per second on
/// average, with bursts up to one second's worth (or one full batch, if larger).
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    /// A std `Mutex`: held for a few arithmetic operations, never across an await.
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(rate: f64) -> RateLimiter {
        let burst = rate.max(MAX_BATCH as f64);
        RateLimiter {
            rate,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Takes `events` tokens if they are all there; takes nothing otherwise.
    pub fn try_take(&self, events: usize) -> bool {
        self.try_take_at(events, Instant::now())
    }

    fn try_take_at(&self, events: usize, now: Instant) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now.max(bucket.at);
        let wanted = events as f64;
        if bucket.tokens >= wanted {
            bucket.tokens -= wanted;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_token_is_admitted_only_as_a_bearer_credential() {
        let token = Token::new("s3cret");
        let admits = |v: &str| token.admits(Some(&HeaderValue::from_str(v).unwrap()));
        assert!(admits("Bearer s3cret"));
        assert!(admits("bearer s3cret"));
        assert!(!admits("Bearer s3cre"));
        assert!(!admits("Bearer s3cret2"));
        assert!(!admits("Basic s3cret"));
        assert!(!admits("s3cret"));
        assert!(!token.admits(None));
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        assert!(!format!("{:?}", Token::new("s3cret")).contains("s3cret"));
    }

    #[test]
    fn the_bucket_refuses_what_it_does_not_hold_and_refills_with_time() {
        let limiter = RateLimiter::new(2000.0);
        let start = Instant::now();
        assert!(limiter.try_take_at(2000, start));
        assert!(!limiter.try_take_at(1, start));
        assert!(limiter.try_take_at(100, start + Duration::from_millis(50)));
        assert!(!limiter.try_take_at(1, start + Duration::from_millis(50)));
    }

    #[test]
    fn a_full_batch_fits_even_under_a_low_rate() {
        let limiter = RateLimiter::new(10.0);
        assert!(limiter.try_take_at(MAX_BATCH, Instant::now()));
    }
}
