//! Loading rule directories (SPEC §2): a valid set compiles, and every kind of mistake
//! is reported as `path:line:col: message`, all at once.

use std::fs;
use std::path::{Path, PathBuf};

use rally::rules::{self, Action, Amount, CatchUp, LimitPer, RuleError, RuleSet, Trigger};

fn env(name: &str) -> Option<String> {
    match name {
        "SMTP_HOST" => Some("smtp.example".into()),
        "SMTP_USER" => Some("club".into()),
        "SMTP_PASSWORD" => Some("secret".into()),
        "WECOM_HOOK" => Some("https://hooks.example/wecom".into()),
        _ => None,
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rules")
        .join(name)
}

/// A scratch rules directory holding `files` (relative path, content).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

fn load(dir: &Path) -> Result<RuleSet, Vec<RuleError>> {
    rules::load_with_env(dir, &env)
}

/// The errors of loading `files`, as `rally check` prints them.
fn errors_of(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<String>) {
    let dir = dir_with(files);
    let errors = match load(dir.path()) {
        Ok(_) => panic!("expected the rule set to be refused"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    };
    (dir, errors)
}

fn at(dir: &tempfile::TempDir, rel: &str, line: u32, col: u32) -> String {
    format!("{}:{line}:{col}", dir.path().join(rel).display())
}

/// The single error of loading `files`.
fn only_error(files: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let (dir, errors) = errors_of(files);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    (dir, errors.into_iter().next().unwrap())
}

const RULE_HEAD: &str = "rules:\n  - id: r\n";

#[test]
fn a_full_rule_set_with_every_section_loads() {
    let set = load(&fixture("full")).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(set.settings.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(set.settings.daily_cap, Some(200));
    assert_eq!(set.settings.messaging.max_per_day, Some(3));
    assert!(set.settings.activity.includes("share"));
    assert!(!set.settings.activity.includes("join"));
    assert_eq!(set.tiers.as_ref().unwrap().levels.len(), 4);
    assert_eq!(set.counters.len(), 2);
    assert_eq!(set.templates.len(), 2);
    assert!(set.templates["welcome"].html);
    assert!(set.templates["welcome"].body.contains("Welcome"));
    assert_eq!(set.channels.len(), 3);
    match &set.channels["email"].kind {
        rules::ChannelKind::Smtp(smtp) => {
            assert_eq!(smtp.host, "smtp.example");
            assert_eq!(smtp.password.as_deref(), Some("secret"));
            assert_eq!(smtp.timeout, chrono::Duration::seconds(30));
        }
        _ => panic!("email is an smtp channel"),
    }
    let support = &set.escalations["support"];
    assert_eq!(support.levels.len(), 3);
    assert_eq!(support.levels[0].within, Some(chrono::Duration::hours(2)));
    assert_eq!(support.levels[2].within, None);
    let campaign = &set.campaigns[0];
    assert_eq!(campaign.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(campaign.phases.len(), 3);
    assert_eq!(campaign.budget_points, Some(500_000));
    // The disabled rule is validated but not run.
    assert!(set.rules.iter().all(|r| r.id != "dormant"));
    assert_eq!(set.rules.len(), 10);
    assert_eq!(set.version.len(), 12);
    let files: Vec<String> = set.files.iter().map(|f| f.display().to_string()).collect();
    assert_eq!(
        files,
        [
            "campaigns.yaml",
            "messaging.yml",
            "rules/checkin.yaml",
            "rules/lifecycle.yaml",
            "scripts/bonus.rhai",
            "settings.yaml",
            "templates/welcome.html"
        ]
    );
}

#[test]
fn rules_run_by_priority_then_file_then_position() {
    let set = load(&fixture("full")).unwrap();
    let order: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        order,
        [
            "streak-7",
            "peak-double",
            "daily-checkin",
            "every-ten-posts",
            "silent-7d",
            "came-back",
            "gold",
            "any-up",
            "peak-opens",
            "complaint"
        ]
    );
}

#[test]
fn the_index_groups_rules_by_what_triggers_them() {
    let set = load(&fixture("full")).unwrap();
    let ids =
        |list: &[usize]| -> Vec<String> { list.iter().map(|&i| set.rules[i].id.clone()).collect() };
    assert_eq!(ids(&set.index.by_event_type["purchase"]), ["peak-double"]);
    assert_eq!(ids(&set.index.by_event_type["share"]), ["peak-double"]);
    assert_eq!(ids(&set.index.by_event_type["checkin"]), ["daily-checkin"]);
    assert_eq!(
        set.index.milestone_counters,
        ["checkin_streak", "posts_week"]
    );
    let milestones: Vec<usize> = set.index.milestones.iter().map(|&(i, _)| i).collect();
    assert_eq!(ids(&milestones), ["streak-7", "every-ten-posts"]);
    assert_eq!(ids(&set.index.tier), ["gold", "any-up"]);
    assert_eq!(ids(&set.index.inactive), ["silent-7d"]);
    assert_eq!(ids(&set.index.returned), ["came-back"]);
    assert_eq!(ids(&set.index.phase), ["peak-opens"]);
    assert!(set.index.schedule.is_empty());
    assert!(!set.index.by_event_type.contains_key("post"));
}

#[test]
fn actions_are_compiled_as_written() {
    let set = load(&fixture("full")).unwrap();
    let rule = set.rules.iter().find(|r| r.id == "peak-double").unwrap();
    assert!(matches!(
        rule.actions[0],
        Action::Points {
            amount: Amount::Expr(_),
            ..
        }
    ));
    assert_eq!(rule.limit.unwrap().per, LimitPer::Campaign);
    assert_eq!(rule.during.as_ref().unwrap().phases, ["peak"]);
    assert_eq!(rule.catch_up, CatchUp::All);
    let streak = set.rules.iter().find(|r| r.id == "streak-7").unwrap();
    assert!(matches!(streak.trigger, Trigger::Milestone { .. }));
    let gold = set.rules.iter().find(|r| r.id == "gold").unwrap();
    match &gold.actions[0] {
        Action::Script(expr) => {
            assert!(expr.at.file.ends_with("scripts/bonus.rhai"));
            assert_eq!((expr.at.line, expr.at.col), (1, 1));
        }
        _ => panic!("gold runs a script"),
    }
}

#[test]
fn the_version_is_stable_and_changes_when_a_referenced_file_changes() {
    let files = [
        (
            "r.yaml",
            "rules:\n  - id: r\n    trigger: { event: x }\n    actions:\n      - script: s.rhai\n",
        ),
        ("s.rhai", "tag(\"a\");\n"),
    ];
    let a = dir_with(&files);
    let b = dir_with(&files);
    let va = load(a.path()).unwrap().version;
    assert_eq!(va, load(b.path()).unwrap().version);
    fs::write(b.path().join("s.rhai"), "tag(\"b\");\n").unwrap();
    assert_ne!(va, load(b.path()).unwrap().version);
}

#[test]
fn an_empty_directory_is_an_error() {
    let dir = dir_with(&[("README.md", "no rules here")]);
    let errors = load(dir.path()).err().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].at, None);
    assert!(errors[0].message.contains("no rule files"), "{}", errors[0]);
}

#[test]
fn a_missing_directory_is_an_error_without_a_position() {
    let errors = load(Path::new("/nonexistent/rally-rules")).err().unwrap();
    assert_eq!(errors[0].at, None);
    assert!(errors[0].message.contains("/nonexistent/rally-rules"));
}

#[test]
fn a_yaml_syntax_error_has_its_position() {
    let (dir, error) = only_error(&[("a.yaml", "rules:\n  - id: [oops\n")]);
    assert_eq!(
        error,
        format!(
            "{}: invalid YAML: unclosed bracket '['",
            at(&dir, "a.yaml", 2, 9)
        )
    );
}

#[test]
fn a_duplicate_key_is_an_error_at_the_second_one() {
    let text = "rules:\n  - id: r\n    id: s\n    trigger: { event: x }\n    actions: [tag: a]\n";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert_eq!(
        error,
        format!(
            "{}: duplicate key \"id\" (first written at {})",
            at(&dir, "a.yaml", 3, 5),
            at(&dir, "a.yaml", 2, 5)
        )
    );
}

#[test]
fn an_unknown_key_suggests_the_closest_known_one() {
    let text = format!("{RULE_HEAD}    triger: {{ event: x }}\n    trigger: {{ event: x }}\n    actions: [tag: a]\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: unknown key \"triger\" in rule (did you mean \"trigger\"?)",
            at(&dir, "a.yaml", 3, 5)
        )
    );
}

#[test]
fn a_misspelt_action_is_reported_once_with_a_hint() {
    let text = format!("{RULE_HEAD}    trigger: {{ event: x }}\n    actions:\n      - pionts: 5\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: unknown key \"pionts\" in action (did you mean \"points\"?)",
            at(&dir, "a.yaml", 5, 9)
        )
    );
}

#[test]
fn an_unknown_section_is_an_error() {
    let (dir, error) = only_error(&[("a.yaml", "rule: []\n")]);
    assert_eq!(
        error,
        format!(
            "{}: unknown key \"rule\" in a rule file (did you mean \"rules\"?)",
            at(&dir, "a.yaml", 1, 1)
        )
    );
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_at_the_value() {
    let text = format!(
        "{RULE_HEAD}    priority: high\n    trigger: {{ event: x }}\n    actions: [tag: a]\n"
    );
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: \"priority\" must be an integer, found a string",
            at(&dir, "a.yaml", 3, 15)
        )
    );
}

#[test]
fn a_missing_required_key_is_an_error_at_its_mapping() {
    let text = format!("{RULE_HEAD}    trigger: {{ event: x }}\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: rule is missing required key \"actions\"",
            at(&dir, "a.yaml", 2, 5)
        )
    );
}

#[test]
fn a_missing_environment_variable_is_named_at_its_scalar() {
    let text = "channels:\n  hook: { kind: webhook, url: \"${NO_SUCH_HOOK}\" }\n";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert_eq!(
        error,
        format!(
            "{}: environment variable NO_SUCH_HOOK is not set",
            at(&dir, "a.yaml", 2, 31)
        )
    );
}

#[test]
fn a_webhook_url_must_be_http_or_https() {
    let text = "channels:\n  hook:\n    kind: webhook\n    url: ftp://files.example/x\n";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert_eq!(
        error,
        format!(
            "{}: webhook url must start with http:// or https://, found \"ftp://files.example/x\"",
            at(&dir, "a.yaml", 4, 10)
        )
    );
}

#[test]
fn an_unknown_channel_kind_suggests_the_closest() {
    let text = "channels:\n  hook: { kind: webhok }\n";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert_eq!(
        error,
        format!(
            "{}: \"kind\" must be one of smtp, webhook, log, found \"webhok\" (did you mean \"webhook\"?)",
            at(&dir, "a.yaml", 2, 17)
        )
    );
}

#[test]
fn a_channel_retries_for_a_day_with_waits_up_to_an_hour_unless_it_says_otherwise() {
    let text = "channels:
  console: { kind: log }
  hook: { kind: webhook, url: \"http://127.0.0.1:9/h\", retry: { for: 2h, max_backoff: 5m } }
  mail: { kind: log, retry: { for: 3d } }
";
    let dir = dir_with(&[("a.yaml", text)]);
    let set = load(dir.path()).unwrap_or_else(|e| panic!("{e:#?}"));
    let retry = |id: &str| set.channels[id].retry;
    assert_eq!(retry("console").for_, chrono::Duration::hours(24));
    assert_eq!(retry("console").max_backoff, chrono::Duration::hours(1));
    assert_eq!(retry("hook").for_, chrono::Duration::hours(2));
    assert_eq!(retry("hook").max_backoff, chrono::Duration::minutes(5));
    assert_eq!(retry("mail").for_, chrono::Duration::days(3));
    assert_eq!(retry("mail").max_backoff, chrono::Duration::hours(1));
}

#[test]
fn a_bad_retry_duration_is_an_error_at_its_value() {
    let text = "channels:\n  console: { kind: log, retry: { for: \"24\" } }\n";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert!(
        error.starts_with(&format!("{}: ", at(&dir, "a.yaml", 2, 39))),
        "{error}"
    );
    assert!(error.contains("needs a unit"), "{error}");
}

#[test]
fn an_unknown_retry_key_suggests_the_closest() {
    let text = "channels:\n  console: { kind: log, retry: { max_backof: 1h } }\n";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert_eq!(
        error,
        format!(
            "{}: unknown key \"max_backof\" in channel retry (did you mean \"max_backoff\"?)",
            at(&dir, "a.yaml", 2, 34)
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
fn phases_out_of_order_are_an_error_at_the_late_start() {
    let text = "campaigns:
  - id: sale
    phases:
      - { name: warmup, start: \"2026-11-10T00:00:00\" }
      - { name: peak,   start: \"2026-11-01\" }
";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert_eq!(
        error,
        format!(
            "{}: phase \"peak\" starts at 2026-11-01 00:00:00, not after the phase before it (\"warmup\" at 2026-11-10 00:00:00)",
            at(&dir, "a.yaml", 5, 32)
        )
    );
}

#[test]
fn during_an_unknown_campaign_is_an_error_with_a_hint() {
    let rule = "rules:
  - id: r
    trigger: { event: x }
    during: { campaign: sal }
    actions: [tag: a]
";
    let (dir, error) = only_error(&[("a.yaml", CAMPAIGN), ("b.yaml", rule)]);
    assert_eq!(
        error,
        format!(
            "{}: unknown campaign \"sal\" (did you mean \"sale\"?)",
            at(&dir, "b.yaml", 4, 25)
        )
    );
}

#[test]
fn during_an_unknown_phase_is_an_error_with_a_hint() {
    let rule = "rules:
  - id: r
    trigger: { event: x }
    during: { campaign: sale, phase: [warmup, peek] }
    actions: [tag: a]
";
    let (dir, error) = only_error(&[("a.yaml", CAMPAIGN), ("b.yaml", rule)]);
    assert_eq!(
        error,
        format!(
            "{}: campaign \"sale\" has no phase \"peek\" (did you mean \"peak\"?)",
            at(&dir, "b.yaml", 4, 47)
        )
    );
}

#[test]
fn audience_on_an_event_trigger_is_an_error() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ event: x }}\n    audience: all\n    actions: [tag: a]\n"
    );
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert!(
        error.starts_with(&format!(
            "{}: \"audience\" only applies to schedule and phase triggers",
            at(&dir, "a.yaml", 4, 5)
        )),
        "{error}"
    );
}

#[test]
fn a_phase_trigger_without_audience_is_an_error() {
    let rule = "rules:
  - id: r
    trigger: { phase: { campaign: sale, enters: peak } }
    actions: [tag: a]
";
    let (dir, error) = only_error(&[("a.yaml", CAMPAIGN), ("b.yaml", rule)]);
    assert!(
        error.starts_with(&format!(
            "{}: a phase trigger fires for no member in particular: add \"audience: all\"",
            at(&dir, "b.yaml", 2, 5)
        )),
        "{error}"
    );
}

#[test]
fn an_invalid_duration_is_an_error_at_the_scalar() {
    let text = format!("{RULE_HEAD}    trigger: {{ inactive: 7y }}\n    actions: [tag: a]\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: invalid duration \"7y\": unknown unit 'y' (use w, d, h, m or s)",
            at(&dir, "a.yaml", 3, 26)
        )
    );
}

#[test]
fn a_rule_id_defined_in_two_files_names_both_places() {
    let rule = "rules:\n  - id: twice\n    trigger: { event: x }\n    actions: [tag: a]\n";
    let (dir, error) = only_error(&[("a.yaml", rule), ("sub/b.yaml", rule)]);
    assert_eq!(
        error,
        format!(
            "{}: rule \"twice\" is already defined at {}",
            at(&dir, "sub/b.yaml", 2, 9),
            at(&dir, "a.yaml", 2, 9)
        )
    );
}

#[test]
fn settings_in_two_files_name_both_places() {
    let (dir, error) = only_error(&[
        ("a.yaml", "settings: { timezone: UTC }\n"),
        ("b.yaml", "\nsettings: { timezone: UTC }\n"),
    ]);
    assert_eq!(
        error,
        format!(
            "{}: settings are already defined at {}",
            at(&dir, "b.yaml", 2, 1),
            at(&dir, "a.yaml", 1, 1)
        )
    );
}

#[test]
fn an_unknown_template_suggests_the_closest() {
    let text = "templates:
  welcome: { body: hi }
channels:
  console: { kind: log }
rules:
  - id: r
    trigger: { event: join }
    actions:
      - send: { template: welcom, channel: console }
";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert_eq!(
        error,
        format!(
            "{}: unknown template \"welcom\" (did you mean \"welcome\"?)",
            at(&dir, "a.yaml", 9, 27)
        )
    );
}

#[test]
fn errors_in_several_files_are_all_reported_in_order() {
    let (dir, errors) = errors_of(&[
        (
            "b.yaml",
            "rules:\n  - id: Bad Id\n    trigger: { inactive: soon }\n    actions: []\n",
        ),
        (
            "a.yaml",
            "settings:\n  timezone: Mars/Base\n  points: { daily_cap: -5 }\n",
        ),
        ("c/d.yml", "tiers:\n  by: points\n  levels: []\n"),
    ]);
    assert_eq!(
        errors,
        [
            format!("{}: \"Mars/Base\" is not an IANA time zone (e.g. \"Asia/Shanghai\")", at(&dir, "a.yaml", 2, 13)),
            format!("{}: \"daily_cap\" must be a positive integer, found -5", at(&dir, "a.yaml", 3, 24)),
            format!("{}: rule id \"Bad Id\" may only use a-z, 0-9, '_' and '-'", at(&dir, "b.yaml", 2, 9)),
            format!("{}: invalid duration \"soon\": expected a number before 's' (e.g. \"7d\", \"36h\", \"90m\")", at(&dir, "b.yaml", 3, 26)),
            format!("{}: a rule needs at least one action", at(&dir, "b.yaml", 4, 14)),
            format!("{}: tiers need at least one level", at(&dir, "c/d.yml", 3, 11)),
        ]
    );
}

#[test]
fn a_rhai_syntax_error_points_into_the_expression() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ event: x }}\n    if: \"1 + + ;\"\n    actions: [tag: a]\n"
    );
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    // `if: "1 + + ;"`: the text starts at column 10; Rhai stops at the `;`.
    assert_eq!(
        error,
        format!("{}: Rhai: Unexpected ';'", at(&dir, "a.yaml", 4, 16))
    );
}

#[test]
fn a_rhai_error_in_an_inline_block_script_points_at_its_line() {
    let rule = format!("{RULE_HEAD}    trigger: {{ event: x }}\n    actions:\n      - script: |\n          let a = 1;\n          let = 2;\n");
    let (dir, error) = only_error(&[("a.yaml", &rule)]);
    assert!(
        error.starts_with(&format!("{}: Rhai: ", at(&dir, "a.yaml", 7, 15))),
        "{error}"
    );
}

#[test]
fn a_rhai_error_in_a_script_file_points_at_its_line() {
    let rule = format!(
        "{RULE_HEAD}    trigger: {{ event: x }}\n    actions:\n      - script: scripts/s.rhai\n"
    );
    let (dir, error) = only_error(&[
        ("a.yaml", &rule),
        ("scripts/s.rhai", "let a = 1;\nlet = 2;\n"),
    ]);
    assert!(
        error.starts_with(&format!("{}: Rhai: ", at(&dir, "scripts/s.rhai", 2, 5))),
        "{error}"
    );
}

#[test]
fn a_missing_script_file_is_an_error_at_its_name() {
    let rule = format!(
        "{RULE_HEAD}    trigger: {{ event: x }}\n    actions:\n      - script: scripts/none.rhai\n"
    );
    let (dir, error) = only_error(&[("a.yaml", &rule)]);
    assert!(
        error.starts_with(&format!("{}: file ", at(&dir, "a.yaml", 5, 17))),
        "{error}"
    );
    assert!(error.ends_with("does not exist"), "{error}");
}

#[test]
fn a_missing_body_file_is_an_error_at_its_name() {
    let text = "templates:\n  hello:\n    body_file: mail/hello.html\n";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert!(
        error.starts_with(&format!("{}: file ", at(&dir, "a.yaml", 3, 16))),
        "{error}"
    );
}

#[test]
fn a_milestone_on_an_unknown_counter_suggests_the_closest() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ milestone: checkin_streek, at: 7 }}\n    actions: [tag: a]\n"
    );
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert!(
        error.starts_with(&format!(
            "{}: unknown counter \"checkin_streek\"",
            at(&dir, "a.yaml", 3, 27)
        )),
        "{error}"
    );
    assert!(
        error.ends_with("(did you mean \"checkin_streak\"?)"),
        "{error}"
    );
}

#[test]
fn a_trigger_has_exactly_one_kind() {
    let text =
        format!("{RULE_HEAD}    trigger: {{ event: x, inactive: 7d }}\n    actions: [tag: a]\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: a trigger has exactly one kind: found both \"event\" and \"inactive\"",
            at(&dir, "a.yaml", 3, 26)
        )
    );
}

#[test]
fn a_tier_trigger_needs_a_known_tier() {
    let text = format!("tiers:\n  by: points\n  levels: [{{ name: gold, from: 0 }}]\n{RULE_HEAD}    trigger: {{ tier: glod }}\n    actions: [tag: a]\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: unknown tier \"glod\" (did you mean \"gold\"?)",
            at(&dir, "a.yaml", 6, 22)
        )
    );
}

#[test]
fn a_limit_per_campaign_needs_during() {
    let text = format!("{RULE_HEAD}    trigger: {{ event: x }}\n    limit: {{ times: 1, per: campaign }}\n    actions: [tag: a]\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: \"per: campaign\" needs the rule to name its campaign with \"during\"",
            at(&dir, "a.yaml", 4, 29)
        )
    );
}

#[test]
fn escalation_levels_need_within_except_the_last() {
    let text = "channels: { log: { kind: log } }
escalations:
  - id: support
    levels:
      - { notify: { channel: log, to: a } }
      - { notify: { channel: log, to: b }, within: 1h }
";
    let (dir, errors) = errors_of(&[("a.yaml", text)]);
    assert_eq!(
        errors,
        [
            format!("{}: every escalation level but the last needs \"within\" (the time to acknowledge before climbing)", at(&dir, "a.yaml", 5, 9)),
            format!("{}: the last escalation level has nowhere to climb: remove \"within\"", at(&dir, "a.yaml", 6, 44)),
        ]
    );
}

#[test]
fn a_disabled_rule_is_still_validated() {
    let text = format!("{RULE_HEAD}    enabled: false\n    trigger: {{ inactive: never }}\n    actions: [tag: a]\n");
    let (_dir, errors) = errors_of(&[("a.yaml", &text)]);
    assert_eq!(errors.len(), 1);
}

#[test]
fn yes_and_on_stay_strings() {
    let text = "counters:\n  - id: yes_count\n    on: [yes]\nrules:\n  - id: r\n    trigger: { milestone: yes_count, every: 2 }\n    actions: [tag: on]\n";
    let dir = dir_with(&[("a.yaml", text)]);
    let set = load(dir.path()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(set.counters[0].on, ["yes"]);
}

// Needs the sandbox to know `member` and `event` at compile time (src/script.rs).
#[test]
fn expressions_may_use_member_and_event() {
    let text = format!("counters:\n  - id: words\n    on: post\n    add: \"event.data.words / 100\"\n{RULE_HEAD}    trigger: {{ event: post }}\n    if: \"member.points > 10\"\n    actions: [tag: a]\n");
    let dir = dir_with(&[("a.yaml", &text)]);
    load(dir.path()).unwrap_or_else(|e| panic!("{e:#?}"));
}

// The tests below use cron expressions and need `CronSpec::parse`.

#[test]
fn a_schedule_rule_with_an_audience_loads() {
    let text = format!("{RULE_HEAD}    trigger: {{ schedule: \"0 9 * * Mon\" }}\n    catch_up: latest\n    audience: all\n    actions: [tag: a]\n");
    let dir = dir_with(&[("a.yaml", &text)]);
    let set = load(dir.path()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(set.rules[0].catch_up, CatchUp::Latest);
    assert_eq!(set.index.schedule, [0]);
}

#[test]
fn a_recurring_campaign_takes_cron_phases() {
    let text = "campaigns:
  - id: salon
    phases:
      - { name: warmup, start: \"0 9 * * Wed\" }
      - { name: live,   start: \"0 20 * * Fri\" }
";
    let dir = dir_with(&[("a.yaml", text)]);
    let set = load(dir.path()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(matches!(
        set.campaigns[0].phases[1].start,
        rules::PhaseStart::Cron(_)
    ));
}

#[test]
fn an_invalid_cron_expression_is_an_error_inside_the_scalar() {
    let text = format!("{RULE_HEAD}    trigger: {{ schedule: \"every day\" }}\n    audience: all\n    actions: [tag: a]\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: invalid cron expression \"every day\": expected 5 fields (or 6–7 with seconds), got 2",
            at(&dir, "a.yaml", 3, 27)
        )
    );
}

#[test]
fn a_cron_error_points_at_the_offending_field_of_a_schedule() {
    let text = format!("{RULE_HEAD}    trigger: {{ schedule: \"*/15 9 * * Mon-Funday\" }}\n    audience: all\n    actions: [tag: a]\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: invalid cron expression \"*/15 9 * * Mon-Funday\": day of week must be 0–7 or SUN–SAT, found \"Funday\"",
            at(&dir, "a.yaml", 3, 42)
        )
    );
}

#[test]
fn a_cron_error_points_at_the_offending_field_of_a_phase_start() {
    let text = "campaigns:
  - id: salon
    phases:
      - { name: live, start: \"0 20 * * Fri\" }
      - { name: off,  start: \"60 22 * * Fri\" }
";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert_eq!(
        error,
        format!(
            "{}: invalid cron expression \"60 22 * * Fri\": minute must be 0–59, found \"60\"",
            at(&dir, "a.yaml", 5, 31)
        )
    );
}

#[test]
fn a_phase_start_that_is_neither_a_time_nor_a_cron_expression_says_both() {
    let text =
        "campaigns:\n  - id: salon\n    phases:\n      - { name: live, start: next friday }\n";
    let (dir, error) = only_error(&[("a.yaml", text)]);
    assert_eq!(
        error,
        format!(
            "{}: \"start\" is neither a local time (\"2026-11-01T00:00:00\") nor a cron expression: expected 5 fields (or 6–7 with seconds), got 2",
            at(&dir, "a.yaml", 4, 30)
        )
    );
}

#[test]
fn shorthands_load_as_schedules_and_phase_starts() {
    let text = format!("campaigns:\n  - id: c\n    phases:\n      - {{ name: a, start: \"@weekly\" }}\n{RULE_HEAD}    trigger: {{ schedule: \"@hourly\" }}\n    audience: all\n    actions: [tag: a]\n");
    let dir = dir_with(&[("a.yaml", &text)]);
    load(dir.path()).unwrap_or_else(|e| panic!("{e:#?}"));
}

#[test]
fn a_duration_over_ten_years_is_an_error_at_the_duration() {
    let text =
        format!("{RULE_HEAD}    trigger: {{ inactive: 20000000w }}\n    actions: [tag: a]\n");
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: duration \"20000000w\" is longer than the longest allowed, 3650d (10 years)",
            at(&dir, "a.yaml", 3, 26)
        )
    );
}

#[test]
fn catch_up_only_applies_to_schedule_triggers() {
    let text = format!(
        "{RULE_HEAD}    trigger: {{ event: x }}\n    catch_up: skip\n    actions: [tag: a]\n"
    );
    let (dir, error) = only_error(&[("a.yaml", &text)]);
    assert_eq!(
        error,
        format!(
            "{}: \"catch_up\" only applies to schedule triggers",
            at(&dir, "a.yaml", 4, 5)
        )
    );
}
