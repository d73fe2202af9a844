//! All or nothing for rules whose snapshot keeps only what they touch
//! (`engine::snapshot`): awards with tags, untags and badges.

use super::{ev, rule_set, Sim};
use crate::member::{Member, MAX_BADGES, MAX_NAME_BYTES, MAX_TAGS};

fn rules_with(actions: &str) -> crate::rules::RuleSet {
    rule_set(&format!(
        r#"
rules:
  - id: welcome
    trigger: {{ event: checkin }}
    actions: {actions}
"#
    ))
}

#[test]
fn a_tag_name_over_the_bound_takes_back_the_rules_award_and_its_other_marks() {
    let long = "x".repeat(MAX_NAME_BYTES + 1);
    let rules = rules_with(&format!(
        "[ {{ points: 5 }}, {{ badge: early }}, {{ untag: newcomer }}, {{ tag: {long} }} ]"
    ));
    let mut sim = Sim::new(&rules);
    let mut member = Member::new("m");
    member.tags.insert("newcomer".into());
    sim.members.insert("m".into(), member);
    sim.send(ev("e1", "checkin", "m", "2026-11-01T09:00:00Z", "{}"));
    let failures = sim.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("bytes in a tag or badge name, over the limit of 128"),
        "{failures:?}"
    );
    let m = sim.member("m");
    assert_eq!(m.points, 0);
    assert_eq!(m.points_lifetime, 0);
    assert!(m.badges.is_empty(), "{:?}", m.badges);
    assert_eq!(m.tags.iter().collect::<Vec<_>>(), ["newcomer"]);
    assert_eq!(sim.fired("welcome"), 0);
}

#[test]
fn a_badge_past_the_count_bound_fails_but_a_member_over_the_tag_bound_may_lose_one() {
    let rules = rules_with("[ { points: 5 }, { untag: t0 }, { badge: one-more } ]");
    let mut sim = Sim::new(&rules);
    let mut member = Member::new("m");
    member.badges = (0..MAX_BADGES).map(|i| format!("b{i}")).collect();
    member.tags = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
    sim.members.insert("m".into(), member);
    sim.send(ev("e1", "checkin", "m", "2026-11-01T09:00:00Z", "{}"));
    let failures = sim.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("1001 badges, over the limit of 1000"),
        "{failures:?}"
    );
    let m = sim.member("m");
    assert_eq!((m.points, m.badges.len()), (0, MAX_BADGES));
    assert!(m.tags.contains("t0"), "the untag is taken back too");

    let rules = rules_with("[ { points: 5 }, { untag: t0 } ]");
    let mut sim2 = Sim::new(&rules);
    sim2.members.insert("m".into(), sim.member("m").clone());
    sim2.send(ev("e2", "checkin", "m", "2026-11-01T10:00:00Z", "{}"));
    assert_eq!(sim2.failures(), Vec::<String>::new());
    let m = sim2.member("m");
    assert_eq!((m.points, m.tags.len()), (5, MAX_TAGS));
}
