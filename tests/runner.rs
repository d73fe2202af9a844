//! The `Runner` as the daemon drives it — no journal, outcomes moved into the store
//! writes — checked through what reaches the store; one test keeps the journal `sim`
//! and replays read, to hold it to the same rows.

mod support;

use chrono::Duration;
use rally::runner::Applied;
use support::runner::{event, runner, t};

const RULES: &str = r#"
channels:
  staff: { kind: log }
  mail: { kind: log }
templates:
  sorry: { body: "Sorry about that." }
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
      - send: { template: sorry, channel: mail, to: "m@shop.example" }
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

/// A member `m` with ticket T-1, committed.
fn with_ticket() -> rally::runner::Runner {
    let mut runner = runner(RULES);
    let feedback =
        event(r#"{"id":"f-1","type":"feedback","member":"m","at":"2026-11-26T08:00:00Z"}"#);
    runner
        .apply_event(&feedback, t("2026-11-26T08:00:00Z"))
        .unwrap();
    runner.commit().unwrap();
    runner
}

#[test]
fn a_ticket_ack_without_a_member_acks_the_ticket_and_creates_no_member() {
    let mut runner = with_ticket();
    let ack = event(
        r#"{"id":"a-1","type":"rally.ticket.ack","at":"2026-11-26T08:30:00Z","data":{"ticket":"T-1","by":"amy"}}"#,
    );
    let applied = runner.apply_event(&ack, t("2026-11-26T08:30:00Z")).unwrap();
    assert!(matches!(applied, Applied::Accepted(_)), "{applied:?}");
    runner.commit().unwrap();
    let store = runner.store();
    assert_eq!(store.member_count().unwrap(), 1);
    let m = store.member("m").unwrap().unwrap();
    assert!(!m.counters.contains_key("events.rally.ticket.ack"));
    assert_eq!(
        runner.all_tickets().unwrap()[0].acked_by.as_deref(),
        Some("amy")
    );
}

#[test]
fn a_ticket_ack_naming_another_member_is_rejected_and_changes_nothing() {
    let mut runner = with_ticket();
    let ack = event(
        r#"{"id":"a-1","type":"rally.ticket.ack","member":"staff","at":"2026-11-26T08:30:00Z","data":{"ticket":"T-1"}}"#,
    );
    match runner.apply_event(&ack, t("2026-11-26T08:30:00Z")).unwrap() {
        Applied::Rejected(message) => assert!(
            message.contains("\"staff\" is not the member of ticket T-1"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    runner.commit().unwrap();
    assert!(runner.store().member("staff").unwrap().is_none());
    let tickets = runner.all_tickets().unwrap();
    assert_eq!(tickets[0].status, rally::tickets::TicketStatus::Open);
}

#[test]
fn a_ticket_resolve_naming_the_tickets_own_member_is_accepted() {
    let mut runner = with_ticket();
    let resolve = event(
        r#"{"id":"r-1","type":"rally.ticket.resolve","member":"m","at":"2026-11-26T08:30:00Z","data":{"ticket":"T-1"}}"#,
    );
    let applied = runner
        .apply_event(&resolve, t("2026-11-26T08:30:00Z"))
        .unwrap();
    assert!(matches!(applied, Applied::Accepted(_)), "{applied:?}");
    runner.commit().unwrap();
    let tickets = runner.all_tickets().unwrap();
    assert_eq!(tickets[0].status, rally::tickets::TicketStatus::Resolved);
}

const CAMPAIGN: &str = r#"
campaigns:
  - id: launch
    timezone: UTC
    phases:
      - { name: warmup, start: "2026-11-26T00:00:00" }
      - { name: peak, start: "2026-11-26T12:00:00" }
    end: "2026-11-27T00:00:00"
    budget: { points: 1000 }
rules:
  - id: buy
    trigger: { event: purchase }
    during: { campaign: launch }
    actions:
      - points: 10
"#;

/// The campaign's row as stored, and as the runner holds it.
fn campaign_row(runner: &rally::runner::Runner) -> (serde_json::Value, serde_json::Value) {
    let stored = runner
        .store()
        .meta_get(&format!("{}launch", rally::runner::CAMPAIGN_META))
        .unwrap()
        .expect("the campaign's row is stored");
    let held = serde_json::to_value(&runner.campaigns()["launch"]).unwrap();
    (serde_json::from_slice(&stored).unwrap(), held)
}

/// A campaign's row is written once per group for its awards, at the commit: the row
/// stored is the record after the group's last step, awards before and after a phase
/// change in the same group included, and a group that is not committed leaves no
/// award behind to write with the next one.
#[test]
fn a_groups_awards_in_a_campaign_are_stored_with_its_phase_changes_at_the_commit() {
    let mut runner = runner(CAMPAIGN);
    runner.arm(t("2026-11-25T23:00:00Z")).unwrap();
    runner.commit().unwrap();
    let purchase = |n: u32, at: &str| {
        event(&format!(
            r#"{{"id":"p-{n}","type":"purchase","member":"m-{n}","at":"{at}","data":{{"amount":5}}}}"#
        ))
    };
    for (n, at) in [
        (1, "2026-11-26T08:00:00Z"),
        (2, "2026-11-26T11:00:00Z"),
        // The peak starts between these two, in the same group.
        (3, "2026-11-26T13:00:00Z"),
    ] {
        runner.apply_event(&purchase(n, at), t(at)).unwrap();
    }
    assert!(
        runner
            .store()
            .meta_get(&format!("{}launch", rally::runner::CAMPAIGN_META))
            .unwrap()
            .is_none_or(|row| !String::from_utf8_lossy(&row).contains("30")),
        "nothing of the group is stored before its commit"
    );
    runner.commit().unwrap();
    let (stored, held) = campaign_row(&runner);
    assert_eq!(stored, held);
    assert_eq!(stored["points_awarded"], 30);
    assert_eq!(
        stored["transitions"].as_array().map(Vec::len),
        Some(2),
        "warmup and peak: {stored}"
    );

    // A group with an award that never commits: the next group's commit writes the
    // record as it was reloaded, with that group's own award only.
    runner
        .apply_event(
            &purchase(4, "2026-11-26T14:00:00Z"),
            t("2026-11-26T14:00:00Z"),
        )
        .unwrap();
    runner
        .store()
        .faults()
        .inject(rally::store::Fault::Commit, 1);
    assert!(runner.commit().is_err());
    runner
        .apply_event(
            &purchase(5, "2026-11-26T15:00:00Z"),
            t("2026-11-26T15:00:00Z"),
        )
        .unwrap();
    runner.commit().unwrap();
    let (stored, held) = campaign_row(&runner);
    assert_eq!(stored, held);
    assert_eq!(
        stored["points_awarded"], 40,
        "p-4's group was dropped: {stored}"
    );
}

/// What the journal records of a queued message is the row the outbox holds, number
/// and all — for a rule's `send` and for an escalation's notification alike (the two
/// are queued by different paths of the runner).
#[test]
fn journaled_messages_carry_the_numbers_the_outbox_gave_them() {
    let mut runner = runner(RULES);
    runner.keep_journal();
    let at = t("2026-11-26T08:00:00Z");
    let feedback =
        event(r#"{"id":"f-1","type":"feedback","member":"m","at":"2026-11-26T08:00:00Z"}"#);
    runner.apply_event(&feedback, at).unwrap();
    runner.run_due(at + Duration::hours(3)).unwrap();
    runner.commit().unwrap();

    let journaled: Vec<(u64, Option<String>, String)> = runner
        .take_journal()
        .into_iter()
        .flat_map(|step| step.messages)
        .map(|row| (row.seq, row.rule, row.to))
        .collect();
    let stored: Vec<(u64, Option<String>, String)> = runner
        .store()
        .outbox_scan(0, 10)
        .unwrap()
        .into_iter()
        .map(|(seq, bytes)| {
            let row = rally::outbox::OutboxRow::decode(seq, &bytes).unwrap();
            (row.seq, row.rule, row.to)
        })
        .collect();
    // Three rows: the apology and the first level's notice (queued by the step), and,
    // the deadline passed, the second level's (queued by the SLA timer).
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(journaled, stored);
    assert_eq!(
        stored.iter().map(|(seq, ..)| *seq).collect::<Vec<_>>(),
        [stored[0].0, stored[0].0 + 1, stored[0].0 + 2],
        "numbered one after the other"
    );
}
