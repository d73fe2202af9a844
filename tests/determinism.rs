//! SPEC §5 "Deterministic", across processes: every process hashes with its own random
//! seed, so an order taken from a `HashMap` shows up as different output from one run
//! of `rally sim` to the next. Random streams in which one purchase crosses milestones
//! on two counters at once (`purchases` and `spend_total`), competing for a daily cap
//! and a campaign budget, with late events and timers, run in separate processes and
//! must print the same bytes.

mod support;

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use support::daemon::{rally, rules_dir};

/// Several milestone rules on two counters a purchase moves together; whichever runs
/// first takes what the daily cap and the budget leave.
const RULES: &str = r#"
settings:
  timezone: Asia/Shanghai
  points: { daily_cap: 70 }
campaigns:
  - id: launch
    phases:
      - { name: live, start: "2026-11-01T00:00:00" }
    end: "2026-12-01T00:00:00"
    budget: { points: 400 }
counters:
  - id: posts_week
    on: [post]
    reset: weekly
rules:
  - id: first-purchase
    trigger: { milestone: purchases, at: 1 }
    actions:
      - points: 30
      - badge: first-purchase
  - id: every-second-purchase
    trigger: { milestone: purchases, every: 2 }
    during: { campaign: launch, phase: live }
    actions:
      - points: 25
  - id: spend-100
    trigger: { milestone: spend_total, at: 100 }
    actions:
      - points: 40
      - tag: spender
  - id: every-50-spent
    trigger: { milestone: spend_total, every: 50 }
    during: { campaign: launch, phase: live }
    actions:
      - points: 15
  - id: posts-3
    trigger: { milestone: posts_week, at: 3 }
    actions:
      - points: 10
  - id: checkin
    trigger: { event: checkin }
    limit: { times: 1, per: day }
    actions:
      - points: 5
  - id: quiet-3d
    trigger: { inactive: 3d }
    actions:
      - tag: quiet
"#;

const TYPES: [&str; 4] = ["purchase", "purchase", "checkin", "post"];

/// A random stream: a few members, mostly in time order, some events late.
fn stream(seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00+08:00").unwrap();
    let mut minutes = 0i64;
    let mut lines = Vec::new();
    for i in 0..120 {
        minutes += rng.gen_range(0..600);
        let late = if rng.gen_bool(0.1) {
            rng.gen_range(60..3000)
        } else {
            0
        };
        let at = start + chrono::Duration::minutes(minutes - late);
        let kind = TYPES[rng.gen_range(0..TYPES.len())];
        let mut event = json!({"id": format!("e-{i}"), "type": kind,
                               "member": format!("m-{}", rng.gen_range(0..5)),
                               "at": at.to_rfc3339()});
        if kind == "purchase" {
            event["data"] = json!({"amount": rng.gen_range(10..160)});
        }
        lines.push(event.to_string());
    }
    lines.join("\n")
}

fn sim(rules: &Path, events: &Path) -> Vec<u8> {
    sim_with(rules, events, &[])
}

fn sim_with(rules: &Path, events: &Path, extra: &[&str]) -> Vec<u8> {
    let output = rally()
        .args(["sim", "--rules"])
        .arg(rules)
        .arg("--events")
        .arg(events)
        .args(["--until", "2026-12-05T00:00:00Z"])
        .args(extra)
        .output()
        .expect("run rally sim");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn separate_processes_print_the_same_bytes_when_one_step_crosses_several_milestones() {
    let rules = rules_dir(RULES);
    let work = tempfile::tempdir().unwrap();
    for seed in 0..6 {
        let events = work.path().join(format!("events-{seed}.jsonl"));
        std::fs::write(&events, stream(seed)).unwrap();
        let first = sim(rules.path(), &events);
        let doc: serde_json::Value = serde_json::from_slice(&first).unwrap();
        // The streams do what they are for: steps that cross two counters' milestones.
        let firings = doc["firings"].as_array().unwrap();
        assert!(firings.iter().any(|f| f["rule"] == "every-50-spent"));
        assert!(firings.iter().any(|f| f["rule"] == "every-second-purchase"));
        for run in 1..4 {
            let again = sim(rules.path(), &events);
            assert!(
                again == first,
                "seed {seed}: process {run} printed another document than process 0"
            );
        }
    }
}

/// Draws in an `if`, a `points` amount and a script, on events and a schedule.
const RANDOM_RULES: &str = r#"
settings:
  timezone: Asia/Shanghai
rules:
  - id: lucky-checkin
    trigger: { event: checkin }
    if: chance(0.5)
    actions:
      - points: "random_int(1, 100)"
  - id: scratch-card
    trigger: { event: purchase }
    actions:
      - script: |
          let roll = random();
          if roll < 0.3 { tag("scratch-winner"); award(random_int(10, 20)); }
          set("last_roll", roll);
  - id: weekly-spin
    trigger: { schedule: "0 0 9 * * MON" }
    audience: random_int(1, 3) == 1
    actions:
      - points: 7
"#;

#[test]
fn separate_processes_draw_the_same_with_the_same_seed_and_differently_with_another() {
    let rules = rules_dir(RANDOM_RULES);
    let work = tempfile::tempdir().unwrap();
    let events = work.path().join("events.jsonl");
    std::fs::write(&events, stream(7)).unwrap();
    let first = sim_with(rules.path(), &events, &["--seed", "spring-draw"]);
    let doc: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let firings = doc["firings"].as_array().unwrap();
    let lucky = firings
        .iter()
        .filter(|f| f["rule"] == "lucky-checkin")
        .count();
    let checkins = stream(7).matches("\"checkin\"").count();
    assert!(
        lucky > 0 && lucky < checkins,
        "{lucky} of {checkins} check-ins won"
    );
    for _ in 0..2 {
        assert!(sim_with(rules.path(), &events, &["--seed", "spring-draw"]) == first);
    }
    assert!(sim_with(rules.path(), &events, &["--seed", "autumn-draw"]) != first);
    // Without --seed: a fixed key, the same in every process too.
    let unseeded = sim(rules.path(), &events);
    assert!(sim(rules.path(), &events) == unseeded);
}
