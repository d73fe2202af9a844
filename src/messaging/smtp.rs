//! Email over SMTP with lettre.
//!
//! lettre's own timeout covers only the connection, so a server that accepts and then
//! stalls would hold a send forever: every send is wrapped in the channel's timeout.
//! A 5xx reply is permanent; a 4xx reply, a refused connection, a TLS failure or a
//! timeout is transient.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as SmtpTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::channel::{DeliveryError, Outgoing};
use crate::rules::{SmtpChannel, Tls};

pub(super) struct SmtpLink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
    /// For messages: `smtp host:port`.
    server: String,
}

impl SmtpLink {
    pub(super) fn build(cfg: &SmtpChannel, ca_pem: Option<&[u8]>) -> Result<SmtpLink, String> {
        let from = parse_from(&cfg.from)?;
        let timeout = cfg
            .timeout
            .to_std()
            .map_err(|_| format!("negative timeout {}", cfg.timeout))?;
        let tls = match cfg.tls {
            Tls::None => SmtpTls::None,
            Tls::Starttls => SmtpTls::Required(tls_parameters(&cfg.host, ca_pem)?),
            Tls::Tls => SmtpTls::Wrapper(tls_parameters(&cfg.host, ca_pem)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(user) = &cfg.username {
            let password = cfg.password.clone().unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpLink {
            transport: builder.build(),
            from,
            timeout,
            server: format!("smtp {}:{}", cfg.host, cfg.port),
        })
    }

    pub(super) async fn send(&self, msg: &Outgoing) -> Result<(), DeliveryError> {
        let email = self.email(msg)?;
        let sent = tokio::time::timeout(self.timeout, self.transport.send(email)).await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(DeliveryError::permanent(format!(
                "{} rejected the message: {e}",
                self.server
            ))),
            Ok(Err(e)) => Err(DeliveryError::transient(format!("{}: {e}", self.server))),
            Err(_) => Err(DeliveryError::transient(format!(
                "{}: no answer within {:?}",
                self.server, self.timeout
            ))),
        }
    }

    fn email(&self, msg: &Outgoing) -> Result<Message, DeliveryError> {
        let to: Mailbox = msg.to.parse().map_err(|e| {
            DeliveryError::permanent(format!("invalid recipient address \"{}\": {e}", msg.to))
        })?;
        let content_type = if msg.html {
            ContentType::TEXT_HTML
        } else {
            ContentType::TEXT_PLAIN
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.clone())
            .message_id(Some(message_id(&msg.key)))
            .header(content_type)
            .body(msg.body.clone())
            .map_err(|e| DeliveryError::permanent(format!("cannot build the email: {e}")))
    }
}

/// The `from` address as lettre reads it. The rule loader calls this too, so `check`
/// refuses what `run` would.
pub fn parse_from(from: &str) -> Result<Mailbox, String> {
    from.parse()
        .map_err(|e| format!("invalid from address \"{from}\": {e}"))
}

/// Whether TLS can be set up for `host` (it must be a DNS name or an IP address). The
/// rule loader calls this too, so `check` refuses what `run` would.
pub fn check_tls_host(host: &str) -> Result<(), String> {
    tls_parameters(host, None).map(|_| ())
}

fn tls_parameters(host: &str, ca_pem: Option<&[u8]>) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(pem) = ca_pem {
        let ca = Certificate::from_pem(pem).map_err(|e| format!("invalid CA certificate: {e}"))?;
        builder = builder.add_root_certificate(ca);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("TLS settings for {host}: {e}"))
}

/// `<key@rally>`, deterministic so a retried send carries the same Message-ID. A
/// Message-ID's left part allows only RFC 5322 atext: any other byte (and `=`, the
/// escape) is written `=XX`, which keeps distinct keys distinct.
pub fn message_id(key: &str) -> String {
    let mut id = String::with_capacity(key.len() + 8);
    id.push('<');
    for byte in key.bytes() {
        let c = char::from(byte);
        if byte.is_ascii_alphanumeric() || "!#$%&'*+-/?^_`{|}~".contains(c) {
            id.push(c);
        } else {
            id.push_str(&format!("={byte:02X}"));
        }
    }
    id.push_str("@rally>");
    id
}

#[cfg(test)]
mod tests {
    use super::message_id;

    #[test]
    fn message_id_keeps_a_plain_key_as_it_is() {
        assert_eq!(message_id("out-42_a"), "<out-42_a@rally>");
    }

    #[test]
    fn message_id_escapes_characters_a_message_id_cannot_hold() {
        assert_eq!(message_id("r:m 1=x"), "<r=3Am=201=3Dx@rally>");
    }
}
