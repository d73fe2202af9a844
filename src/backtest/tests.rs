use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::diff::{Change, Difference, RuleChange};
use super::document::DocumentError;
use super::fail_if::Threshold;
use super::members::EXAMPLES;
use super::summary::{MemberEnd, MessageKind, Summary};

fn d(n: i64) -> Decimal {
    Decimal::from(n)
}

/// A minimal sim document: every section present, `extra` merged over it.
fn doc(extra: Value) -> Value {
    let mut doc = json!({
        "now": "2026-11-20T00:00:00Z",
        "members": {}, "ledger": [], "messages": [], "tickets": [],
        "campaigns": {}, "firings": [], "errors": [], "rejected": []
    });
    if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
        doc.extend(extra);
    }
    doc
}

fn member(points: i64, tier: Option<&str>, badges: &[&str], tags: &[&str]) -> MemberEnd {
    MemberEnd {
        points: d(points),
        tier: tier.map(str::to_string),
        badges: badges.iter().map(|s| s.to_string()).collect(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn ledger_amounts_split_into_awarded_and_deducted_per_rule() {
    let mut s = Summary::new();
    s.absorb_ledger("bonus", d(30));
    s.absorb_ledger("bonus", d(20));
    s.absorb_ledger("penalty", d(-5));
    s.absorb_ledger("penalty", d(-15));
    assert_eq!(s.rules["bonus"].points_awarded, d(50));
    assert_eq!(s.rules["bonus"].points_deducted, d(0));
    assert_eq!(s.rules["penalty"].points_deducted, d(20));
    assert_eq!((s.points_awarded(), s.points_deducted()), (d(50), d(20)));
}

#[test]
fn messages_are_counted_by_template_and_status_and_notifications_apart() {
    let mut s = Summary::new();
    s.absorb_message(Some("hi"), Some("welcome"), "sent");
    s.absorb_message(Some("hi"), Some("welcome"), "sent");
    s.absorb_message(Some("hi"), Some("welcome"), "suppressed");
    s.absorb_message(None, None, "sent");
    let kind = |status: &str| MessageKind {
        template: Some("welcome".into()),
        status: status.into(),
    };
    assert_eq!(s.rules["hi"].messages[&kind("sent")], 2);
    assert_eq!(s.rules["hi"].messages[&kind("suppressed")], 1);
    assert_eq!(s.notifications.values().sum::<u64>(), 1);
    let by_status = s.messages_by_status();
    assert_eq!((by_status["sent"], by_status["suppressed"]), (3, 1));
}

#[test]
fn liability_is_the_sum_of_balances_at_the_end() {
    let mut s = Summary::new();
    s.set_member("m-1", member(10, None, &[], &[]));
    s.set_member("m-2", member(32, None, &[], &[]));
    s.set_member("m-1", member(15, None, &[], &[]));
    assert_eq!(s.liability(), d(47));
}

#[test]
fn a_sim_document_is_summarised_section_by_section() {
    let doc = doc(json!({
        "members": {"m-1": {"points": 25, "points_lifetime": 30, "tier": "silver",
                            "tags": ["a"], "badges": ["b"], "counters": {}, "attrs": {}}},
        "ledger": [
            {"member": "m-1", "amount": 30, "balance": 30, "reason": "x", "rule": "buy", "at": "2026-11-01T00:00:00Z"},
            {"member": "m-1", "amount": -5, "balance": 25, "reason": "y", "rule": "fine", "at": "2026-11-01T00:00:00Z"}
        ],
        "firings": [{"rule": "buy", "member": "m-1", "trigger": "event", "at": "2026-11-01T00:00:00Z"}],
        "errors": [{"rule": "fine", "member": "m-1", "at": "r.yaml:3", "error": "e", "time": "2026-11-01T00:00:00Z"}],
        "messages": [{"member": "m-1", "rule": "buy", "template": "thanks", "status": "sent"},
                     {"member": null, "rule": null, "template": null, "status": "sent"}],
        "tickets": [{"id": "T-1", "policy": "support", "status": "open"}],
        "campaigns": {"d11": {"phase": null, "budget": 100, "points_awarded": 60, "transitions": []}}
    }));
    let s = Summary::from_sim_document(&doc).unwrap();
    assert_eq!(s.rules["buy"].firings, 1);
    assert_eq!(s.rules["buy"].points_awarded, d(30));
    assert_eq!(s.rules["fine"].points_deducted, d(5));
    assert_eq!(s.rules["fine"].errors, 1);
    assert_eq!(s.notifications.len(), 1);
    assert_eq!(s.tickets["support"].opened, 1);
    assert_eq!(s.members["m-1"], member(25, Some("silver"), &["b"], &["a"]));
    assert_eq!(s.campaigns["d11"].budget, Some(d(100)));
    assert_eq!(s.campaigns["d11"].points_awarded, d(60));
}

#[test]
fn a_document_without_a_section_says_which() {
    let mut doc = doc(json!({}));
    doc.as_object_mut().unwrap().remove("ledger");
    assert_eq!(
        Summary::from_sim_document(&doc),
        Err(DocumentError::Missing("ledger"))
    );
    assert_eq!(
        Summary::from_sim_document(&json!([1, 2])),
        Err(DocumentError::NotAnObject("an array"))
    );
}

#[test]
fn a_malformed_entry_is_named_by_section_and_index() {
    let doc = doc(json!({"ledger": [
        {"rule": "a", "amount": 1},
        {"rule": "a", "amount": "lots"}
    ]}));
    let error = Summary::from_sim_document(&doc).unwrap_err().to_string();
    assert!(error.starts_with("ledger[1]: invalid type"), "{error}");
}

#[test]
fn change_percent_is_relative_to_a_and_absent_from_zero() {
    assert_eq!(Change::new(200, 250).pct(), Some(d(25)));
    assert_eq!(Change::new(200, 150).pct(), Some(d(-25)));
    assert_eq!(Change::new(0, 5).pct(), None);
    let json = serde_json::to_value(Change::new(3, 2)).unwrap();
    assert_eq!(json, json!({"a": 3, "b": 2, "delta": -1, "pct": -33.33}));
}

fn with_rules(rules: &[(&str, u64, i64)]) -> Summary {
    let mut s = Summary::new();
    for (rule, firings, points) in rules {
        for _ in 0..*firings {
            s.absorb_firing(rule);
        }
        if *points != 0 {
            s.absorb_ledger(rule, d(*points));
        }
    }
    s
}

#[test]
fn rules_are_added_removed_changed_or_the_same_in_id_order() {
    let a = with_rules(&[("keep", 2, 10), ("double", 2, 10), ("gone", 1, 0)]);
    let b = with_rules(&[("keep", 2, 10), ("double", 2, 20), ("new", 3, 0)]);
    let diff = Difference::between(&a, &b);
    let changes: Vec<(&str, RuleChange)> = diff
        .rules
        .iter()
        .map(|r| (r.rule.as_str(), r.change))
        .collect();
    assert_eq!(
        changes,
        [
            ("double", RuleChange::Changed),
            ("gone", RuleChange::Removed),
            ("keep", RuleChange::Same),
            ("new", RuleChange::Added),
        ]
    );
    assert_eq!(diff.totals.points_awarded, Change::new(20, 30));
}

#[test]
fn members_differing_are_counted_per_kind_with_examples_in_id_order() {
    let (mut a, mut b) = (Summary::new(), Summary::new());
    for i in 0..8 {
        let id = format!("m-{i}");
        a.set_member(&id, member(10, Some("bronze"), &["x"], &[]));
        b.set_member(&id, member(10, Some("silver"), &["x"], &[]));
    }
    a.set_member("m-tags", member(5, None, &[], &["old"]));
    b.set_member("m-tags", member(7, None, &[], &["new"]));
    a.set_member("m-left", member(0, None, &[], &[]));
    let diff = Difference::between(&a, &b);
    let m = &diff.members;
    assert_eq!((m.compared, m.changed), (9, 9));
    assert_eq!(m.tier.count, 8);
    assert_eq!(m.tier.examples.len(), EXAMPLES);
    let first: Vec<&str> = m.tier.examples.iter().map(|e| e.member.as_str()).collect();
    assert_eq!(first, ["m-0", "m-1", "m-2", "m-3", "m-4"]);
    assert_eq!(m.badges.count, 0);
    assert_eq!(m.tags.count, 1);
    assert_eq!(m.tags.examples[0].added, ["new"]);
    assert_eq!(m.tags.examples[0].removed, ["old"]);
    assert_eq!(m.points.count, 1);
    assert_eq!(m.only_in_a.examples, ["m-left"]);
    assert_eq!(m.tier_moves.len(), 1);
    assert_eq!(m.tier_moves[0].from.as_deref(), Some("bronze"));
    assert_eq!(m.tier_moves[0].count, 8);
    assert_eq!(diff.totals.liability, Change::new(85, 87));
}

fn judge(expr: &str, diff: &Difference) -> bool {
    let threshold: Threshold = expr.parse().unwrap();
    threshold.judge(diff).tripped
}

#[test]
fn a_signed_percentage_compares_the_change_relative_to_a() {
    let diff = Difference::between(&with_rules(&[("r", 1, 100)]), &with_rules(&[("r", 1, 111)]));
    assert!(judge("points_awarded>+10%", &diff));
    assert!(!judge("points_awarded>+11%", &diff));
    assert!(judge("points_awarded>=+11%", &diff));
    assert!(!judge("points_awarded<-10%", &diff));
}

#[test]
fn a_signed_number_compares_the_change_and_an_unsigned_one_compares_b() {
    let diff = Difference::between(&with_rules(&[("r", 1, 100)]), &with_rules(&[("r", 1, 600)]));
    assert!(judge("points_awarded>+499", &diff));
    assert!(!judge("points_awarded>+500", &diff));
    assert!(judge("points_awarded>550", &diff));
    assert!(judge("firings<=1", &diff));
}

#[test]
fn any_rise_from_zero_is_more_than_any_percentage() {
    let diff = Difference::between(&with_rules(&[("r", 1, 0)]), &with_rules(&[("r", 1, 1)]));
    assert!(judge("points_awarded>+1000%", &diff));
    assert!(!judge("points_awarded<-10%", &diff));
    let same = Difference::between(&with_rules(&[("r", 1, 0)]), &with_rules(&[("r", 1, 0)]));
    assert!(!judge("points_awarded>+0%", &same));
}

#[test]
fn counts_of_differences_compare_as_numbers_or_shares() {
    let (mut a, mut b) = (Summary::new(), Summary::new());
    for i in 0..10 {
        let tier = if i < 3 { "gold" } else { "silver" };
        a.set_member(&format!("m-{i}"), member(0, Some("silver"), &[], &[]));
        b.set_member(&format!("m-{i}"), member(0, Some(tier), &[], &[]));
    }
    let diff = Difference::between(&a, &b);
    assert!(judge("members_changed_tier>2", &diff));
    assert!(!judge("members_changed_tier>3", &diff));
    assert!(judge("members_changed_tier>=30%", &diff));
    assert!(!judge("members_changed_tier>30%", &diff));
}

#[test]
fn message_status_metrics_read_that_status_only() {
    let (mut a, mut b) = (Summary::new(), Summary::new());
    a.absorb_message(Some("r"), Some("t"), "sent");
    b.absorb_message(Some("r"), Some("t"), "sent");
    b.absorb_message(Some("r"), Some("t"), "suppressed");
    let diff = Difference::between(&a, &b);
    assert!(!judge("messages_sent>+0", &diff));
    assert!(judge("messages_suppressed>+0", &diff));
    assert!(judge("messages>1", &diff));
    assert!(!judge("messages_failed>0", &diff));
}

fn parse_error(expr: &str) -> (usize, String) {
    let e = expr.parse::<Threshold>().unwrap_err();
    (e.column, e.problem)
}

#[test]
fn a_bad_threshold_says_where() {
    let (column, problem) = parse_error("points_awardd>+10%");
    assert_eq!(column, 1);
    assert!(
        problem.contains("did you mean \"points_awarded\""),
        "{problem}"
    );
    assert_eq!(parse_error("liability=5").0, 10);
    assert_eq!(parse_error("liability>+5x%").0, 11);
    assert_eq!(parse_error(">5").0, 1);
    let (column, problem) = parse_error("rules_removed>+1");
    assert_eq!(column, 15);
    assert!(problem.contains("counts differences already"), "{problem}");
    let (_, problem) = parse_error("liability>5%");
    assert!(problem.contains("+5%"), "{problem}");
}

#[test]
fn every_listed_metric_parses() {
    for name in super::fail_if::metric_names() {
        let expr = format!("{name}>0");
        assert!(expr.parse::<Threshold>().is_ok(), "{expr}");
    }
}
