//! Inactivity deadlines (SPEC §2.2 `inactive`) through the `Runner` the daemon uses,
//! looking at what reaches the store: each member has one inactivity timer, events
//! leave it alone, a timer that fires sends its messages through the outbox, and a
//! member back from a silence gets their next deadline on time.

mod support;

use chrono::{DateTime, Duration, Utc};
use rally::runner::Runner;
use support::runner::{event, t, timers};

const RULES: &str = r#"
channels:
  email: { kind: log }
templates:
  miss_you:
    subject: "We miss you"
    body: "Come back, {{ member.id }}"
rules:
  - id: s1
    trigger: { inactive: 1d }
    actions:
      - tag: quiet
      - send: { template: miss_you, channel: email, to: "m@example.com" }
  - id: s3
    trigger: { inactive: 3d }
    actions: [ { points: 5 } ]
"#;

fn runner() -> Runner {
    let mut runner = support::runner::runner(RULES);
    runner.keep_journal();
    runner
}

fn checkin(runner: &mut Runner, id: &str, member: &str, at: DateTime<Utc>) {
    let line = format!(
        r#"{{"id":"{id}","type":"checkin","member":"{member}","at":"{}"}}"#,
        at.to_rfc3339()
    );
    support::runner::arrive_and_commit(runner, &line, at);
}

/// `(rule, member, at)` of every firing in the runner's journal so far.
fn fired(runner: &mut Runner) -> Vec<(String, String, DateTime<Utc>)> {
    runner
        .take_journal()
        .into_iter()
        .flat_map(|o| o.firings)
        .map(|f| (f.rule.into(), f.member.into(), f.at))
        .collect()
}

#[test]
fn a_member_active_every_hour_keeps_one_timer_and_events_do_not_rewrite_it() {
    let mut runner = runner();
    let start = t("2026-11-26T08:00:00Z");
    checkin(&mut runner, "e0", "m", start);
    let first = timers(runner.store());
    assert_eq!(
        first,
        [(
            (start + Duration::days(1)).timestamp_millis(),
            "inactive".into(),
            "m".into()
        )]
    );
    for hour in 1..20 {
        checkin(
            &mut runner,
            &format!("e{hour}"),
            "m",
            start + Duration::hours(hour),
        );
        assert_eq!(timers(runner.store()), first, "after check-in {hour}");
    }
}

#[test]
fn an_early_timer_fires_nothing_and_re_arms_for_the_deadline_ahead() {
    let mut runner = runner();
    let start = t("2026-11-26T08:00:00Z");
    checkin(&mut runner, "e0", "m", start);
    let last = start + Duration::hours(12);
    checkin(&mut runner, "e1", "m", last);
    fired(&mut runner);
    // The timer armed for start + 1d pops: activity moved the deadline to last + 1d.
    runner.run_due(start + Duration::days(1)).unwrap();
    runner.commit().unwrap();
    assert!(fired(&mut runner).is_empty());
    assert_eq!(
        timers(runner.store()),
        [(
            (last + Duration::days(1)).timestamp_millis(),
            "inactive".into(),
            "m".into()
        )]
    );
    runner.run_due(last + Duration::days(5)).unwrap();
    runner.commit().unwrap();
    assert_eq!(
        fired(&mut runner),
        [
            ("s1".into(), "m".into(), last + Duration::days(1)),
            ("s3".into(), "m".into(), last + Duration::days(3)),
        ]
    );
    assert!(timers(runner.store()).is_empty(), "the whole ladder fired");
}

#[test]
fn a_message_sent_by_an_inactivity_rule_reaches_the_outbox() {
    let mut runner = runner();
    let start = t("2026-11-26T08:00:00Z");
    checkin(&mut runner, "e0", "m", start);
    runner.run_due(start + Duration::days(2)).unwrap();
    runner.commit().unwrap();
    let rows = runner.store().outbox_scan(0, 10).unwrap();
    assert_eq!(rows.len(), 1, "one queued message");
    let row: serde_json::Value = serde_json::from_slice(&rows[0].1).unwrap();
    assert_eq!(row["rule"], "s1");
    assert_eq!(row["to"], "m@example.com");
    assert_eq!(row["subject"], "We miss you");
}

#[test]
fn a_member_back_from_a_silence_gets_the_next_deadline_on_time() {
    let mut runner = runner();
    let start = t("2026-11-26T08:00:00Z");
    checkin(&mut runner, "e0", "m", start);
    // s1 fires at start + 1d; the timer then waits for s3 at start + 3d.
    let back = start + Duration::hours(36);
    checkin(&mut runner, "e1", "m", back);
    assert_eq!(
        fired(&mut runner),
        [("s1".into(), "m".into(), start + Duration::days(1))]
    );
    // The new silence's first deadline comes before the armed timer: it moved.
    assert_eq!(
        timers(runner.store()),
        [(
            (back + Duration::days(1)).timestamp_millis(),
            "inactive".into(),
            "m".into()
        )]
    );
    runner.run_due(back + Duration::days(1)).unwrap();
    runner.commit().unwrap();
    assert_eq!(
        fired(&mut runner),
        [("s1".into(), "m".into(), back + Duration::days(1))]
    );
}

#[test]
fn leaving_disarms_the_timer() {
    let mut runner = runner();
    let start = t("2026-11-26T08:00:00Z");
    checkin(&mut runner, "e0", "m", start);
    let leave = event(r#"{"id":"e1","type":"leave","member":"m","at":"2026-11-26T09:00:00Z"}"#);
    runner
        .apply_event(&leave, t("2026-11-26T09:00:00Z"))
        .unwrap();
    runner.commit().unwrap();
    assert!(timers(runner.store()).is_empty());
    runner.run_due(start + Duration::days(10)).unwrap();
    runner.commit().unwrap();
    assert!(fired(&mut runner).is_empty());
}
