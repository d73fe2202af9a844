//! The daemon's API beyond events and members (SPEC §4): tickets, campaigns, a
//! member's messages, channel reloads, and time kept while the daemon was down. The
//! real binary, over real HTTP.

mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde_json::{json, Value};
use support::daemon::{Daemon, Session};

/// A low rating opens a ticket; a join sends a welcome on a log channel.
const SUPPORT: &str = r#"
channels:
  staff: { kind: log }
  console: { kind: log }
templates:
  welcome:
    subject: "Welcome"
    body: "Hi {{ member.id }}"
escalations:
  - id: support
    levels:
      - { notify: { channel: staff, to: support-team }, within: 2h }
      - { notify: { channel: staff, to: lead } }
rules:
  - id: low-rating
    trigger: { event: feedback }
    if: "event.data.rating <= 2"
    actions:
      - escalate: { policy: support, severity: high, summary: "low rating" }
  - id: welcome
    trigger: { event: join }
    actions:
      - send: { template: welcome, channel: console }
"#;

type Setup = Session;

fn start(yaml: &str) -> Setup {
    Session::start(yaml, &[])
}

impl Session {
    /// Posts one event and checks it was accepted.
    async fn event(&self, event: Value) {
        let (status, body) = self.post("/v1/events", &event.to_string()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    }

    /// Posts a rating of 1 from `member`: ticket T-<n> opens.
    async fn low_rating(&self, id: &str, member: &str) {
        self.event(json!({"id": id, "type": "feedback", "member": member, "data": {"rating": 1}}))
            .await;
    }

    /// Polls `path` until `done` holds for its body (at most 20 s).
    async fn get_until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never got there; last {status} {body}\n{}",
                self.daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn ids_and_statuses(body: &Value) -> Vec<(String, String)> {
    body["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("no tickets in {body}"))
        .iter()
        .map(|t| {
            let field = |name: &str| t[name].as_str().unwrap().to_string();
            (field("id"), field("status"))
        })
        .collect()
}

fn pair(id: &str, status: &str) -> (String, String) {
    (id.to_string(), status.to_string())
}

#[tokio::test]
async fn a_low_rating_shows_up_as_an_open_ticket() {
    let s = start(SUPPORT);
    s.low_rating("f-1", "m-1").await;
    let (status, body) = s.get("/v1/tickets").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids_and_statuses(&body), [pair("T-1", "open")]);
    let ticket = &body["tickets"][0];
    assert_eq!(ticket["member"], "m-1");
    assert_eq!(ticket["policy"], "support");
    assert_eq!(ticket["level"], 1);
}

#[tokio::test]
async fn acknowledging_an_open_ticket_answers_it_acked_and_it_stays_acked() {
    let s = start(SUPPORT);
    s.low_rating("f-1", "m-1").await;
    let (status, ticket) = s
        .post("/v1/tickets/T-1/ack", r#"{"by": "lin", "note": "on it"}"#)
        .await;
    assert_eq!(status, 200, "{ticket}");
    assert_eq!(ticket["id"], "T-1");
    assert_eq!(ticket["status"], "acked");
    assert_eq!(ticket["acked_by"], "lin");
    assert_eq!(ticket["acked_note"], "on it");
    let (_, body) = s.get("/v1/tickets").await;
    assert_eq!(ids_and_statuses(&body), [pair("T-1", "acked")]);
}

#[tokio::test]
async fn a_second_acknowledgement_is_a_conflict() {
    let s = start(SUPPORT);
    s.low_rating("f-1", "m-1").await;
    let (status, _) = s.post("/v1/tickets/T-1/ack", "").await;
    assert_eq!(status, 200);
    let (status, body) = s.post("/v1/tickets/T-1/ack", "").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("already acknowledged"),
        "{body}"
    );
}

#[tokio::test]
async fn acknowledging_a_ticket_that_does_not_exist_is_not_found() {
    let s = start(SUPPORT);
    s.low_rating("f-1", "m-1").await;
    for path in ["/v1/tickets/T-99/ack", "/v1/tickets/ticket-1/resolve"] {
        let (status, body) = s.post(path, "").await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("no ticket"),
            "{body}"
        );
    }
    let (_, body) = s.get("/v1/tickets").await;
    assert_eq!(ids_and_statuses(&body), [pair("T-1", "open")]);
}

#[tokio::test]
async fn a_body_that_is_not_who_and_a_note_is_a_bad_request() {
    let s = start(SUPPORT);
    s.low_rating("f-1", "m-1").await;
    let (status, body) = s.post("/v1/tickets/T-1/ack", r#"{"who": "lin"}"#).await;
    assert_eq!(status, 400, "{body}");
    let (_, body) = s.get("/v1/tickets").await;
    assert_eq!(ids_and_statuses(&body), [pair("T-1", "open")]);
}

#[tokio::test]
async fn a_resolved_ticket_is_found_by_the_resolved_filter_only() {
    let s = start(SUPPORT);
    s.low_rating("f-1", "m-1").await;
    s.low_rating("f-2", "m-2").await;
    let (status, _) = s.post("/v1/tickets/T-1/ack", "").await;
    assert_eq!(status, 200);
    let (status, ticket) = s.post("/v1/tickets/T-1/resolve", r#"{"by": "lin"}"#).await;
    assert_eq!(status, 200, "{ticket}");
    assert_eq!(ticket["status"], "resolved");
    assert_eq!(ticket["resolved_by"], "lin");
    let (_, resolved) = s.get("/v1/tickets?status=resolved").await;
    assert_eq!(ids_and_statuses(&resolved), [pair("T-1", "resolved")]);
    let (_, open) = s.get("/v1/tickets?status=open").await;
    assert_eq!(ids_and_statuses(&open), [pair("T-2", "open")]);
    let (_, all) = s.get("/v1/tickets").await;
    assert_eq!(
        ids_and_statuses(&all),
        [pair("T-1", "resolved"), pair("T-2", "open")]
    );
}

#[tokio::test]
async fn a_ticket_event_without_a_member_acks_the_ticket_and_creates_no_member() {
    let s = start(SUPPORT);
    s.low_rating("f-1", "m-1").await;
    s.event(
        json!({"id": "a-1", "type": "rally.ticket.ack", "data": {"ticket": "T-1", "by": "lin"}}),
    )
    .await;
    let (_, body) = s.get("/v1/tickets").await;
    assert_eq!(ids_and_statuses(&body), [pair("T-1", "acked")]);
    let (status, _) = s.get("/v1/members/lin").await;
    assert_eq!(status, 404);
    let (_, member) = s.get("/v1/members/m-1").await;
    assert!(
        member["counters"]["events.rally.ticket.ack"].is_null(),
        "{member}"
    );
}

#[tokio::test]
async fn a_ticket_event_from_someone_other_than_its_member_is_rejected() {
    let s = start(SUPPORT);
    s.low_rating("f-1", "m-1").await;
    let ack = json!({"id": "a-1", "type": "rally.ticket.ack", "member": "staff", "data": {"ticket": "T-1"}});
    let (status, body) = s.post("/v1/events", &ack.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "rejected", "{body}");
    let error = body["results"][0]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("member: "), "{body}");
    let (status, _) = s.get("/v1/members/staff").await;
    assert_eq!(status, 404);
    let (_, tickets) = s.get("/v1/tickets").await;
    assert_eq!(ids_and_statuses(&tickets), [pair("T-1", "open")]);
}

#[tokio::test]
async fn an_unknown_ticket_status_filter_is_a_bad_request() {
    let s = start(SUPPORT);
    let (status, body) = s.get("/v1/tickets?status=closed").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("closed"), "{body}");
}

/// `at` as a campaign's local start time, in UTC, to the second.
fn local(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A campaign in UTC whose warm-up started at `warmup` and whose peak starts at
/// `peak`, and a rule tagging every member `peak` when it does.
fn launch(warmup: DateTime<Utc>, peak: DateTime<Utc>) -> String {
    format!(
        r#"
campaigns:
  - id: launch
    timezone: UTC
    phases:
      - {{ name: warmup, start: "{}" }}
      - {{ name: peak, start: "{}" }}
    budget: {{ points: 1000 }}
rules:
  - id: peak-tag
    trigger: {{ phase: {{ campaign: launch, enters: peak }} }}
    audience: all
    actions:
      - tag: peak
"#,
        local(warmup),
        local(peak)
    )
}

#[tokio::test]
async fn campaigns_show_the_phase_they_are_in_now_and_their_budget() {
    let now = Utc::now().with_nanosecond(0).unwrap();
    let warmup = now - chrono::Duration::days(1);
    let s = start(&launch(warmup, now + chrono::Duration::days(1)));
    let (status, body) = s.get("/v1/campaigns").await;
    assert_eq!(status, 200, "{body}");
    let campaign = &body["campaigns"][0];
    assert_eq!(campaign["id"], "launch");
    assert_eq!(campaign["phase"], "warmup");
    assert_eq!(campaign["since"], utc(warmup));
    assert_eq!(campaign["budget"], 1000);
    assert_eq!(campaign["points_awarded"], 0);
    assert!(campaign["transitions"].is_array(), "{campaign}");
}

#[tokio::test]
async fn history_shows_the_messages_a_rule_sent_the_member() {
    let s = start(SUPPORT);
    s.event(json!({"id": "j-1", "type": "join", "member": "m-1"}))
        .await;
    s.event(json!({"id": "j-2", "type": "join", "member": "m-2"}))
        .await;
    let history = s
        .get_until("/v1/members/m-1/history", |h| {
            h["messages"][0]["status"] == "sent"
        })
        .await;
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{history}");
    assert_eq!(messages[0]["member"], "m-1");
    assert_eq!(messages[0]["rule"], "welcome");
    assert_eq!(messages[0]["channel"], "console");
    assert_eq!(messages[0]["body"], "Hi m-1");
}

/// `extra` added to [`SUPPORT`]'s channels, and a rule sending on `channel`.
fn with_channel(extra: &str, channel: &str) -> String {
    let channels = SUPPORT.replace(
        "  console: { kind: log }\n",
        &format!("  console: {{ kind: log }}\n  {extra}\n"),
    );
    format!(
        "{channels}  - id: hello\n    trigger: {{ event: hello }}\n    actions:\n      - send: {{ template: welcome, channel: {channel} }}\n"
    )
}

#[tokio::test]
async fn a_reload_whose_webhook_has_a_bad_header_is_refused_and_the_rules_stay() {
    let s = start(SUPPORT);
    let (_, before) = s.get("/v1/rules").await;
    let bad = with_channel(
        r#"hook: { kind: webhook, url: "http://127.0.0.1:9/hook", headers: { "bad header": "x" } }"#,
        "hook",
    );
    std::fs::write(s.rules.path().join("rules.yaml"), bad).unwrap();
    let (status, body) = s.post("/v1/rules/reload", "").await;
    assert_eq!(status, 422, "{body}");
    let errors = body["errors"].to_string();
    assert!(
        errors.contains("hook") && errors.contains("bad header"),
        "{body}"
    );
    let (_, after) = s.get("/v1/rules").await;
    assert_eq!(after["version"], before["version"]);
}

#[tokio::test]
async fn a_channel_added_by_a_reload_delivers_the_messages_of_the_new_rules() {
    let s = start(SUPPORT);
    let added = with_channel("shout: { kind: log }", "shout");
    std::fs::write(s.rules.path().join("rules.yaml"), added).unwrap();
    let (status, body) = s.post("/v1/rules/reload", "").await;
    assert_eq!(status, 200, "{body}");
    s.event(json!({"id": "h-1", "type": "hello", "member": "m-1"}))
        .await;
    let history = s
        .get_until("/v1/members/m-1/history", |h| {
            h["messages"][0]["status"] != "pending"
        })
        .await;
    assert_eq!(history["messages"][0]["channel"], "shout", "{history}");
    assert_eq!(history["messages"][0]["status"], "sent", "{history}");
}

#[tokio::test]
async fn a_phase_change_while_the_daemon_was_stopped_fires_once_after_restart() {
    let started = Utc::now();
    let peak = started.with_nanosecond(0).unwrap() + chrono::Duration::seconds(6);
    let mut s = start(&launch(started - chrono::Duration::days(1), peak));
    s.event(json!({"id": "j-1", "type": "join", "member": "m-1"}))
        .await;
    s.daemon.signal_and_wait(libc::SIGTERM);
    assert!(
        Utc::now() < peak,
        "the daemon took too long to start and stop: the peak began while it ran"
    );
    while Utc::now() <= peak + chrono::Duration::milliseconds(500) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.daemon = Daemon::start(s.rules.path(), s.data.path(), &[]);
    s.get_until("/v1/members/m-1", |m| m["tags"] == json!(["peak"]))
        .await;
    let (_, history) = s.get("/v1/members/m-1/history").await;
    let fired: Vec<&Value> = history["firings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "peak-tag")
        .collect();
    assert_eq!(fired.len(), 1, "{history}");
    assert_eq!(fired[0]["trigger"], "phase");
}
