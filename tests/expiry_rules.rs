//! `settings.points.expire` and the `points_expiring` trigger as `rally check` reads
//! them: a valid set loads, every mistake is reported at its `file:line:col`.

use std::process::Command;

/// `rally check` on a rules directory holding `yaml`: success and what it printed.
fn check(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(["check", "--rules", dir.path().to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn calendar_months_with_a_period_end_and_a_reminder_load() {
    let (ok, text) = check(
        r#"
settings:
  points: { expire: { after: 12 months, at_end_of: month } }
rules:
  - id: remind
    trigger: { points_expiring: 30d }
    actions: [ { tag: reminded } ]
"#,
    );
    assert!(ok, "{text}");
}

#[test]
fn an_unknown_unit_in_after_is_reported_where_it_is_written() {
    let (ok, text) = check("settings:\n  points: { expire: { after: 12 moons } }\n");
    assert!(!ok);
    assert!(
        text.contains("rules.yaml:2:30: settings.points.expire.after:"),
        "{text}"
    );
    assert!(text.contains("\"12 months\""), "{text}");
}

#[test]
fn an_unknown_period_end_is_reported_with_the_choices() {
    let (ok, text) =
        check("settings:\n  points: { expire: { after: 365d, at_end_of: fortnight } }\n");
    assert!(!ok);
    assert!(text.contains("rules.yaml:2:47:"), "{text}");
    assert!(text.contains("day, week, month, year"), "{text}");
}

#[test]
fn expire_without_after_is_reported() {
    let (ok, text) = check("settings:\n  points: { expire: { at_end_of: month } }\n");
    assert!(!ok);
    assert!(text.contains("rules.yaml:2:"), "{text}");
    assert!(text.contains("after"), "{text}");
}

#[test]
fn a_points_expiring_trigger_without_expiry_is_reported() {
    let (ok, text) = check(
        "rules:\n  - id: remind\n    trigger: { points_expiring: 30d }\n    actions: [ { tag: x } ]\n",
    );
    assert!(!ok);
    assert!(
        text.contains("rules.yaml:3:33: a points_expiring trigger needs settings.points.expire"),
        "{text}"
    );
}
