//! Delayed triggers (SPEC §2.2 `after`) through the `Runner` the daemon uses: the
//! timer an event arms is in the store, survives closing and reopening it, fires once
//! at its due time with the rule's `if` evaluated then, and a duplicate event arms
//! nothing more.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rally::runner::Runner;
use rally::store::Store;
use support::runner::{t, timers};

const RULES: &str = r#"
rules:
  - id: newcomer-coupon
    trigger: { after: { event: join, wait: 3d } }
    if: member.purchases == 0
    actions: [ { points: 50 }, { tag: coupon } ]
"#;

fn rules() -> Arc<rally::rules::RuleSet> {
    Arc::new(rally::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap())
}

fn send(runner: &mut Runner, id: &str, kind: &str, member: &str, at: DateTime<Utc>) {
    let line = format!(
        r#"{{"id":"{id}","type":"{kind}","member":"{member}","at":"{}","data":{{"amount":5}}}}"#,
        at.to_rfc3339()
    );
    support::runner::arrive_and_commit(runner, &line, at);
}

#[test]
fn the_timer_is_durable_and_fires_once_at_its_due_time_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let joined = t("2026-05-01T09:00:00Z");
    let due = joined + Duration::days(3);
    {
        let store = Store::open(dir.path()).unwrap();
        let mut runner = Runner::new(store, rules()).unwrap();
        send(&mut runner, "j1", "join", "ben", joined);
        send(&mut runner, "j2", "join", "ana", joined);
        send(
            &mut runner,
            "p1",
            "purchase",
            "ana",
            joined + Duration::days(1),
        );
        // A duplicate of the join arms nothing more.
        send(&mut runner, "j1", "join", "ben", joined + Duration::days(2));
        let armed = timers(runner.store());
        assert_eq!(
            armed,
            [
                (
                    due.timestamp_millis(),
                    "after".to_string(),
                    rally::engine::after_timer_id("ana", "newcomer-coupon", "j2")
                ),
                (
                    due.timestamp_millis(),
                    "after".to_string(),
                    rally::engine::after_timer_id("ben", "newcomer-coupon", "j1")
                ),
            ]
        );
    }
    let store = support::runner::reopen(dir.path());
    let mut runner = Runner::new(store, rules()).unwrap();
    runner.keep_journal();
    // Not yet due: nothing happens.
    runner.run_due(due - Duration::seconds(1)).unwrap();
    runner.commit().unwrap();
    assert_eq!(runner.member("ben").unwrap().unwrap().points, 0);
    runner.run_due(due + Duration::hours(1)).unwrap();
    runner.commit().unwrap();
    let firings: Vec<(String, String, DateTime<Utc>)> = runner
        .take_journal()
        .into_iter()
        .flat_map(|o| o.firings)
        .map(|f| (f.rule.into(), f.member.into(), f.at))
        .collect();
    assert_eq!(
        firings,
        [("newcomer-coupon".to_string(), "ben".to_string(), due)]
    );
    assert_eq!(runner.member("ben").unwrap().unwrap().points, 50);
    assert_eq!(runner.member("ana").unwrap().unwrap().points, 0);
    assert!(timers(runner.store()).is_empty());
    // Later time fires nothing again.
    runner.run_due(due + Duration::days(30)).unwrap();
    runner.commit().unwrap();
    assert!(runner.take_journal().iter().all(|o| o.firings.is_empty()));
}

/// Timers are not journaled: a replay re-runs the events at their step times, arms the
/// same timers and fires them the same way (`rally replay --data`'s self-check).
#[test]
fn a_replay_of_the_journal_reproduces_what_the_delayed_triggers_did() {
    let dir = tempfile::tempdir().unwrap();
    let joined = t("2026-05-01T09:00:00Z");
    {
        let store = Store::open(dir.path()).unwrap();
        let mut runner = Runner::new(store, rules()).unwrap();
        runner.keep_event_journal().unwrap();
        runner.arm(joined - Duration::seconds(1)).unwrap();
        send(&mut runner, "j1", "join", "ben", joined);
        send(&mut runner, "j2", "join", "ana", joined);
        send(
            &mut runner,
            "p1",
            "purchase",
            "ana",
            joined + Duration::days(1),
        );
        // After the timers popped, another event: the replay sees the same steps.
        send(&mut runner, "x1", "post", "ana", joined + Duration::days(5));
        assert_eq!(runner.member("ben").unwrap().unwrap().points, 50);
        runner.store().sync().unwrap();
    }
    let store = support::runner::reopen(dir.path());
    let check = rally::replay::self_check(&store).unwrap();
    assert!(check.differences.is_empty(), "{:?}", check.differences);
    assert_eq!(check.members, 2);
}
