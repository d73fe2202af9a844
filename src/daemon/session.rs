//! Browser sessions for the dashboard: the login form trades the API token for a
//! random session id in an `HttpOnly; Secure; SameSite=Strict` cookie, so the token is
//! typed once and never sits in a URL, in the page, or in script-readable storage.
//!
//! Ids are random (128 bits from the OS generator), kept in memory only: a restart
//! logs every browser out, which is the safe side. They are checked in constant time
//! against every open session, like the token itself.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "rally_session";

/// Sessions kept at once; logging in past this forgets the oldest. A bound, so a
/// client that logs in in a loop cannot grow the daemon's memory.
const MAX_OPEN: usize = 256;

/// How long a session lasts after login, whatever it does meanwhile: a forgotten
/// browser tab does not hold access for ever.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

type Id = [u8; 16];

/// The open sessions. A std `Mutex`: held for a scan of at most [`MAX_OPEN`] ids,
/// never across an await.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<VecDeque<(Id, Instant)>>,
}

impl Sessions {
    /// Opens a session and returns the `Set-Cookie` value that carries it.
    pub fn open(&self) -> HeaderValue {
        let mut id = Id::default();
        rand::rngs::OsRng.fill_bytes(&mut id);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= MAX_OPEN {
            open.pop_front();
        }
        open.push_back((id, Instant::now()));
        cookie(&hex(&id), "")
    }

    /// Whether the request's cookie names an open, unexpired session.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = session_id(headers) else {
            return false;
        };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|(_, opened)| opened.elapsed() < LIFETIME);
        // Every id is compared, so the time taken says nothing about which matched.
        open.iter()
            .fold(subtle::Choice::from(0), |found, (id, _)| {
                found | id.ct_eq(&given)
            })
            .into()
    }

    /// Forgets the request's session, if it names one; returns the `Set-Cookie` value
    /// that clears the cookie.
    pub fn close(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(given) = session_id(headers) {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            open.retain(|(id, _)| !bool::from(id.ct_eq(&given)));
        }
        cookie("", "; Max-Age=0")
    }
}

fn cookie(value: &str, extra: &str) -> HeaderValue {
    let text = format!("{COOKIE}={value}; HttpOnly; Secure; SameSite=Strict; Path=/{extra}");
    // Only hex digits and fixed ASCII: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session id in the request's `Cookie` headers, if one is well formed.
fn session_id(headers: &HeaderMap) -> Option<Id> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| unhex(value))
}

fn hex(id: &Id) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Id> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * std::mem::size_of::<Id>() {
        return None;
    }
    let mut id = Id::default();
    for (slot, pair) in id.iter_mut().zip(bytes.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
        headers
    }

    #[test]
    fn the_cookie_a_login_sets_admits_its_browser() {
        let sessions = Sessions::default();
        let set = sessions.open();
        assert!(sessions.admits(&request_with(&set)));
    }

    #[test]
    fn the_cookie_is_http_only_secure_and_same_site_strict() {
        let set = Sessions::default().open();
        let text = set.to_str().unwrap();
        for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(text.contains(flag), "{text}");
        }
    }

    #[test]
    fn a_made_up_or_malformed_session_is_refused() {
        let sessions = Sessions::default();
        sessions.open();
        for cookie in [
            "rally_session=00000000000000000000000000000000",
            "rally_session=zz",
            "rally_session=",
            "other=1",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
            assert!(!sessions.admits(&headers), "{cookie}");
        }
        assert!(!sessions.admits(&HeaderMap::new()));
    }

    #[test]
    fn logging_out_ends_the_session_and_clears_the_cookie() {
        let sessions = Sessions::default();
        let headers = request_with(&sessions.open());
        let cleared = sessions.close(&headers);
        assert!(!sessions.admits(&headers));
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn the_session_is_found_among_other_cookies() {
        let sessions = Sessions::default();
        let set = sessions.open();
        let pair = set.to_str().unwrap().split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        let both = format!("theme=dark; {pair}; lang=zh");
        headers.insert(header::COOKIE, HeaderValue::from_str(&both).unwrap());
        assert!(sessions.admits(&headers));
    }

    #[test]
    fn past_the_bound_the_oldest_session_is_forgotten() {
        let sessions = Sessions::default();
        let first = request_with(&sessions.open());
        for _ in 0..MAX_OPEN {
            sessions.open();
        }
        assert!(!sessions.admits(&first));
    }
}
