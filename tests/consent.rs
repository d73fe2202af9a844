//! SPEC §2.6 and §5 "Consent": consent is checked when a message is queued and again
//! when it goes out. A message held by quiet hours for a member who unsubscribes or
//! leaves meanwhile is suppressed, never sent — by the dispatcher against a real
//! webhook receiver, and in `sim`, which shows each message as it stands at its end.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rally::member::Member;
use rally::messaging::Channels;
use rally::outbox::{DispatchConfig, Dispatcher, OutboxRow, Status};
use rally::rules::{Channel, ChannelKind, SourcePos, WebhookChannel};
use rally::store::{StepWrite, Store};
use serde_json::Value;
use support::http::{HookServer, Reply};

fn t0() -> DateTime<Utc> {
    support::runner::t("2026-11-11T00:00:00Z")
}

fn row(seq: u64, member: &str, marketing: bool) -> OutboxRow {
    OutboxRow {
        seq,
        key: format!("r|e-{seq}|{member}"),
        member: Some(member.to_string()),
        rule: Some("r".to_string()),
        channel: "hook".to_string(),
        template: None,
        to: member.to_string(),
        subject: "s".to_string(),
        body: "b".to_string(),
        html: false,
        webhook_body: None,
        marketing,
        status: Status::Deferred,
        due: t0(),
        attempts: 0,
        last_error: None,
        first_failed_at: None,
        created_at: t0() - Duration::hours(2),
        sent_at: None,
    }
}

#[tokio::test]
async fn a_deferred_message_to_a_member_who_unsubscribed_meanwhile_is_suppressed_at_sending() {
    let mut server = HookServer::start(Reply::Status(200)).await;
    let hook = Channel {
        id: "hook".to_string(),
        kind: ChannelKind::Webhook(WebhookChannel {
            url: server.url.clone(),
            body: None,
            headers: BTreeMap::new(),
            timeout: Duration::seconds(5),
        }),
        retry: Default::default(),
        at: SourcePos {
            file: Arc::from("rules.yaml"),
            line: 1,
            col: 1,
        },
    };
    let channels = Arc::new(Channels::new(&BTreeMap::from([("hook".to_string(), hook)])).unwrap());
    let store = Arc::new(Store::open_temporary().unwrap());
    let mut gone = Member::new("m-gone");
    gone.unsubscribed = true;
    let mut left = Member::new("m-left");
    left.left = true;
    let rows = [
        row(1, "m-gone", true),
        row(2, "m-left", true),
        row(3, "m-here", true),
        // A staff notification about the member: not marketing, it goes out.
        row(4, "m-gone", false),
    ];
    store
        .commit(&[StepWrite {
            members: vec![gone, left, Member::new("m-here")],
            outbox_put: rows.iter().map(|r| (r.seq, r.encode().unwrap())).collect(),
            ..StepWrite::default()
        }])
        .unwrap();
    let dispatcher = Dispatcher::with_clock(
        Arc::clone(&store),
        channels,
        DispatchConfig::default(),
        Arc::new(t0),
    );
    dispatcher.drain_once().await;

    let stored = |seq: u64| -> OutboxRow {
        let (_, bytes) = store
            .outbox_scan(0, 10)
            .unwrap()
            .into_iter()
            .find(|(s, _)| *s == seq)
            .unwrap();
        OutboxRow::decode(seq, &bytes).unwrap()
    };
    let gone = stored(1);
    assert_eq!(gone.status, Status::Suppressed);
    assert_eq!(
        gone.last_error.as_deref(),
        Some("member unsubscribed before it went out")
    );
    assert_eq!(stored(2).status, Status::Suppressed);
    assert_eq!(stored(3).status, Status::Sent);
    assert_eq!(stored(4).status, Status::Sent);
    server.received().await;
    server.received().await;
    assert!(server.received_so_far().is_empty());
}

const QUIET: &str = r#"
settings:
  timezone: Asia/Shanghai
  messaging: { quiet_hours: "22:00-08:00" }
templates:
  hello: { subject: "Hello", body: "Hi {{ member.id }}" }
channels:
  email: { kind: log }
rules:
  - id: hello
    trigger: { event: post }
    actions:
      - send: { template: hello, channel: email, to: "someone@example.com" }
"#;

fn messages(events: &str) -> Vec<Value> {
    let doc = support::sim::run(QUIET, events, "2026-11-12T09:00:00+08:00");
    doc["messages"].as_array().unwrap().clone()
}

#[test]
fn sim_shows_a_deferred_message_sent_when_quiet_hours_end_with_when_it_was_queued() {
    let messages =
        messages(r#"{"id":"p-1","type":"post","member":"m-1","at":"2026-11-11T23:00:00+08:00"}"#);
    assert_eq!(messages[0]["status"], "sent");
    assert_eq!(messages[0]["at"], "2026-11-12T00:00:00Z");
    assert_eq!(messages[0]["queued_at"], "2026-11-11T15:00:00Z");
}

#[test]
fn sim_shows_a_deferred_message_suppressed_when_the_member_unsubscribed_before_it_went_out() {
    let messages = messages(
        r#"{"id":"p-1","type":"post","member":"m-1","at":"2026-11-11T23:00:00+08:00"}
{"id":"u-1","type":"unsubscribe","member":"m-1","at":"2026-11-11T23:30:00+08:00"}"#,
    );
    assert_eq!(messages[0]["status"], "suppressed");
    assert_eq!(
        messages[0]["error"],
        "member unsubscribed before it went out"
    );
}

#[test]
fn sim_sends_a_deferred_message_when_the_member_unsubscribes_only_after_it_went_out() {
    let messages = messages(
        r#"{"id":"p-1","type":"post","member":"m-1","at":"2026-11-11T23:00:00+08:00"}
{"id":"u-1","type":"unsubscribe","member":"m-1","at":"2026-11-12T08:30:00+08:00"}"#,
    );
    assert_eq!(messages[0]["status"], "sent");
}
