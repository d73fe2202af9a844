//! Issue 11 item 3, "a failed commit never acknowledges": a daemon in this process
//! over a store made to fail on demand (`rally::store::Faults`). In every case no
//! event is acknowledged without being durable, `/healthz` says the store is failing,
//! and once the fault clears the same request resent is taken — and the state is what
//! `rally sim` makes of the acknowledged events.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as Days, SecondsFormat, Utc};
use rally::clock::{Clock, ManualClock};
use rally::store::{Fault, UNTIL_CLEARED};
use serde_json::{json, Value};
use support::live::Live;
use support::runner::t;

const SILENCE: &str = r#"
rules:
  - id: checkin-points
    trigger: { event: checkin }
    actions:
      - points: 5
  - id: silent-7d
    trigger: { inactive: 7d }
    actions:
      - tag: silent
      - points: 3
"#;

fn line(id: &str, kind: &str, member: &str, at: DateTime<Utc>) -> String {
    let at = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({"id": id, "type": kind, "member": member, "at": at}).to_string()
}

fn statuses(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results: {answer}"))
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A 503 with a JSON error, answered within a generous bound (never a hang).
async fn unavailable(live: &Live, body: &str) -> Value {
    let answered = tokio::time::timeout(Duration::from_secs(30), live.post("/v1/events", body))
        .await
        .expect("the writer answers while the store fails");
    let (status, answer) = answered;
    assert_eq!(status, 503, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");
    answer
}

async fn assert_degraded(live: &Live) {
    let (status, health) = live.get("/healthz").await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["store"]
            .as_str()
            .is_some_and(|e| e.contains("injected fault")),
        "{health}"
    );
    assert!(health["since"].is_string(), "{health}");
}

async fn assert_healthy(live: &Live) {
    assert_eq!(live.get("/healthz").await, (200, json!({"status": "ok"})));
}

/// The daemon's members equal `sim`'s on the acknowledged `events`, up to `until`.
async fn assert_state_is_sims(live: &Live, events: &[String], until: DateTime<Utc>, ids: &[&str]) {
    let until = until.to_rfc3339_opts(SecondsFormat::Secs, true);
    let doc = support::sim::run(SILENCE, &events.join("\n"), &until);
    for id in ids {
        let (status, member) = live.get(&format!("/v1/members/{id}")).await;
        assert_eq!(status, 200, "{member}");
        assert_eq!(member, doc["members"][id], "member {id}: daemon vs sim");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_acknowledges_nothing_and_the_same_request_resent_is_accepted() {
    let start = t("2026-11-01T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let rules = support::daemon::rules_dir(SILENCE);
    let data = tempfile::tempdir().unwrap();
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    let events = vec![
        line("e-1", "checkin", "m-1", start),
        line("e-2", "checkin", "m-2", start),
    ];
    let body = events.join("\n");
    live.faults.inject(Fault::Commit, 1);
    unavailable(&live, &body).await;
    assert_degraded(&live).await;
    assert_eq!(
        live.get("/v1/members/m-1").await.0,
        404,
        "nothing was stored"
    );

    let (status, answer) = live.post("/v1/events", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(statuses(&answer), ["accepted", "accepted"]);
    assert_healthy(&live).await;
    assert_state_is_sims(&live, &events, clock.now(), &["m-1", "m-2"]).await;
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_acknowledges_nothing_and_the_resent_request_is_applied_once_and_durable() {
    let start = t("2026-11-01T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let rules = support::daemon::rules_dir(SILENCE);
    let data = tempfile::tempdir().unwrap();
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    let events = vec![
        line("e-1", "checkin", "m-1", start),
        line("e-2", "checkin", "m-1", start),
    ];
    let body = events.join("\n");
    live.faults.inject(Fault::Sync, 1);
    unavailable(&live, &body).await;
    assert_degraded(&live).await;

    // The group was committed but not synced, and the store was opened again after
    // the error: whether the group reached the files decides whether the resend finds
    // its events (duplicate, synced before saying so) or applies them (accepted).
    let (status, answer) = live.post("/v1/events", &body).await;
    assert_eq!(status, 200, "{answer}");
    let resent = statuses(&answer);
    assert!(
        resent == ["duplicate", "duplicate"] || resent == ["accepted", "accepted"],
        "{answer}"
    );
    assert_healthy(&live).await;
    live.stop().await;

    // And it is on disk: a new daemon on the same data holds it, once.
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    assert_state_is_sims(&live, &events, clock.now(), &["m-1"]).await;
    let (_, answer) = live.post("/v1/events", &body).await;
    assert_eq!(statuses(&answer), ["duplicate", "duplicate"]);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_read_while_timers_pop_leaves_the_writer_answering_and_recovers() {
    let start = t("2026-11-01T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let rules = support::daemon::rules_dir(SILENCE);
    let data = tempfile::tempdir().unwrap();
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    let mut acknowledged = vec![
        line("e-1", "checkin", "m-1", start),
        line("e-2", "checkin", "m-2", start),
    ];
    let (status, answer) = live.post("/v1/events", &acknowledged.join("\n")).await;
    assert_eq!((status, statuses(&answer).len()), (200, 2), "{answer}");

    // Eight days on, both members' silence timers are due, and the store cannot read.
    live.faults.inject(Fault::Read, UNTIL_CLEARED);
    let later = start + Days::days(8);
    clock.set(later);
    // Let the writer find the timers due and fail on them (it looks at least every
    // second); it used to spin here for ever, taking no more events.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let checkin = line("e-3", "checkin", "m-1", later);
    unavailable(&live, &checkin).await;
    unavailable(&live, &checkin).await;
    assert_degraded(&live).await;

    live.faults.clear(Fault::Read);
    let (status, answer) =
        tokio::time::timeout(Duration::from_secs(30), live.post("/v1/events", &checkin))
            .await
            .expect("answered once the store reads again");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(statuses(&answer), ["accepted"]);
    acknowledged.push(checkin);
    assert_healthy(&live).await;
    assert_state_is_sims(&live, &acknowledged, clock.now(), &["m-1", "m-2"]).await;
    let (_, m2) = live.get("/v1/members/m-2").await;
    assert_eq!(
        m2["tags"],
        json!(["silent"]),
        "the timer ran once the fault cleared"
    );
    live.stop().await;
}
