//! Exact money: spend, counters and computed points are decimals, not floats.

use super::{dec, ev, rule_set, Sim};

/// Sends `n` purchases of `amount`, a minute apart.
fn purchases(sim: &mut Sim, n: usize, amount: &str) {
    for i in 0..n {
        let at = format!("2026-11-05T10:{i:02}:00Z");
        let data = format!(r#"{{"amount":{amount}}}"#);
        sim.send(ev(&format!("e{i}"), "purchase", "m", &at, &data));
    }
}

#[test]
fn ten_purchases_of_a_tenth_reach_a_spend_milestone_at_one() {
    let rules = rule_set(
        r#"
rules:
  - id: spent-one
    trigger: { milestone: spend_total, at: 1 }
    actions: [ { badge: spent-one } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    purchases(&mut sim, 10, "0.1");
    assert_eq!(sim.member("m").counter("spend_total"), dec("1"));
    assert_eq!(sim.fired("spent-one"), 1);
    assert_eq!(sim.outcomes[9].firings.len(), 1, "on the tenth purchase");
}

#[test]
fn points_computed_from_a_decimal_spend_are_exact() {
    let rules = rule_set(
        r#"
rules:
  - id: ten-per-unit
    trigger: { milestone: purchases, at: 8 }
    actions: [ { points: { amount: "member.spend_total * 10" } } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    purchases(&mut sim, 8, "0.1");
    assert_eq!(sim.member("m").points, 8);
}

#[test]
fn a_milestone_every_tenth_counts_exact_multiples() {
    let rules = rule_set(
        r#"
counters:
  - { id: km, on: run, add: "event.data.km" }
rules:
  - id: each-tenth
    trigger: { milestone: km, every: 0.1 }
    actions: [ { points: 1 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    for i in 0..3 {
        let at = format!("2026-11-05T10:{i:02}:00Z");
        sim.send(ev(&format!("e{i}"), "run", "m", &at, r#"{"km":0.1}"#));
    }
    assert_eq!(sim.member("m").counter("km"), dec("0.3"));
    assert_eq!(sim.member("m").points, 3);
}

#[test]
fn a_tier_bound_is_compared_exactly() {
    let rules = rule_set(
        r#"
tiers:
  by: spend_total
  levels:
    - { name: member, from: 0 }
    - { name: silver, from: 0.3 }
"#,
    );
    let mut sim = Sim::new(&rules);
    purchases(&mut sim, 3, "0.1");
    assert_eq!(sim.member("m").tier.as_deref(), Some("silver"));
}
