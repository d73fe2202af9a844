//! Each decisive reason, on small inline rule sets; and the trace never changes what a
//! step decides.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::engine::{step, Context, Input};
use crate::event::{self, AtPolicy, Event};
use crate::member::Member;
use crate::rules::{self, RuleSet};

fn rule_set(yaml: &str) -> RuleSet {
    match rules::from_sources(&[("rules.yaml", yaml)], &|_| None) {
        Ok(set) => set,
        Err(errors) => panic!("rule set does not load: {errors:?}"),
    }
}

fn ev(id: &str, kind: &str, at: &str, data: &str) -> Event {
    let line = format!(r#"{{"id":"{id}","type":"{kind}","member":"m","at":"{at}","data":{data}}}"#);
    event::parse_line(&line, AtPolicy::Required).unwrap()
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Runs `event` for `member` both plainly and traced, checks the outcomes are the
/// same, and returns the trace.
fn traced_with(
    rules: &RuleSet,
    member: Option<Member>,
    event: &Event,
    budget_used: &BTreeMap<String, i64>,
    options: Options,
) -> (Outcome, StepTrace) {
    let ctx = Context {
        rules,
        now: event.at_utc(),
        budget_used,
        rewards: &Default::default(),
        next_ticket: 1,
        shares: None,
        random_key: Default::default(),
    };
    let plain = step(&ctx, member.clone(), &Input::Event(event));
    let (outcome, trace) = explain_step(&ctx, member, &Input::Event(event), options);
    assert_eq!(plain, outcome, "the trace changed the outcome");
    (outcome, trace)
}

fn traced(rules: &RuleSet, member: Option<Member>, event: &Event) -> StepTrace {
    traced_with(rules, member, event, &BTreeMap::new(), Options::default()).1
}

fn rule<'t>(trace: &'t StepTrace, id: &str) -> &'t RuleTrace {
    trace
        .rules
        .iter()
        .find(|r| r.rule == id)
        .unwrap_or_else(|| panic!("{id} not in the trace:\n{}", render::step_text(trace)))
}

#[test]
fn a_rule_outside_its_campaign_phase_says_which_phase_it_is() {
    let rules = rule_set(
        r#"
campaigns:
  - id: sale
    timezone: UTC
    phases:
      - { name: warmup, start: "2026-11-01T00:00:00" }
      - { name: peak, start: "2026-11-10T00:00:00" }
rules:
  - id: peak-bonus
    trigger: { event: purchase }
    during: { campaign: sale, phase: peak }
    actions: [ { points: 5 } ]
"#,
    );
    let trace = traced(
        &rules,
        None,
        &ev("e1", "purchase", "2026-11-05T00:00:00Z", r#"{"amount": 1}"#),
    );
    let r = rule(&trace, "peak-bonus");
    assert_eq!(r.at, "rules.yaml:9");
    assert_eq!(
        r.why,
        Why::Event {
            event_type: "purchase".into()
        }
    );
    assert_eq!(
        r.checks,
        vec![Check::Phase {
            campaign: "sale".into(),
            phase: Some("warmup".into()),
            wanted: vec!["peak".into()],
            pass: false
        }]
    );
    assert_eq!(r.decision, Decision::Skipped { by: "phase".into() });
    let text = render::step_text(&trace);
    assert!(text.contains("✗ peak-bonus  rules.yaml:9"), "{text}");
    assert!(text.contains("campaign sale is in phase warmup"), "{text}");
}

#[test]
fn a_limit_shows_its_period_used_and_left() {
    let rules = rule_set(
        r#"
rules:
  - id: daily
    trigger: { event: checkin }
    limit: { times: 1, per: day }
    actions: [ { points: 5 } ]
"#,
    );
    let first = traced(
        &rules,
        None,
        &ev("e1", "checkin", "2026-11-05T08:00:00Z", "{}"),
    );
    let limit = |trace: &StepTrace| rule(trace, "daily").checks[0].clone();
    assert_eq!(
        limit(&first),
        Check::Limit {
            times: 1,
            per: "day".into(),
            period: Some("2026-11-05".into()),
            used: 0,
            left: 1,
            pass: true
        }
    );
    assert_eq!(rule(&first, "daily").decision, Decision::Fired);
    let member = {
        let ctx_budget = BTreeMap::new();
        let ctx = Context {
            rules: &rules,
            now: time("2026-11-05T08:00:00Z"),
            budget_used: &ctx_budget,
            rewards: &Default::default(),
            next_ticket: 1,
            shares: None,
            random_key: Default::default(),
        };
        step(
            &ctx,
            None,
            &Input::Event(&ev("e1", "checkin", "2026-11-05T08:00:00Z", "{}")),
        )
        .member
    };
    let second = traced(
        &rules,
        Some(member),
        &ev("e2", "checkin", "2026-11-05T09:00:00Z", "{}"),
    );
    assert_eq!(
        limit(&second),
        Check::Limit {
            times: 1,
            per: "day".into(),
            period: Some("2026-11-05".into()),
            used: 1,
            left: 0,
            pass: false
        }
    );
    assert_eq!(
        rule(&second, "daily").decision,
        Decision::Skipped { by: "limit".into() }
    );
    assert!(render::step_text(&second).contains("limit 1 per day used up"));
}

#[test]
fn an_if_shows_its_value_and_the_values_it_read() {
    let rules = rule_set(
        r#"
rules:
  - id: big
    trigger: { event: purchase }
    if: "event.data.amount > 100 && member.points < 50 && \"vip\" in member.tags"
    actions: [ { points: 5 } ]
"#,
    );
    let trace = traced(
        &rules,
        None,
        &ev(
            "e1",
            "purchase",
            "2026-11-05T08:00:00Z",
            r#"{"amount": 80}"#,
        ),
    );
    let r = rule(&trace, "big");
    let Check::If {
        expr,
        value,
        reads,
        pass,
    } = &r.checks[0]
    else {
        panic!("{:?}", r.checks);
    };
    assert!(expr.starts_with("event.data.amount > 100"));
    assert_eq!(*value, Some(false));
    assert!(!pass);
    assert_eq!(
        reads,
        &vec![
            Read {
                path: "event.data.amount".into(),
                value: Some(json!(80))
            },
            Read {
                path: "member.points".into(),
                value: Some(json!(0))
            },
            Read {
                path: "member.tags".into(),
                value: Some(json!([]))
            },
        ]
    );
    assert_eq!(r.decision, Decision::Skipped { by: "if".into() });
    let text = render::step_text(&trace);
    assert!(
        text.contains("→ false  with event.data.amount = 80, member.points = 0"),
        "{text}"
    );
}

#[test]
fn a_failing_if_or_script_is_reported_with_its_line() {
    let rules = rule_set(
        r#"
rules:
  - id: broken
    trigger: { event: post }
    actions:
      - tag: touched
      - script: |
          let x = 1;
          award(10 / (x - 1));
"#,
    );
    let trace = traced(
        &rules,
        None,
        &ev("e1", "post", "2026-11-05T08:00:00Z", "{}"),
    );
    let r = rule(&trace, "broken");
    let Decision::Failed { error, at } = &r.decision else {
        panic!("{:?}", r.decision);
    };
    assert!(error.contains("division by zero"), "{error}");
    assert_eq!(at, "rules.yaml:9");
    assert!(
        trace.errors.is_empty(),
        "a rule's failure is the rule's: {:?}",
        trace.errors
    );
    let text = render::step_text(&trace);
    assert!(
        text.contains("failed at rules.yaml:9: division by zero"),
        "{text}"
    );
}

#[test]
fn the_daily_cap_shows_asked_awarded_and_what_was_used() {
    let rules = rule_set(
        r#"
settings: { points: { daily_cap: 100 } }
rules:
  - id: buy
    trigger: { event: purchase }
    actions: [ { points: "event.data.amount" } ]
"#,
    );
    let (outcome, first) = traced_with(
        &rules,
        None,
        &ev(
            "e1",
            "purchase",
            "2026-11-05T08:00:00Z",
            r#"{"amount": 80}"#,
        ),
        &BTreeMap::new(),
        Options::default(),
    );
    assert_eq!(rule(&first, "buy").decision, Decision::Fired);
    let second = traced(
        &rules,
        Some(outcome.member),
        &ev(
            "e2",
            "purchase",
            "2026-11-05T09:00:00Z",
            r#"{"amount": 50}"#,
        ),
    );
    assert_eq!(
        rule(&second, "buy").effects,
        vec![Effect::Points {
            asked: 50,
            awarded: 20,
            balance: 100,
            clipped_by: Some("daily_cap".into()),
            caps: vec![CapState {
                cap: "daily_cap".into(),
                limit: 100,
                used: 80,
                room: 20,
                period: Some("2026-11-05".into()),
            }],
            from: Some(Computed {
                expr: "event.data.amount".into(),
                reads: vec![Read {
                    path: "event.data.amount".into(),
                    value: Some(json!(50)),
                }],
            }),
        }]
    );
    let text = render::step_text(&second);
    assert!(
        text.contains("points asked +50, awarded +20 (balance 100), clipped by daily_cap"),
        "{text}"
    );
}

#[test]
fn a_campaign_budget_shows_what_other_awards_used() {
    let rules = rule_set(
        r#"
campaigns:
  - id: sale
    timezone: UTC
    phases: [ { name: on, start: "2026-11-01T00:00:00" } ]
    budget: { points: 100 }
rules:
  - id: bonus
    trigger: { event: purchase }
    during: { campaign: sale }
    actions: [ { points: 30 } ]
"#,
    );
    let used = BTreeMap::from([("sale".to_string(), 90)]);
    let event = ev("e1", "purchase", "2026-11-05T08:00:00Z", r#"{"amount": 1}"#);
    let (_, trace) = traced_with(&rules, None, &event, &used, Options::default());
    let r = rule(&trace, "bonus");
    assert_eq!(
        r.effects,
        vec![Effect::Points {
            asked: 30,
            awarded: 10,
            balance: 10,
            clipped_by: Some("budget:sale".into()),
            caps: vec![CapState {
                cap: "budget:sale".into(),
                limit: 100,
                used: 90,
                room: 10,
                period: None,
            }],
            from: None,
        }]
    );
    // A replay from the member's journal cannot know the other members' awards.
    let (_, replayed) = replay_step(
        &rules,
        None,
        &Input::Event(&event),
        event.at_utc(),
        Options::default(),
    );
    assert!(
        replayed.caveats.iter().any(|c| c.contains("budget of 100")),
        "{:?}",
        replayed.caveats
    );
}

const MESSAGES: &str = r#"
settings:
  timezone: Asia/Shanghai
  messaging: { quiet_hours: "22:00-08:00", max_per_day: 1 }
templates:
  hi: { subject: "hi", body: "hello" }
channels:
  console: { kind: log }
rules:
  - id: greet
    trigger: { event: post }
    actions:
      - send: { template: hi, channel: console }
"#;

fn message_effect(trace: &StepTrace) -> (String, Option<String>) {
    match &rule(trace, "greet").effects[..] {
        [Effect::Message { status, reason, .. }] => (status.clone(), reason.clone()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_message_in_quiet_hours_says_until_when() {
    let rules = rule_set(MESSAGES);
    let trace = traced(
        &rules,
        None,
        &ev("e1", "post", "2026-11-05T23:30:00+08:00", "{}"),
    );
    let (status, reason) = message_effect(&trace);
    assert_eq!(status, "deferred");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("quiet hours 22:00-08:00 in Asia/Shanghai"),
        "{reason}"
    );
    assert!(reason.contains("2026-11-06T00:00:00Z"), "{reason}");
}

#[test]
fn a_message_over_max_per_day_or_without_consent_says_so() {
    let rules = rule_set(MESSAGES);
    let mut member = Member::new("m");
    member.book.messages_day = Some((chrono::NaiveDate::from_ymd_opt(2026, 11, 5).unwrap(), 1));
    let trace = traced(
        &rules,
        Some(member),
        &ev("e1", "post", "2026-11-05T12:00:00+08:00", "{}"),
    );
    let (status, reason) = message_effect(&trace);
    assert_eq!(status, "capped");
    assert!(reason.unwrap_or_default().contains("max_per_day 1"));

    let mut member = Member::new("m");
    member.unsubscribed = true;
    let trace = traced(
        &rules,
        Some(member),
        &ev("e1", "post", "2026-11-05T12:00:00+08:00", "{}"),
    );
    let (status, reason) = message_effect(&trace);
    assert_eq!(status, "suppressed");
    assert_eq!(
        reason.as_deref(),
        Some("no consent to marketing: the member unsubscribed")
    );
}

#[test]
fn a_milestone_names_the_counter_rise_and_the_rule_that_caused_it() {
    let rules = rule_set(
        r#"
counters:
  - { id: xp, on: [never] }
rules:
  - id: give-xp
    trigger: { event: post }
    actions:
      - points: 10
  - id: rich
    trigger: { milestone: points_lifetime, at: 5 }
    actions: [ { tag: rich } ]
  - id: xp-1
    trigger: { milestone: xp, at: 1 }
    actions: [ { tag: x } ]
  - id: posted
    trigger: { milestone: events.post, at: 1 }
    actions: [ { tag: poster } ]
  - id: second-post
    trigger: { milestone: events.post, at: 2 }
    actions: [ { tag: again } ]
"#,
    );
    let trace = traced(
        &rules,
        None,
        &ev("e1", "post", "2026-11-05T08:00:00Z", "{}"),
    );
    let r = rule(&trace, "posted");
    assert_eq!(
        r.why,
        Why::Milestone {
            counter: "events.post".into(),
            from: "0".into(),
            to: "1".into(),
            threshold: "at 1".into(),
            mark: Some(1),
            cause: None,
        }
    );
    assert_eq!(r.decision, Decision::Fired);
    let r = rule(&trace, "second-post");
    assert_eq!(
        r.checks,
        vec![Check::Threshold {
            reached: false,
            pass: false
        }]
    );
    assert_eq!(
        r.decision,
        Decision::Skipped {
            by: "threshold".into()
        }
    );
    assert_eq!(
        rule(&trace, "rich").why,
        Why::Milestone {
            counter: "points_lifetime".into(),
            from: "0".into(),
            to: "10".into(),
            threshold: "at 5".into(),
            mark: Some(1),
            cause: Some("give-xp".into()),
        }
    );
    assert!(render::step_text(&trace).contains("caused by rule give-xp"));
    assert_eq!(trace.not_triggered.count, 1, "xp never moved");
    assert!(trace.not_triggered.rules.is_empty());
}

#[test]
fn rules_not_triggered_are_counted_and_listed_only_when_asked() {
    let rules = rule_set(
        r#"
rules:
  - id: on-post
    trigger: { event: post }
    actions: [ { points: 1 } ]
  - id: on-buy
    trigger: { event: purchase }
    actions: [ { points: 1 } ]
  - id: away
    trigger: { inactive: 30d }
    actions: [ { tag: away } ]
"#,
    );
    let event = ev("e1", "post", "2026-11-05T08:00:00Z", "{}");
    let (_, trace) = traced_with(&rules, None, &event, &BTreeMap::new(), Options::default());
    assert_eq!(trace.not_triggered.count, 2);
    assert!(render::step_text(&trace)
        .contains("2 rules not triggered by `post` (--explain-all lists them)"));
    let (_, all) = traced_with(
        &rules,
        None,
        &event,
        &BTreeMap::new(),
        Options { all: true },
    );
    let listed: Vec<_> = all
        .not_triggered
        .rules
        .iter()
        .map(|r| r.trigger.as_str())
        .collect();
    assert_eq!(listed, vec!["event: purchase", "inactive: 30d"]);
}

#[test]
fn a_global_rule_shows_its_audience_with_the_values_read() {
    let rules = rule_set(
        r#"
rules:
  - id: nightly
    trigger: { schedule: "0 0 * * *" }
    audience: "member.points > 10"
    actions: [ { points: 1 } ]
"#,
    );
    let budget = BTreeMap::new();
    let ctx = Context {
        rules: &rules,
        now: time("2026-11-02T00:00:00Z"),
        budget_used: &budget,
        rewards: &Default::default(),
        next_ticket: 1,
        shares: None,
        random_key: Default::default(),
    };
    let mut member = Member::new("m");
    member.points = 3;
    let input = Input::Global {
        member: "m",
        rule: "nightly",
    };
    let (outcome, trace) = explain_step(&ctx, Some(member.clone()), &input, Options::default());
    assert_eq!(outcome, step(&ctx, Some(member), &input));
    let r = rule(&trace, "nightly");
    assert_eq!(r.why, Why::Schedule);
    assert_eq!(
        r.checks,
        vec![Check::Audience {
            expr: Some("member.points > 10".into()),
            value: Some(false),
            reads: vec![Read {
                path: "member.points".into(),
                value: Some(json!(3))
            }],
            left: false,
            pass: false,
        }]
    );
    assert_eq!(
        r.decision,
        Decision::Skipped {
            by: "audience".into()
        }
    );
}

#[test]
fn the_json_form_round_trips() {
    let rules = rule_set(MESSAGES);
    let trace = traced(
        &rules,
        None,
        &ev("e1", "post", "2026-11-05T23:30:00+08:00", "{}"),
    );
    let doc = Explanation::new("m", vec![trace]);
    let text = serde_json::to_string(&doc).unwrap();
    let back: Explanation = serde_json::from_str(&text).unwrap();
    assert_eq!(back, doc);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["schema"], json!(1));
    assert_eq!(value["steps"][0]["input"]["kind"], json!("event"));
    assert_eq!(
        value["steps"][0]["rules"][0]["decision"]["status"],
        json!("fired")
    );
    assert_eq!(
        value["steps"][0]["rules"][0]["effects"][0]["kind"],
        json!("message")
    );
}
