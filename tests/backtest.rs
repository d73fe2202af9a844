//! `rally backtest` (issue: "know before it goes live"): the journal of a data
//! directory replayed under the rules it recorded and under candidate rules, compared
//! as `rally diff` compares; `--since` compares a window, starting both from the real
//! state at its start; `--fail-if` gives CI an exit code.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::daemon::rally;

fn run(args: &[&str]) -> Output {
    rally().args(args).output().expect("run rally")
}

/// The shipped rules' history (examples/shipped) imported into a data directory, and
/// a candidate copy of the rules with the daily check-in at 10 points instead of 5.
fn imported() -> (tempfile::TempDir, tempfile::TempDir) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = tempfile::tempdir().unwrap();
    let imported = run(&[
        "import",
        "--rules",
        root.join("rules").to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
        "--events",
        root.join("examples/shipped/events.jsonl").to_str().unwrap(),
    ]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let candidate = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root.join("rules")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), candidate.path().join(entry.file_name())).unwrap();
        }
    }
    std::fs::create_dir(candidate.path().join("scripts")).unwrap();
    for entry in std::fs::read_dir(root.join("rules/scripts")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            candidate.path().join("scripts").join(entry.file_name()),
        )
        .unwrap();
    }
    let points = candidate.path().join("points.yaml");
    let text = std::fs::read_to_string(&points).unwrap();
    let daily = text.find("id: daily-checkin").unwrap();
    let at = daily + text[daily..].find("points: 5").unwrap();
    let edited = format!(
        "{}points: 10{}",
        &text[..at],
        &text[at + "points: 5".len()..]
    );
    std::fs::write(&points, edited).unwrap();
    (data, candidate)
}

#[test]
fn an_imported_history_replays_to_its_live_state() {
    let (data, _) = imported();
    support::daemon::assert_replay_reproduces(data.path());
}

#[test]
fn a_backtest_shows_what_the_candidate_rules_would_have_paid() {
    let (data, candidate) = imported();
    let data = data.path().to_str().unwrap();
    let candidate = candidate.path().to_str().unwrap();
    let out = run(&["backtest", "--data", data, "--rules", candidate, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["totals"]["points_awarded"]["a"], 1121, "{doc}");
    assert_eq!(doc["totals"]["points_awarded"]["b"], 1161, "{doc}");
    let daily = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["rule"] == "daily-checkin")
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(daily["change"], "changed");

    let table = run(&["backtest", "--data", data, "--rules", candidate]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("daily-checkin"), "{text}");
    assert!(text.contains("m-lin"), "{text}");

    // The same rules change nothing.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let same = run(&[
        "backtest",
        "--data",
        data,
        "--rules",
        root.to_str().unwrap(),
        "--json",
    ]);
    let same: Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(same["totals"]["points_awarded"]["delta"], 0, "{same}");
    assert_eq!(same["members"]["changed"], 0, "{same}");
}

#[test]
fn a_window_starts_from_the_real_state_and_counts_only_what_happened_in_it() {
    let (data, candidate) = imported();
    let args = |since: &str| {
        vec![
            "backtest".to_string(),
            "--data".into(),
            data.path().to_str().unwrap().into(),
            "--rules".into(),
            candidate.path().to_str().unwrap().into(),
            "--since".into(),
            since.into(),
            "--json".into(),
        ]
    };
    let window = rally().args(args("2026-11-06T00:00:00Z")).output().unwrap();
    let doc: Value = serde_json::from_slice(&window.stdout).unwrap();
    let awarded = &doc["totals"]["points_awarded"];
    // Less than the whole history, and the candidate's extra only for the window.
    assert!(awarded["a"].as_i64().unwrap() < 1121, "{doc}");
    assert_eq!(awarded["delta"], 10, "{doc}");
    // Both start from the same members: the liability differs by the window's change.
    assert_eq!(doc["totals"]["liability"]["delta"], 10, "{doc}");
}

#[test]
fn fail_if_thresholds_give_ci_an_exit_code() {
    let (data, candidate) = imported();
    let with = |threshold: &str| {
        run(&[
            "backtest",
            "--data",
            data.path().to_str().unwrap(),
            "--rules",
            candidate.path().to_str().unwrap(),
            "--fail-if",
            threshold,
        ])
    };
    let tripped = with("points_awarded>+1%");
    assert_eq!(tripped.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&tripped.stderr).contains("points_awarded>+1%"));
    assert_eq!(with("points_awarded>+10%").status.code(), Some(0));
    let bad = with("pointz>1");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("pointz"));
}
