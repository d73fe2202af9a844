//! SPEC §2.7, the one time model: every step runs at one monotone clock; timers due by
//! an arrival run before it, inside an open group too; a late event runs at the clock;
//! an `at` too far ahead is refused; and the daemon, on its clock, reaches the state
//! `sim` reaches on the same arrivals.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rally::clock::{Clock, ManualClock};
use rally::runner::Applied;
use serde_json::{json, Value};
use support::runner::{event, runner, t};

const CAPPED: &str = r#"
settings:
  timezone: Asia/Shanghai
  points: { daily_cap: 10 }
rules:
  - id: checkin-points
    trigger: { event: checkin }
    actions:
      - points: 10
"#;

const SILENCE: &str = r#"
rules:
  - id: silent-7d
    trigger: { inactive: 7d }
    actions:
      - tag: silent
      - points: 3
  - id: welcome-back
    trigger: { returned: 7d }
    actions:
      - untag: silent
      - points: 1
"#;

fn line(id: &str, kind: &str, member: &str, at: &str) -> String {
    json!({"id": id, "type": kind, "member": member, "at": at}).to_string()
}

fn ledger(doc: &Value) -> Vec<(String, i64, String)> {
    doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or_default().to_string(),
                e["amount"].as_i64().unwrap(),
                e["at"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_late_event_cannot_pay_a_daily_capped_member_twice_on_one_day() {
    let events = [
        line("e-1", "checkin", "m-1", "2026-11-02T10:00:00+08:00"),
        line("e-2", "checkin", "m-1", "2026-11-01T10:00:00+08:00"),
        line("e-3", "checkin", "m-1", "2026-11-02T11:00:00+08:00"),
    ]
    .join("\n");
    let doc = support::sim::run(CAPPED, &events, "2026-11-02T12:00:00+08:00");
    assert_eq!(doc["members"]["m-1"]["points"], 10, "{:#}", doc["ledger"]);
}

#[test]
fn a_late_event_runs_at_the_clock_and_keeps_its_own_at() {
    let events = [
        line("e-1", "checkin", "m-1", "2026-11-02T10:00:00+08:00"),
        line("e-2", "checkin", "m-2", "2026-11-01T10:00:00+08:00"),
    ]
    .join("\n");
    let doc = support::sim::run(CAPPED, &events, "2026-11-02T12:00:00+08:00");
    let ledger = ledger(&doc);
    assert_eq!(ledger[1].0, "e-2");
    // Applied when the clock stood at e-1's time, not a day earlier.
    assert_eq!(ledger[1].2, "2026-11-02T02:00:00Z");
    assert_eq!(doc["rejected"], json!([]));
}

#[test]
fn a_late_checkin_does_not_reopen_a_streak_day_that_is_over() {
    let events = [
        line("e-1", "checkin", "m-1", "2026-11-01T10:00:00+08:00"),
        line("e-2", "checkin", "m-1", "2026-11-03T10:00:00+08:00"),
        // Late: 2 Nov is over by the clock; counting it would join the two days.
        line("e-3", "checkin", "m-1", "2026-11-02T10:00:00+08:00"),
    ]
    .join("\n");
    let doc = support::sim::run(CAPPED, &events, "2026-11-03T12:00:00+08:00");
    assert_eq!(doc["members"]["m-1"]["counters"]["checkin_streak"], 1);
}

#[test]
fn a_timer_due_between_two_events_of_one_open_group_runs_before_the_second() {
    let mut runner = runner(SILENCE);
    let join = event(&line("e-1", "join", "m-1", "2026-11-01T10:00:00Z"));
    let back = event(&line("e-2", "checkin", "m-1", "2026-11-10T10:00:00Z"));
    runner.apply_event(&join, join.at_utc()).unwrap();
    // No commit between: the inactivity timer is armed only in the open group.
    let Applied::Accepted(report) = runner.apply_event(&back, back.at_utc()).unwrap() else {
        panic!("the check-in is accepted");
    };
    assert_eq!(report.fired, ["welcome-back"]);
    runner.commit().unwrap();
    let member = runner.member("m-1").unwrap().unwrap();
    assert_eq!(
        member.points, 4,
        "silent-7d (3) fired on 8 Nov, then welcome-back (1)"
    );
    assert!(member.tags.is_empty());
}

#[test]
fn the_step_clock_is_kept_with_the_store_and_continues_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rules = Arc::new(rally::rules::from_sources(&[("r.yaml", CAPPED)], &|_| None).unwrap());
    let late = t("2026-11-02T02:00:00Z");
    {
        let store = rally::store::Store::open(dir.path()).unwrap();
        let mut runner = rally::runner::Runner::new(store, Arc::clone(&rules)).unwrap();
        let first = event(&line("e-1", "checkin", "m-1", "2026-11-02T10:00:00+08:00"));
        runner.apply_event(&first, first.at_utc()).unwrap();
        runner.commit().unwrap();
    }
    let store = support::runner::reopen(dir.path());
    let mut runner = rally::runner::Runner::new(store, rules).unwrap();
    assert_eq!(runner.now(), Some(late));
    // A reading from before the restart's clock (a system clock set back) runs at it.
    let second = event(&line("e-2", "checkin", "m-1", "2026-11-01T10:00:00+08:00"));
    runner.apply_event(&second, second.at_utc()).unwrap();
    runner.commit().unwrap();
    assert_eq!(runner.now(), Some(late));
    assert_eq!(runner.member("m-1").unwrap().unwrap().points, 10);
}

#[test]
fn an_at_more_than_five_minutes_past_the_clock_is_refused() {
    let mut runner = runner(CAPPED);
    let clock = t("2026-11-02T02:00:00Z");
    let soon = event(&line("e-1", "checkin", "m-1", "2026-11-02T02:04:59Z"));
    assert!(matches!(
        runner.apply_event(&soon, clock).unwrap(),
        Applied::Accepted(_)
    ));
    let later = event(&line("e-2", "checkin", "m-1", "2026-11-02T02:05:01Z"));
    match runner.apply_event(&later, clock).unwrap() {
        Applied::Rejected(error) => {
            assert!(
                error.starts_with("at: 2026-11-02T02:05:01+00:00 is in the future"),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(runner.member("m-2").unwrap().is_none());
}

/// `support::live::Live` on rules written inline, with the directories it runs on.
struct Live {
    daemon: support::live::Live,
    base: String,
    http: reqwest::Client,
    _rules: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Live {
    async fn start(yaml: &str, clock: Arc<ManualClock>) -> Live {
        let rules = support::daemon::rules_dir(yaml);
        let data = tempfile::tempdir().unwrap();
        let daemon = support::live::Live::start(rules.path(), data.path(), clock).await;
        Live {
            base: daemon.base.clone(),
            http: daemon.http.clone(),
            daemon,
            _rules: rules,
            _data: data,
        }
    }

    /// Posts `events` as NDJSON: the answer's body.
    async fn post(&self, events: &[String]) -> Value {
        self.daemon.post("/v1/events", &events.join("\n")).await.1
    }

    async fn member(&self, id: &str) -> Value {
        self.daemon.get(&format!("/v1/members/{id}")).await.1
    }

    async fn stop(self) {
        self.daemon.stop().await;
    }
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_on_its_clock_reaches_the_state_sim_reaches_on_the_same_arrivals() {
    let start = t("2026-11-01T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let live = Live::start(SILENCE, Arc::clone(&clock)).await;
    // The arrivals: two members join together; nine days later, one of them and a
    // newcomer arrive in one request. `silent-7d` fell due for both in between.
    let arrivals = [
        (
            start,
            vec![
                line("e-1", "join", "m-1", &rfc(start)),
                line("e-2", "join", "m-2", &rfc(start)),
            ],
        ),
        (
            start + Duration::days(9),
            vec![
                line("e-3", "checkin", "m-1", &rfc(start + Duration::days(9))),
                line("e-4", "join", "m-3", &rfc(start + Duration::days(9))),
            ],
        ),
    ];
    for (at, events) in &arrivals {
        clock.set(*at);
        let answer = live.post(events).await;
        assert!(
            answer["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] == "accepted"),
            "{answer}"
        );
    }
    let until = clock.now();
    let lines: Vec<String> = arrivals
        .iter()
        .flat_map(|(_, events)| events.clone())
        .collect();
    let doc = support::sim::run(SILENCE, &lines.join("\n"), &rfc(until));
    for id in ["m-1", "m-2", "m-3"] {
        assert_eq!(
            live.member(id).await,
            doc["members"][id],
            "member {id}: daemon vs sim"
        );
    }
    assert_eq!(doc["members"]["m-1"]["points"], 4);
    assert_eq!(doc["members"]["m-2"]["tags"], json!(["silent"]));
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_a_step_at_its_clock_not_at_the_events_at() {
    let now = t("2026-11-20T10:00:00Z");
    let clock = Arc::new(ManualClock::new(now));
    let live = Live::start(SILENCE, Arc::clone(&clock)).await;
    // A client sending history: nine days between the two events, none on the clock.
    let answer = live
        .post(&[
            line("e-1", "join", "m-1", "2026-11-01T10:00:00Z"),
            line("e-2", "checkin", "m-1", "2026-11-10T10:00:00Z"),
        ])
        .await;
    assert_eq!(answer["results"][1]["status"], "accepted", "{answer}");
    let member = live.member("m-1").await;
    assert_eq!(
        member["points"], 0,
        "no silence passed on the clock: {member}"
    );
    assert_eq!(member["last_active"], "2026-11-20T10:00:00Z");
    assert_eq!(member["joined_at"], "2026-11-01T10:00:00Z");
    // And an event from a client whose clock is an hour fast is refused.
    let answer = live
        .post(&[line("e-3", "checkin", "m-1", "2026-11-20T11:00:00Z")])
        .await;
    assert_eq!(answer["results"][0]["status"], "rejected", "{answer}");
    assert!(
        answer["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("is in the future"),
        "{answer}"
    );
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_clock_does_not_go_back_when_the_system_clock_does() {
    let now = t("2026-11-20T10:00:00+08:00");
    let clock = Arc::new(ManualClock::new(now));
    let live = Live::start(CAPPED, Arc::clone(&clock)).await;
    live.post(&[line("e-1", "checkin", "m-1", &rfc(now))]).await;
    // NTP steps the system clock back a day: the next check-in is still on 20 Nov.
    clock.set(now - Duration::days(1));
    live.post(&[line("e-2", "checkin", "m-1", &rfc(now - Duration::days(1)))])
        .await;
    assert_eq!(live.member("m-1").await["points"], 10);
    live.stop().await;
}

const ESCALATION: &str = r#"
templates:
  complaint:
    subject: "Ticket {{ ticket.id }}"
    body: "{{ ticket.summary }}"
channels:
  staff: { kind: log }
escalations:
  - id: support
    levels:
      - { notify: { channel: staff, to: support-team }, within: 2h }
      - { notify: { channel: staff, to: lead }, within: 4h }
      - { notify: { channel: staff, to: manager } }
rules:
  - id: low-rating
    trigger: { event: feedback }
    actions:
      - escalate: { policy: support, severity: high, summary: "low rating" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_by_api_comes_after_the_sla_that_fell_due_before_it() {
    let start = t("2026-11-20T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let live = Live::start(ESCALATION, Arc::clone(&clock)).await;
    let feedback = json!({"id": "f-1", "type": "feedback", "member": "m-1",
                          "at": rfc(start), "data": {"rating": 1}})
    .to_string();
    live.post(&[feedback]).await;
    // Let the writer go back to waiting (up to a second) for its next job.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Three hours on, level 1's two hours are up; the ack arrives before the writer
    // would have noticed on its own.
    clock.set(start + Duration::hours(3));
    let response = live
        .http
        .post(format!("{}/v1/tickets/T-1/ack", live.base))
        .body(r#"{"by": "ana"}"#)
        .send()
        .await
        .unwrap();
    let (status, ticket) = support::daemon::answer(response).await;
    assert_eq!(status, 200, "{ticket}");
    assert_eq!(ticket["level"], 2, "{ticket}");
    assert_eq!(
        ticket["levels"][1]["at"], "2026-11-20T12:00:00Z",
        "{ticket}"
    );
    assert_eq!(ticket["status"], "acked");
    live.stop().await;
}
