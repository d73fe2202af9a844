//! Effects on another member (issue 14, item 5): a `credit` action and the built-in
//! `referrals` counter run the credited member's own step — milestones, tier changes —
//! in the same commit as the crediting step; a credit bounces back once at most; a
//! failed commit stores neither member; the daemon serves it and a replay of its
//! journal re-derives it.

mod support;

use serde_json::{json, Value};
use support::daemon::{assert_replay_reproduces, Session};
use support::runner::{event, runner, t};
use support::sim::{firings_of, run};

const REFERRALS: &str = r#"
settings: { timezone: UTC }
tiers:
  by: points_lifetime
  levels:
    - { name: member, from: 0 }
    - { name: silver, from: 200 }
rules:
  - id: referral-bonus
    trigger: { event: join }
    if: '"referrer" in event.data'
    actions:
      - credit: { member: "event.data.referrer", points: 50, reason: referral }
  - id: ambassador
    trigger: { milestone: referrals, at: 5 }
    actions:
      - badge: ambassador
  - id: silver-welcome
    trigger: { tier: silver }
    actions:
      - tag: silver
"#;

fn join(n: u32, member: &str, referrer: Option<&str>) -> String {
    let data = match referrer {
        Some(r) => json!({ "referrer": r }),
        None => json!({}),
    };
    json!({"id": format!("j-{n}"), "type": "join", "member": member,
           "at": format!("2026-06-{:02}T09:00:00Z", n + 1), "data": data})
    .to_string()
}

/// `m-ada` joins, then `count` members join naming her.
fn referred(count: u32) -> String {
    let mut lines = vec![join(0, "m-ada", None)];
    lines.extend((1..=count).map(|n| join(n, &format!("m-{n}"), Some("m-ada"))));
    lines.join("\n")
}

fn errors(doc: &Value) -> Vec<(String, String, String)> {
    doc["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["rule"].as_str().unwrap_or_default().to_string(),
                e["member"].as_str().unwrap_or_default().to_string(),
                e["error"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_referral_awards_the_referrer_with_the_reason_and_where_it_came_from() {
    let doc = run(REFERRALS, &referred(1), "2026-07-01T00:00:00Z");
    assert_eq!(doc["members"]["m-ada"]["points"], 50);
    assert_eq!(doc["members"]["m-1"]["points"], 0);
    let credited: Vec<&Value> = doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["member"] == "m-ada")
        .collect();
    assert_eq!(credited.len(), 1);
    assert_eq!(credited[0]["reason"], "referral");
    assert_eq!(credited[0]["rule"], "referral-bonus");
    assert_eq!(credited[0]["from"], "m-1");
    assert_eq!(credited[0]["event"], "j-1");
}

#[test]
fn the_fifth_referral_runs_the_referrers_milestone_and_the_fourth_their_tier_change() {
    let four = run(REFERRALS, &referred(4), "2026-07-01T00:00:00Z");
    assert_eq!(four["members"]["m-ada"]["counters"]["referrals"], 4);
    assert_eq!(four["members"]["m-ada"]["tier"], "silver");
    assert_eq!(four["members"]["m-ada"]["tags"], json!(["silver"]));
    assert!(firings_of(&four, "ambassador").is_empty());
    assert_eq!(
        firings_of(&four, "silver-welcome"),
        [("m-ada".to_string(), "2026-06-05T09:00:00Z".to_string())]
    );

    let five = run(REFERRALS, &referred(5), "2026-07-01T00:00:00Z");
    assert_eq!(five["members"]["m-ada"]["counters"]["referrals"], 5);
    assert_eq!(five["members"]["m-ada"]["badges"], json!(["ambassador"]));
    assert_eq!(
        firings_of(&five, "ambassador"),
        [("m-ada".to_string(), "2026-06-06T09:00:00Z".to_string())]
    );
}

#[test]
fn only_a_members_first_join_counts_a_referral() {
    let events = [
        join(0, "m-ada", None),
        join(1, "m-bo", Some("m-ada")),
        join(2, "m-bo", Some("m-ada")),
    ]
    .join("\n");
    let doc = run(REFERRALS, &events, "2026-07-01T00:00:00Z");
    assert_eq!(doc["members"]["m-ada"]["counters"]["referrals"], 1);
}

#[test]
fn a_self_credit_fails_the_rule_and_changes_nothing() {
    let doc = run(
        REFERRALS,
        &join(1, "m-gus", Some("m-gus")),
        "2026-07-01T00:00:00Z",
    );
    assert_eq!(doc["members"]["m-gus"]["points"], 0);
    assert!(doc["members"]["m-gus"]["counters"]
        .get("referrals")
        .is_none());
    let errors = errors(&doc);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "referral-bonus");
    assert!(errors[0].2.contains("cannot credit themself"), "{errors:?}");
}

#[test]
fn an_empty_referrer_fails_the_rule_and_all_its_actions() {
    let yaml = r#"
rules:
  - id: referral-bonus
    trigger: { event: join }
    actions:
      - points: 10
      - credit: { member: "event.data.referrer", points: 50 }
"#;
    let doc = run(yaml, &join(1, "m-bo", Some(" ")), "2026-07-01T00:00:00Z");
    assert_eq!(doc["members"]["m-bo"]["points"], 0, "all or nothing");
    assert_eq!(doc["members"].as_object().unwrap().len(), 1);
    assert!(errors(&doc)[0].2.contains("empty member id"), "{doc}");
}

#[test]
fn a_credit_to_a_member_rally_has_not_seen_creates_them() {
    let doc = run(
        REFERRALS,
        &join(1, "m-bo", Some("m-new")),
        "2026-07-01T00:00:00Z",
    );
    assert_eq!(doc["members"]["m-new"]["points"], 50);
    assert_eq!(doc["members"]["m-new"]["counters"]["referrals"], 1);
}

#[test]
fn the_credited_members_daily_cap_applies_unless_cap_is_false() {
    let rules = |cap: &str| {
        format!(
            r#"
settings: {{ timezone: UTC, points: {{ daily_cap: 30 }} }}
rules:
  - id: referral-bonus
    trigger: {{ event: join }}
    actions:
      - credit: {{ member: "event.data.referrer", points: 50, reason: referral{cap} }}
"#
        )
    };
    let events = join(1, "m-bo", Some("m-ada"));
    let capped = run(&rules(""), &events, "2026-07-01T00:00:00Z");
    assert_eq!(capped["members"]["m-ada"]["points"], 30);
    let entry = &capped["ledger"][0];
    assert_eq!(entry["clipped_by"], "daily_cap");
    assert_eq!(entry["requested"], 50);
    let uncapped = run(&rules(", cap: false"), &events, "2026-07-01T00:00:00Z");
    assert_eq!(uncapped["members"]["m-ada"]["points"], 50);
}

/// Two buddies whose rules pay each other back: without the bound, forever.
const PING_PONG: &str = r#"
rules:
  - id: gift
    trigger: { event: gift }
    actions:
      - credit: { member: "member.buddy", points: 10, reason: gift }
  - id: pay-back
    trigger: { milestone: points_lifetime, every: 10 }
    actions:
      - credit: { member: "member.buddy", points: 10, reason: "pay back" }
"#;

#[test]
fn a_credit_bounces_back_once_and_a_credit_beyond_is_refused_as_a_rule_failure() {
    let events = [
        r#"{"id":"p-1","type":"profile","member":"m-a","at":"2026-06-01T09:00:00Z","data":{"buddy":"m-b"}}"#,
        r#"{"id":"p-2","type":"profile","member":"m-b","at":"2026-06-01T09:00:00Z","data":{"buddy":"m-a"}}"#,
        r#"{"id":"g-1","type":"gift","member":"m-a","at":"2026-06-01T10:00:00Z"}"#,
    ]
    .join("\n");
    let doc = run(PING_PONG, &events, "2026-07-01T00:00:00Z");
    // m-a gifts m-b (one credit), m-b's milestone pays back (the one bounce).
    assert_eq!(doc["members"]["m-b"]["points"], 10);
    assert_eq!(doc["members"]["m-a"]["points"], 10);
    assert_eq!(
        firings_of(&doc, "pay-back"),
        [("m-b".to_string(), "2026-06-01T10:00:00Z".to_string())]
    );
    // m-a's milestone would pay back again: refused, and said so.
    let errors = errors(&doc);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "pay-back");
    assert_eq!(errors[0].1, "m-a");
    assert!(errors[0].2.contains("bounce back only once"), "{errors:?}");
}

#[test]
fn a_failed_commit_stores_neither_the_crediting_nor_the_credited_member() {
    let mut runner = runner(REFERRALS);
    let at = t("2026-06-01T09:00:00Z");
    runner
        .apply_event(&event(&join(0, "m-ada", None)), at)
        .unwrap();
    runner.commit().unwrap();

    runner
        .store()
        .faults()
        .inject(rally::store::Fault::Commit, 1);
    let at = t("2026-06-02T09:00:00Z");
    runner
        .apply_event(&event(&join(1, "m-bo", Some("m-ada"))), at)
        .unwrap();
    assert!(runner.commit().is_err());
    assert!(runner.store().member("m-bo").unwrap().is_none());
    let ada = runner.store().member("m-ada").unwrap().unwrap();
    assert_eq!(ada.points, 0);
    assert!(!ada.counters.contains_key("referrals"));
    assert!(runner.store().ledger("m-ada").unwrap().is_empty());

    // The same event again, once the store takes commits: both members change.
    runner
        .apply_event(&event(&join(1, "m-bo", Some("m-ada"))), at)
        .unwrap();
    runner.commit().unwrap();
    assert!(runner.store().member("m-bo").unwrap().is_some());
    assert_eq!(runner.store().member("m-ada").unwrap().unwrap().points, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_credits_the_referrer_over_http_and_a_replay_reproduces_it() {
    let mut session = Session::start(REFERRALS, &[]);
    let now = chrono::Utc::now().to_rfc3339();
    let mut lines =
        vec![json!({"id": "j-0", "type": "join", "member": "m-ada", "at": now}).to_string()];
    lines.extend((1..=5).map(|n| {
        json!({"id": format!("j-{n}"), "type": "join", "member": format!("m-{n}"),
               "at": now, "data": {"referrer": "m-ada"}})
        .to_string()
    }));
    let (status, answer) = session.post("/v1/events", &lines.join("\n")).await;
    assert_eq!(status, 200, "{answer}");

    let (status, ada) = session.get("/v1/members/m-ada").await;
    assert_eq!(status, 200, "{ada}");
    assert_eq!(ada["points"], 250);
    assert_eq!(ada["counters"]["referrals"], 5);
    assert_eq!(ada["badges"], json!(["ambassador"]));
    assert_eq!(ada["tier"], "silver");
    let (_, ledger) = session.get("/v1/members/m-ada/ledger").await;
    let froms: Vec<&str> = ledger["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["from"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(froms, ["m-1", "m-2", "m-3", "m-4", "m-5"]);

    session.daemon.signal_and_wait(libc::SIGTERM);
    assert_replay_reproduces(session.data.path());
}

// --- the rule file ---------------------------------------------------------------------

fn load_errors(action: &str) -> Vec<String> {
    let yaml = format!(
        "rules:\n  - id: r\n    trigger: {{ event: join }}\n    actions:\n      - credit: {action}\n"
    );
    match rally::rules::from_sources(&[("a.yaml", yaml.as_str())], &|_| None) {
        Ok(_) => panic!("expected the rule set to be refused: {action}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_credit_without_member_is_reported_where_it_is() {
    let errors = load_errors("{ points: 5 }");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("a.yaml:5:"), "{errors:?}");
    assert!(errors[0].contains("member"), "{errors:?}");
}

#[test]
fn a_credit_that_gives_nothing_is_refused() {
    assert_eq!(
        load_errors(r#"{ member: "event.data.referrer" }"#),
        ["a.yaml:5:17: a credit needs at least one of \"points\", \"tag\" or \"badge\""]
    );
}

#[test]
fn a_credit_cannot_take_points() {
    assert_eq!(
        load_errors(r#"{ member: "event.data.referrer", points: -5 }"#),
        ["a.yaml:5:58: a credit cannot take points from another member, found -5"]
    );
}

#[test]
fn a_credit_member_expression_is_checked_when_the_rules_load() {
    let errors = load_errors(r#"{ member: "frobnicate()", points: 5 }"#);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("a.yaml:5:") && errors[0].contains("unknown function \"frobnicate\""),
        "{errors:?}"
    );
}

#[test]
fn an_unknown_credit_field_is_reported() {
    let errors = load_errors(r#"{ member: "event.data.referrer", point: 5 }"#);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("a.yaml:5:") && e.contains("point")),
        "{errors:?}"
    );
}

#[test]
fn rally_check_reports_a_bad_credit_with_file_line_and_column() {
    let rules = support::daemon::rules_dir(
        "rules:\n  - id: r\n    trigger: { event: join }\n    actions:\n      - credit: { member: \"event.data.referrer\", points: -5 }\n",
    );
    let out = support::daemon::rally()
        .args(["check", "--rules", rules.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("rules.yaml:5:58: a credit cannot take points from another member"),
        "{said}"
    );
}

#[test]
fn referrals_is_a_counter_a_milestone_can_watch() {
    let yaml = "rules:\n  - id: r\n    trigger: { milestone: referrals, at: 5 }\n    actions:\n      - badge: b\n";
    assert!(rally::rules::from_sources(&[("a.yaml", yaml)], &|_| None).is_ok());
}

#[test]
fn member_referrals_can_be_read_in_expressions() {
    let yaml = r#"
rules:
  - id: connector
    trigger: { event: post }
    if: member.referrals >= 2
    actions: [ { badge: connector } ]
"#;
    let post = |n: u32| {
        json!({"id": format!("p-{n}"), "type": "post", "member": "m-ada",
               "at": format!("2026-06-{:02}T10:00:00Z", n + 1)})
        .to_string()
    };
    let events = [
        join(0, "m-ada", None),
        join(1, "m-bo", Some("m-ada")),
        post(1),
        join(2, "m-cy", Some("m-ada")),
        post(2),
    ]
    .join("\n");
    let doc = run(yaml, &events, "2026-07-01T00:00:00Z");
    assert_eq!(
        firings_of(&doc, "connector"),
        [("m-ada".to_string(), "2026-06-03T10:00:00Z".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_logs_a_credit_refused_in_a_credited_step_as_a_rule_failure() {
    let mut session = Session::start(PING_PONG, &[]);
    let now = chrono::Utc::now().to_rfc3339();
    let lines = [
        json!({"id": "p-1", "type": "profile", "member": "m-a", "at": now, "data": {"buddy": "m-b"}}),
        json!({"id": "p-2", "type": "profile", "member": "m-b", "at": now, "data": {"buddy": "m-a"}}),
        json!({"id": "g-1", "type": "gift", "member": "m-a", "at": now}),
    ]
    .map(|v| v.to_string())
    .join("\n");
    let (status, answer) = session.post("/v1/events", &lines).await;
    assert_eq!(status, 200, "{answer}");
    let (_, b) = session.get("/v1/members/m-b").await;
    assert_eq!(b["points"], 10);
    let (_, a) = session.get("/v1/members/m-a").await;
    assert_eq!(a["points"], 10);
    session.daemon.signal_and_wait(libc::SIGTERM);
    let log = session.daemon.log();
    let failure = log
        .lines()
        .find(|l| l.contains("rule failed"))
        .unwrap_or_else(|| panic!("no rule failure logged:\n{log}"));
    assert!(
        failure.contains("pay-back") && failure.contains("m-a"),
        "{failure}"
    );
    assert_replay_reproduces(session.data.path());
}

#[test]
fn an_import_of_the_referral_example_stores_what_sim_shows_and_replays_to_it() {
    let data = tempfile::tempdir().unwrap();
    let example = support::daemon::example("referral");
    let out = support::daemon::rally()
        .args([
            "import",
            "--rules",
            example.to_str().unwrap(),
            "--data",
            data.path().to_str().unwrap(),
            "--events",
            example.join("events.jsonl").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = support::daemon::rally()
        .args(["member", "m-ada", "--data", data.path().to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    let shown: Value = serde_json::from_str(&said).unwrap_or(Value::String(said.to_string()));
    assert_eq!(shown["member"]["points"], 350, "{shown}");
    assert_replay_reproduces(data.path());
}
