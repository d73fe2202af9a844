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

/// Points earned and redeemed by event: `earn` and `redeem` carry `data.n`.
const EARN_AND_REDEEM: &str = r#"
rules:
  - id: earn
    trigger: { event: earn }
    actions: [ { points: "event.data.n" } ]
  - id: redeem
    trigger: { event: redeem }
    actions: [ { points: "-event.data.n" } ]
"#;

/// Sends `earn`/`redeem` events with their amounts, an hour apart.
fn earn_and_redeem(sim: &mut Sim, moves: &[(&str, i64)]) {
    earn_and_redeem_from(sim, 0, moves);
}

#[test]
fn a_milestone_at_pays_once_though_redeemed_points_cross_it_again() {
    let yaml = format!(
        "{EARN_AND_REDEEM}\n  - {{ id: hundred, trigger: {{ milestone: points, at: 100 }}, actions: [ {{ badge: hundred }} ] }}\n"
    );
    let rules = rule_set(&yaml);
    let mut sim = Sim::new(&rules);
    let moves = [
        ("earn", 100),
        ("redeem", 50),
        ("earn", 60),
        ("redeem", 80),
        ("earn", 90),
    ];
    earn_and_redeem(&mut sim, &moves);
    assert_eq!(sim.member("m").points, 120);
    assert_eq!(sim.fired("hundred"), 1);
}

#[test]
fn a_milestone_every_pays_each_multiple_once_on_a_falling_counter() {
    let yaml = format!(
        "{EARN_AND_REDEEM}\n  - {{ id: per-100, trigger: {{ milestone: points, every: 100 }}, actions: [ {{ tag: hundred }} ] }}\n"
    );
    let rules = rule_set(&yaml);
    let mut sim = Sim::new(&rules);
    earn_and_redeem(&mut sim, &[("earn", 150), ("redeem", 100), ("earn", 100)]);
    assert_eq!(sim.fired("per-100"), 1, "back to 150: 100 was paid already");
    earn_and_redeem_from(&mut sim, 3, &[("earn", 60)]);
    assert_eq!(
        sim.fired("per-100"),
        2,
        "210 reaches 200 for the first time"
    );
}

/// As [`earn_and_redeem`], numbering events from `first`.
fn earn_and_redeem_from(sim: &mut Sim, first: usize, moves: &[(&str, i64)]) {
    for (i, (kind, n)) in moves.iter().enumerate() {
        let i = first + i;
        let at = format!("2026-11-05T{:02}:00:00Z", i);
        sim.send(ev(
            &format!("e{i}"),
            kind,
            "m",
            &at,
            &format!(r#"{{"n":{n}}}"#),
        ));
    }
}

#[test]
fn a_milestone_at_on_a_weekly_counter_fires_again_next_week() {
    let rules = rule_set(
        r#"
counters:
  - { id: posts_week, on: post, reset: weekly }
rules:
  - id: three-posts
    trigger: { milestone: posts_week, at: 3 }
    actions: [ { points: 5 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    // Monday 2 and Monday 9 November 2026.
    for (i, day) in ["02", "02", "02", "03", "09", "09", "09"]
        .iter()
        .enumerate()
    {
        let at = format!("2026-11-{day}T{:02}:00:00Z", i);
        sim.send(ev(&format!("e{i}"), "post", "m", &at, "{}"));
    }
    assert_eq!(sim.fired("three-posts"), 2);
}

#[test]
fn a_streak_milestone_pays_again_for_a_new_streak() {
    let rules = rule_set(
        r#"
rules:
  - id: three-days
    trigger: { milestone: checkin_streak, at: 3 }
    actions: [ { points: 5 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    for (i, day) in ["02", "03", "04", "06", "07", "08"].iter().enumerate() {
        let at = format!("2026-11-{day}T09:00:00Z");
        sim.send(ev(&format!("e{i}"), "checkin", "m", &at, "{}"));
    }
    assert_eq!(sim.fired("three-days"), 2);
}
