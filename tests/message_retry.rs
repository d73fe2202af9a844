//! Messages that outlive trouble (SPEC §2.6, §4): a failed message queued again with
//! `POST /v1/messages/{id}/retry`, and messages held while a reload has removed their
//! channel. The real binary over real HTTP, with a real webhook receiver.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::daemon::Session;
use support::http::{HookServer, Reply};

/// A join sends a welcome over the webhook at `url`.
fn rules(url: &str) -> String {
    format!(
        r#"
channels:
  hook: {{ kind: webhook, url: "{url}" }}
templates:
  welcome:
    subject: "Welcome"
    body: "Hi {{{{ member.id }}}}"
rules:
  - id: welcome
    trigger: {{ event: join }}
    actions:
      - send: {{ template: welcome, channel: hook }}
"#
    )
}

/// The same rule set without the webhook channel (and so without the rule using it).
const WITHOUT_HOOK: &str = r#"
channels:
  console: { kind: log }
rules: []
"#;

impl Session {
    async fn join(&self, member: &str) {
        let event = json!({"id": format!("join-{member}"), "type": "join", "member": member});
        let (status, body) = self.post("/v1/events", &event.to_string()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    }

    /// Polls `member`'s only message until `done` holds for it (at most 20 s).
    async fn message_until(&self, member: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/v1/members/{member}/history");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(&path).await;
            if status == 200 && body["messages"].as_array().is_some_and(|m| m.len() == 1) {
                let message = &body["messages"][0];
                if done(message) {
                    return message.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{path} never got there; last {status} {body}\n{}",
                self.daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn reload_with(&self, yaml: &str) {
        std::fs::write(self.rules.path().join("rules.yaml"), yaml).unwrap();
        let (status, body) = self.post("/v1/rules/reload", "").await;
        assert_eq!(status, 200, "{body}");
    }
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |message| message["status"] == status
}

#[tokio::test]
async fn a_failed_message_retried_over_http_goes_out_again() {
    let hook = HookServer::start(Reply::Status(400)).await;
    let s = Session::start(&rules(&hook.url), &[]);
    s.join("m-1").await;
    let failed = s.message_until("m-1", status_is("failed")).await;
    assert!(
        failed["error"].as_str().unwrap().contains("400"),
        "{failed}"
    );
    let id = failed["id"].as_u64().expect("a message id in the history");

    hook.reply_with(Reply::Status(200));
    let (status, body) = s.post(&format!("/v1/messages/{id}/retry"), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id);
    assert_eq!(body["status"], "pending");

    let sent = s.message_until("m-1", status_is("sent")).await;
    assert_eq!(sent["id"], id);
}

#[tokio::test]
async fn retrying_a_message_that_has_not_failed_is_a_conflict() {
    let hook = HookServer::start(Reply::Status(200)).await;
    let s = Session::start(&rules(&hook.url), &[]);
    s.join("m-1").await;
    let sent = s.message_until("m-1", status_is("sent")).await;
    let id = sent["id"].as_u64().unwrap();

    let (status, body) = s.post(&format!("/v1/messages/{id}/retry"), "").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"],
        format!("message {id} is sent, not failed: only a failed message can be retried")
    );
    s.message_until("m-1", status_is("sent")).await;
}

#[tokio::test]
async fn retrying_an_unknown_message_is_not_found() {
    let s = Session::start(WITHOUT_HOOK, &[]);
    for id in ["999", "0", "abc"] {
        let (status, body) = s.post(&format!("/v1/messages/{id}/retry"), "").await;
        assert_eq!(status, 404, "{id}: {body}");
        assert!(
            body["error"].as_str().unwrap().starts_with("no message"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_reload_that_removes_a_channel_holds_its_messages_and_one_that_restores_it_sends_them() {
    // The receiver is down for now: the welcome waits for a retry.
    let hook = HookServer::start(Reply::Status(503)).await;
    let s = Session::start(&rules(&hook.url), &[]);
    s.join("m-1").await;
    let waiting = s
        .message_until("m-1", |m| {
            m["status"] == "pending" && m["at"] != Value::Null
        })
        .await;

    s.reload_with(WITHOUT_HOOK).await;
    let held = s.message_until("m-1", status_is("held")).await;
    assert_eq!(held["held"], "channel removed");
    assert_eq!(held["id"], waiting["id"]);
    // Held, not failed: still held a while later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.message_until("m-1", status_is("held")).await;

    hook.reply_with(Reply::Status(200));
    s.reload_with(&rules(&hook.url)).await;
    let sent = s.message_until("m-1", status_is("sent")).await;
    assert_eq!(sent["id"], waiting["id"]);
}
