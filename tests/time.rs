//! Time through `sim` (SPEC §2.2, §3.1): inactivity and return, campaigns and phases,
//! schedules with audiences, budgets, crontab weekdays and DST.

mod support;

use serde_json::Value;

use support::sim::run as sim;

fn firings(doc: &Value, rule: &str) -> Vec<(String, String)> {
    support::sim::firings_of(doc, rule)
}

fn at(member: &str, when: &str) -> (String, String) {
    (member.to_string(), when.to_string())
}

const LADDER: &str = r#"
settings: { activity: [checkin, post] }
rules:
  - { id: s7,  trigger: { inactive: 7d },  actions: [ { tag: silent } ] }
  - { id: s14, trigger: { inactive: 14d }, actions: [ { points: 5 } ] }
  - { id: s30, trigger: { inactive: 30d }, actions: [ { tag: churn-risk } ] }
  - { id: back, trigger: { returned: 7d }, actions: [ { untag: silent } ] }
"#;

#[test]
fn a_re_engagement_ladder_runs_once_per_silence_across_two_silences() {
    let doc = sim(
        LADDER,
        r#"{"id":"1","type":"checkin","member":"m","at":"2026-01-01T10:00:00Z"}
{"id":"2","type":"post","member":"m","at":"2026-03-01T10:00:00Z"}
"#,
        "2026-06-01T00:00:00Z",
    );
    assert_eq!(
        firings(&doc, "s7"),
        [
            at("m", "2026-01-08T10:00:00Z"),
            at("m", "2026-03-08T10:00:00Z")
        ]
    );
    assert_eq!(
        firings(&doc, "s30"),
        [
            at("m", "2026-01-31T10:00:00Z"),
            at("m", "2026-03-31T10:00:00Z")
        ]
    );
    assert_eq!(firings(&doc, "back"), [at("m", "2026-03-01T10:00:00Z")]);
    assert_eq!(doc["members"]["m"]["points"], 10);
}

#[test]
fn activity_before_the_deadline_re_arms_it() {
    let doc = sim(
        LADDER,
        r#"{"id":"1","type":"checkin","member":"m","at":"2026-01-01T10:00:00Z"}
{"id":"2","type":"checkin","member":"m","at":"2026-01-05T10:00:00Z"}
"#,
        "2026-01-13T00:00:00Z",
    );
    assert_eq!(firings(&doc, "s7"), [at("m", "2026-01-12T10:00:00Z")]);
    assert!(
        firings(&doc, "back").is_empty(),
        "4 days is not a 7-day silence"
    );
}

#[test]
fn leave_suppresses_inactivity_until_the_member_is_active_again() {
    let doc = sim(
        LADDER,
        r#"{"id":"1","type":"checkin","member":"m","at":"2026-01-01T10:00:00Z"}
{"id":"2","type":"leave","member":"m","at":"2026-01-02T10:00:00Z"}
{"id":"3","type":"checkin","member":"m","at":"2026-02-01T10:00:00Z"}
"#,
        "2026-02-09T00:00:00Z",
    );
    assert_eq!(firings(&doc, "s7"), [at("m", "2026-02-08T10:00:00Z")]);
}

#[test]
fn a_campaign_with_absolute_phases_in_shanghai_changes_at_exact_utc_instants() {
    let doc = sim(
        r#"
campaigns:
  - id: double11
    timezone: Asia/Shanghai
    phases:
      - { name: warmup, start: "2026-11-01T00:00:00" }
      - { name: peak,   start: "2026-11-10T20:00:00" }
      - { name: wrapup, start: "2026-11-12T00:00:00" }
    end: "2026-11-15T00:00:00"
rules: []
"#,
        r#"{"id":"1","type":"join","member":"m","at":"2026-10-01T00:00:00Z"}"#,
        "2026-12-01T00:00:00Z",
    );
    let transitions = &doc["campaigns"]["double11"]["transitions"];
    let expected = serde_json::json!([
        {"phase": "warmup", "at": "2026-10-31T16:00:00Z"},
        {"phase": "peak", "at": "2026-11-10T12:00:00Z"},
        {"phase": "wrapup", "at": "2026-11-11T16:00:00Z"},
        {"phase": null, "at": "2026-11-14T16:00:00Z"},
    ]);
    assert_eq!(*transitions, expected);
    assert_eq!(doc["campaigns"]["double11"]["phase"], Value::Null);
}

#[test]
fn a_recurring_cron_campaign_repeats_every_week() {
    let doc = sim(
        r#"
campaigns:
  - id: salon
    timezone: UTC
    phases:
      - { name: warmup, start: "0 9 * * Wed" }
      - { name: live,   start: "0 20 * * Fri" }
      - { name: off,    start: "0 22 * * Fri" }
rules:
  - id: live-bonus
    trigger: { event: post }
    during: { campaign: salon, phase: live }
    limit: { times: 1, per: campaign }
    actions: [ { points: 10 } ]
"#,
        // Fridays 20 and 27 Nov 2026, 21:00 and 21:30 UTC: live twice each week.
        r#"{"id":"1","type":"post","member":"m","at":"2026-11-20T21:00:00Z"}
{"id":"2","type":"post","member":"m","at":"2026-11-20T21:30:00Z"}
{"id":"3","type":"post","member":"m","at":"2026-11-25T12:00:00Z"}
{"id":"4","type":"post","member":"m","at":"2026-11-27T21:00:00Z"}
{"id":"5","type":"post","member":"m","at":"2026-11-27T21:30:00Z"}
"#,
        "2026-12-12T00:00:00Z",
    );
    assert_eq!(
        doc["members"]["m"]["points"], 20,
        "once per weekly run, only when live"
    );
    let phases: Vec<&str> = doc["campaigns"]["salon"]["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["phase"].as_str().unwrap())
        .collect();
    // The clock starts during the first live session (21:00 on 20 Nov).
    assert_eq!(
        phases[..6],
        ["off", "warmup", "live", "off", "warmup", "live"]
    );
    assert_eq!(
        phases.len(),
        10,
        "off on 20 Nov, then three weeks of three phases"
    );
}

#[test]
fn phase_scoped_double_points_are_clipped_by_the_budget() {
    let doc = sim(
        r#"
campaigns:
  - id: c
    phases:
      - { name: peak, start: "2026-11-10T00:00:00" }
    end: "2026-11-12T00:00:00"
    budget: { points: 25 }
rules:
  - { id: base, trigger: { event: purchase }, actions: [ { points: 10 } ] }
  - id: double
    trigger: { event: purchase }
    during: { campaign: c, phase: peak }
    actions: [ { points: 10 } ]
"#,
        r#"{"id":"1","type":"purchase","member":"a","at":"2026-11-09T10:00:00Z"}
{"id":"2","type":"purchase","member":"a","at":"2026-11-10T10:00:00Z"}
{"id":"3","type":"purchase","member":"b","at":"2026-11-10T11:00:00Z"}
{"id":"4","type":"purchase","member":"c","at":"2026-11-11T10:00:00Z"}
{"id":"5","type":"purchase","member":"c","at":"2026-11-12T10:00:00Z"}
"#,
        "2026-11-13T00:00:00Z",
    );
    let members = &doc["members"];
    assert_eq!(members["a"]["points"], 30);
    assert_eq!(members["b"]["points"], 20);
    assert_eq!(
        members["c"]["points"], 25,
        "5 of the budget left, then the campaign ended"
    );
    assert_eq!(doc["campaigns"]["c"]["points_awarded"], 25);
    let clipped: Vec<&Value> = doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["clipped_by"] == "budget:c")
        .collect();
    assert_eq!(clipped.len(), 1);
    assert_eq!(clipped[0]["amount"], 5);
    assert_eq!(clipped[0]["requested"], 10);
}

#[test]
fn a_schedule_runs_for_its_audience_and_not_for_members_who_joined_later() {
    let doc = sim(
        r#"
rules:
  - { id: earn, trigger: { event: purchase }, actions: [ { points: 10 } ] }
  - id: monday
    trigger: { schedule: "0 9 * * 1" }
    audience: "member.points > 0"
    actions: [ { tag: reminded } ]
"#,
        // Monday 2026-11-23 09:00 UTC is the first occurrence.
        r#"{"id":"1","type":"purchase","member":"early","at":"2026-11-20T10:00:00Z"}
{"id":"2","type":"join","member":"broke","at":"2026-11-21T10:00:00Z"}
{"id":"3","type":"purchase","member":"late","at":"2026-11-23T09:30:00Z"}
"#,
        "2026-11-24T00:00:00Z",
    );
    assert_eq!(
        firings(&doc, "monday"),
        [at("early", "2026-11-23T09:00:00Z")]
    );
}

#[test]
fn crontab_weekday_one_is_monday() {
    let doc = sim(
        r#"
rules:
  - id: weekly
    trigger: { schedule: "0 12 * * 1" }
    audience: all
    actions: [ { tag: monday } ]
"#,
        r#"{"id":"1","type":"join","member":"m","at":"2026-11-26T00:00:00Z"}"#,
        "2026-12-08T00:00:00Z",
    );
    // 30 Nov and 7 Dec 2026 are Mondays.
    assert_eq!(
        firings(&doc, "weekly"),
        [
            at("m", "2026-11-30T12:00:00Z"),
            at("m", "2026-12-07T12:00:00Z")
        ]
    );
}

#[test]
fn a_local_time_skipped_by_dst_fires_at_the_next_valid_instant() {
    let doc = sim(
        r#"
settings: { timezone: America/New_York }
rules:
  - id: nightly
    trigger: { schedule: "30 2 * * *" }
    audience: all
    actions: [ { tag: ran } ]
"#,
        r#"{"id":"1","type":"join","member":"m","at":"2026-03-07T12:00:00Z"}"#,
        "2026-03-09T12:00:00Z",
    );
    // 8 Mar 2026: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
    assert_eq!(
        firings(&doc, "nightly"),
        [
            at("m", "2026-03-08T07:00:00Z"),
            at("m", "2026-03-09T06:30:00Z")
        ]
    );
}

#[test]
fn a_local_time_that_occurs_twice_fires_once() {
    let doc = sim(
        r#"
settings: { timezone: America/New_York }
rules:
  - id: nightly
    trigger: { schedule: "30 1 * * *" }
    audience: all
    actions: [ { tag: ran } ]
"#,
        r#"{"id":"1","type":"join","member":"m","at":"2026-10-31T12:00:00Z"}"#,
        "2026-11-02T12:00:00Z",
    );
    // 1 Nov 2026: 01:00–02:00 happens twice (EDT, then EST); the first counts.
    assert_eq!(
        firings(&doc, "nightly"),
        [
            at("m", "2026-11-01T05:30:00Z"),
            at("m", "2026-11-02T06:30:00Z")
        ]
    );
}

#[test]
fn an_hourly_schedule_runs_again_in_the_hour_a_fall_back_repeats() {
    let doc = sim(
        r#"
settings: { timezone: Europe/Berlin }
rules:
  - id: half-past
    trigger: { schedule: "30 * * * *" }
    audience: all
    actions: [ { tag: ran } ]
"#,
        r#"{"id":"1","type":"join","member":"m","at":"2026-10-24T23:00:00Z"}"#,
        "2026-10-25T02:00:00Z",
    );
    // 25 Oct 2026: 02:00–03:00 happens twice in Berlin (CEST, then CET).
    assert_eq!(
        firings(&doc, "half-past"),
        [
            at("m", "2026-10-24T23:30:00Z"),
            at("m", "2026-10-25T00:30:00Z"),
            at("m", "2026-10-25T01:30:00Z")
        ]
    );
}

#[test]
fn a_stepped_schedule_does_not_run_in_the_hour_spring_forward_skips() {
    let doc = sim(
        r#"
settings: { timezone: America/New_York }
rules:
  - id: every-two-hours
    trigger: { schedule: "0 */2 * * *" }
    audience: all
    actions: [ { tag: ran } ]
"#,
        r#"{"id":"1","type":"join","member":"m","at":"2026-03-08T04:00:00Z"}"#,
        "2026-03-08T09:00:00Z",
    );
    // 8 Mar 2026: 00:00 EST, then 02:00 does not exist, then 04:00 EDT.
    assert_eq!(
        firings(&doc, "every-two-hours"),
        [
            at("m", "2026-03-08T05:00:00Z"),
            at("m", "2026-03-08T08:00:00Z")
        ]
    );
}

#[test]
fn a_phase_trigger_runs_once_per_member_when_the_phase_starts() {
    let doc = sim(
        r#"
campaigns:
  - id: c
    phases:
      - { name: warmup, start: "2026-11-01T00:00:00" }
      - { name: peak, start: "2026-11-05T00:00:00" }
rules:
  - id: peak-open
    trigger: { phase: { campaign: c, enters: peak } }
    audience: all
    actions: [ { points: 1 } ]
"#,
        r#"{"id":"1","type":"join","member":"a","at":"2026-10-30T00:00:00Z"}
{"id":"2","type":"join","member":"b","at":"2026-11-02T00:00:00Z"}
{"id":"3","type":"join","member":"c","at":"2026-11-06T00:00:00Z"}
"#,
        "2026-11-10T00:00:00Z",
    );
    assert_eq!(
        firings(&doc, "peak-open"),
        [
            at("a", "2026-11-05T00:00:00Z"),
            at("b", "2026-11-05T00:00:00Z")
        ]
    );
}
