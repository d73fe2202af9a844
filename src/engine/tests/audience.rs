//! Global triggers and members who left; what templates see of `left`.

use super::*;

const NIGHTLY: &str = r#"
rules:
  - id: nightly
    trigger: { schedule: "0 0 * * *" }
    audience: AUDIENCE
    actions: [ { points: 1 } ]
"#;

fn global_turn(audience: &str, member: Member) -> Outcome {
    let rules = rule_set(&NIGHTLY.replace("AUDIENCE", audience));
    let budget_used = Default::default();
    let ctx = Context {
        rules: &rules,
        now: "2026-11-02T00:00:00Z".parse().unwrap(),
        budget_used: &budget_used,
        rewards: &Default::default(),
        next_ticket: 1,
        shares: None,
        random_key: Default::default(),
    };
    let input = Input::Global {
        member: &member.id.clone(),
        rule: "nightly",
    };
    step(&ctx, Some(member), &input)
}

fn gone(id: &str) -> Member {
    let mut member = Member::new(id);
    member.left = true;
    member
}

#[test]
fn audience_all_skips_a_member_who_left() {
    let outcome = global_turn("all", gone("m"));
    assert!(outcome.firings.is_empty());
    assert_eq!(outcome.member.points, 0);
}

#[test]
fn an_audience_condition_skips_a_member_who_left_even_when_it_holds() {
    let outcome = global_turn("'member.points == 0'", gone("m"));
    assert!(outcome.firings.is_empty());
}

#[test]
fn audience_all_still_runs_for_a_member_who_did_not_leave() {
    let outcome = global_turn("all", Member::new("m"));
    assert_eq!(outcome.member.points, 1);
}

#[test]
fn an_audience_that_includes_left_runs_for_a_member_who_left() {
    let outcome = global_turn("{ include_left: true }", gone("m"));
    assert_eq!(outcome.member.points, 1);
}

#[test]
fn an_audience_that_includes_left_still_applies_its_condition() {
    let outcome = global_turn(
        "{ if: 'member.points > 10', include_left: true }",
        gone("m"),
    );
    assert!(outcome.firings.is_empty());
}

#[test]
fn templates_see_left_and_unsubscribed_as_booleans() {
    let rules = rule_set(
        r#"
templates:
  t: { body: "{% if member.left or member.unsubscribed %}gone{% else %}here{% endif %}" }
channels:
  console: { kind: log }
rules:
  - id: hello
    trigger: { event: checkin }
    actions: [ { send: { template: t, channel: console } } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    let outcome = sim.send(ev("e1", "checkin", "m", "2026-11-01T09:00:00Z", "{}"));
    assert_eq!(outcome.messages[0].body, "here");
}
