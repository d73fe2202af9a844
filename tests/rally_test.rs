//! `rally test` as operators and CI run it: the shipped rules' own tests pass, a failing
//! expectation shows expected vs got and exits 1, an invalid test file is reported at
//! `path:line:col` and exits 2, `--junit` writes a well-formed report, and `rally
//! check` validates test files while rule loading leaves them out.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn rally(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("rally runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A rules directory with one rule and the given test file as `tests/t.yaml`.
fn rules_with_test(test: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("rules.yaml"),
        "rules:\n  - id: daily-checkin\n    trigger: { event: checkin }\n    limit: { times: 1, per: day }\n    actions:\n      - points: 5\n",
    )
    .unwrap();
    fs::create_dir(dir.path().join("tests")).unwrap();
    let path = dir.path().join("tests/t.yaml");
    fs::write(&path, test).unwrap();
    (dir, path)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn the_shipped_rules_pass_their_own_tests() {
    let run = rally(&["test", "rules"]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(" ... ok\n"), "{}", run.stdout);
    assert!(!run.stdout.contains("FAILED"), "{}", run.stdout);
    assert!(run.stdout.contains("test result: ok."), "{}", run.stdout);
}

const FAILING: &str = "\
tests:
  - name: check-ins earn points
    events:
      - { type: checkin, member: m-1, at: +0, repeat: 2, every: 1d }
    expect:
      members:
        m-1: { points: 15 }
      fired: [{ rule: daily-checkin, times: 2 }]
  - name: one check-in is worth 5
    events:
      - { type: checkin, member: m-1 }
    expect:
      members:
        m-1: { points: 5 }
";

#[test]
fn a_failing_expectation_shows_expected_and_got_and_exits_1() {
    let (dir, file) = rules_with_test(FAILING);
    let run = rally(&["test", arg(dir.path())]);
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("test t: check-ins earn points ... FAILED"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("test t: one check-in is worth 5 ... ok"),
        "{}",
        run.stdout
    );
    let at = format!("{}:7:24: members.m-1.points", file.display());
    assert!(run.stdout.contains(&at), "{}", run.stdout);
    assert!(run.stdout.contains("expected: 15"), "{}", run.stdout);
    assert!(run.stdout.contains("got: 10"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("test result: FAILED. 1 passed, 1 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_invalid_test_file_is_reported_at_its_line_and_column_and_exits_2() {
    let (dir, file) = rules_with_test(
        "tests:\n  - name: typo\n    events:\n      - { type: checkin, member: m-1, at: tomorrow }\n    expect:\n      fired: [daily-chekin]\n",
    );
    let run = rally(&["test", arg(dir.path())]);
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    let bad_time = format!("{}:4:43: \"tomorrow\" is not a time", file.display());
    assert!(run.stderr.contains(&bad_time), "{}", run.stderr);
    let bad_rule = format!(
        "{}:6:15: unknown rule \"daily-chekin\" (or it is disabled) (did you mean \"daily-checkin\"?)",
        file.display()
    );
    assert!(run.stderr.contains(&bad_rule), "{}", run.stderr);
    // `rally check` reports the same problems, with its own exit code.
    let check = rally(&["check", "--rules", arg(dir.path())]);
    assert_eq!(check.code, Some(1));
    assert!(check.stderr.contains(&bad_rule), "{}", check.stderr);
}

#[test]
fn junit_output_lists_every_test_with_escaped_failures() {
    let (dir, _) =
        rules_with_test(&FAILING.replace("check-ins earn points", "check-ins <earn> & \"points\""));
    let report = dir.path().join("report.xml");
    let run = rally(&["test", arg(dir.path()), "--junit", arg(&report)]);
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let xml = fs::read_to_string(&report).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rally test\" tests=\"2\" failures=\"1\">"), "{xml}");
    assert!(
        xml.contains("<testsuite name=\"t\" tests=\"2\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"check-ins &lt;earn&gt; &amp; &quot;points&quot;\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"1 expectation not met\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"one check-in is worth 5\" classname=\"t\""),
        "{xml}"
    );
    assert!(xml.trim_end().ends_with("</testsuites>"), "{xml}");
    // Every element opened is closed: a crude well-formedness check.
    assert_eq!(xml.matches("<testcase ").count(), 2);
    assert_eq!(xml.matches("</testsuite>").count(), 1);
}

#[test]
fn test_files_are_not_rule_files_and_check_counts_them() {
    let (dir, _) = rules_with_test(FAILING);
    let run = rally(&["check", "--rules", arg(dir.path())]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("ok — 1 rule, 1 file, 2 tests in 1 test file"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_same_tests_give_the_same_output_every_run() {
    let first = rally(&["test", "rules"]);
    let second = rally(&["test", "rules"]);
    assert_eq!(first.stdout, second.stdout);
}
