//! The `Runner` as the daemon drives it — no journal, outcomes moved into the store
//! writes — checked through what reaches the store.

mod support;

use chrono::Duration;
use rally::runner::Applied;
use support::runner::{event, runner, t};

const RULES: &str = r#"
channels:
  staff: { kind: log }
escalations:
  - id: support
    levels:
      - { notify: { channel: staff, to: support-team }, within: 2h }
      - { notify: { channel: staff, to: "lead@shop.example" } }
rules:
  - id: low-rating
    trigger: { event: feedback }
    actions:
      - points: 1
      - escalate: { policy: support, severity: high, summary: "low rating" }
"#;

#[test]
fn a_step_that_opens_a_ticket_stores_its_ledger_firing_and_sla_deadline() {
    let mut runner = runner(RULES);
    let at = t("2026-11-26T08:00:00Z");
    let feedback =
        event(r#"{"id":"f-1","type":"feedback","member":"m","at":"2026-11-26T08:00:00Z"}"#);
    match runner.apply_event(&feedback, at).unwrap() {
        Applied::Accepted(report) => assert_eq!(report.fired, ["low-rating"]),
        other => panic!("{other:?}"),
    }
    runner.commit().unwrap();
    let store = runner.store();
    assert_eq!(store.ledger("m").unwrap().len(), 1);
    assert_eq!(store.firings("m", 10).unwrap().len(), 1);
    let timers = store.timers_due(i64::MAX, 10).unwrap();
    assert_eq!(timers.len(), 1, "the SLA deadline is armed");
    assert_eq!(
        timers[0].0.due,
        (at + Duration::hours(2)).timestamp_millis()
    );

    runner.run_due(at + Duration::hours(3)).unwrap();
    runner.commit().unwrap();
    let tickets = runner.all_tickets().unwrap();
    assert_eq!(tickets[0].level, 2, "the deadline passed: one level up");
}
