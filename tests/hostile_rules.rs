//! Hostile and careless rule directories (issue 12): symbolic link loops, files that
//! leave the rules directory through a link, and channel settings `run` would refuse.
//! The real binary on real files: `check` must finish and say what is wrong, where.

mod support;

use std::path::Path;
use std::time::Duration;

use support::daemon::{rally_within_a_minute, Session};

const ONE_RULE: &str = "
rules:
  - id: checkin-points
    trigger: { event: checkin }
    actions:
      - points: 5
";

fn check(dir: &Path) -> (Option<i32>, String) {
    let out = rally_within_a_minute(&["check", "--rules", dir.to_str().unwrap()], &[]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A rules directory holding `rules.yaml` with `yaml` and the files given.
fn rules_with(yaml: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = support::daemon::rules_dir(yaml);
    for (rel, text) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

// --- symbolic links in the rules directory -----------------------------------------

#[test]
fn check_reports_symbolic_link_loops_by_path_and_finishes() {
    let dir = rules_with(ONE_RULE, &[("a/more.yaml", "rules: []\n")]);
    std::os::unix::fs::symlink(".", dir.path().join("a/loop")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("a/again")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("a/up")).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    let name = |rel: &str| dir.path().join(rel).display().to_string();
    for (link, target) in [
        ("a/again", name("a")),
        ("a/loop", name("a")),
        ("a/up", dir.path().display().to_string()),
    ] {
        let line = format!(
            "{}: symbolic link loop (points back to {target}); remove the link",
            name(link)
        );
        assert!(
            stderr.lines().any(|l| l == line),
            "no {line:?} in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("3 problems found\n"), "{stderr}");
}

#[test]
fn a_folder_linked_twice_is_read_once() {
    let dir = rules_with("rules: []\n", &[("shared/points.yaml", ONE_RULE)]);
    std::os::unix::fs::symlink("shared", dir.path().join("zz-alias")).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn run_with_a_symbolic_link_loop_refuses_to_start_naming_the_link() {
    let rules = support::daemon::rules_dir(ONE_RULE);
    std::os::unix::fs::symlink(".", rules.path().join("loop")).unwrap();
    std::os::unix::fs::symlink(".", rules.path().join("again")).unwrap();
    let (code, stderr) = support::daemon::run_until_refused(rules.path(), "127.0.0.1:0");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("loop: symbolic link loop"), "{stderr}");
    assert!(!stderr.contains("rally listening"), "{stderr}");
}

#[tokio::test]
async fn a_symbolic_link_loop_added_while_running_is_refused_on_reload() {
    let s = Session::start(ONE_RULE, &[]);
    std::os::unix::fs::symlink(".", s.rules.path().join("loop")).unwrap();
    std::os::unix::fs::symlink(".", s.rules.path().join("again")).unwrap();
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(60), s.post("/v1/rules/reload", ""))
            .await
            .expect("the reload answers within 60 s");
    assert_ne!(status, 200, "{body}");
    assert!(
        body.to_string().contains("loop: symbolic link loop"),
        "{body}"
    );
}

/// A template whose body is the file `leak.txt`, sent on check-in. `body_file`'s
/// value is on line 5, column 16.
const BODY_FROM_LEAK: &str = "
templates:
  hello:
    subject: Hi
    body_file: leak.txt
channels:
  console: { kind: log }
rules:
  - id: hello
    trigger: { event: checkin }
    actions:
      - send: { template: hello, channel: console }
";

/// A rule running the script file `leak.rhai`, named on line 6, column 17.
const SCRIPT_FROM_LEAK: &str = "
rules:
  - id: leaky
    trigger: { event: checkin }
    actions:
      - script: leak.rhai
";

/// A file outside any rules directory, to link to.
fn outside(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn the_one_problem(dir: &Path) -> String {
    let (code, stderr) = check(dir);
    assert_eq!(code, Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(lines[1], "1 problem found");
    lines[0].to_string()
}

#[test]
fn a_body_file_linked_to_outside_the_rules_directory_is_an_error_at_its_name() {
    let (_elsewhere, secret) = outside("passwd", "root:x:0:0:root:/root:/bin/sh\n");
    let dir = support::daemon::rules_dir(BODY_FROM_LEAK);
    std::os::unix::fs::symlink(&secret, dir.path().join("leak.txt")).unwrap();
    let problem = the_one_problem(dir.path());
    let at = format!("{}:5:16: ", dir.path().join("rules.yaml").display());
    assert!(problem.starts_with(&at), "{problem}");
    assert!(problem.contains("outside the rules directory"), "{problem}");
}

#[test]
fn a_script_file_linked_to_outside_the_rules_directory_is_an_error_at_its_name() {
    let (_elsewhere, secret) = outside("secret.rhai", "award(1000000, \"free\");\n");
    let dir = support::daemon::rules_dir(SCRIPT_FROM_LEAK);
    std::os::unix::fs::symlink(&secret, dir.path().join("leak.rhai")).unwrap();
    let problem = the_one_problem(dir.path());
    let at = format!("{}:6:17: ", dir.path().join("rules.yaml").display());
    assert!(problem.starts_with(&at), "{problem}");
    assert!(problem.contains("outside the rules directory"), "{problem}");
}

#[test]
fn a_body_file_linked_to_a_file_inside_the_rules_directory_is_read() {
    let dir = rules_with(BODY_FROM_LEAK, &[("texts/hello.txt", "Hello!\n")]);
    std::os::unix::fs::symlink("texts/hello.txt", dir.path().join("leak.txt")).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
}

// --- channel settings: `check` refuses what `run` would ------------------------------

/// An SMTP `from` that is no address (2:49), a header name with a space (7:7) and a
/// header value with a line break (8:15).
const BAD_CHANNELS: &str = r#"channels:
  mail: { kind: smtp, host: smtp.example, from: "not an address" }
  hook:
    kind: webhook
    url: "https://hooks.example/x"
    headers:
      "X Token": s3cret
      X-Note: "a\r\nInjected: 1"
"#;

#[test]
fn check_reports_every_channel_setting_run_would_refuse_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("channels.yaml"), BAD_CHANNELS).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    let file = dir.path().join("channels.yaml").display().to_string();
    for (at, says) in [
        (
            "2:49",
            "channel \"mail\": invalid from address \"not an address\"",
        ),
        ("7:7", "channel \"hook\": invalid header name \"X Token\""),
        (
            "8:15",
            "channel \"hook\": invalid value for header \"X-Note\"",
        ),
    ] {
        let start = format!("{file}:{at}: {says}");
        assert!(
            stderr.lines().any(|l| l.starts_with(&start)),
            "no line starting {start:?} in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("3 problems found\n"), "{stderr}");
}

#[test]
fn run_refuses_bad_channel_settings_without_saying_it_is_listening() {
    let rules = support::daemon::rules_dir(BAD_CHANNELS);
    let (code, stderr) = support::daemon::run_until_refused(rules.path(), "127.0.0.1:0");
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("invalid header name"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

// --- what a render may build -----------------------------------------------------------

const ONE_CHECKIN: &str =
    "{\"id\":\"e-1\",\"type\":\"checkin\",\"member\":\"m-1\",\"at\":\"2026-03-01T10:00:00Z\"}\n";

#[test]
fn a_template_that_would_build_gigabytes_fails_its_rule_and_sim_finishes() {
    let dir = support::daemon::rules_dir(support::JOIN_BOMB);
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, ONE_CHECKIN).unwrap();
    let out = rally_within_a_minute(
        &[
            "sim",
            "--rules",
            dir.path().to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["rule"], "bomb");
    let error = errors[0]["error"].as_str().unwrap();
    assert!(error.contains("template \"bomb\""), "{error}");
    assert!(error.contains("limit"), "{error}");
    assert_eq!(
        doc["members"]["m-1"]["points"], 5,
        "the other rule still ran"
    );
    assert_eq!(doc["messages"].as_array().unwrap().len(), 0);
}

// --- how big one member may grow ---------------------------------------------------------

/// `greedy` runs `script` on check-in (the script starts on line 7); `checkin-points`
/// awards 5 points on the same event.
fn greedy(script: &str) -> String {
    format!(
        "
rules:
  - id: greedy
    trigger: {{ event: checkin }}
    actions:
      - script: |
          {script}
  - id: checkin-points
    trigger: {{ event: checkin }}
    actions:
      - points: 5
"
    )
}

fn sim(yaml: &str, events: &str) -> serde_json::Value {
    support::sim::run(yaml, events, "2026-03-02T00:00:00Z")
}

#[test]
fn a_script_requesting_more_than_a_thousand_actions_fails_its_rule_at_its_line() {
    let doc = sim(&greedy("for i in 0..1001 { tag(\"t\" + i); }"), ONE_CHECKIN);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["rule"], "greedy");
    assert_eq!(errors[0]["at"], "rules.yaml:7");
    let error = errors[0]["error"].as_str().unwrap();
    assert!(error.contains("at most 1000 actions"), "{error}");
    assert_eq!(doc["members"]["m-1"]["tags"], serde_json::json!([]));
    assert_eq!(
        doc["members"]["m-1"]["points"], 5,
        "the other rule still ran"
    );
}

#[test]
fn a_script_that_would_put_megabytes_on_a_member_fails_and_leaves_it_unchanged() {
    let doc = sim(
        &greedy("let s = \"x\"; for i in 0..15 { s += s; } for i in 0..40 { set(\"k\" + i, s); }"),
        ONE_CHECKIN,
    );
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["rule"], "greedy");
    let error = errors[0]["error"].as_str().unwrap();
    assert!(
        error.contains("bytes of attributes, over the limit of 262144"),
        "{error}"
    );
    assert_eq!(doc["members"]["m-1"]["attrs"], serde_json::json!({}));
    assert_eq!(
        doc["members"]["m-1"]["points"], 5,
        "the other rule still ran"
    );
}

#[test]
fn a_profile_event_that_would_take_the_member_over_the_bound_is_not_merged_and_is_reported() {
    let big = "x".repeat(60_000);
    let events: String = (1..=5)
        .map(|i| {
            format!(
                "{{\"id\":\"p-{i}\",\"type\":\"profile\",\"member\":\"m-1\",\"at\":\"2026-03-01T10:0{i}:00Z\",\"data\":{{\"k{i}\":\"{big}\"}}}}\n"
            )
        })
        .collect();
    let doc = sim(ONE_RULE, &events);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["rule"], "(profile)");
    assert_eq!(errors[0]["event"], "p-5");
    let error = errors[0]["error"].as_str().unwrap();
    assert!(error.starts_with("profile data not merged: "), "{error}");
    let attrs = doc["members"]["m-1"]["attrs"].as_object().unwrap();
    assert_eq!(attrs.keys().collect::<Vec<_>>(), ["k1", "k2", "k3", "k4"]);
    assert_eq!(doc["members"]["m-1"]["counters"]["events.profile"], 5);
}
