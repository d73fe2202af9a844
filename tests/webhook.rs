//! Webhook delivery against a real HTTP server on loopback.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use rally::messaging::{deliver, Channels, DeliveryErrorKind, Outgoing};
use rally::rules::{Channel, ChannelKind, SourcePos, WebhookChannel};
use support::http::{HookServer, Reply};

fn channel(url: &str, timeout: Duration) -> Channel {
    Channel {
        id: "hook".to_string(),
        kind: ChannelKind::Webhook(WebhookChannel {
            url: url.to_string(),
            body: None,
            headers: BTreeMap::from([("X-Token".to_string(), "s3cret".to_string())]),
            timeout,
        }),
        retry: Default::default(),
        at: SourcePos {
            file: Arc::from("rules/channels.yaml"),
            line: 3,
            col: 3,
        },
    }
}

fn message() -> Outgoing {
    Outgoing {
        key: "out-7".to_string(),
        channel: "hook".to_string(),
        to: "support-team".to_string(),
        subject: "Ticket T-1".to_string(),
        body: "Member m-7 rated 1 star".to_string(),
        html: false,
        member: Some("m-7".to_string()),
        webhook_body: None,
    }
}

async fn kind_for(reply: Reply) -> DeliveryErrorKind {
    let server = HookServer::start(reply).await;
    let channel = channel(&server.url, Duration::seconds(5));
    deliver(&channel, &message()).await.unwrap_err().kind
}

#[tokio::test]
async fn a_2xx_answer_delivers_the_default_json_with_the_channel_headers() {
    let mut server = HookServer::start(Reply::Status(200)).await;
    let channel = channel(&server.url, Duration::seconds(5));
    deliver(&channel, &message()).await.unwrap();

    let request = server.received().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["x-token"], "s3cret");
    assert_eq!(request.headers["idempotency-key"], "out-7");
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"to": "support-team", "subject": "Ticket T-1",
            "body": "Member m-7 rated 1 star", "member": "m-7", "channel": "hook"})
    );
}

#[tokio::test]
async fn a_key_a_header_cannot_hold_is_sent_percent_encoded_rather_than_dropped() {
    let mut server = HookServer::start(Reply::Status(200)).await;
    let channel = channel(&server.url, Duration::seconds(5));
    let msg = Outgoing {
        key: "welcome|e-1\n|m-1|100%".to_string(),
        ..message()
    };
    deliver(&channel, &msg).await.unwrap();
    let request = server.received().await;
    assert_eq!(
        request.headers["idempotency-key"],
        "welcome|e-1%0A|m-1|100%25"
    );
}

#[tokio::test]
async fn a_pre_rendered_body_is_sent_as_it_is() {
    let mut server = HookServer::start(Reply::Status(204)).await;
    let channels = BTreeMap::from([(
        "hook".to_string(),
        channel(&server.url, Duration::seconds(5)),
    )]);
    let channels = Channels::new(&channels).unwrap();
    let msg = Outgoing {
        webhook_body: Some(r#"{"msgtype":"text","text":{"content":"hi"}}"#.to_string()),
        ..message()
    };
    channels.deliver(&msg).await.unwrap();
    assert_eq!(
        server.received().await.body,
        r#"{"msgtype":"text","text":{"content":"hi"}}"#
    );
}

#[tokio::test]
async fn a_500_answer_is_transient() {
    assert_eq!(
        kind_for(Reply::Status(500)).await,
        DeliveryErrorKind::Transient
    );
}

#[tokio::test]
async fn a_429_answer_is_transient() {
    assert_eq!(
        kind_for(Reply::Status(429)).await,
        DeliveryErrorKind::Transient
    );
}

#[tokio::test]
async fn a_400_answer_is_permanent() {
    assert_eq!(
        kind_for(Reply::Status(400)).await,
        DeliveryErrorKind::Permanent
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_permanent() {
    assert_eq!(
        kind_for(Reply::Status(308)).await,
        DeliveryErrorKind::Permanent
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_transient_after_the_timeout() {
    let server = HookServer::start(Reply::Never).await;
    let channel = channel(&server.url, Duration::milliseconds(300));
    let started = std::time::Instant::now();
    let err = deliver(&channel, &message()).await.unwrap_err();
    assert_eq!(err.kind, DeliveryErrorKind::Transient, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn a_server_that_is_down_is_transient() {
    let url = format!("http://127.0.0.1:{}/hook", support::free_port());
    let err = deliver(&channel(&url, Duration::seconds(5)), &message())
        .await
        .unwrap_err();
    assert_eq!(err.kind, DeliveryErrorKind::Transient, "{err}");
}

#[tokio::test]
async fn an_invalid_url_is_refused_when_the_channels_are_built() {
    let channels = BTreeMap::from([(
        "hook".to_string(),
        channel("ftp://x/", Duration::seconds(5)),
    )]);
    let errors = Channels::new(&channels).err().unwrap();
    assert_eq!(errors[0].channel, "hook");
}

#[tokio::test]
async fn a_message_for_an_unknown_channel_fails_permanently() {
    let channels = Channels::new(&BTreeMap::new()).unwrap();
    let err = channels.deliver(&message()).await.unwrap_err();
    assert_eq!(err.kind, DeliveryErrorKind::Permanent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_over_a_webhook_is_sent_in_the_channels_body_template() {
    let mut server = HookServer::start(Reply::Status(200)).await;
    let yaml = r#"
channels:
  wecom:
    kind: webhook
    url: "${HOOK}"
    body: '{"msgtype":"text","text":{"content":{{ body | tojson }}},"to":{{ to | tojson }}}'
escalations:
  - id: support
    levels:
      - { notify: { channel: wecom, to: support-team }, within: 2h }
      - { notify: { channel: wecom, to: lead } }
rules:
  - id: low-rating
    trigger: { event: feedback }
    actions:
      - escalate: { policy: support, severity: high, summary: "low rating" }
"#;
    let session = support::daemon::Session::start(yaml, &[("HOOK", server.url.as_str())]);
    let (status, answer) = session
        .post(
            "/v1/events",
            r#"{"id":"f-1","type":"feedback","member":"m-7","data":{"rating":1}}"#,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let request = server.received().await;
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["msgtype"], "text", "{}", request.body);
    assert_eq!(body["to"], "support-team");
    let content = body["text"]["content"].as_str().unwrap();
    assert!(
        content.contains("T-1") && content.contains("low rating"),
        "{content}"
    );
}
