//! Delivering one rendered message over a channel (SPEC §2 `channels`): what goes out,
//! and how a failure is classified so the dispatcher knows whether a retry can help.
//!
//! [`Channels`] is built once per rule set and holds one SMTP transport per smtp channel
//! and one HTTP client for every webhook, so sending a message never sets up a client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::log;
use super::smtp::SmtpLink;
use super::webhook::WebhookLink;
use crate::rules::{Channel, ChannelKind, Retry};

/// A rendered message ready to go, as the outbox stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The outbox key. Delivery is at-least-once, so the key travels with the message
    /// (Message-ID `<key@rally>`, webhook `Idempotency-Key`) and receivers can drop a
    /// repeat.
    pub key: String,
    pub channel: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// `body` is HTML.
    pub html: bool,
    pub member: Option<String>,
    /// The channel's rendered JSON body template; `None` sends the default JSON.
    pub webhook_body: Option<String>,
}

/// Whether retrying can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryErrorKind {
    /// Retrying will fail the same way: a rejected address, a 4xx from a webhook.
    Permanent,
    /// The other side may accept it later: down, slow, 4xx from SMTP, 5xx or 429.
    Transient,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub kind: DeliveryErrorKind,
    pub message: String,
}

impl DeliveryError {
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            kind: DeliveryErrorKind::Permanent,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        DeliveryError {
            kind: DeliveryErrorKind::Transient,
            message: message.into(),
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.kind == DeliveryErrorKind::Permanent
    }
}

/// A channel whose settings cannot make a working client (a bad `from`, url or header).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("channel \"{channel}\": {message}")]
pub struct ChannelError {
    pub channel: String,
    pub message: String,
}

/// A ready client for each channel of a rule set; `default()` has none.
#[derive(Default)]
pub struct Channels {
    links: BTreeMap<String, Link>,
    /// Each channel's `retry:` setting, for the dispatcher.
    retries: BTreeMap<String, Retry>,
}

enum Link {
    Smtp(SmtpLink),
    Webhook(WebhookLink),
    Log,
}

impl Channels {
    /// Builds a client for every channel, collecting every channel that cannot have one.
    pub fn new(channels: &BTreeMap<String, Channel>) -> Result<Channels, Vec<ChannelError>> {
        Self::build(channels, None)
    }

    /// As [`Channels::new`], with SMTP servers also trusted when their certificate is
    /// signed by the CA in `ca_pem` (a relay with a private CA).
    pub fn with_root_ca(
        channels: &BTreeMap<String, Channel>,
        ca_pem: &[u8],
    ) -> Result<Channels, Vec<ChannelError>> {
        Self::build(channels, Some(ca_pem))
    }

    fn build(
        channels: &BTreeMap<String, Channel>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Channels, Vec<ChannelError>> {
        let mut http = None;
        let mut links = BTreeMap::new();
        let mut retries = BTreeMap::new();
        let mut errors = Vec::new();
        for (id, channel) in channels {
            retries.insert(id.clone(), channel.retry);
            match Link::build(channel, &mut http, ca_pem) {
                Ok(link) => {
                    links.insert(id.clone(), link);
                }
                Err(message) => errors.push(ChannelError {
                    channel: id.clone(),
                    message,
                }),
            }
        }
        if errors.is_empty() {
            Ok(Channels { links, retries })
        } else {
            Err(errors)
        }
    }

    /// How channel `id` retries; `None` when this set has no such channel.
    pub fn retry(&self, id: &str) -> Option<Retry> {
        self.retries.get(id).copied()
    }

    /// Sends `msg` over its channel (`msg.channel`). An unknown channel is permanent:
    /// the rule set it was queued under no longer has it.
    pub async fn deliver(&self, msg: &Outgoing) -> Result<(), DeliveryError> {
        match self.links.get(&msg.channel) {
            Some(link) => link.send(msg).await,
            None => Err(DeliveryError::permanent(format!(
                "no channel \"{}\"",
                msg.channel
            ))),
        }
    }
}

impl Link {
    /// `http` is the client webhooks share, made by the first webhook that needs it.
    fn build(
        channel: &Channel,
        http: &mut Option<reqwest::Client>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Link, String> {
        Ok(match &channel.kind {
            ChannelKind::Smtp(smtp) => Link::Smtp(SmtpLink::build(smtp, ca_pem)?),
            ChannelKind::Webhook(hook) => {
                let client = match http {
                    Some(client) => client.clone(),
                    None => http.insert(WebhookLink::client()?).clone(),
                };
                Link::Webhook(WebhookLink::build(hook, client)?)
            }
            ChannelKind::Log => Link::Log,
        })
    }

    async fn send(&self, msg: &Outgoing) -> Result<(), DeliveryError> {
        match self {
            Link::Smtp(smtp) => smtp.send(msg).await,
            Link::Webhook(hook) => hook.send(msg).await,
            Link::Log => {
                log::send(msg);
                Ok(())
            }
        }
    }
}

/// Sends one message over `channel` with a client built for this send alone. The
/// dispatcher uses [`Channels`]; this is for one-off sends.
pub async fn deliver(channel: &Channel, msg: &Outgoing) -> Result<(), DeliveryError> {
    let link = Link::build(channel, &mut None, None).map_err(|message| {
        DeliveryError::permanent(format!("channel \"{}\": {message}", channel.id))
    })?;
    link.send(msg).await
}
