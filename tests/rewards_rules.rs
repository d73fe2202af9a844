//! `rally check` on a `rewards:` section: every mistake reported at its
//! `file:line:col`, all of them in one run.

mod support;

use support::daemon::rally_within_a_minute;

const HEAD: &str = r#"settings: { timezone: UTC }
tiers:
  by: points_lifetime
  levels:
    - { name: member, from: 0 }
    - { name: gold, from: 5000 }
campaigns:
  - id: d11
    timezone: UTC
    phases:
      - { name: peak, start: "2026-11-11T00:00:00" }
rewards:
"#;

/// `rally check` on `HEAD` + `rewards` (with `files` beside it): its exit code and
/// its problems, with the temporary directory's path taken out.
fn check(rewards: &str, files: &[(&str, &str)]) -> (Option<i32>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), format!("{HEAD}{rewards}")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().to_str().unwrap();
    let out = rally_within_a_minute(&["check", "--rules", path], &[]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &*String::from_utf8_lossy(&out.stderr);
    let problems = text
        .lines()
        .filter(|l| l.contains(path))
        .map(|l| l.replace(&format!("{path}/"), ""))
        .collect();
    (out.status.code(), problems)
}

#[test]
fn every_mistake_in_a_rewards_section_is_reported_where_it_was_written() {
    let (code, problems) = check(
        r#"  - { id: a, name: A, cost: 0 }
  - { id: a, name: A again, cost: 10, colour: red }
  - { id: b, name: B, cost: 10, tiers: [glod] }
  - { id: c, name: C, cost: 10, during: { campaign: d12 } }
  - { id: d, name: D, cost: 10, codes: missing.txt }
  - { id: e, name: E, cost: 10, codes: ../outside.txt }
  - { id: f, name: F, cost: 10, stock: -1 }
  - { name: G, cost: 10 }
"#,
        &[],
    );
    assert_eq!(code, Some(1));
    for expected in [
        "rules.yaml:13:29: \"cost\" must be a whole number of points from 1 to 1000000000, found 0",
        "rules.yaml:14:11: reward \"a\" is already defined at",
        "rules.yaml:14:39: unknown key \"colour\" in reward",
        "rules.yaml:15:41: unknown tier \"glod\" (did you mean \"gold\"?)",
        "rules.yaml:16:53: unknown campaign \"d12\" (did you mean \"d11\"?)",
        "rules.yaml:17:40: file",
        "rules.yaml:18:40: path \"../outside.txt\" must be relative to the rules directory",
        "rules.yaml:19:40: \"stock\" must be 0 or more, found -1",
        "rules.yaml:20:5: reward is missing required key \"id\"",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "missing {expected:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), 9, "{problems:#?}");
}

#[test]
fn a_code_listed_twice_is_reported_at_its_second_line() {
    let (code, problems) = check(
        "  - { id: gift, name: Gift, cost: 10, codes: gift.txt }\n",
        &[("gift.txt", "# gift codes\nX1\nX2\n\nX1\n")],
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        problems,
        ["gift.txt:5:1: code \"X1\" is already listed on line 2"]
    );
}

#[test]
fn a_valid_catalog_checks_clean() {
    let (code, problems) = check(
        r#"  - id: gift
    name: Gift
    cost: 10
    stock: 3
    tiers: [gold]
    during: { campaign: d11, phase: peak }
    limit: { times: 1, per: campaign }
    codes: gift.txt
"#,
        &[("gift.txt", "X1\nX2\n")],
    );
    assert_eq!(code, Some(0), "{problems:#?}");
    assert!(problems.iter().all(|p| p.contains(": ok")), "{problems:#?}");
}
