//! The `rally` binary as an operator runs it (SPEC §3): exit codes, what `check` prints
//! for each kind of mistake, and what `sim` reads and writes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// An environment variable no test sets: `check` must report it missing.
const UNSET_VAR: &str = "RALLY_CLI_TEST_UNSET_HOOK";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn rally_in(cwd: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(args)
        .current_dir(cwd)
        .env_remove(UNSET_VAR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rally starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn rally(args: &[&str]) -> Run {
    rally_in(&repo(), args, None)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory holding `files` (relative path, content).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

fn check(dir: &Path) -> Run {
    rally(&["check", "--rules", dir.to_str().unwrap()])
}

fn at(dir: &tempfile::TempDir, rel: &str, line: u32, col: u32) -> String {
    format!("{}:{line}:{col}", dir.path().join(rel).display())
}

/// Runs `check` on `files`, which hold exactly one problem, and returns its line.
fn the_one_problem(files: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let dir = dir_with(files);
    let run = check(dir.path());
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert_eq!(lines[1], "1 problem found");
    (dir, lines[0].to_string())
}

const RULE_HEAD: &str = "rules:\n  - id: r\n";

// --- rally check: clean rule sets ---------------------------------------------------

#[test]
fn check_accepts_the_shipped_rules() {
    let run = rally(&["check", "--rules", "rules"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.starts_with("rules: ok — "), "{}", run.stdout);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn check_accepts_every_example() {
    for entry in fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        // The shipped example has events only; its rules are the repository's.
        if !path.join("rules.yaml").exists() {
            continue;
        }
        let run = check(&path);
        assert_eq!(run.code, Some(0), "{}: {}", path.display(), run.stderr);
    }
}

#[test]
fn check_reads_rules_from_the_current_directory_by_default() {
    let dir = dir_with(&[(
        "rules/a.yaml",
        "rules:\n  - id: r\n    trigger: { event: x }\n    actions: [tag: a]\n",
    )]);
    let run = rally_in(dir.path(), &["check"], None);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.starts_with("rules: ok — 1 rule, 1 file"),
        "{}",
        run.stdout
    );
}

#[test]
fn check_substitutes_environment_variables_that_are_set() {
    let dir = dir_with(&[(
        "a.yaml",
        "channels:\n  hook: { kind: webhook, url: \"${RALLY_CLI_TEST_HOOK}\" }\n",
    )]);
    let out = Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(["check", "--rules", dir.path().to_str().unwrap()])
        .env("RALLY_CLI_TEST_HOOK", "https://hooks.example/x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_of_a_missing_directory_fails_naming_it() {
    let run = check(Path::new("/nonexistent/rally-rules"));
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("/nonexistent/rally-rules"),
        "{}",
        run.stderr
    );
}

// --- rally check: every problem at once -------------------------------------------------

#[test]
fn check_prints_every_problem_of_every_file_then_a_count_and_exits_1() {
    let dir = dir_with(&[
        (
            "a.yaml",
            "settings:\n  timezone: Mars/Base\nrules:\n  - id: r\n    trigger: { inactive: 7y }\n    actions: [tag: a]\n",
        ),
        (
            "sub/b.yaml",
            "rules:\n  - id: s\n    trigger: { event: x }\n    priority: high\n    actions: [pionts: 5]\n",
        ),
    ]);
    let run = check(dir.path());
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let expected = [
        format!(
            "{}: \"Mars/Base\" is not an IANA time zone (e.g. \"Asia/Shanghai\")",
            at(&dir, "a.yaml", 2, 13)
        ),
        format!(
            "{}: invalid duration \"7y\": unknown unit 'y' (use w, d, h, m or s)",
            at(&dir, "a.yaml", 5, 26)
        ),
        format!(
            "{}: \"priority\" must be an integer, found a string",
            at(&dir, "sub/b.yaml", 4, 15)
        ),
        format!(
            "{}: unknown key \"pionts\" in action (did you mean \"points\"?)",
            at(&dir, "sub/b.yaml", 5, 15)
        ),
        "4 problems found".to_string(),
    ];
    assert_eq!(run.stderr.lines().collect::<Vec<_>>(), expected);
}

// --- rally check: one test per kind of problem --------------------------------------

#[test]
fn check_reports_a_yaml_syntax_error_at_its_position() {
    let (dir, line) = the_one_problem(&[("a.yaml", "rules:\n  - id: [oops\n")]);
    assert_eq!(
        line,
        format!(
            "{}: invalid YAML: unclosed bracket '['",
            at(&dir, "a.yaml", 2, 9)
        )
    );
}

#[test]
fn check_reports_an_unknown_key_with_a_did_you_mean_hint() {
    let text = format!(
        "{RULE_HEAD}    descripton: five points\n    trigger: {{ event: x }}\n    actions: [tag: a]\n"
    );
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: unknown key \"descripton\" in rule (did you mean \"description\"?)",
            at(&dir, "a.yaml", 3, 5)
        )
    );
}

#[test]
fn check_reports_a_value_of_the_wrong_type_at_the_value() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ event: x }}\n    enabled: sometimes\n    actions: [tag: a]\n"
    );
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: \"enabled\" must be true or false, found a string",
            at(&dir, "a.yaml", 4, 14)
        )
    );
}

#[test]
fn check_reports_a_missing_required_key_at_its_mapping() {
    let text = format!("{RULE_HEAD}    actions: [tag: a]\n");
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: rule is missing required key \"trigger\"",
            at(&dir, "a.yaml", 2, 5)
        )
    );
}

#[test]
fn check_reports_a_rule_id_defined_in_two_files_naming_both_places() {
    let rule = "rules:\n  - id: twice\n    trigger: { event: x }\n    actions: [tag: a]\n";
    let (dir, line) = the_one_problem(&[("a.yaml", rule), ("more/b.yaml", rule)]);
    assert_eq!(
        line,
        format!(
            "{}: rule \"twice\" is already defined at {}",
            at(&dir, "more/b.yaml", 2, 9),
            at(&dir, "a.yaml", 2, 9)
        )
    );
}

#[test]
fn check_reports_a_milestone_on_an_unknown_counter() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ milestone: purchase, at: 1 }}\n    actions: [tag: a]\n"
    );
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    let prefix = format!(
        "{}: unknown counter \"purchase\"",
        at(&dir, "a.yaml", 3, 27)
    );
    assert!(line.starts_with(&prefix), "{line}");
    assert!(line.ends_with("(did you mean \"purchases\"?)"), "{line}");
}

const MESSAGING: &str =
    "templates:\n  welcome: { body: hi }\nchannels:\n  console: { kind: log }\n";

#[test]
fn check_reports_an_unknown_template_in_send() {
    let text = format!("{MESSAGING}{RULE_HEAD}    trigger: {{ event: join }}\n    actions:\n      - send: {{ template: welcom, channel: console }}\n");
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: unknown template \"welcom\" (did you mean \"welcome\"?)",
            at(&dir, "a.yaml", 9, 27)
        )
    );
}

#[test]
fn check_reports_an_unknown_channel_in_send() {
    let text = format!("{MESSAGING}{RULE_HEAD}    trigger: {{ event: join }}\n    actions:\n      - send: {{ template: welcome, channel: consle }}\n");
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: unknown channel \"consle\" (did you mean \"console\"?)",
            at(&dir, "a.yaml", 9, 45)
        )
    );
}

#[test]
fn check_reports_invalid_rhai_in_if_at_the_offending_token() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ event: x }}\n    if: \"1 + + ;\"\n    actions: [tag: a]\n"
    );
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    // The text starts at column 10; Rhai stops at the `;`, 7 characters in.
    assert_eq!(
        line,
        format!("{}: Rhai: Unexpected ';'", at(&dir, "a.yaml", 4, 16))
    );
}

#[test]
fn check_reports_a_call_to_an_unknown_function_in_a_script_file() {
    let text = format!("{RULE_HEAD}    trigger: {{ event: x }}\n    actions: [script: s.rhai]\n");
    let script = "award(1);\nif rand() > 0.5 { award(2); }\n";
    let (dir, line) = the_one_problem(&[("a.yaml", &text), ("s.rhai", script)]);
    assert_eq!(
        line,
        format!(
            "{}: Rhai: unknown function \"rand\" (did you mean \"random\"?)",
            at(&dir, "s.rhai", 2, 4)
        )
    );
}

#[test]
fn check_reports_a_misspelt_member_field_with_the_field_it_resembles() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ event: x }}\n    if: \"member.point > 100\"\n    actions: [tag: a]\n"
    );
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: member has no field \"point\": it would always read as () (did you mean \"points\"?)",
            at(&dir, "a.yaml", 4, 17)
        )
    );
}

#[test]
fn check_reports_an_invalid_duration() {
    let text = format!("{RULE_HEAD}    trigger: {{ returned: 2 weeks }}\n    actions: [tag: a]\n");
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    let prefix = format!(
        "{}: invalid duration \"2 weeks\"",
        at(&dir, "a.yaml", 3, 26)
    );
    assert!(line.starts_with(&prefix), "{line}");
}

#[test]
fn check_reports_a_missing_environment_variable_by_name() {
    let text = format!("channels:\n  hook: {{ kind: webhook, url: \"${{{UNSET_VAR}}}\" }}\n");
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: environment variable {UNSET_VAR} is not set",
            at(&dir, "a.yaml", 2, 31)
        )
    );
}

#[test]
fn check_reports_a_webhook_url_that_is_not_http() {
    let text = "channels:\n  hook: { kind: webhook, url: \"ftp://files.example/x\" }\n";
    let (dir, line) = the_one_problem(&[("a.yaml", text)]);
    assert_eq!(
        line,
        format!(
            "{}: webhook url must start with http:// or https://, found \"ftp://files.example/x\"",
            at(&dir, "a.yaml", 2, 31)
        )
    );
}

#[test]
fn check_reports_a_cron_expression_with_the_wrong_number_of_fields() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ schedule: \"0 9 * *\" }}\n    audience: all\n    actions: [tag: a]\n"
    );
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: invalid cron expression \"0 9 * *\": expected 5 fields (or 6–7 with seconds), got 4",
            at(&dir, "a.yaml", 3, 27)
        )
    );
}

#[test]
fn check_reports_a_cron_field_out_of_range_at_the_field_with_crontab_bounds() {
    // `    trigger: { schedule: "0 9-25 * * *" }`: the text starts at column 27 and the
    // hour's 25 is at column 31.
    let text = format!(
        "{RULE_HEAD}    trigger: {{ schedule: \"0 9-25 * * *\" }}\n    audience: all\n    actions: [tag: a]\n"
    );
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: invalid cron expression \"0 9-25 * * *\": hour must be 0–23, found \"25\"",
            at(&dir, "a.yaml", 3, 31)
        )
    );
}

#[test]
fn check_reports_a_bad_cron_phase_start_at_the_field_in_a_plain_scalar() {
    let text =
        "campaigns:\n  - id: sale\n    phases:\n      - name: open\n        start: 0 9 * Fab Mon\n";
    let (dir, line) = the_one_problem(&[("a.yaml", text)]);
    assert_eq!(
        line,
        format!(
            "{}: invalid cron expression \"0 9 * Fab Mon\": month must be 1–12 or JAN–DEC, found \"Fab\"",
            at(&dir, "a.yaml", 5, 22)
        )
    );
}

#[test]
fn check_reports_a_duration_over_ten_years_at_the_duration() {
    let text =
        format!("{RULE_HEAD}    trigger: {{ inactive: 20000000w }}\n    actions: [tag: a]\n");
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    assert_eq!(
        line,
        format!(
            "{}: duration \"20000000w\" is longer than the longest allowed, 3650d (10 years)",
            at(&dir, "a.yaml", 3, 26)
        )
    );
}

const CAMPAIGN: &str = "campaigns:
  - id: sale
    phases:
      - { name: warmup, start: \"2026-11-01T00:00:00\" }
      - { name: peak,   start: \"2026-11-10T20:00:00\" }
";

#[test]
fn check_reports_campaign_phases_out_of_order() {
    let text = "campaigns:
  - id: sale
    phases:
      - { name: warmup, start: \"2026-11-10T00:00:00\" }
      - { name: peak,   start: \"2026-11-01T00:00:00\" }
";
    let (dir, line) = the_one_problem(&[("a.yaml", text)]);
    assert_eq!(
        line,
        format!(
            "{}: phase \"peak\" starts at 2026-11-01 00:00:00, not after the phase before it (\"warmup\" at 2026-11-10 00:00:00)",
            at(&dir, "a.yaml", 5, 32)
        )
    );
}

#[test]
fn check_reports_during_an_unknown_campaign() {
    let rule = "rules:
  - id: r
    trigger: { event: purchase }
    during: { campaign: sael, phase: peak }
    actions: [tag: a]
";
    let (dir, line) = the_one_problem(&[("campaigns.yaml", CAMPAIGN), ("rules.yaml", rule)]);
    assert_eq!(
        line,
        format!(
            "{}: unknown campaign \"sael\" (did you mean \"sale\"?)",
            at(&dir, "rules.yaml", 4, 25)
        )
    );
}

#[test]
fn check_reports_audience_on_an_event_trigger() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ event: x }}\n    audience: all\n    actions: [tag: a]\n"
    );
    let (dir, line) = the_one_problem(&[("a.yaml", &text)]);
    let prefix = format!(
        "{}: \"audience\" only applies to schedule and phase triggers",
        at(&dir, "a.yaml", 4, 5)
    );
    assert!(line.starts_with(&prefix), "{line}");
}

// --- rally sim -------------------------------------------------------------------------

const SIM_RULES: &str = "rules:
  - id: daily-checkin
    trigger: { event: checkin }
    limit: { times: 1, per: day }
    actions:
      - points: 5
";

const SIM_EVENTS: &str = r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-01T09:00:00Z"}
{"id":"e-2","type":"checkin","member":"m-1","at":"2026-11-02T09:00:00Z"}
"#;

fn sim_dir() -> tempfile::TempDir {
    dir_with(&[("rules/a.yaml", SIM_RULES), ("events.jsonl", SIM_EVENTS)])
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn sim_prints_one_document_with_every_section_of_the_spec() {
    let dir = sim_dir();
    let run = rally_in(
        dir.path(),
        &["sim", "--rules", "rules", "--events", "events.jsonl"],
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let doc = json(&run.stdout);
    for key in [
        "now",
        "members",
        "ledger",
        "messages",
        "tickets",
        "campaigns",
        "firings",
        "rejected",
    ] {
        assert!(doc.get(key).is_some(), "no {key:?} in {doc:#}");
    }
    assert_eq!(doc["now"], "2026-11-02T09:00:00Z");
    assert_eq!(doc["members"]["m-1"]["points"], 10);
    assert_eq!(doc["ledger"].as_array().unwrap().len(), 2);
    assert_eq!(doc["firings"][0]["rule"], "daily-checkin");
    assert_eq!(doc["firings"][0]["event"], "e-1");
}

/// A command that runs to its end keeps the pages it frees for itself
/// (`allocator::keep_freed_pages`): mimalloc's statistics, printed at exit, count
/// nothing given back. Without it the shipped week gives back about 9 MiB (loading the
/// rules frees whole pages), to be faulted in again and zeroed.
#[test]
fn sim_keeps_the_pages_it_frees() {
    let out = Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(["sim", "--rules", "rules", "--events"])
        .arg(Path::new("examples").join("shipped").join("events.jsonl"))
        .current_dir(repo())
        .env("MIMALLOC_SHOW_STATS", "1")
        .output()
        .expect("running rally");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let purged = stderr
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("purged"))
        .unwrap_or_else(|| panic!("no `purged` in mimalloc's statistics:\n{stderr}"));
    assert_eq!(
        purged.trim_start_matches([' ', ':']).trim(),
        "0",
        "pages were given back:\n{stderr}"
    );
}

#[test]
fn sim_writes_to_the_out_file_and_nothing_to_stdout() {
    let dir = sim_dir();
    let run = rally_in(
        dir.path(),
        &[
            "sim",
            "--rules",
            "rules",
            "--events",
            "events.jsonl",
            "--out",
            "out.json",
        ],
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let doc = json(&fs::read_to_string(dir.path().join("out.json")).unwrap());
    assert_eq!(doc["members"]["m-1"]["points"], 10);
}

#[test]
fn sim_reads_events_from_stdin_given_a_dash() {
    let dir = sim_dir();
    let run = rally_in(
        dir.path(),
        &["sim", "--rules", "rules", "--events", "-"],
        Some(SIM_EVENTS),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(json(&run.stdout)["members"]["m-1"]["points"], 10);
}

#[test]
fn sim_until_advances_the_clock_and_now_is_printed_in_utc() {
    let dir = sim_dir();
    let run = rally_in(
        dir.path(),
        &[
            "sim",
            "--rules",
            "rules",
            "--events",
            "events.jsonl",
            "--until",
            "2026-11-20T08:00:00+08:00",
        ],
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(json(&run.stdout)["now"], "2026-11-20T00:00:00Z");
}

#[test]
fn sim_refuses_an_until_that_is_not_rfc3339() {
    let dir = sim_dir();
    let run = rally_in(
        dir.path(),
        &[
            "sim",
            "--rules",
            "rules",
            "--events",
            "events.jsonl",
            "--until",
            "tomorrow",
        ],
        None,
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("RFC 3339"), "{}", run.stderr);
}

/// `sim --until UNTIL` on the sim rules in Shanghai time: the printed `now`.
fn sim_now_in_shanghai(until: &str) -> Run {
    let rules = format!("settings: {{ timezone: Asia/Shanghai }}\n{SIM_RULES}");
    let dir = dir_with(&[("rules/a.yaml", &rules), ("events.jsonl", SIM_EVENTS)]);
    rally_in(
        dir.path(),
        &[
            "sim",
            "--rules",
            "rules",
            "--events",
            "events.jsonl",
            "--until",
            until,
        ],
        None,
    )
}

#[test]
fn sim_until_reads_a_local_time_without_offset_in_settings_timezone() {
    let run = sim_now_in_shanghai("2026-11-15T00:00:00");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(json(&run.stdout)["now"], "2026-11-14T16:00:00Z");
}

#[test]
fn sim_until_reads_a_bare_date_as_local_midnight() {
    let run = sim_now_in_shanghai("2026-11-15");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(json(&run.stdout)["now"], "2026-11-14T16:00:00Z");
}

#[test]
fn sim_until_reads_a_local_time_with_a_space_and_minutes() {
    let run = sim_now_in_shanghai("2026-11-15 08:30");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(json(&run.stdout)["now"], "2026-11-15T00:30:00Z");
}

#[test]
fn sim_until_refusal_names_every_form_it_accepts() {
    let run = sim_now_in_shanghai("15/11/2026");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    for form in ["RFC 3339", "settings.timezone", "\"2026-11-01\""] {
        assert!(run.stderr.contains(form), "{form}: {}", run.stderr);
    }
}

#[test]
fn sim_lists_rejected_lines_with_their_number_and_field_and_goes_on() {
    let events = concat!(
        r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-01T09:00:00Z"}"#,
        "\n",
        r#"{"id":"e-2","type":"checkin","at":"2026-11-02T09:00:00Z"}"#,
        "\n\n",
        r#"{"id":"e-3","type":"Check In","member":"m-1","at":"2026-11-03T09:00:00Z"}"#,
        "\n",
        r#"{"id":"e-4","type":"purchase","member":"m-1","at":"2026-11-03T09:00:00Z","data":{"amount":-1}}"#,
        "\n",
        "not json\n",
        r#"{"id":"e-5","type":"checkin","member":"m-1","at":"2026-11-04T09:00:00Z"}"#,
        "\n",
    );
    let dir = dir_with(&[("rules/a.yaml", SIM_RULES), ("events.jsonl", events)]);
    let run = rally_in(
        dir.path(),
        &["sim", "--rules", "rules", "--events", "events.jsonl"],
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let doc = json(&run.stdout);
    let rejected = doc["rejected"].as_array().unwrap();
    let summary: Vec<(u64, String)> = rejected
        .iter()
        .map(|r| {
            let error = r["error"].as_str().unwrap();
            (
                r["line"].as_u64().unwrap(),
                error.split(':').next().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "member".to_string()),
            (4, "type".to_string()),
            (5, "data.amount".to_string()),
            (6, "event".to_string()),
        ]
    );
    assert_eq!(doc["members"]["m-1"]["points"], 10);
}

#[test]
fn sim_ignores_an_event_whose_id_was_already_processed() {
    let duplicate = r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-05T09:00:00Z"}"#;
    let events = format!("{SIM_EVENTS}{duplicate}\n");
    let dir = dir_with(&[("rules/a.yaml", SIM_RULES), ("events.jsonl", &events)]);
    let with = rally_in(
        dir.path(),
        &["sim", "--rules", "rules", "--events", "events.jsonl"],
        None,
    );
    let without = rally_in(
        dir.path(),
        &["sim", "--rules", "rules", "--events", "-"],
        Some(SIM_EVENTS),
    );
    let (with, without) = (json(&with.stdout), json(&without.stdout));
    assert_eq!(with["members"], without["members"]);
    assert_eq!(with["ledger"], without["ledger"]);
    assert_eq!(with["firings"], without["firings"]);
    assert_eq!(with["rejected"], Value::Array(vec![]));
}

#[test]
fn sim_refuses_a_broken_rule_set_with_its_problems() {
    let dir = dir_with(&[
        (
            "rules/a.yaml",
            "rules:\n  - id: r\n    trigger: { event: x }\n",
        ),
        ("events.jsonl", SIM_EVENTS),
    ]);
    let run = rally_in(
        dir.path(),
        &["sim", "--rules", "rules", "--events", "events.jsonl"],
        None,
    );
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .starts_with("rules/a.yaml:2:5: rule is missing required key \"actions\""),
        "{}",
        run.stderr
    );
}

#[test]
fn sim_fails_clearly_when_the_events_file_is_missing() {
    let dir = sim_dir();
    let run = rally_in(
        dir.path(),
        &["sim", "--rules", "rules", "--events", "nope.jsonl"],
        None,
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.starts_with("rally: cannot open nope.jsonl"),
        "{}",
        run.stderr
    );
}

// --- rally member ------------------------------------------------------------------------

#[test]
fn member_on_a_missing_data_directory_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("data");
    let run = rally(&["member", "m-1", "--data", missing.to_str().unwrap()]);
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(
        run.stderr,
        format!("rally: no data directory at {}\n", missing.display())
    );
}

#[test]
fn member_shows_the_state_ledger_and_history_from_a_data_directory() {
    // A data directory as a stopped daemon leaves it: one committed step.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let rules = rally::rules::from_sources(
            &[(
                "rules.yaml",
                "rules:\n  - id: checkin-points\n    trigger: { event: checkin }\n    actions: [ { points: 5 } ]\n",
            )],
            &|_| None,
        )
        .unwrap();
        let store = rally::store::Store::open(&data).unwrap();
        let mut runner = rally::runner::Runner::new(store, std::sync::Arc::new(rules)).unwrap();
        let event = rally::event::parse_line(
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z"}"#,
            rally::event::AtPolicy::Required,
        )
        .unwrap();
        runner.apply_event(&event, event.at_utc()).unwrap();
        runner.commit().unwrap();
        runner.store().sync().unwrap();
    }
    let run = rally(&["member", "m-1", "--data", data.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["member"]["points"], 5);
    assert_eq!(doc["ledger"][0]["rule"], "checkin-points");
    assert_eq!(doc["history"][0]["event"], "e-1");

    let unknown = rally(&["member", "m-404", "--data", data.to_str().unwrap()]);
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("no member \"m-404\""),
        "{}",
        unknown.stderr
    );
}

/// A short `rally bench` on the shipped rules: both runs happen over HTTP, every
/// request is answered, and the figures are printed (their values are not judged).
#[test]
fn bench_drives_the_daemon_and_reports_both_runs() {
    let rules = repo().join("rules");
    let run = rally(&[
        "bench",
        "--rules",
        rules.to_str().unwrap(),
        "--events",
        "500",
        "--concurrency",
        "2",
        "--rate",
        "400",
        "--seconds",
        "0.5",
    ]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("saturation: 500 events in batches of 50 from 2 clients"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("fixed load: 400 events/s offered (one per request) for ")
            && run.stdout.contains("200 sent, 0 failed; ack latency p50 "),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("first failure"), "{}", run.stdout);
}
