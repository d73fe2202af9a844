//! Milestones: the order they run in when one change crosses several, and how often
//! each pays.

use super::{ev, rule_set, Sim};

/// Milestone rules on six counters that one `purchase` all crosses, with priorities
/// in the reverse of the counters' names' order.
const SIX_COUNTERS: &str = r#"
counters:
  - { id: c1, on: purchase }
  - { id: c2, on: purchase }
  - { id: c3, on: purchase }
  - { id: c4, on: purchase }
  - { id: c5, on: purchase }
  - { id: c6, on: purchase }
rules:
  - { id: r1, priority: 1, trigger: { milestone: c1, at: 1 }, actions: [ { points: { amount: 1, reason: r1 } } ] }
  - { id: r2, priority: 2, trigger: { milestone: c2, at: 1 }, actions: [ { points: { amount: 1, reason: r2 } } ] }
  - { id: r3, priority: 3, trigger: { milestone: c3, at: 1 }, actions: [ { points: { amount: 1, reason: r3 } } ] }
  - { id: r4, priority: 4, trigger: { milestone: c4, at: 1 }, actions: [ { points: { amount: 1, reason: r4 } } ] }
  - { id: r5, priority: 5, trigger: { milestone: c5, at: 1 }, actions: [ { points: { amount: 1, reason: r5 } } ] }
  - { id: r6, priority: 6, trigger: { milestone: c6, at: 1 }, actions: [ { points: { amount: 1, reason: r6 } } ] }
"#;

#[test]
fn milestones_crossed_by_one_change_run_in_rule_order_not_counter_order() {
    let rules = rule_set(SIX_COUNTERS);
    let mut sim = Sim::new(&rules);
    let outcome = sim.send(ev("e1", "purchase", "m", "2026-11-05T00:00:00Z", "{}"));
    let order: Vec<&str> = outcome.ledger.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(order, ["r6", "r5", "r4", "r3", "r2", "r1"]);
}

#[test]
fn the_daily_cap_goes_to_the_higher_priority_milestone_when_one_purchase_crosses_two() {
    let rules = rule_set(
        r#"
settings: { points: { daily_cap: 50 } }
rules:
  - id: first-purchase
    trigger: { milestone: purchases, at: 1 }
    actions: [ { points: 50 } ]
  - id: big-spender
    priority: 10
    trigger: { milestone: spend_total, at: 100 }
    actions: [ { points: 50 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    let outcome = sim.send(ev(
        "e1",
        "purchase",
        "m",
        "2026-11-05T00:00:00Z",
        r#"{"amount":150}"#,
    ));
    let paid: Vec<(&str, i64)> = outcome
        .ledger
        .iter()
        .map(|e| (e.rule.as_str(), e.amount))
        .collect();
    assert_eq!(paid, [("big-spender", 50), ("first-purchase", 0)]);
}
