//! Delayed triggers (`after`): armed at the step's time, fired at the due time with the
//! rule's `if` evaluated then; none for a member who left; none for a rule gone.

use chrono::{DateTime, Duration, Utc};

use super::super::{after_timer_id, step, Context, Input, Outcome, AFTER};
use super::{ev, rule_set, Sim};
use crate::member::Member;
use crate::rules::RuleSet;
use crate::store::keys::TimerKey;

const RULES: &str = r#"
rules:
  - id: newcomer-coupon
    trigger: { after: { event: join, wait: 3d } }
    if: member.purchases == 0
    actions: [ { tag: coupon } ]
"#;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().into()
}

/// The step of the `after` timer `key` for `member` (armed by `event_id`).
fn pop(rules: &RuleSet, member: Member, rule: &str, event_id: &str, due: i64) -> Outcome {
    let budget_used = Default::default();
    let now = DateTime::from_timestamp_millis(due).unwrap();
    let ctx = Context {
        rules,
        now,
        budget_used: &budget_used,
        rewards: &Default::default(),
        next_ticket: 1,
        shares: None,
        random_key: Default::default(),
    };
    let id = member.id.clone();
    let input = Input::After {
        member: &id,
        rule,
        event_id,
        due,
    };
    step(&ctx, Some(member), &input)
}

#[test]
fn a_matching_event_arms_one_timer_due_wait_after_the_step_time() {
    let rules = rule_set(RULES);
    let mut sim = Sim::new(&rules);
    let joined = sim.send(ev("e1", "join", "m", "2026-03-01T10:00:00Z", "{}"));
    let due = (at("2026-03-01T10:00:00Z") + Duration::days(3)).timestamp_millis();
    assert_eq!(
        joined.timers_set,
        [(
            TimerKey::new(due, AFTER, after_timer_id("m", "newcomer-coupon", "e1")),
            Vec::new()
        )]
    );
    assert!(joined.firings.is_empty());
    let other = sim.send(ev("e2", "post", "m", "2026-03-01T11:00:00Z", "{}"));
    assert!(other.timers_set.iter().all(|(k, _)| k.kind != AFTER));
}

#[test]
fn the_timer_runs_the_rule_with_its_if_evaluated_at_firing_time() {
    let rules = rule_set(RULES);
    let mut sim = Sim::new(&rules);
    sim.send(ev("j1", "join", "buyer", "2026-03-01T10:00:00Z", "{}"));
    sim.send(ev("j2", "join", "browser", "2026-03-01T10:00:00Z", "{}"));
    // The `if` held when they joined; the buyer buys before the wait is over.
    sim.send(ev(
        "p1",
        "purchase",
        "buyer",
        "2026-03-02T10:00:00Z",
        r#"{"amount":10}"#,
    ));
    let due = (at("2026-03-01T10:00:00Z") + Duration::days(3)).timestamp_millis();
    let buyer = pop(
        &rules,
        sim.members["buyer"].clone(),
        "newcomer-coupon",
        "j1",
        due,
    );
    assert!(buyer.firings.is_empty());
    assert!(!buyer.member.tags.contains("coupon"));
    let browser = pop(
        &rules,
        sim.members["browser"].clone(),
        "newcomer-coupon",
        "j2",
        due,
    );
    assert_eq!(browser.firings.len(), 1);
    let firing = &browser.firings[0];
    assert_eq!(
        (firing.rule.as_str(), firing.trigger.as_str(), firing.at),
        (
            "newcomer-coupon",
            "after",
            DateTime::from_timestamp_millis(due).unwrap()
        )
    );
    assert!(browser.member.tags.contains("coupon"));
    // Firing arms nothing more: once per matching event.
    assert!(browser.timers_set.iter().all(|(k, _)| k.kind != AFTER));
}

#[test]
fn a_member_who_left_gets_none() {
    let rules = rule_set(
        r#"
rules:
  - id: follow-up
    trigger: { after: { event: [join, leave], wait: 1h } }
    actions: [ { tag: followed } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("j", "join", "m", "2026-03-01T10:00:00Z", "{}"));
    let left = sim.send(ev("l", "leave", "m", "2026-03-01T10:30:00Z", "{}"));
    // Leaving arms nothing, even for a rule that names `leave`.
    assert!(left.timers_set.iter().all(|(k, _)| k.kind != AFTER));
    let due = at("2026-03-01T11:00:00Z").timestamp_millis();
    let popped = pop(&rules, sim.members["m"].clone(), "follow-up", "j", due);
    assert!(popped.firings.is_empty());
    assert!(!popped.member.tags.contains("followed"));
}

#[test]
fn a_rule_removed_before_the_timer_pops_does_nothing() {
    let rules = rule_set(RULES);
    let mut sim = Sim::new(&rules);
    sim.send(ev("j", "join", "m", "2026-03-01T10:00:00Z", "{}"));
    let member = sim.members["m"].clone();
    let reloaded = rule_set(
        r#"
rules:
  - id: newcomer-coupon
    trigger: { event: post }
    actions: [ { tag: coupon } ]
"#,
    );
    let due = at("2026-03-04T10:00:00Z").timestamp_millis();
    // Gone, or no longer an `after` rule: nothing runs.
    for rules in [&rule_set("rules: []"), &reloaded] {
        let popped = pop(rules, member.clone(), "newcomer-coupon", "j", due);
        assert!(popped.firings.is_empty());
        assert!(popped.failures.is_empty());
        assert!(!popped.member.tags.contains("coupon"));
    }
}
