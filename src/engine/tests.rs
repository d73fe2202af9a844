//! The step as a specification: one behaviour per test, rule sets written as YAML,
//! no disk, no clock.

mod after;
mod audience;
mod board_close;
mod send_to;
mod snapshots;

use chrono::{DateTime, Utc};

use super::{step, Context, Input, Outcome};
use crate::event::{self, AtPolicy, Event};
use crate::member::Member;
use crate::rules::{self, RuleSet};

mod leaderboards;
mod milestones;
mod money;
mod operator;
mod periods;
mod points_expiry;

fn rule_set(yaml: &str) -> RuleSet {
    match rules::from_sources(&[("rules.yaml", yaml)], &|_| None) {
        Ok(set) => set,
        Err(errors) => panic!(
            "rule set does not load:\n{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// An exact decimal, as written.
fn dec(text: &str) -> crate::money::Decimal {
    text.parse().unwrap()
}

fn ev(id: &str, kind: &str, member: &str, at: &str, data: &str) -> Event {
    let line =
        format!(r#"{{"id":"{id}","type":"{kind}","member":"{member}","at":"{at}","data":{data}}}"#);
    event::parse_line(&line, AtPolicy::Required).unwrap()
}

/// Runs events in order for their members, as the runner would, and returns the
/// final state of `member` plus every outcome.
struct Sim<'a> {
    rules: &'a RuleSet,
    members: std::collections::HashMap<String, Member>,
    outcomes: Vec<Outcome>,
}

impl<'a> Sim<'a> {
    fn new(rules: &'a RuleSet) -> Self {
        Sim {
            rules,
            members: Default::default(),
            outcomes: Vec::new(),
        }
    }

    fn send(&mut self, event: Event) -> &Outcome {
        let now: DateTime<Utc> = event.at_utc();
        let budget_used = Default::default();
        let ctx = Context {
            rules: self.rules,
            now,
            budget_used: &budget_used,
            rewards: &Default::default(),
            next_ticket: 1,
            shares: None,
            random_key: Default::default(),
        };
        let before = event
            .member
            .as_ref()
            .and_then(|m| self.members.get(m))
            .cloned();
        let outcome = step(&ctx, before, &Input::Event(&event));
        self.members
            .insert(outcome.member.id.to_string(), outcome.member.clone());
        self.outcomes.push(outcome);
        self.outcomes.last().unwrap()
    }

    fn member(&self, id: &str) -> &Member {
        &self.members[id]
    }

    fn failures(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .flat_map(|o| o.failures.iter())
            .map(|f| format!("{} @ {}: {}", f.rule, f.at, f.error))
            .collect()
    }

    fn fired(&self, rule: &str) -> usize {
        self.outcomes
            .iter()
            .flat_map(|o| o.firings.iter())
            .filter(|f| f.rule == rule)
            .count()
    }
}

const CHECKIN_SHANGHAI: &str = r#"
settings: { timezone: Asia/Shanghai }
rules:
  - id: daily-checkin
    trigger: { event: checkin }
    limit: { times: 1, per: day }
    actions: [ { points: 5 } ]
"#;

#[test]
fn a_streak_counts_local_days_across_midnight_in_a_non_utc_zone() {
    let rules = rule_set(CHECKIN_SHANGHAI);
    let mut sim = Sim::new(&rules);
    // 23:30 and 00:10 Shanghai: the same UTC day, two local days.
    sim.send(ev("e1", "checkin", "m", "2026-11-01T15:30:00Z", "{}"));
    sim.send(ev("e2", "checkin", "m", "2026-11-01T16:10:00Z", "{}"));
    let m = sim.member("m");
    assert_eq!(m.counter("checkin_streak"), dec("2"));
    assert_eq!(m.points, 10);
}

#[test]
fn a_second_checkin_on_the_same_local_day_does_not_extend_the_streak() {
    let rules = rule_set(CHECKIN_SHANGHAI);
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "checkin", "m", "2026-11-01T01:00:00+08:00", "{}"));
    sim.send(ev("e2", "checkin", "m", "2026-11-01T23:00:00+08:00", "{}"));
    let m = sim.member("m");
    assert_eq!(m.counter("checkin_streak"), dec("1"));
    assert_eq!(m.points, 5, "limit: once per local day");
}

#[test]
fn a_missed_day_restarts_the_streak_but_keeps_the_best() {
    let rules = rule_set(CHECKIN_SHANGHAI);
    let mut sim = Sim::new(&rules);
    for (i, day) in ["01", "02", "03", "05"].iter().enumerate() {
        sim.send(ev(
            &format!("e{i}"),
            "checkin",
            "m",
            &format!("2026-11-{day}T09:00:00+08:00"),
            "{}",
        ));
    }
    let m = sim.member("m");
    assert_eq!(m.counter("checkin_streak"), dec("1"));
    assert_eq!(m.counter("checkin_best"), dec("3"));
}

#[test]
fn a_members_own_timezone_overrides_the_settings_zone() {
    let rules = rule_set(CHECKIN_SHANGHAI);
    let mut sim = Sim::new(&rules);
    sim.send(ev(
        "e0",
        "profile",
        "m",
        "2026-11-01T00:00:00Z",
        r#"{"timezone":"America/New_York"}"#,
    ));
    // 23:00 and 01:00 New York on consecutive days; in Shanghai both are 2 Nov.
    sim.send(ev("e1", "checkin", "m", "2026-11-02T04:00:00Z", "{}"));
    sim.send(ev("e2", "checkin", "m", "2026-11-02T06:00:00Z", "{}"));
    assert_eq!(sim.member("m").counter("checkin_streak"), dec("2"));
}

#[test]
fn built_in_effects_fill_the_profile_spend_and_event_counters() {
    let rules = rule_set("rules: []");
    let mut sim = Sim::new(&rules);
    sim.send(ev(
        "e1",
        "join",
        "m",
        "2026-11-01T00:00:00Z",
        r#"{"name":"Lin","email":"lin@example.com","tags":["wechat"],"other":1}"#,
    ));
    sim.send(ev(
        "e2",
        "purchase",
        "m",
        "2026-11-02T00:00:00Z",
        r#"{"amount":199.5}"#,
    ));
    sim.send(ev(
        "e3",
        "profile",
        "m",
        "2026-11-03T00:00:00Z",
        r#"{"city":"Hangzhou","name":null}"#,
    ));
    let m = sim.member("m");
    assert_eq!(m.attr_str("email"), Some("lin@example.com"));
    assert_eq!(
        m.attrs.get("other"),
        None,
        "join only copies profile fields"
    );
    assert_eq!(m.attr_str("name"), None, "null removes an attribute");
    assert_eq!(m.attr_str("city"), Some("Hangzhou"));
    assert!(m.tags.contains("wechat"));
    assert_eq!(m.counter("spend_total"), dec("199.5"));
    assert_eq!(m.counter("purchases"), dec("1"));
    assert_eq!(m.counter("events.purchase"), dec("1"));
    assert_eq!(m.counter("events.join"), dec("1"));
    assert!(m.joined_at.is_some());
}

#[test]
fn an_out_of_order_event_never_moves_last_active_backwards() {
    let rules = rule_set("rules: []");
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    sim.send(ev("e2", "post", "m", "2026-11-01T00:00:00Z", "{}"));
    assert_eq!(
        sim.member("m").last_active.unwrap().to_rfc3339(),
        "2026-11-05T00:00:00+00:00"
    );
}

#[test]
fn leave_and_unsubscribe_are_not_activity() {
    let rules = rule_set("rules: []");
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "leave", "m", "2026-11-05T00:00:00Z", "{}"));
    sim.send(ev("e2", "unsubscribe", "m", "2026-11-06T00:00:00Z", "{}"));
    let m = sim.member("m");
    assert_eq!(m.last_active, None);
    assert!(m.left && m.unsubscribed);
    sim.send(ev("e3", "post", "m", "2026-11-07T00:00:00Z", "{}"));
    assert!(!sim.member("m").left, "activity brings a member back");
}

#[test]
fn settings_activity_lists_the_types_that_count() {
    let rules = rule_set("settings: { activity: [checkin] }\nrules: []");
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    assert_eq!(sim.member("m").last_active, None);
    sim.send(ev("e2", "checkin", "m", "2026-11-06T00:00:00Z", "{}"));
    assert!(sim.member("m").last_active.is_some());
}

#[test]
fn an_event_trigger_with_a_list_matches_each_type() {
    let rules = rule_set(
        r#"
rules:
  - id: content
    trigger: { event: [post, comment] }
    actions: [ { points: 1 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    sim.send(ev("e2", "comment", "m", "2026-11-05T01:00:00Z", "{}"));
    sim.send(ev("e3", "share", "m", "2026-11-05T02:00:00Z", "{}"));
    assert_eq!(sim.member("m").points, 2);
}

#[test]
fn a_condition_decides_whether_the_rule_runs() {
    let rules = rule_set(
        r#"
rules:
  - id: big
    trigger: { event: purchase }
    if: "event.data.amount >= 100"
    actions: [ { tag: big-spender } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev(
        "e1",
        "purchase",
        "a",
        "2026-11-05T00:00:00Z",
        r#"{"amount":50}"#,
    ));
    sim.send(ev(
        "e2",
        "purchase",
        "b",
        "2026-11-05T00:00:00Z",
        r#"{"amount":150}"#,
    ));
    assert!(!sim.member("a").tags.contains("big-spender"));
    assert!(sim.member("b").tags.contains("big-spender"));
}

#[test]
fn points_from_an_expression_are_rounded_toward_zero() {
    let rules = rule_set(
        r#"
rules:
  - id: spend
    trigger: { event: purchase }
    actions: [ { points: { amount: "event.data.amount / 10", reason: purchase } } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    let o = sim.send(ev(
        "e1",
        "purchase",
        "m",
        "2026-11-05T00:00:00Z",
        r#"{"amount":199.0}"#,
    ));
    assert_eq!(o.ledger[0].amount, 19);
    assert_eq!(o.ledger[0].reason, "purchase");
    assert_eq!(o.ledger[0].balance, 19);
    assert_eq!(o.ledger[0].event.as_deref(), Some("e1"));
}

#[test]
fn the_daily_cap_clips_awards_and_the_ledger_says_so() {
    let rules = rule_set(
        r#"
settings: { points: { daily_cap: 12 } }
rules:
  - id: post
    trigger: { event: post }
    actions: [ { points: 5 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    for i in 0..4 {
        sim.send(ev(
            &format!("e{i}"),
            "post",
            "m",
            &format!("2026-11-05T0{i}:00:00Z"),
            "{}",
        ));
    }
    let ledger: Vec<_> = sim.outcomes.iter().flat_map(|o| o.ledger.clone()).collect();
    assert_eq!(
        ledger.iter().map(|l| l.amount).collect::<Vec<_>>(),
        [5, 5, 2, 0]
    );
    assert_eq!(ledger[2].requested, Some(5));
    assert_eq!(ledger[2].clipped_by.as_deref(), Some("daily_cap"));
    assert_eq!(sim.member("m").points, 12);
    // A new local day has a fresh cap.
    sim.send(ev("e9", "post", "m", "2026-11-06T00:00:00Z", "{}"));
    assert_eq!(sim.member("m").points, 17);
}

#[test]
fn a_deduction_past_zero_fails_changes_nothing_and_is_reported() {
    let rules = rule_set(
        r#"
rules:
  - id: earn
    trigger: { event: post }
    actions: [ { points: 10 } ]
  - id: redeem
    trigger: { event: redeem }
    actions:
      - tag: redeemed
      - points: { amount: "-event.data.points" }
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    let o = sim.send(ev(
        "e2",
        "redeem",
        "m",
        "2026-11-05T01:00:00Z",
        r#"{"points":11}"#,
    ));
    assert!(o.ledger.is_empty());
    assert_eq!(o.failures.len(), 1);
    assert!(
        o.failures[0].error.contains("below zero"),
        "{}",
        o.failures[0].error
    );
    assert_eq!(o.failures[0].at, "rules.yaml:6");
    let m = sim.member("m");
    assert_eq!(m.points, 10);
    assert!(!m.tags.contains("redeemed"), "the whole rule is undone");
    sim.send(ev(
        "e3",
        "redeem",
        "m",
        "2026-11-05T02:00:00Z",
        r#"{"points":10}"#,
    ));
    assert_eq!(sim.member("m").points, 0);
    assert_eq!(sim.member("m").points_lifetime, 10);
}

#[test]
fn a_failed_rule_gives_back_the_budget_it_used_and_no_more() {
    let rules = rule_set(
        r#"
campaigns:
  - id: launch
    phases: [ { name: on, start: "2026-11-01T00:00:00" } ]
    budget: { points: 1000 }
rules:
  - id: pays
    priority: 2
    trigger: { event: both }
    during: { campaign: launch }
    actions: [ { points: 5 } ]
  - id: fails
    priority: 1
    trigger: { event: [both, solo] }
    during: { campaign: launch }
    actions: [ { points: 10 }, { points: -1000 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    // Alone, the failing rule leaves no spend at all, not a zero.
    let o = sim.send(ev("e1", "solo", "m", "2026-11-05T00:00:00Z", "{}"));
    assert_eq!(o.failures.len(), 1, "{:?}", o.failures);
    assert!(o.budget_spent.is_empty(), "{:?}", o.budget_spent);
    // After a rule that paid, it gives back its own 10 and leaves the other's 5.
    let o = sim.send(ev("e2", "both", "m", "2026-11-05T01:00:00Z", "{}"));
    assert_eq!(o.failures.len(), 1, "{:?}", o.failures);
    assert_eq!(o.budget_spent.get("launch"), Some(&5));
    assert_eq!(sim.member("m").points, 5);
}

#[test]
fn a_failed_rule_takes_back_computed_awards_and_deductions_whole() {
    let rules = rule_set(
        r#"
settings:
  points: { daily_cap: 100, expire: { after: 30d } }
rules:
  - id: earn
    trigger: { event: earn }
    actions: [ { points: "event.data.n" } ]
  - id: swing
    trigger: { event: swing }
    actions:
      - points: "event.data.n"
      - points: "-event.data.take"
      - points: -1000
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "earn", "m", "2026-11-05T00:00:00Z", r#"{"n":30}"#));
    sim.send(ev("e2", "earn", "m", "2026-11-06T00:00:00Z", r#"{"n":20}"#));
    let before = sim.member("m").clone();
    let o = sim.send(ev(
        "e3",
        "swing",
        "m",
        "2026-11-06T01:00:00Z",
        r#"{"n":40,"take":35}"#,
    ));
    assert_eq!(o.failures.len(), 1, "{:?}", o.failures);
    assert!(o.ledger.is_empty(), "{:?}", o.ledger);
    let after = sim.member("m");
    assert_eq!(after.points, before.points);
    assert_eq!(after.points_lifetime, before.points_lifetime);
    assert_eq!(after.book.points_day, before.book.points_day);
    assert_eq!(after.book.points_lots, before.book.points_lots);
    // The day's total and the lots are as they were: the next award is capped and
    // spent as if the failed rule had never run.
    let o = sim.send(ev("e4", "earn", "m", "2026-11-06T02:00:00Z", r#"{"n":90}"#));
    assert_eq!(o.ledger[0].amount, 80, "100 a day, 20 of it used");
}

#[test]
fn tags_badges_and_set_change_the_member() {
    let rules = rule_set(
        r#"
rules:
  - id: a
    trigger: { event: post }
    actions:
      - tag: active
      - tag: newbie
      - untag: newbie
      - badge: poster
      - set: { level: 3, last_post: { expr: "event.id" } }
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    sim.send(ev("e2", "post", "m", "2026-11-06T00:00:00Z", "{}"));
    let m = sim.member("m");
    assert_eq!(m.tags.iter().collect::<Vec<_>>(), ["active"]);
    assert_eq!(m.badges, ["poster"], "a badge is awarded once");
    assert_eq!(m.attrs["level"], serde_json::json!(3));
    assert_eq!(m.attr_str("last_post"), Some("e2"));
}

#[test]
fn limits_count_per_member_local_period() {
    let rules = rule_set(
        r#"
rules:
  - id: weekly
    trigger: { event: post }
    limit: { times: 2, per: week }
    actions: [ { points: 1 } ]
  - id: monthly
    trigger: { event: post }
    limit: { times: 3, per: month }
    actions: [ { points: 10 } ]
  - id: once
    trigger: { event: post }
    limit: { times: 1, per: ever }
    actions: [ { points: 100 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    // Mon 2 Nov .. Sun 8 Nov is one week; 9 Nov starts the next, whose limit is
    // used up by the 10th (the 11th pays nothing).
    for (i, day) in ["02", "03", "04", "09", "10", "11"].iter().enumerate() {
        sim.send(ev(
            &format!("e{i}"),
            "post",
            "m",
            &format!("2026-11-{day}T12:00:00Z"),
            "{}",
        ));
    }
    assert_eq!(sim.fired("weekly"), 4);
    assert_eq!(sim.fired("monthly"), 3);
    assert_eq!(sim.fired("once"), 1);
    sim.send(ev("e9", "post", "m", "2026-12-01T12:00:00Z", "{}"));
    assert_eq!(sim.fired("monthly"), 4, "a new month");
}

#[test]
fn higher_priority_rules_run_first() {
    let rules = rule_set(
        r#"
rules:
  - id: low
    trigger: { event: post }
    actions: [ { set: { order: { expr: "if member.order == () { \"low\" } else { member.order + \",low\" }" } } } ]
  - id: high
    priority: 10
    trigger: { event: post }
    actions: [ { set: { order: "high" } } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    assert_eq!(sim.member("m").attr_str("order"), Some("high,low"));
}

#[test]
fn a_milestone_at_fires_once_when_reached() {
    let rules = rule_set(
        r#"
rules:
  - id: third
    trigger: { milestone: events.post, at: 3 }
    actions: [ { badge: three-posts } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    for i in 0..5 {
        sim.send(ev(
            &format!("e{i}"),
            "post",
            "m",
            "2026-11-05T00:00:00Z",
            "{}",
        ));
    }
    assert_eq!(sim.fired("third"), 1);
    assert_eq!(sim.outcomes[2].firings.len(), 1, "on the third post");
}

#[test]
fn a_milestone_every_fires_for_each_multiple_crossed() {
    let rules = rule_set(
        r#"
rules:
  - id: spend
    trigger: { event: purchase }
    actions: [ { points: { amount: "event.data.amount" } } ]
  - id: every-100
    trigger: { milestone: points_lifetime, every: 100 }
    actions: [ { tag: hundred } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev(
        "e1",
        "purchase",
        "m",
        "2026-11-05T00:00:00Z",
        r#"{"amount":90}"#,
    ));
    assert_eq!(sim.fired("every-100"), 0);
    sim.send(ev(
        "e2",
        "purchase",
        "m",
        "2026-11-05T01:00:00Z",
        r#"{"amount":20}"#,
    ));
    assert_eq!(sim.fired("every-100"), 1);
    sim.send(ev(
        "e3",
        "purchase",
        "m",
        "2026-11-05T02:00:00Z",
        r#"{"amount":200}"#,
    ));
    assert_eq!(sim.fired("every-100"), 3, "310 crossed 200 and 300");
}

#[test]
fn tier_changes_cascade_in_the_same_step() {
    let rules = rule_set(
        r#"
tiers:
  by: points_lifetime
  levels:
    - { name: member, from: 0 }
    - { name: silver, from: 100 }
    - { name: gold, from: 300 }
rules:
  - id: earn
    trigger: { event: purchase }
    actions: [ { points: { amount: "event.data.amount" } } ]
  - id: spend
    trigger: { event: redeem }
    actions: [ { set: { points_note: "spent" } } ]
  - id: gold
    trigger: { tier: gold }
    actions: [ { badge: gold } ]
  - id: up
    trigger: { tier: up }
    actions: [ { tag: climbed } ]
  - id: bonus-at-silver
    trigger: { tier: silver }
    actions: [ { points: 250 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e0", "join", "m", "2026-11-05T00:00:00Z", "{}"));
    assert_eq!(sim.member("m").tier.as_deref(), Some("member"));
    assert_eq!(sim.fired("up"), 0, "starting on the ladder is not a change");
    let o = sim.send(ev(
        "e1",
        "purchase",
        "m",
        "2026-11-05T01:00:00Z",
        r#"{"amount":100}"#,
    ));
    // 100 → silver → +250 → 350 → gold, all in one step.
    assert_eq!(o.member.tier.as_deref(), Some("gold"));
    assert_eq!(o.member.badges, ["gold"]);
    assert_eq!(sim.fired("up"), 2);
}

/// One change queues a milestone and a tier change; the milestone's rule raises the
/// counter again, queueing a second milestone, which runs after the tier change that
/// was queued before it (first in, first out), not before.
#[test]
fn cascades_run_in_the_order_they_were_caused() {
    let rules = rule_set(
        r#"
tiers:
  by: points_lifetime
  levels:
    - { name: member, from: 0 }
    - { name: silver, from: 100 }
rules:
  - id: earn
    trigger: { event: purchase }
    actions: [ { points: 100 } ]
  - id: at-100
    trigger: { milestone: points_lifetime, at: 100 }
    actions: [ { points: 5 } ]
  - id: at-105
    trigger: { milestone: points_lifetime, at: 105 }
    actions: [ { tag: past-105 } ]
  - id: silver
    trigger: { tier: silver }
    actions: [ { badge: silver } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e0", "join", "m", "2026-11-05T00:00:00Z", "{}"));
    let o = sim.send(ev("e1", "purchase", "m", "2026-11-05T01:00:00Z", "{}"));
    let order: Vec<&str> = o.firings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(order, ["earn", "at-100", "silver", "at-105"]);
}

#[test]
fn tier_down_fires_when_the_measure_falls() {
    let rules = rule_set(
        r#"
tiers:
  by: points
  levels:
    - { name: member, from: 0 }
    - { name: silver, from: 100 }
rules:
  - id: earn
    trigger: { event: purchase }
    actions: [ { points: 150 } ]
  - id: redeem
    trigger: { event: redeem }
    actions: [ { points: -100 } ]
  - id: down
    trigger: { tier: down }
    actions: [ { tag: demoted } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "purchase", "m", "2026-11-05T00:00:00Z", "{}"));
    sim.send(ev("e2", "redeem", "m", "2026-11-05T01:00:00Z", "{}"));
    let m = sim.member("m");
    assert_eq!(m.tier.as_deref(), Some("member"));
    assert!(m.tags.contains("demoted"));
}

#[test]
fn a_cascade_loop_is_reported_and_stopped() {
    let rules = rule_set(
        r#"
rules:
  - id: start
    trigger: { event: post }
    actions: [ { points: 1 } ]
  - id: feedback-loop
    trigger: { milestone: points, every: 1 }
    actions: [ { points: 1 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    let o = sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    assert!(
        o.failures
            .iter()
            .any(|f| f.rule == "feedback-loop" && f.error.contains("cascade loop")),
        "{:?}",
        o.failures
    );
    assert!(o.member.points > 1 && o.member.points < 1000);
}

#[test]
fn a_script_that_loops_forever_fails_its_rule_and_others_still_run() {
    let rules = rule_set(
        r#"
rules:
  - id: forever
    trigger: { event: post }
    actions:
      - tag: touched
      - script: "loop { }"
  - id: fine
    trigger: { event: post }
    actions: [ { points: 1 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    let o = sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    assert_eq!(o.failures.len(), 1);
    assert_eq!(o.failures[0].rule, "forever");
    assert_eq!(o.member.points, 1);
    assert!(!o.member.tags.contains("touched"));
}

#[test]
fn a_script_that_divides_by_zero_fails_with_its_line() {
    let rules = rule_set(
        r#"
rules:
  - id: divide
    trigger: { event: post }
    actions:
      - script: |
          let x = 1;
          award(10 / (x - 1));
"#,
    );
    let mut sim = Sim::new(&rules);
    let o = sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    assert_eq!(o.failures.len(), 1, "{:?}", o.failures);
    assert!(
        o.failures[0].error.to_lowercase().contains("zero"),
        "{}",
        o.failures[0].error
    );
    assert_eq!(o.failures[0].at, "rules.yaml:8");
    assert!(o.ledger.is_empty());
}

#[test]
fn script_actions_apply_with_the_rule() {
    let rules = rule_set(
        r#"
rules:
  - id: scripted
    trigger: { event: review }
    actions:
      - script: |
          award(7, "review");
          tag("reviewer");
          badge("critic");
          set("last_rating", event.data.rating);
"#,
    );
    let mut sim = Sim::new(&rules);
    let o = sim.send(ev(
        "e1",
        "review",
        "m",
        "2026-11-05T00:00:00Z",
        r#"{"rating":4}"#,
    ));
    assert_eq!(o.ledger[0].amount, 7);
    assert_eq!(o.ledger[0].reason, "review");
    assert!(o.member.tags.contains("reviewer"));
    assert_eq!(o.member.badges, ["critic"]);
    assert_eq!(o.member.attrs["last_rating"], serde_json::json!(4));
}

#[test]
fn a_failing_condition_is_reported_and_changes_nothing() {
    let rules = rule_set(
        r#"
rules:
  - id: bad-if
    trigger: { event: post }
    if: "event.data.missing.len() > 3"
    actions: [ { points: 1 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    let o = sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    assert_eq!(o.failures.len(), 1, "{:?}", sim.failures());
    assert_eq!(o.member.points, 0);
}

#[test]
fn custom_counters_reset_in_the_members_local_week() {
    let rules = rule_set(
        r#"
settings: { timezone: Asia/Shanghai }
counters:
  - id: posts_week
    on: [post, comment]
    add: 1
    reset: weekly
  - id: words
    on: [post]
    add: "event.data.words / 100.0"
rules:
  - id: five
    trigger: { milestone: posts_week, at: 2 }
    actions: [ { points: 1 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    // Sunday 8 Nov 23:00 Shanghai, then Monday 9 Nov 01:00 Shanghai (still Sunday in UTC).
    sim.send(ev(
        "e1",
        "post",
        "m",
        "2026-11-08T23:00:00+08:00",
        r#"{"words":250}"#,
    ));
    sim.send(ev("e2", "comment", "m", "2026-11-08T23:30:00+08:00", "{}"));
    assert_eq!(sim.member("m").counter("posts_week"), dec("2"));
    sim.send(ev(
        "e3",
        "post",
        "m",
        "2026-11-09T01:00:00+08:00",
        r#"{"words":100}"#,
    ));
    sim.send(ev(
        "e4",
        "post",
        "m",
        "2026-11-09T02:00:00+08:00",
        r#"{"words":0}"#,
    ));
    let m = sim.member("m");
    assert_eq!(m.counter("posts_week"), dec("2"));
    assert_eq!(m.counter("words"), dec("3.5"));
    assert_eq!(
        sim.fired("five"),
        2,
        "the milestone fires again in the new week"
    );
}

#[test]
fn rules_are_looked_up_by_event_type() {
    let rules = rule_set(
        r#"
rules:
  - id: posts
    trigger: { event: post }
    actions: [ { points: 1 } ]
"#,
    );
    assert!(rules.index.by_event_type.contains_key("post"));
    assert!(!rules.index.by_event_type.contains_key("checkin"));
}

#[test]
fn script_awards_round_toward_zero_like_points_amounts() {
    let rules = rule_set(
        r#"
rules:
  - id: earn
    trigger: { event: post }
    actions: [ { points: 10 } ]
  - id: scripted
    trigger: { event: redeem }
    actions: [ { script: "award(-2.5); award(1.9);" } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-05T00:00:00Z", "{}"));
    let o = sim.send(ev("e2", "redeem", "m", "2026-11-05T01:00:00Z", "{}"));
    let amounts: Vec<i64> = o.ledger.iter().map(|l| l.amount).collect();
    assert_eq!(amounts, [-2, 1]);
}
