//! `send.to` rendered as a template.

use super::*;

const MANAGER: &str = r#"
templates:
  t: { subject: "s", body: "b" }
channels:
  email: { kind: smtp, host: localhost, from: "club@shop.example" }
rules:
  - id: tell-manager
    trigger: { event: purchase }
    actions:
      - points: 1
      - send: { template: t, channel: email, to: "{{ member.attrs.manager_email }}" }
"#;

#[test]
fn send_to_is_rendered_with_the_member_in_scope() {
    let rules = rule_set(MANAGER);
    let mut sim = Sim::new(&rules);
    let data = r#"{"manager_email":" boss@shop.example "}"#;
    sim.send(ev("e0", "profile", "m", "2026-11-01T09:00:00Z", data));
    let outcome = sim.send(ev("e1", "purchase", "m", "2026-11-01T10:00:00Z", "{}"));
    assert_eq!(outcome.messages[0].to, "boss@shop.example");
}

#[test]
fn send_to_that_fails_to_render_fails_the_rule_and_changes_nothing() {
    let rules = rule_set(MANAGER);
    let mut sim = Sim::new(&rules);
    let outcome = sim.send(ev("e1", "purchase", "m", "2026-11-01T10:00:00Z", "{}"));
    assert!(outcome.messages.is_empty());
    assert_eq!(outcome.member.points, 0, "all or nothing");
    let failures = sim.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].starts_with(
            "tell-manager @ rules.yaml:7: rules.yaml:11:60: send \"to\": undefined value"
        ),
        "{failures:?}"
    );
}
