//! Operator controls: manual adjustments (`rally.points`), awards exempt from the
//! daily cap (`cap: false`) and transactional messages (`kind: transactional`).

use super::*;
use crate::engine::{refuse_adjustment, Refusal, ADJUSTMENT_RULE};
use crate::outbox::Status;

const LADDER: &str = r#"
settings: { points: { daily_cap: 10 } }
tiers:
  by: points
  levels:
    - { name: member, from: 0 }
    - { name: silver, from: 100 }
rules:
  - id: post
    trigger: { event: post }
    actions: [ { points: 10 } ]
  - id: silver
    trigger: { tier: silver }
    actions: [ { badge: silver } ]
"#;

fn adjustment(id: &str, member: &str, at: &str, amount: i64) -> Event {
    let data = format!(r#"{{"amount":{amount},"reason":"goodwill","operator":"ana"}}"#);
    ev(id, "rally.points", member, at, &data)
}

#[test]
fn an_adjustment_is_recorded_with_its_reason_and_operator_past_the_daily_cap() {
    let rules = rule_set(LADDER);
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-05T01:00:00Z", "{}"));
    let o = sim.send(adjustment("adj-1", "m", "2026-11-05T02:00:00Z", 150));
    let entry = &o.ledger[0];
    assert_eq!((entry.amount, entry.balance), (150, 160));
    assert_eq!(entry.reason, "goodwill");
    assert_eq!(entry.operator.as_deref(), Some("ana"));
    assert_eq!(entry.rule, ADJUSTMENT_RULE);
    assert_eq!(entry.event.as_deref(), Some("adj-1"));
    assert_eq!(entry.clipped_by, None, "the daily cap never applies");
}

#[test]
fn an_adjustment_moves_tiers_like_any_change_of_points() {
    let rules = rule_set(LADDER);
    let mut sim = Sim::new(&rules);
    sim.send(ev("e0", "join", "m", "2026-11-05T00:00:00Z", "{}"));
    sim.send(adjustment("adj-1", "m", "2026-11-05T02:00:00Z", 100));
    assert_eq!(sim.member("m").tier.as_deref(), Some("silver"));
    assert_eq!(sim.member("m").badges, ["silver"]);
}

#[test]
fn an_adjustment_is_no_activity() {
    let rules = rule_set(LADDER);
    let mut sim = Sim::new(&rules);
    sim.send(ev("e0", "join", "m", "2026-11-05T00:00:00Z", "{}"));
    sim.send(adjustment("adj-1", "m", "2026-11-09T00:00:00Z", 5));
    let last = sim.member("m").last_active.map(crate::member::rfc3339);
    assert_eq!(last.as_deref(), Some("2026-11-05T00:00:00Z"));
}

#[test]
fn a_deduction_past_the_balance_is_refused_with_the_balance() {
    let rules = rule_set(LADDER);
    let mut sim = Sim::new(&rules);
    sim.send(adjustment("adj-1", "m", "2026-11-05T02:00:00Z", 120));
    let event = adjustment("adj-2", "m", "2026-11-05T03:00:00Z", -300);
    let refusal = refuse_adjustment(Some(sim.member("m")), &event);
    assert_eq!(
        refusal,
        Some(Refusal::Insufficient {
            balance: 120,
            deduction: 300
        })
    );
    assert_eq!(
        refusal.map(|r| r.to_string()).as_deref(),
        Some("insufficient points: balance 120, deduction 300")
    );
    // Driven without the runner's check, the step still changes no points.
    let o = sim.send(event);
    assert!(o.ledger.is_empty());
    assert_eq!(o.member.points, 120);
    assert_eq!(sim.failures().len(), 1);
}

#[test]
fn an_adjustment_to_an_unknown_member_is_refused() {
    let event = adjustment("adj-1", "nobody", "2026-11-05T02:00:00Z", 5);
    assert_eq!(
        refuse_adjustment(None, &event),
        Some(Refusal::UnknownMember("nobody".into()))
    );
}

#[test]
fn an_adjustment_without_reason_or_operator_is_a_malformed_event() {
    for (data, field) in [
        (r#"{"reason":"r","operator":"o"}"#, "data.amount"),
        (r#"{"amount":0,"reason":"r","operator":"o"}"#, "data.amount"),
        (
            r#"{"amount":1.5,"reason":"r","operator":"o"}"#,
            "data.amount",
        ),
        (r#"{"amount":5,"reason":" ","operator":"o"}"#, "data.reason"),
        (r#"{"amount":5,"reason":"r"}"#, "data.operator"),
    ] {
        let line = format!(
            r#"{{"id":"a","type":"rally.points","member":"m","at":"2026-11-05T00:00:00Z","data":{data}}}"#
        );
        let error = event::parse_line(&line, AtPolicy::Required).unwrap_err();
        assert_eq!(error.field, field, "{data}: {error}");
    }
}

#[test]
fn an_award_with_cap_false_is_not_clipped_and_does_not_use_up_the_cap() {
    let rules = rule_set(
        r#"
settings: { points: { daily_cap: 10 } }
rules:
  - id: post
    trigger: { event: post }
    actions: [ { points: 8 } ]
  - id: prize
    trigger: { event: prize }
    actions: [ { points: { amount: 50, cap: false } } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-05T01:00:00Z", "{}"));
    let o = sim.send(ev("e2", "prize", "m", "2026-11-05T02:00:00Z", "{}"));
    assert_eq!(o.ledger[0].amount, 50);
    assert_eq!(o.ledger[0].clipped_by, None);
    let o = sim.send(ev("e3", "post", "m", "2026-11-05T03:00:00Z", "{}"));
    assert_eq!(o.ledger[0].amount, 2, "the prize used none of the day's 10");
    assert_eq!(sim.member("m").points, 60);
}

const MESSAGES: &str = r#"
settings:
  timezone: Asia/Shanghai
  messaging: { quiet_hours: "22:00-08:00", max_per_day: 1 }
templates:
  code: { subject: "Your code", body: "ABC-123" }
  promo: { subject: "Sale", body: "50% off" }
channels:
  hook: { kind: webhook, url: "http://localhost:1/hook" }
rules:
  - id: promo
    trigger: { event: promo }
    actions: [ { send: { template: promo, channel: hook } } ]
  - id: redeemed
    trigger: { event: redeem }
    actions: [ { send: { template: code, channel: hook, kind: transactional } } ]
"#;

#[test]
fn a_transactional_message_skips_quiet_hours_and_max_per_day() {
    let rules = rule_set(MESSAGES);
    let mut sim = Sim::new(&rules);
    // 10:00 Shanghai: the promo uses up the day's one message.
    let o = sim.send(ev("e1", "promo", "m", "2026-11-05T02:00:00Z", "{}"));
    assert_eq!(o.messages[0].status, Status::Pending);
    // 23:30 Shanghai: quiet hours, and the day is used up.
    let o = sim.send(ev("e2", "redeem", "m", "2026-11-05T15:30:00Z", "{}"));
    let row = &o.messages[0];
    assert_eq!(row.status, Status::Pending, "neither deferred nor capped");
    assert!(!row.marketing);
    assert_eq!(crate::member::rfc3339(row.due), "2026-11-05T15:30:00Z");
}

#[test]
fn a_transactional_message_counts_against_no_cap() {
    let rules = rule_set(MESSAGES);
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "redeem", "m", "2026-11-05T02:00:00Z", "{}"));
    let o = sim.send(ev("e2", "promo", "m", "2026-11-05T03:00:00Z", "{}"));
    assert_eq!(
        o.messages[0].status,
        Status::Pending,
        "the promo is the first"
    );
}

#[test]
fn a_transactional_message_reaches_a_member_who_unsubscribed_or_left() {
    let rules = rule_set(MESSAGES);
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "unsubscribe", "m", "2026-11-05T02:00:00Z", "{}"));
    sim.send(ev("e2", "leave", "m", "2026-11-05T02:10:00Z", "{}"));
    let o = sim.send(ev("e3", "promo", "m", "2026-11-05T03:00:00Z", "{}"));
    assert_eq!(o.messages[0].status, Status::Suppressed);
    // A redemption code is no marketing: the member still needs it.
    let o = sim.send(ev("e4", "redeem", "m", "2026-11-05T03:10:00Z", "{}"));
    assert_eq!(o.messages[0].status, Status::Pending);
}
