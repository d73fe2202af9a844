//! A counter that resets reads 0 in a new member-local period, even before its next
//! event: in expressions, tier measures, templates and the view.

use chrono::{DateTime, Utc};

use super::{dec, ev, rule_set, Sim};
use crate::engine::{step, Context, Input};
use crate::member::Member;
use crate::rules::RuleSet;

const MONTHLY: &str = r#"
settings: { timezone: Asia/Shanghai }
counters:
  - { id: posts_month, on: post, reset: monthly }
rules:
  - id: monthly-report
    trigger: { schedule: "0 9 1 * *" }
    audience: all
    actions:
      - set: { seen_posts: { expr: "member.counters.posts_month" } }
"#;

/// A member who posted twice in October 2026.
fn posted_in_october(rules: &RuleSet) -> Member {
    let mut sim = Sim::new(rules);
    sim.send(ev("e1", "post", "m", "2026-10-10T10:00:00+08:00", "{}"));
    sim.send(ev("e2", "post", "m", "2026-10-11T10:00:00+08:00", "{}"));
    let member = sim.member("m").clone();
    assert_eq!(member.counter("posts_month"), dec("2"));
    member
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// One member's share of the schedule rule at `now`.
fn scheduled(rules: &RuleSet, member: Member, now: DateTime<Utc>) -> Member {
    let budget_used = Default::default();
    let ctx = Context {
        rules,
        now,
        budget_used: &budget_used,
        rewards: &Default::default(),
        next_ticket: 1,
        shares: None,
        random_key: Default::default(),
    };
    let input = Input::Global {
        member: "m",
        rule: "monthly-report",
    };
    step(&ctx, Some(member), &input).member
}

#[test]
fn a_monthly_counter_from_october_reads_zero_in_a_december_schedule_step() {
    let rules = rule_set(MONTHLY);
    let member = posted_in_october(&rules);
    let after = scheduled(&rules, member, utc("2026-12-01T01:00:00Z"));
    assert_eq!(after.attrs["seen_posts"], serde_json::json!(0));
    assert_eq!(after.counter("posts_month"), dec("0"));
}

#[test]
fn a_monthly_counter_still_reads_its_value_within_its_month() {
    let rules = rule_set(MONTHLY);
    let member = posted_in_october(&rules);
    let after = scheduled(&rules, member, utc("2026-10-20T01:00:00Z"));
    assert_eq!(after.attrs["seen_posts"], serde_json::json!(2));
}

#[test]
fn the_view_at_a_december_now_shows_an_october_monthly_counter_as_zero() {
    let rules = rule_set(MONTHLY);
    let member = posted_in_october(&rules);
    let view = member.view_at(&rules, utc("2026-12-05T00:00:00Z"));
    assert_eq!(view["counters"]["posts_month"], serde_json::json!(0));
    let october = member.view_at(&rules, utc("2026-10-31T00:00:00Z"));
    assert_eq!(october["counters"]["posts_month"], serde_json::json!(2));
}

#[test]
fn the_period_is_the_members_local_month() {
    let rules = rule_set(MONTHLY);
    let member = posted_in_october(&rules);
    // 31 Oct 23:00 UTC is already 1 November in Shanghai.
    let view = member.view_at(&rules, utc("2026-10-31T23:00:00Z"));
    assert_eq!(view["counters"]["posts_month"], serde_json::json!(0));
}

#[test]
fn a_tier_measured_on_a_monthly_counter_drops_in_a_new_month() {
    let yaml = format!(
        "{MONTHLY}\ntiers:\n  by: posts_month\n  levels:\n    - {{ name: quiet, from: 0 }}\n    - {{ name: active, from: 2 }}\n"
    );
    let rules = rule_set(&yaml);
    let member = posted_in_october(&rules);
    assert_eq!(member.tier.as_deref(), Some("active"));
    let after = scheduled(&rules, member, utc("2026-12-01T01:00:00Z"));
    assert_eq!(after.tier.as_deref(), Some("quiet"));
}

#[test]
fn a_message_in_a_new_month_renders_an_earlier_months_counter_as_zero() {
    let yaml = MONTHLY.replace(
        "      - set: { seen_posts: { expr: \"member.counters.posts_month\" } }",
        "      - send: { template: report, channel: console }",
    ) + "templates:\n  report: { body: \"{{ member.counters.posts_month }} posts\" }\nchannels:\n  console: { kind: log }\n";
    let rules = rule_set(&yaml);
    let member = posted_in_october(&rules);
    let budget_used = Default::default();
    let ctx = Context {
        rules: &rules,
        now: utc("2026-12-01T01:00:00Z"),
        budget_used: &budget_used,
        rewards: &Default::default(),
        next_ticket: 1,
        shares: None,
        random_key: Default::default(),
    };
    let input = Input::Global {
        member: "m",
        rule: "monthly-report",
    };
    let outcome = step(&ctx, Some(member), &input);
    let bodies: Vec<&str> = outcome.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["0 posts"]);
}
