//! `draw: { winners: N }` on global rules (issue 14): exactly N winners among the
//! eligible members, the same in every process given the same key, recorded in `sim`'s
//! `draws`, and refused by `check` where it cannot apply.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};
use support::daemon::rally;

const MEMBERS: usize = 200;

/// A daily noon draw of `winners` among members with two check-ins or more.
fn draw_rules(winners: u32) -> String {
    format!(
        r#"rules:
  - id: noon-draw
    trigger: {{ schedule: "0 12 * * *" }}
    audience: all
    if: 'member.counters["events.checkin"] >= 2'
    draw: {{ winners: {winners} }}
    actions:
      - points: 50
      - badge: drawn
"#
    )
}

/// [`MEMBERS`] members checking in on 2 March before noon; the even ones twice.
fn events() -> String {
    let mut lines = Vec::new();
    for i in 0..MEMBERS {
        let times = if i % 2 == 0 { 2 } else { 1 };
        for n in 0..times {
            lines.push(
                json!({"id": format!("e-{i}-{n}"), "type": "checkin", "member": format!("m-{i:03}"),
                       "at": format!("2026-03-02T09:{:02}:{:02}Z", n * 10 + i / 60, i % 60)})
                .to_string(),
            );
        }
    }
    lines.join("\n")
}

/// `rally sim` in its own process on `yaml` and [`events`], up to 2 March 13:00.
fn sim(dir: &Path, yaml: &str, seed: Option<&str>) -> Value {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/rules.yaml"), yaml).unwrap();
    std::fs::write(dir.join("events.jsonl"), events()).unwrap();
    let mut command = rally();
    command
        .arg("sim")
        .arg("--rules")
        .arg(dir.join("rules"))
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .args(["--until", "2026-03-02T13:00:00Z"]);
    if let Some(seed) = seed {
        command.args(["--seed", seed]);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn winners(doc: &Value) -> Vec<String> {
    let draws = doc["draws"].as_array().unwrap();
    assert_eq!(draws.len(), 1, "{draws:?}");
    draws[0]["winners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_draw_picks_exactly_its_winners_among_the_members_its_if_admits() {
    let dir = tempfile::tempdir().unwrap();
    let doc = sim(dir.path(), &draw_rules(10), None);
    let draw = &doc["draws"][0];
    assert_eq!(draw["rule"], "noon-draw");
    assert_eq!(draw["occurrence"], "2026-03-02T12:00:00Z");
    assert_eq!(draw["wanted"], 10);
    assert_eq!(draw["eligible"], MEMBERS as u64 / 2);
    let won = winners(&doc);
    assert_eq!(won.iter().collect::<BTreeSet<_>>().len(), 10);
    for id in &won {
        let number: usize = id[2..].parse().unwrap();
        assert_eq!(number % 2, 0, "{id} checked in once: not eligible");
        assert_eq!(doc["members"][id]["points"], 50);
        assert_eq!(doc["members"][id]["badges"], json!(["drawn"]));
    }
    let awarded: Vec<&Value> = doc["members"]
        .as_object()
        .unwrap()
        .values()
        .filter(|m| m["points"] != 0)
        .collect();
    assert_eq!(awarded.len(), 10);
    let fired: Vec<&str> = doc["firings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "noon-draw")
        .map(|f| f["member"].as_str().unwrap())
        .collect();
    assert_eq!(fired, won, "the winners are awarded in draw order");
}

#[test]
fn fewer_eligible_members_than_winners_all_win() {
    let dir = tempfile::tempdir().unwrap();
    let doc = sim(dir.path(), &draw_rules(500), None);
    assert_eq!(doc["draws"][0]["eligible"], MEMBERS as u64 / 2);
    assert_eq!(winners(&doc).len(), MEMBERS / 2);
}

#[test]
fn two_processes_with_the_same_seed_draw_the_same_winners_and_another_seed_others() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let first = winners(&sim(a.path(), &draw_rules(10), Some("spring")));
    let again = winners(&sim(b.path(), &draw_rules(10), Some("spring")));
    let other = winners(&sim(c.path(), &draw_rules(10), Some("autumn")));
    assert_eq!(first, again);
    assert_ne!(first, other);
    // Nor is it the fixed key's draw.
    assert_ne!(first, winners(&sim(a.path(), &draw_rules(10), None)));
}

#[test]
fn a_simulation_without_draws_prints_an_empty_draws_section() {
    let dir = tempfile::tempdir().unwrap();
    let doc = sim(
        dir.path(),
        "rules:\n  - id: r\n    trigger: { event: checkin }\n    actions: [ { points: 1 } ]\n",
        None,
    );
    assert_eq!(doc["draws"], json!([]));
}

// --- check ---------------------------------------------------------------------------

fn check(yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), yaml).unwrap();
    let out = rally()
        .arg("check")
        .arg("--rules")
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "check accepted:\n{yaml}");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_refuses_a_draw_on_an_event_rule_at_the_draw_key() {
    let said = check(
        "rules:\n  - id: r\n    trigger: { event: checkin }\n    draw: { winners: 3 }\n    actions: [ { points: 1 } ]\n",
    );
    assert!(
        said.contains("rules.yaml:4:5: \"draw\" only applies to schedule and phase triggers"),
        "{said}"
    );
}

fn schedule_with_draw(draw: &str) -> String {
    format!(
        "rules:\n  - id: r\n    trigger: {{ schedule: \"0 12 * * *\" }}\n    audience: all\n    draw: {draw}\n    actions: [ {{ points: 1 }} ]\n"
    )
}

#[test]
fn check_refuses_zero_winners() {
    let said = check(&schedule_with_draw("{ winners: 0 }"));
    assert!(
        said.contains("rules.yaml:5:22: \"winners\" must be a positive integer, found 0"),
        "{said}"
    );
}

#[test]
fn check_refuses_more_winners_than_a_draw_may_keep() {
    let said = check(&schedule_with_draw("{ winners: 10001 }"));
    assert!(
        said.contains("rules.yaml:5:22: \"winners\" must be at most 10000, found 10001"),
        "{said}"
    );
}

#[test]
fn check_refuses_an_unknown_key_in_a_draw() {
    let said = check(&schedule_with_draw("{ winners: 3, seed: 7 }"));
    assert!(said.contains("rules.yaml:5:"), "{said}");
    assert!(said.contains("seed"), "{said}");
}

#[test]
fn check_refuses_a_draw_without_winners() {
    let said = check(&schedule_with_draw("{}"));
    assert!(
        said.contains("rules.yaml:5:11: draw is missing required key \"winners\""),
        "{said}"
    );
}
