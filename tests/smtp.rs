//! Email delivery against a real SMTP server (aiosmtpd) on loopback.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use rally::messaging::{deliver, Channels, DeliveryErrorKind, Outgoing};
use rally::rules::{Channel, ChannelKind, SmtpChannel, SourcePos, Tls};
use support::smtp::{body, header, SmtpServer};

fn channel(host: &str, port: u16, tls: Tls) -> Channel {
    Channel {
        id: "email".to_string(),
        kind: ChannelKind::Smtp(SmtpChannel {
            host: host.to_string(),
            port,
            tls,
            from: "Community <club@shop.example>".to_string(),
            username: None,
            password: None,
            timeout: Duration::seconds(5),
        }),
        retry: Default::default(),
        at: SourcePos {
            file: Arc::from("rules/channels.yaml"),
            line: 2,
            col: 3,
        },
    }
}

fn message() -> Outgoing {
    Outgoing {
        key: "out-42".to_string(),
        channel: "email".to_string(),
        to: "Lin <lin@example.com>".to_string(),
        subject: "We miss you, Lin".to_string(),
        body: "You still have 120 points waiting.".to_string(),
        html: false,
        member: Some("m-42".to_string()),
        webhook_body: None,
    }
}

#[tokio::test]
async fn a_message_arrives_with_its_headers_and_body() {
    let server = SmtpServer::start();
    deliver(&channel("127.0.0.1", server.port, Tls::None), &message())
        .await
        .unwrap();

    let received = server.messages();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(
        header(mail, "From").unwrap(),
        "Community <club@shop.example>"
    );
    assert_eq!(header(mail, "To").unwrap(), "Lin <lin@example.com>");
    assert_eq!(header(mail, "Subject").unwrap(), "We miss you, Lin");
    assert_eq!(header(mail, "Message-ID").unwrap(), "<out-42@rally>");
    assert!(header(mail, "Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(header(mail, "X-RcptTo").unwrap(), "lin@example.com");
    assert_eq!(body(mail).trim_end(), "You still have 120 points waiting.");
}

#[tokio::test]
async fn an_html_message_is_sent_as_text_html() {
    let server = SmtpServer::start();
    let msg = Outgoing {
        body: "<p>Hi</p>".to_string(),
        html: true,
        ..message()
    };
    deliver(&channel("127.0.0.1", server.port, Tls::None), &msg)
        .await
        .unwrap();
    let mail = &server.messages()[0];
    assert!(header(mail, "Content-Type")
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test]
async fn one_transport_sends_many_messages() {
    let server = SmtpServer::start();
    let channels = BTreeMap::from([(
        "email".to_string(),
        channel("127.0.0.1", server.port, Tls::None),
    )]);
    let channels = Channels::new(&channels).unwrap();
    for key in ["out-1", "out-2"] {
        let msg = Outgoing {
            key: key.to_string(),
            ..message()
        };
        channels.deliver(&msg).await.unwrap();
    }
    let ids: Vec<String> = server
        .messages()
        .iter()
        .map(|m| header(m, "Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"<out-1@rally>".to_string()));
    assert!(ids.contains(&"<out-2@rally>".to_string()));
}

#[tokio::test]
async fn a_server_that_is_down_is_transient() {
    let mut server = SmtpServer::start();
    server.stop();
    let err = deliver(&channel("127.0.0.1", server.port, Tls::None), &message())
        .await
        .unwrap_err();
    assert_eq!(err.kind, DeliveryErrorKind::Transient, "{err}");
}

#[tokio::test]
async fn a_server_that_accepts_and_stays_silent_is_transient_after_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts the connection and never sends the greeting.
    let silent = tokio::spawn(async move {
        let (_socket, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let mut channel = channel("127.0.0.1", port, Tls::None);
    if let ChannelKind::Smtp(smtp) = &mut channel.kind {
        smtp.timeout = Duration::milliseconds(300);
    }
    let started = std::time::Instant::now();
    let err = deliver(&channel, &message()).await.unwrap_err();
    silent.abort();
    assert_eq!(err.kind, DeliveryErrorKind::Transient, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn a_5xx_answer_is_permanent() {
    // aiosmtpd answers 552 to a message over its size limit.
    let server = SmtpServer::start_with(&["-s", "100"]);
    let msg = Outgoing {
        body: "x".repeat(2000),
        ..message()
    };
    let err = deliver(&channel("127.0.0.1", server.port, Tls::None), &msg)
        .await
        .unwrap_err();
    assert_eq!(err.kind, DeliveryErrorKind::Permanent, "{err}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn an_invalid_recipient_address_is_permanent() {
    let server = SmtpServer::start();
    let msg = Outgoing {
        to: "not an address".to_string(),
        ..message()
    };
    let err = deliver(&channel("127.0.0.1", server.port, Tls::None), &msg)
        .await
        .unwrap_err();
    assert_eq!(err.kind, DeliveryErrorKind::Permanent, "{err}");
}

#[tokio::test]
async fn an_invalid_from_address_is_refused_when_the_channels_are_built() {
    let mut channel = channel("127.0.0.1", 25, Tls::None);
    if let ChannelKind::Smtp(smtp) = &mut channel.kind {
        smtp.from = "Community <club>".to_string();
    }
    let errors = Channels::new(&BTreeMap::from([("email".to_string(), channel)]))
        .err()
        .unwrap();
    assert_eq!(errors[0].channel, "email");
}

fn test_ca() -> Vec<u8> {
    std::fs::read(support::support_file("tls/ca.pem")).unwrap()
}

#[tokio::test]
async fn starttls_delivers_to_a_server_whose_certificate_the_ca_signed() {
    let server = SmtpServer::start_starttls();
    let channels = BTreeMap::from([(
        "email".to_string(),
        channel("127.0.0.1", server.port, Tls::Starttls),
    )]);
    let channels = Channels::with_root_ca(&channels, &test_ca()).unwrap();
    channels.deliver(&message()).await.unwrap();
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn starttls_refuses_a_certificate_from_an_unknown_ca() {
    let server = SmtpServer::start_starttls();
    let channel = channel("127.0.0.1", server.port, Tls::Starttls);
    let err = deliver(&channel, &message()).await.unwrap_err();
    assert_eq!(err.kind, DeliveryErrorKind::Transient, "{err}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_plain_connection_to_a_server_that_requires_starttls_is_refused() {
    let server = SmtpServer::start_starttls();
    let err = deliver(&channel("127.0.0.1", server.port, Tls::None), &message())
        .await
        .unwrap_err();
    // aiosmtpd answers 530 "Must issue a STARTTLS command first".
    assert_eq!(err.kind, DeliveryErrorKind::Permanent, "{err}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn implicit_tls_delivers_to_a_server_whose_certificate_the_ca_signed() {
    let server = SmtpServer::start_implicit_tls();
    let channels = BTreeMap::from([(
        "email".to_string(),
        channel("127.0.0.1", server.port, Tls::Tls),
    )]);
    let channels = Channels::with_root_ca(&channels, &test_ca()).unwrap();
    channels.deliver(&message()).await.unwrap();
    assert_eq!(server.messages().len(), 1);
}

fn with_login(mut channel: Channel, user: &str, password: &str) -> Channel {
    if let ChannelKind::Smtp(smtp) = &mut channel.kind {
        smtp.username = Some(user.to_string());
        smtp.password = Some(password.to_string());
    }
    channel
}

#[tokio::test]
async fn the_channel_credentials_log_in_to_a_server_that_requires_auth() {
    let server = SmtpServer::start_auth("rally", "s3cret");
    let channel = with_login(
        channel("127.0.0.1", server.port, Tls::None),
        "rally",
        "s3cret",
    );
    deliver(&channel, &message()).await.unwrap();
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn a_rejected_login_is_permanent() {
    let server = SmtpServer::start_auth("rally", "s3cret");
    let channel = with_login(
        channel("127.0.0.1", server.port, Tls::None),
        "rally",
        "wrong",
    );
    let err = deliver(&channel, &message()).await.unwrap_err();
    assert_eq!(err.kind, DeliveryErrorKind::Permanent, "{err}");
    assert!(server.messages().is_empty());
}
