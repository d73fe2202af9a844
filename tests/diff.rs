//! `rally diff` on the output of `rally sim` for a shipped example and a modified copy
//! of its rules: the figures it reports, the table, and the exit codes CI relies on.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rally(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("rally starts")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Replaces `old` (which must be there) with `new` in the file at `path`.
fn edit(path: &Path, old: &str, new: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(old), "{} has no {old:?}", path.display());
    fs::write(path, text.replacen(old, new, 1)).unwrap();
}

/// `rally sim` of `rules` on `events` (`until` if given), written to `out`.
fn sim(rules: &Path, events: &str, until: Option<&str>, out: &Path) {
    let mut args = vec![
        "sim",
        "--rules",
        rules.to_str().unwrap(),
        "--events",
        events,
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(until) = until {
        args.extend(["--until", until]);
    }
    let run = rally(&args);
    assert!(
        run.status.success(),
        "rally sim failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The shipped rules and a copy with the daily check-in doubled, silver from 50
/// lifetime points instead of 1,000, and the welcome message removed; each simulated
/// on the shipped week of events. Returns (dir, A.json, B.json).
fn shipped_pair() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let rules_b = dir.path().join("rules-b");
    copy_dir(&repo().join("rules"), &rules_b);
    edit(
        &rules_b.join("points.yaml"),
        "    limit: { times: 1, per: day }\n    actions:\n      - points: 5\n",
        "    limit: { times: 1, per: day }\n    actions:\n      - points: 10\n",
    );
    edit(
        &rules_b.join("settings.yaml"),
        "{ name: silver, from: 1000 }",
        "{ name: silver, from: 50 }",
    );
    edit(
        &rules_b.join("messages.yaml"),
        "  - id: welcome-message\n    trigger: { event: join }\n    actions:\n      - send: { template: welcome, channel: email }\n",
        "",
    );
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let events = "examples/shipped/events.jsonl";
    sim(&repo().join("rules"), events, None, &a);
    sim(&rules_b, events, None, &b);
    let path = |p: PathBuf| p.to_str().unwrap().to_string();
    (dir, path(a), path(b))
}

fn stdout(run: &Output) -> String {
    String::from_utf8(run.stdout.clone()).unwrap()
}

fn stderr(run: &Output) -> String {
    String::from_utf8(run.stderr.clone()).unwrap()
}

fn rule<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == id)
        .unwrap_or_else(|| panic!("no rule {id} in {doc}"))
}

#[test]
fn json_reports_rules_members_and_liability_exactly() {
    let (_dir, a, b) = shipped_pair();
    let run = rally(&["diff", &a, &b, "--json"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let doc: Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(doc["format"], "rally-diff/1");
    assert_eq!(
        (doc["a"].as_str(), doc["b"].as_str()),
        (Some(&*a), Some(&*b))
    );
    let totals = &doc["totals"];
    assert_eq!(
        totals["points_awarded"],
        json!({"a": 1121, "b": 1161, "delta": 40, "pct": 3.57})
    );
    assert_eq!(
        totals["liability"],
        json!({"a": 816, "b": 851, "delta": 35, "pct": 4.29})
    );
    assert_eq!(
        totals["messages_by_status"],
        json!({"sent": {"a": 4, "b": 3, "delta": -1, "pct": -25}})
    );

    let checkin = rule(&doc, "daily-checkin");
    assert_eq!(checkin["change"], "changed");
    assert_eq!(
        checkin["points_awarded"],
        json!({"a": 40, "b": 80, "delta": 40, "pct": 100})
    );
    assert_eq!(checkin["firings"]["delta"], 0);

    let welcome = rule(&doc, "welcome-message");
    assert_eq!(welcome["change"], "removed");
    assert_eq!(
        welcome["messages"],
        json!([{"template": "welcome", "status": "sent", "a": 2, "b": 0, "delta": -2, "pct": -100}])
    );
    assert_eq!(rule(&doc, "tier-up-message")["firings"]["b"], 2);
    assert_eq!(rule(&doc, "streak-7")["change"], "same");

    let members = &doc["members"];
    assert_eq!(
        (members["compared"].as_u64(), members["changed"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(
        members["tier"],
        json!({"count": 1, "examples": [{"member": "m-lin", "a": "member", "b": "silver"}]})
    );
    assert_eq!(
        members["points"],
        json!({"count": 1, "examples": [{"member": "m-lin", "a": 55, "b": 90}]})
    );
    assert_eq!(members["badges"], json!({"count": 0, "examples": []}));
    assert_eq!(
        members["tier_moves"],
        json!([{"from": "member", "to": "silver", "count": 1}])
    );
    assert_eq!(doc["fail_if"], json!([]));
}

#[test]
fn the_table_shows_the_rules_that_changed_and_hides_the_rest() {
    let (_dir, a, b) = shipped_pair();
    let run = rally(&["diff", &a, &b]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let table = stdout(&run);
    assert!(table.starts_with(&format!("A: {a}\nB: {b}\n")), "{table}");
    let line = |start: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("points liability"),
        "points liability 816 851 +35 (+4.29%)"
    );
    assert_eq!(
        line("daily-checkin"),
        "daily-checkin changed 8 40 → 80 (+40) 0 0"
    );
    assert_eq!(
        line("welcome-message"),
        "welcome-message only in A 2 → 0 (-2) 0 0 0"
    );
    assert_eq!(
        line("message welcome (sent)"),
        "message welcome (sent) 2 → 0 (-2)"
    );
    assert_eq!(line("m-lin  member"), "m-lin member → silver");
    assert!(!table.contains("streak-7 "), "{table}");

    let all = stdout(&rally(&["diff", &a, &b, "--all"]));
    assert!(
        all.lines().any(|l| l.trim_start().starts_with("streak-7 ")),
        "{all}"
    );
}

#[test]
fn the_same_run_on_both_sides_shows_no_change() {
    let (_dir, a, _) = shipped_pair();
    let run = rally(&[
        "diff",
        &a,
        &a,
        "--fail-if",
        "points_awarded>+0",
        "--fail-if",
        "rules_changed>0",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let table = stdout(&run);
    assert!(
        table.contains("Rules: 0 changed, 0 only in B, 0 only in A, 15 the same"),
        "{table}"
    );
    assert!(
        table.contains("Members: 4 in both runs, 0 of them differ"),
        "{table}"
    );
}

#[test]
fn fail_if_exits_1_naming_each_threshold_that_trips() {
    let (_dir, a, b) = shipped_pair();
    let run = rally(&[
        "diff",
        &a,
        &b,
        "--fail-if",
        "points_awarded>+10%",
        "--fail-if",
        "liability>+4%",
        "--fail-if",
        "members_changed_tier>0",
    ]);
    assert_eq!(run.status.code(), Some(1));
    let err = stderr(&run);
    assert!(!err.contains("points_awarded>+10%"), "{err}");
    assert!(
        err.contains("threshold tripped: liability>+4%: liability 816 → 851 (+35, +4.29%)"),
        "{err}"
    );
    assert!(
        err.contains("threshold tripped: members_changed_tier>0"),
        "{err}"
    );
    assert!(
        stdout(&run).contains("liability>+4%"),
        "the table lists the thresholds too"
    );

    let run = rally(&["diff", &a, &b, "--json", "--fail-if", "points_awarded>+10%"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let doc: Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(
        doc["fail_if"],
        json!([{"expr": "points_awarded>+10%", "tripped": false,
                "detail": "points_awarded 1121 → 1161 (+40, +3.57%)"}])
    );
}

#[test]
fn bad_input_exits_2_saying_which_file_or_expression() {
    let (dir, a, _) = shipped_pair();
    let not_sim = dir.path().join("events.json");
    fs::write(&not_sim, r#"{"type": "join", "member": "m-1"}"#).unwrap();
    let not_sim = not_sim.to_str().unwrap();
    let run = rally(&["diff", &a, not_sim]);
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(
        stderr(&run),
        format!("rally diff: {not_sim}: not a `rally sim` document: it has no \"members\" field\n")
    );
    assert!(stdout(&run).is_empty());

    let run = rally(&["diff", &a, "examples/shipped/events.jsonl"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        stderr(&run).contains("examples/shipped/events.jsonl: not JSON"),
        "{}",
        stderr(&run)
    );

    let run = rally(&["diff", &a, &a, "--fail-if", "liability>+5x%"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        stderr(&run).starts_with("rally diff: --fail-if \"liability>+5x%\": column 11: "),
        "{}",
        stderr(&run)
    );
}

#[test]
fn campaign_budget_used_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let rules_b = dir.path().join("double11");
    copy_dir(&repo().join("examples/double11"), &rules_b);
    edit(
        &rules_b.join("rules.yaml"),
        "budget: { points: 100 }",
        "budget: { points: 200 }",
    );
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let events = "examples/double11/events.jsonl";
    let until = Some("2026-11-20T00:00:00Z");
    sim(&repo().join("examples/double11"), events, until, &a);
    sim(&rules_b, events, until, &b);
    let run = rally(&["diff", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let doc: Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(
        doc["campaigns"],
        json!([{"campaign": "double11", "budget": {"a": 100, "b": 200},
                "points_awarded": {"a": 100, "b": 140, "delta": 40, "pct": 40}}])
    );
    assert_eq!(rule(&doc, "peak-double")["points_awarded"]["b"], 140);
}
