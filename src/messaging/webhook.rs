//! Webhooks: a JSON `POST` with reqwest.
//!
//! 2xx is delivered. 429 and 5xx say "later", and so do a refused connection and a
//! timeout: transient. Any other answer (4xx, or a redirect, which is not followed: a
//! POST must not silently turn into a GET elsewhere) will not change on retry:
//! permanent.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Client, StatusCode, Url};

use super::channel::{DeliveryError, Outgoing};
use crate::rules::WebhookChannel;

/// How much of an error response's body goes into the error message.
const ERROR_BODY_CHARS: usize = 200;

pub(super) struct WebhookLink {
    client: Client,
    url: Url,
    headers: HeaderMap,
    timeout: Duration,
}

impl WebhookLink {
    /// The client every webhook of a rule set shares (it pools connections per host).
    pub(super) fn client() -> Result<Client, String> {
        Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rally/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))
    }

    pub(super) fn build(cfg: &WebhookChannel, client: Client) -> Result<WebhookLink, String> {
        let url = parse_url(&cfg.url)?;
        let timeout = cfg
            .timeout
            .to_std()
            .map_err(|_| format!("negative timeout {}", cfg.timeout))?;
        // Channel headers come last so a channel can override the content type.
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &cfg.headers {
            headers.insert(header_name(name)?, header_value(name, value)?);
        }
        Ok(WebhookLink {
            client,
            url,
            headers,
            timeout,
        })
    }

    pub(super) async fn send(&self, msg: &Outgoing) -> Result<(), DeliveryError> {
        let body = match &msg.webhook_body {
            Some(body) => body.clone(),
            None => default_body(msg),
        };
        let mut headers = self.headers.clone();
        headers.insert("idempotency-key", idempotency_key(&msg.key));
        let sent = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .timeout(self.timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Err(DeliveryError::transient(format!(
                    "webhook {}: no answer within {:?}",
                    self.url, self.timeout
                )))
            }
            Err(e) => {
                return Err(DeliveryError::transient(format!(
                    "webhook {}: {}",
                    self.url,
                    error_chain(&e)
                )))
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let excerpt: String = text.chars().take(ERROR_BODY_CHARS).collect();
        let message = format!("webhook {} answered {status}: {excerpt}", self.url);
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(DeliveryError::transient(message))
        } else {
            Err(DeliveryError::permanent(message))
        }
    }
}

// The three checks below are also run by the rule loader, so `check` refuses every
// setting `run` would, at the setting's position.

/// A webhook url: parsed, and http or https.
pub fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("invalid url \"{text}\": {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("url \"{text}\" is not http or https"));
    }
    Ok(url)
}

pub fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
        format!("invalid header name {name:?}: {e} (letters, digits and !#$%&'*+-.^_`|~ only)")
    })
}

pub fn header_value(name: &str, value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value).map_err(|e| {
        format!("invalid value for header {name:?}: {e} (visible ASCII and spaces only; no line breaks)")
    })
}

/// The outbox key as a header value: as it is when a header can hold it (every key
/// made of validated ids can), otherwise with the bytes it cannot hold (control
/// characters) and `%` percent-encoded, so no message ever goes without the header.
fn idempotency_key(key: &str) -> HeaderValue {
    if let Ok(value) = HeaderValue::from_str(key) {
        return value;
    }
    let mut encoded = String::with_capacity(key.len());
    for c in key.chars() {
        if c.is_control() || c == '%' {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        } else {
            encoded.push(c);
        }
    }
    // Nothing a header value refuses is left.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The body sent when the channel has no body template.
pub fn default_body(msg: &Outgoing) -> String {
    serde_json::json!({
        "to": msg.to,
        "subject": msg.subject,
        "body": msg.body,
        "member": msg.member,
        "channel": msg.channel,
    })
    .to_string()
}

/// reqwest's top-level message is "error sending request"; the cause is in the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
