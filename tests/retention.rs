//! A member's history over real HTTP (`GET /v1/members/{id}/history`), read through
//! the outbox's index by member, and `settings.retention` removing old records in the
//! daemon while keeping messages that may still go out.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, Utc};
use rally::clock::{Clock, ManualClock};
use rally::rules::{self, RuleError, RuleSet};
use serde_json::{json, Value};
use support::live::Live;

/// `post` earns points and a message on the log channel (sent at once); `ping` sends
/// one to a webhook nobody listens on, retried for ten years: it stays `pending`.
fn rules_yaml(retention: &str, dead_port: u16) -> String {
    format!(
        r#"
settings:
  {retention}
templates:
  hello: {{ subject: "Hi", body: "Hello {{{{ member.id }}}}" }}
channels:
  console: {{ kind: log }}
  hook: {{ kind: webhook, url: "http://127.0.0.1:{dead_port}/", retry: {{ for: 3650d }} }}
rules:
  - id: hello
    trigger: {{ event: post }}
    actions:
      - points: 5
      - send: {{ template: hello, channel: console }}
  - id: ping
    trigger: {{ event: ping }}
    actions:
      - send: {{ template: hello, channel: hook }}
"#
    )
}

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().into()
}

fn event(id: &str, kind: &str, member: &str, at: DateTime<Utc>) -> String {
    json!({"id": id, "type": kind, "member": member, "at": at.to_rfc3339()}).to_string()
}

async fn post(live: &Live, events: &[String]) {
    let (status, answer) = live.post("/v1/events", &events.join("\n")).await;
    assert_eq!(status, 200, "{answer}");
    for result in answer["results"].as_array().unwrap() {
        assert_eq!(result["status"], "accepted", "{answer}");
    }
}

async fn history(live: &Live, member: &str, query: &str) -> Value {
    let (status, body) = live
        .get(&format!("/v1/members/{member}/history{query}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn messages(history: &Value) -> Vec<Value> {
    history["messages"].as_array().unwrap().clone()
}

/// `(rule, status)` of each message, oldest first.
fn rules_and_statuses(history: &Value) -> Vec<(String, String)> {
    messages(history)
        .iter()
        .map(|m| {
            (
                m["rule"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Polls `member`'s history until `done` holds (at most 30 s), and returns it.
async fn history_until(live: &Live, member: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = history(live, member, "").await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "still, after 30 s: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sent(rule: &str) -> (String, String) {
    (rule.to_string(), "sent".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_history_shows_their_messages_and_no_one_elses() {
    let start = t("2026-03-01T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let rules = support::daemon::rules_dir(&rules_yaml("timezone: UTC", support::free_port()));
    let data = tempfile::tempdir().unwrap();
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    post(
        &live,
        &[
            event("e-1", "post", "m-1", start),
            event("e-2", "post", "m-10", start),
            event("e-3", "post", "m-1", start),
            event("e-4", "post", "m-10", start),
            event("e-5", "post", "m-10", start),
        ],
    )
    .await;

    // Sent by the dispatcher after they were queued: the history shows the status
    // the row has now, not the one it was indexed with.
    let mine = history_until(&live, "m-1", |h| {
        rules_and_statuses(h) == [sent("hello"), sent("hello")]
    })
    .await;
    let theirs = history_until(&live, "m-10", |h| rules_and_statuses(h).len() == 3).await;
    for message in messages(&mine) {
        assert_eq!(message["member"], "m-1", "{mine}");
        assert_eq!(message["body"], "Hello m-1");
    }
    for message in messages(&theirs) {
        assert_eq!(message["member"], "m-10", "{theirs}");
    }
    let ids = |h: &Value| -> Vec<u64> {
        messages(h)
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&mine), [1, 3], "oldest first, by outbox id");
    assert_eq!(ids(&theirs), [2, 4, 5]);

    // The limit keeps the newest.
    let newest = history(&live, "m-10", "?limit=2").await;
    assert_eq!(ids(&newest), [4, 5]);
    assert_eq!(newest["firings"].as_array().unwrap().len(), 2);
    assert_eq!(live.get("/v1/members/m-2/history").await.0, 404);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_final_messages_and_history_and_keeps_what_may_still_go_out() {
    // The dispatcher dates deliveries by the system clock (steps use the daemon's), so
    // this test's days start now: a message sent now is 40 days old 40 days on.
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let yaml = rules_yaml(
        "retention: { messages: 30d, history: 30d }",
        support::free_port(),
    );
    let rules = support::daemon::rules_dir(&yaml);
    let data = tempfile::tempdir().unwrap();
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    post(
        &live,
        &[
            event("e-1", "post", "m-1", start),
            event("e-2", "post", "m-2", start),
            // Queued last: the newest outbox row is never removed (new rows are
            // numbered after it), so it is one that would be kept anyway.
            event("e-3", "ping", "m-1", start),
        ],
    )
    .await;
    let before = history_until(&live, "m-1", |h| {
        let seen = rules_and_statuses(h);
        seen.len() == 2 && seen[0] == sent("hello")
    })
    .await;
    assert_eq!(before["firings"].as_array().unwrap().len(), 2);
    live.stop().await;

    // Forty days on, a new daemon on the same data: its first pass runs at start.
    let later = start + Days::new(40);
    clock.set(later);
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    let after = history_until(&live, "m-1", |h| {
        rules_and_statuses(h).len() == 1 && h["firings"].as_array().unwrap().is_empty()
    })
    .await;
    let kept = &messages(&after)[0];
    assert_eq!(kept["rule"], "ping", "{after}");
    assert_eq!(
        kept["status"], "pending",
        "still being retried, however old: {after}"
    );
    let m2 = history_until(&live, "m-2", |h| messages(h).is_empty()).await;
    assert_eq!(m2["firings"], json!([]));
    let (_, ledger) = live.get("/v1/members/m-1/ledger").await;
    assert_eq!(ledger["ledger"], json!([]), "{ledger}");
    let (_, member) = live.get("/v1/members/m-1").await;
    assert_eq!(
        member["points"], 5,
        "the balance lives on the member: {member}"
    );

    // What happens now is kept. (Its message is due 40 days from now by the system
    // clock the dispatcher goes by, so it is still pending.)
    post(&live, &[event("e-4", "post", "m-1", later)]).await;
    let now = history_until(&live, "m-1", |h| {
        let rules: Vec<String> = rules_and_statuses(h).into_iter().map(|(r, _)| r).collect();
        rules == ["ping", "hello"]
    })
    .await;
    assert_eq!(now["firings"].as_array().unwrap().len(), 1);
    let (_, ledger) = live.get("/v1/members/m-1/ledger").await;
    assert_eq!(ledger["ledger"].as_array().unwrap().len(), 1);
    live.stop().await;

    // The self-check replays the whole journal: what retention removed live is made
    // again, and counts as removed (older than the window as of the live clock), so
    // the live state is reproduced.
    let store = support::runner::reopen(data.path());
    let check = rally::replay::self_check(&store).unwrap();
    assert_eq!(check.differences, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retention_settings_nothing_is_removed() {
    let start = t("2026-03-01T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let rules = support::daemon::rules_dir(&rules_yaml("timezone: UTC", support::free_port()));
    let data = tempfile::tempdir().unwrap();
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    post(&live, &[event("e-1", "post", "m-1", start)]).await;
    history_until(&live, "m-1", |h| rules_and_statuses(h) == [sent("hello")]).await;
    live.stop().await;

    clock.set(start + Days::new(4000));
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    // Give a pass time to run, were there one to run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = history(&live, "m-1", "").await;
    assert_eq!(rules_and_statuses(&after), [sent("hello")]);
    assert_eq!(after["firings"].as_array().unwrap().len(), 1);
    assert_eq!(clock.now(), start + Days::new(4000));
    live.stop().await;
}

fn load(yaml: &str) -> Result<RuleSet, Vec<RuleError>> {
    rules::from_sources(&[("a.yaml", yaml)], &|_| None)
}

fn errors(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Ok(_) => panic!("expected the rule set to be refused"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn retention_periods_are_read_from_settings_and_default_to_keeping_everything() {
    let set = load("settings:\n  retention: { messages: 90d, history: 2w }\n").unwrap();
    let kept = set.settings.retention;
    assert_eq!(kept.messages, Some(chrono::Duration::days(90)));
    assert_eq!(kept.history, Some(chrono::Duration::days(14)));
    let set = load("settings:\n  retention: { messages: 90d }\n").unwrap();
    assert_eq!(set.settings.retention.history, None);
    let set = load("settings:\n  timezone: UTC\n").unwrap();
    assert_eq!(set.settings.retention, rules::Retention::default());
}

#[test]
fn a_retention_shorter_than_a_day_is_refused_as_a_likely_slip() {
    let refused = errors("settings:\n  retention: { messages: 90m }\n");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("a.yaml:2:26: retention.messages must be at least 1d"),
        "{refused:?}"
    );
}

#[test]
fn an_unknown_retention_key_is_refused_with_the_closest_one() {
    let refused = errors("settings:\n  retention: { ledger: 90d }\n");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("ledger"), "{refused:?}");
}
