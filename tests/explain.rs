//! `rally explain` in `sim` (docs/explain.md): explaining never changes a result, and
//! the explanation of a shipped example says what decided each rule.

#[allow(dead_code)]
#[path = "../benches/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use proptest::prelude::*;

use rally::engine::explain::{self, Options, Tap};
use rally::engine::{self, Context, Input};
use rally::event::{self, AtPolicy};
use rally::member::Member;
use rally::rules::{self, RuleSet};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(dir: &str) -> RuleSet {
    rules::load(&repo().join(dir)).unwrap_or_else(|e| panic!("{dir}: {e:?}"))
}

/// The sim document of `events` on `rules`, plain and with every member's steps
/// traced: the two must be the same bytes.
fn same_with_and_without_trace(rules: &str, events: &str) -> usize {
    let plain = Arc::new(load(rules));
    let mut tapped = load(rules);
    let tap = Arc::new(Tap::every_member(Options { all: true }));
    tapped.explain = Some(tap.clone());
    let run = |set: Arc<RuleSet>| {
        let doc = rally::sim::simulate(set, events.as_bytes(), None).expect("sim runs");
        serde_json::to_string(&doc).expect("serializes")
    };
    assert_eq!(
        run(plain),
        run(Arc::new(tapped)),
        "{rules}: explaining changed the run"
    );
    tap.take().len()
}

#[test]
fn explaining_changes_nothing_in_any_example() {
    let examples = [
        ("rules", "examples/shipped/events.jsonl"),
        (
            "examples/checkin-streak",
            "examples/checkin-streak/events.jsonl",
        ),
        (
            "examples/content-caps",
            "examples/content-caps/events.jsonl",
        ),
        ("examples/double11", "examples/double11/events.jsonl"),
        (
            "examples/feedback-escalation",
            "examples/feedback-escalation/events.jsonl",
        ),
        ("examples/late-events", "examples/late-events/events.jsonl"),
        (
            "examples/purchase-ladder",
            "examples/purchase-ladder/events.jsonl",
        ),
        (
            "examples/reengagement",
            "examples/reengagement/events.jsonl",
        ),
    ];
    for (rules, events) in examples {
        let text = std::fs::read_to_string(repo().join(events)).expect("events exist");
        let steps = same_with_and_without_trace(rules, &text);
        assert!(steps > 0, "{rules}: no step was traced");
    }
}

#[test]
fn explaining_changes_no_step_of_the_bench_mix() {
    let set = load("rules");
    let budget_used = BTreeMap::new();
    let mut members: HashMap<String, Member> = HashMap::new();
    for line in common::events(4_000, 300) {
        let event = event::parse_line(&line, AtPolicy::Required).expect("valid");
        let ctx = Context {
            rules: &set,
            now: event.at_utc(),
            budget_used: &budget_used,
            rewards: &Default::default(),
            next_ticket: 1,
            shares: None,
            random_key: Default::default(),
        };
        let id = event.member.clone().unwrap_or_default();
        let before = members.get(&id).cloned();
        let plain = engine::step(&ctx, before.clone(), &Input::Event(&event));
        let (traced, trace) =
            explain::explain_step(&ctx, before, &Input::Event(&event), Options { all: true });
        assert_eq!(plain, traced, "event {}", event.id);
        assert_eq!(trace.member, id);
        members.insert(id, plain.member);
    }
}

/// Random streams of the bench mix's types plus joins, redemptions and reviews, at
/// random gaps, through the whole pipeline on the shipped rules.
fn line(i: usize, (member, kind, amount): (u8, usize, u32), minutes: u32) -> String {
    const TYPES: [&str; 8] = [
        "join", "checkin", "post", "comment", "share", "purchase", "redeem", "review",
    ];
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00+08:00").unwrap()
        + chrono::Duration::minutes(i64::from(minutes));
    let data = match TYPES[kind] {
        "purchase" => format!(r#"{{"amount":{amount},"order":"o-{i}"}}"#),
        "redeem" => format!(r#"{{"points":{}}}"#, amount / 3),
        "review" => format!(r#"{{"text":"{}"}}"#, "good ".repeat(amount as usize % 60)),
        _ => "{}".to_string(),
    };
    format!(
        r#"{{"id":"e-{i}","type":"{}","member":"m-{member}","at":"{}","data":{data}}}"#,
        TYPES[kind],
        at.to_rfc3339()
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn explaining_changes_nothing_on_random_streams(
        specs in prop::collection::vec(((0u8..5, 0usize..8, 0u32..3000), 0u32..(3 * 24 * 60)), 1..60),
    ) {
        let mut minutes = 0;
        let lines: Vec<String> = specs
            .iter()
            .enumerate()
            .map(|(i, (spec, gap))| {
                minutes += gap;
                line(i, *spec, minutes)
            })
            .collect();
        same_with_and_without_trace("rules", &lines.join("\n"));
    }
}

fn rally(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("rally starts")
}

const SHIPPED: [&str; 5] = [
    "sim",
    "--rules",
    "rules",
    "--events",
    "examples/shipped/events.jsonl",
];

#[test]
fn sim_explain_says_what_decided_each_rule_and_leaves_stdout_alone() {
    let plain = rally(&SHIPPED);
    assert!(plain.status.success());
    let explained = rally(&[&SHIPPED[..], &["--explain", "m-bo"]].concat());
    assert!(explained.status.success());
    assert_eq!(
        plain.stdout, explained.stdout,
        "stdout must be byte-identical"
    );
    let text = String::from_utf8(explained.stderr).expect("UTF-8");
    for expected in [
        // Each step: time, input, the member.
        "2026-11-01T02:00:00Z  event s-11 (purchase, at 2026-11-01T02:00:00Z)  member m-bo",
        // Trigger and the `if` with the value it read.
        "✓ purchase-points  rules/points.yaml:28  [event purchase]  fired",
        "pass if `event.data.amount >= 10` → true  with event.data.amount = 1200",
        // Campaign phase.
        "not fired: campaign double11 is in phase warmup",
        // Daily cap clipping: asked vs awarded.
        "points asked +900, awarded +200 (balance 370), clipped by daily_cap",
        // A milestone, caused by the event.
        "✓ first-purchase  rules/points.yaml:35  [milestone purchases at 1: 0 → 1, caused by the event]  fired",
        // A cascade from another rule.
        "[tier up to silver, caused by rule purchase-points]",
        // A redemption: refused with its reason, granted with its deduction.
        "redemption of gift50 refused: not for tier silver: only gold, vip",
        "redeemed coffee for 300 points → balance 720",
        // Messages and their fate.
        "message welcome via",
        // Untriggered rules are counted.
        "rules not triggered by `purchase` (--explain-all lists them)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn sim_explain_writes_json_or_every_rule_to_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("explain.json");
    let out_arg = out.to_string_lossy().to_string();
    let run = rally(
        &[
            &SHIPPED[..],
            &[
                "--explain",
                "m-cy",
                "--explain-json",
                "--explain-all",
                "--explain-out",
                &out_arg,
            ],
        ]
        .concat(),
    );
    assert!(run.status.success());
    assert!(
        run.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("written")).expect("JSON");
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["member"], "m-cy");
    let steps = doc["steps"].as_array().expect("steps");
    assert!(!steps.is_empty());
    let review = steps
        .iter()
        .flat_map(|s| s["rules"].as_array().unwrap().iter())
        .find(|r| r["rule"] == "review-points" && r["decision"]["status"] == "skipped")
        .expect("the second review is skipped");
    assert_eq!(review["decision"]["by"], "limit");
    assert_eq!(review["checks"][0]["kind"], "limit");
    assert_eq!(review["checks"][0]["used"], 1);
    assert_eq!(review["checks"][0]["left"], 0);
    let listed = steps[0]["not_triggered"]["rules"]
        .as_array()
        .expect("listed with --explain-all");
    assert_eq!(
        listed.len(),
        steps[0]["not_triggered"]["count"].as_u64().unwrap() as usize
    );
}
