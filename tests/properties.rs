//! Properties of the whole pipeline (`rally::sim::simulate`) over random event streams:
//! duplicates change nothing, balances never go negative, output is deterministic.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use rally::rules::{self, RuleSet};

/// Points, a first-purchase bonus, a per-day limit, a conditional rule, deductions that
/// can exceed the balance, a daily cap, a tier ladder and a milestone on a tier.
const RULES: &str = r#"
settings:
  timezone: Asia/Shanghai
  points: { daily_cap: 60 }
tiers:
  by: points_lifetime
  levels:
    - { name: member, from: 0 }
    - { name: silver, from: 40 }
    - { name: gold, from: 150 }
counters:
  - id: posts_day
    on: [post]
    reset: daily
rules:
  - id: join-bonus
    trigger: { event: join }
    actions:
      - points: 10
  - id: daily-checkin
    trigger: { event: checkin }
    limit: { times: 1, per: day }
    actions:
      - points: 5
  - id: purchase-points
    trigger: { event: purchase }
    actions:
      - points: { amount: "event.data.amount / 10", reason: purchase }
  - id: first-purchase
    trigger: { milestone: purchases, at: 1 }
    actions:
      - points: 20
  - id: post-points
    trigger: { event: post }
    if: "member.counters.posts_day <= 3"
    actions:
      - points: 2
  - id: redeem
    trigger: { event: redeem }
    actions:
      - points: { amount: "-event.data.points", reason: redeemed }
  - id: fifth-post-fee
    trigger: { milestone: events.post, every: 5 }
    actions:
      - points: -7
  - id: gold
    trigger: { tier: gold }
    actions:
      - tag: gold
      - points: -15
"#;

const TYPES: [&str; 5] = ["join", "checkin", "purchase", "post", "redeem"];

fn rule_set() -> Arc<RuleSet> {
    let set = rules::from_sources(&[("rules.yaml", RULES)], &|_| None)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    Arc::new(set)
}

/// What a random event is made of: member, type, amount, minutes since the last one.
type Spec = (u8, usize, u32, u32);

fn spec() -> impl Strategy<Value = Spec> {
    (0u8..4, 0..TYPES.len(), 0u32..1500, 0u32..(24 * 60))
}

/// One JSON line; `at_minutes` counts from 2026-11-01T00:00:00Z.
fn line(id: &str, (member, kind, amount, _): Spec, at_minutes: u32) -> String {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap()
        + chrono::Duration::minutes(i64::from(at_minutes));
    let kind = TYPES[kind];
    let data = match kind {
        "purchase" => format!(r#","data":{{"amount":{}.5}}"#, amount),
        "redeem" => format!(r#","data":{{"points":{}}}"#, amount / 5),
        "join" => format!(r#","data":{{"name":"Member {member}"}}"#),
        _ => String::new(),
    };
    format!(
        r#"{{"id":"{id}","type":"{kind}","member":"m-{member}","at":"{}"{data}}}"#,
        at.to_rfc3339()
    )
}

/// The stream: ids `e-0`, `e-1`, … with non-decreasing times.
fn stream(specs: &[Spec]) -> Vec<(String, u32)> {
    let mut minutes = 0;
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            minutes += s.3;
            (line(&format!("e-{i}"), *s, minutes), minutes)
        })
        .collect()
}

fn simulate(rules: &Arc<RuleSet>, lines: &[String]) -> Value {
    let text = lines.join("\n");
    rally::sim::simulate(Arc::clone(rules), text.as_bytes(), None)
        .expect("simulation runs")
        .to_value()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_duplicate_event_never_changes_state(
        specs in prop::collection::vec(spec(), 1..40),
        copies in prop::collection::vec((any::<Index>(), spec()), 1..10),
    ) {
        let rules = rule_set();
        let original = stream(&specs);
        let lines: Vec<String> = original.iter().map(|(l, _)| l.clone()).collect();
        // Each copy reuses the id of an earlier event, with other content, and is
        // placed right after it so the clock does not move.
        let mut with_copies: Vec<Vec<String>> = lines.iter().map(|l| vec![l.clone()]).collect();
        for (index, other) in &copies {
            let i = index.index(original.len());
            with_copies[i].push(line(&format!("e-{i}"), *other, original[i].1));
        }
        let with_copies: Vec<String> = with_copies.into_iter().flatten().collect();

        let plain = simulate(&rules, &lines);
        let duplicated = simulate(&rules, &with_copies);
        prop_assert_eq!(&plain["members"], &duplicated["members"]);
        prop_assert_eq!(&plain["ledger"], &duplicated["ledger"]);
        prop_assert_eq!(&plain["firings"], &duplicated["firings"]);
        prop_assert_eq!(&duplicated["rejected"], &Value::Array(vec![]));
    }

    #[test]
    fn balances_never_go_negative_and_the_ledger_adds_up(
        specs in prop::collection::vec(spec(), 1..60),
    ) {
        let rules = rule_set();
        let lines: Vec<String> = stream(&specs).into_iter().map(|(l, _)| l).collect();
        let doc = simulate(&rules, &lines);
        let mut running: std::collections::HashMap<&str, i64> = Default::default();
        for entry in doc["ledger"].as_array().unwrap() {
            let balance = entry["balance"].as_i64().unwrap();
            prop_assert!(balance >= 0, "negative balance in {}", entry);
            let member = entry["member"].as_str().unwrap();
            let sum = running.entry(member).or_default();
            *sum += entry["amount"].as_i64().unwrap();
            prop_assert_eq!(*sum, balance, "ledger does not add up at {}", entry);
        }
        for (id, member) in doc["members"].as_object().unwrap() {
            let points = member["points"].as_i64().unwrap();
            prop_assert!(points >= 0, "{} has {} points", id, points);
            prop_assert_eq!(points, running.get(id.as_str()).copied().unwrap_or(0));
            prop_assert!(member["points_lifetime"].as_i64().unwrap() >= points);
        }
    }

    #[test]
    fn the_same_input_gives_byte_identical_output(
        specs in prop::collection::vec(spec(), 1..40),
    ) {
        let rules = rule_set();
        let lines: Vec<String> = stream(&specs).into_iter().map(|(l, _)| l).collect();
        let first = serde_json::to_string(&simulate(&rules, &lines)).unwrap();
        let second = serde_json::to_string(&simulate(&rule_set(), &lines)).unwrap();
        prop_assert_eq!(first, second);
    }
}
