//! `channels:` — where messages go: an SMTP server, a webhook, or the log.
//!
//! Every setting `run` needs to build a channel's client is checked here with the
//! messaging module's own parsers (from address, TLS host name, url, header names and
//! values), so a rule set `check` accepts never fails at start-up or reload.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::messaging::{smtp as smtp_client, webhook as webhook_client};
use crate::rules::compile::{Ctx, Ids, Section};
use crate::rules::convert::{choice, duration, fields, string, Diag, Fields};
use crate::rules::yaml::{Key, Node, Value};
use crate::rules::{Channel, ChannelKind, Retry, SmtpChannel, Tls, WebhookChannel};

const KINDS: [&str; 3] = ["smtp", "webhook", "log"];

pub fn compile(ctx: &mut Ctx, sections: &[Section]) -> BTreeMap<String, Channel> {
    let mut ids = Ids::new("channel");
    let mut out = BTreeMap::new();
    for section in sections {
        for (key, value) in section.entries(&mut ctx.d) {
            if !ids.claim(&mut ctx.d, &key.name, &key.at) {
                continue;
            }
            ctx.names.channels.push(key.name.clone());
            let retry = retry(&mut ctx.d, value);
            if let (Some(kind), Some(retry)) = (channel(&mut ctx.d, key, value), retry) {
                let channel = Channel {
                    id: key.name.clone(),
                    kind,
                    retry,
                    at: key.at.clone(),
                };
                out.insert(key.name.clone(), channel);
            }
        }
    }
    out
}

fn channel(d: &mut Diag, key: &Key, value: &Value) -> Option<ChannelKind> {
    let Node::Map(entries) = &value.node else {
        d.error(
            &value.at,
            format!("channel must be a mapping, found {}", value.kind()),
        );
        return None;
    };
    let Some((_, kind_value)) = entries.iter().find(|(k, _)| k.name == "kind") else {
        d.error(
            &value.at,
            format!(
                "channel {:?} is missing required key \"kind\" (smtp, webhook or log)",
                key.name
            ),
        );
        return None;
    };
    match choice(d, kind_value, "kind", &KINDS)? {
        "smtp" => smtp(d, &key.name, value),
        "webhook" => webhook(d, &key.name, value),
        _ => {
            fields(d, value, "log channel", &["kind", "retry"])?;
            Some(ChannelKind::Log)
        }
    }
}

fn smtp(d: &mut Diag, id: &str, value: &Value) -> Option<ChannelKind> {
    let allowed = [
        "kind", "host", "port", "tls", "from", "username", "password", "timeout", "retry",
    ];
    let f = fields(d, value, "smtp channel", &allowed)?;
    let host = f.req_str(d, "host");
    let port = match f.get("port") {
        None => Some(587),
        Some(v) => port(d, v),
    };
    let tls = match f.get("tls") {
        None => Some(Tls::Starttls),
        Some(v) => choice(d, v, "tls", &["starttls", "tls", "none"]).map(|t| match t {
            "tls" => Tls::Tls,
            "none" => Tls::None,
            _ => Tls::Starttls,
        }),
    };
    let host = if tls.as_ref().is_some_and(|tls| *tls != Tls::None) {
        valid(d, id, f.get("host"), host, smtp_client::check_tls_host)
    } else {
        host
    };
    let from = f.req_str(d, "from");
    let from = valid(d, id, f.get("from"), from, |from| {
        smtp_client::parse_from(from).map(|_| ())
    });
    let username = optional_string(d, &f, "username");
    let password = optional_string(d, &f, "password");
    let timeout = timeout(d, &f, Duration::seconds(30));
    Some(ChannelKind::Smtp(SmtpChannel {
        host: host?.to_string(),
        port: port?,
        tls: tls?,
        from: from?.to_string(),
        username: username?,
        password: password?,
        timeout: timeout?,
    }))
}

fn webhook(d: &mut Diag, id: &str, value: &Value) -> Option<ChannelKind> {
    let allowed = ["kind", "url", "body", "headers", "timeout", "retry"];
    let f = fields(d, value, "webhook channel", &allowed)?;
    let url = f.require(d, "url").and_then(|v| {
        let url = string(d, v, "url")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            d.error(
                &v.at,
                format!("webhook url must start with http:// or https://, found {url:?}"),
            );
            return None;
        }
        if let Err(e) = webhook_client::parse_url(url) {
            d.error(&v.at, format!("channel {id:?}: {e}"));
            return None;
        }
        Some(url.to_string())
    });
    let body = optional_string(d, &f, "body");
    let headers = match f.get("headers") {
        None => Some(BTreeMap::new()),
        Some(v) => headers(d, id, v),
    };
    let timeout = timeout(d, &f, Duration::seconds(10));
    Some(ChannelKind::Webhook(WebhookChannel {
        url: url?,
        body: body?,
        headers: headers?,
        timeout: timeout?,
    }))
}

/// The channel's `retry: { for: 24h, max_backoff: 1h }`; either key may be left out.
/// `None` when it is present but wrong (reported at the offending key or value).
fn retry(d: &mut Diag, channel: &Value) -> Option<Retry> {
    let Node::Map(entries) = &channel.node else {
        // `channel` reports a channel that is not a mapping.
        return Some(Retry::default());
    };
    let Some((_, value)) = entries.iter().find(|(k, _)| k.name == "retry") else {
        return Some(Retry::default());
    };
    let f = fields(d, value, "channel retry", &["for", "max_backoff"])?;
    let default = Retry::default();
    let for_ = match f.get("for") {
        None => Some(default.for_),
        Some(v) => duration(d, v, "for"),
    };
    let max_backoff = match f.get("max_backoff") {
        None => Some(default.max_backoff),
        Some(v) => duration(d, v, "max_backoff"),
    };
    Some(Retry {
        for_: for_?,
        max_backoff: max_backoff?,
    })
}

/// `text` (read from `value`) if `check` accepts it; otherwise `None`, with the error
/// at the value, naming channel `id` as `run` would.
fn valid<'a>(
    d: &mut Diag,
    id: &str,
    value: Option<&Value>,
    text: Option<&'a str>,
    check: impl Fn(&str) -> Result<(), String>,
) -> Option<&'a str> {
    let (value, text) = (value?, text?);
    match check(text) {
        Ok(()) => Some(text),
        Err(e) => {
            d.error(&value.at, format!("channel {id:?}: {e}"));
            None
        }
    }
}

/// `Some(None)` when absent, `None` when present but wrong.
fn optional_string(d: &mut Diag, f: &Fields, name: &str) -> Option<Option<String>> {
    match f.get(name) {
        None => Some(None),
        Some(v) => string(d, v, name).map(|s| Some(s.to_string())),
    }
}

fn timeout(d: &mut Diag, f: &Fields, default: Duration) -> Option<Duration> {
    match f.get("timeout") {
        None => Some(default),
        Some(v) => duration(d, v, "timeout"),
    }
}

/// A port number, also as a string so it can come from `${SMTP_PORT}`.
fn port(d: &mut Diag, value: &Value) -> Option<u16> {
    if value.unresolved {
        return None;
    }
    let parsed = match &value.node {
        Node::Int(i) => u16::try_from(*i).ok(),
        Node::Str(s) => s.trim().parse::<u16>().ok(),
        _ => None,
    };
    let parsed = parsed.filter(|p| *p > 0);
    if parsed.is_none() {
        d.error(&value.at, "\"port\" must be a port number from 1 to 65535");
    }
    parsed
}

fn headers(d: &mut Diag, id: &str, value: &Value) -> Option<BTreeMap<String, String>> {
    let Node::Map(entries) = &value.node else {
        d.error(
            &value.at,
            format!(
                "\"headers\" must be a mapping of names to values, found {}",
                value.kind()
            ),
        );
        return None;
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (key, v) in entries {
        if let Err(e) = webhook_client::header_name(&key.name) {
            d.error(&key.at, format!("channel {id:?}: {e}"));
            ok = false;
        }
        match &v.node {
            Node::Str(_) if v.unresolved => ok = false,
            Node::Str(s) => match webhook_client::header_value(&key.name, s) {
                Ok(_) => {
                    out.insert(key.name.clone(), s.clone());
                }
                Err(e) => {
                    d.error(&v.at, format!("channel {id:?}: {e}"));
                    ok = false;
                }
            },
            Node::Int(i) => {
                out.insert(key.name.clone(), i.to_string());
            }
            _ => {
                d.error(
                    &v.at,
                    format!("header {:?} must be a string, found {}", key.name, v.kind()),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}
