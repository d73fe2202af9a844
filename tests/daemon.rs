//! `rally run` end to end: the real binary, over real HTTP (SPEC §3, §4).

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::daemon::{answer, client, rules_dir, run_until_refused, Daemon, Session};

const FIVE_POINTS: &str = "
rules:
  - id: checkin-points
    trigger: { event: checkin }
    actions:
      - points: 5
";

const SEVEN_POINTS: &str = "
rules:
  - id: checkin-points
    trigger: { event: checkin }
    actions:
      - points: 7
";

/// An unknown action on line 6, column 9.
const BROKEN: &str = "
rules:
  - id: checkin-points
    trigger: { event: checkin }
    actions:
      - pointz: 5
";

type Setup = Session;

fn start(yaml: &str, env: &[(&str, &str)]) -> Setup {
    Session::start(yaml, env)
}

impl Session {
    async fn points(&self, member: &str) -> i64 {
        let (status, body) = self.get(&format!("/v1/members/{member}")).await;
        assert_eq!(status, 200, "{body}");
        body["points"].as_i64().unwrap()
    }
}

/// Without `at` (the daemon's clock then): a fixed one would fall out of the
/// de-duplication window as the calendar moves on, and be rejected.
fn checkin(id: &str, member: &str) -> String {
    json!({"id": id, "type": "checkin", "member": member}).to_string()
}

fn statuses(body: &Value) -> Vec<(Value, String)> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {body}"))
        .iter()
        .map(|r| (r["id"].clone(), r["status"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn posted_events_are_read_back_as_the_member_state() {
    let s = start(FIVE_POINTS, &[]);
    let before = chrono::Utc::now();
    let (status, body) = s.post("/v1/events", &checkin("e-1", "m-1")).await;
    let after = chrono::Utc::now();
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"results": [{"id": "e-1", "status": "accepted"}]})
    );
    let (status, member) = s.get("/v1/members/m-1").await;
    assert_eq!(status, 200);
    assert_eq!(member["points"], 5);
    assert_eq!(member["counters"]["events.checkin"], 1);
    // The step ran at the daemon's clock, not at the event's `at` (SPEC §2.7).
    let last_active: chrono::DateTime<chrono::Utc> =
        member["last_active"].as_str().unwrap().parse().unwrap();
    assert!(before - chrono::Duration::milliseconds(1) <= last_active && last_active <= after);
}

#[tokio::test]
async fn an_unknown_member_is_a_404_with_a_json_error() {
    let s = start(FIVE_POINTS, &[]);
    for path in ["/v1/members/nobody", "/v1/members/nobody/ledger"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body["error"].as_str().unwrap().contains("nobody"), "{body}");
    }
}

#[tokio::test]
async fn the_ledger_and_history_show_what_the_rules_did_with_the_rule_set_version() {
    let s = start(FIVE_POINTS, &[]);
    s.post("/v1/events", &checkin("e-1", "m-1")).await;
    let (_, rules) = s.get("/v1/rules").await;
    let (status, ledger) = s.get("/v1/members/m-1/ledger").await;
    assert_eq!(status, 200);
    assert_eq!(ledger["ledger"][0]["amount"], 5);
    assert_eq!(ledger["ledger"][0]["event"], "e-1");
    let (status, history) = s.get("/v1/members/m-1/history").await;
    assert_eq!(status, 200);
    let firing = &history["firings"][0];
    assert_eq!(firing["rule"], "checkin-points");
    assert_eq!(firing["trigger"], "event");
    assert_eq!(firing["version"], rules["version"]);
    assert_eq!(history["messages"], json!([]));
}

#[tokio::test]
async fn a_mixed_batch_answers_one_result_per_event_in_order() {
    let s = start(FIVE_POINTS, &[]);
    let body = json!([
        {"id": "ok-1", "type": "checkin", "member": "m-1"},
        {"id": "bad-type", "type": "Check In", "member": "m-1"},
        {"type": "checkin", "member": "m-1"},
        {"id": "ok-2", "type": "checkin", "member": "m-2"},
    ]);
    let (status, answer) = s.post("/v1/events", &body.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(
        statuses(&answer),
        [
            (json!("ok-1"), "accepted".to_string()),
            (json!("bad-type"), "rejected".to_string()),
            (Value::Null, "rejected".to_string()),
            (json!("ok-2"), "accepted".to_string()),
        ]
    );
    let results = &answer["results"];
    assert!(results[1]["error"].as_str().unwrap().starts_with("type:"));
    assert!(results[2]["error"].as_str().unwrap().starts_with("id:"));
    assert!(results[0].get("error").is_none());
    assert_eq!(s.points("m-2").await, 5);
}

#[tokio::test]
async fn ndjson_bodies_are_one_event_per_line() {
    let s = start(FIVE_POINTS, &[]);
    let body = format!("{}\n{}\n", checkin("n-1", "m-1"), checkin("n-2", "m-2"));
    let (status, answer) = s.post("/v1/events", &body).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&answer).len(), 2);
    assert_eq!(s.points("m-2").await, 5);
}

#[tokio::test]
async fn a_resent_event_is_a_duplicate_and_changes_nothing() {
    let s = start(FIVE_POINTS, &[]);
    s.post("/v1/events", &checkin("e-1", "m-1")).await;
    let (status, answer) = s.post("/v1/events", &checkin("e-1", "m-1")).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&answer), [(json!("e-1"), "duplicate".to_string())]);
    assert_eq!(s.points("m-1").await, 5);
}

#[tokio::test]
async fn a_body_that_cannot_be_read_is_a_400_with_a_json_error() {
    let s = start(FIVE_POINTS, &[]);
    for body in ["", "{\"id\": ", "not json at all", "42"] {
        let (status, answer) = s.post("/v1/events", body).await;
        assert_eq!(status, 400, "{body:?} → {answer}");
        assert!(answer["error"].is_string(), "{body:?} → {answer}");
    }
}

#[tokio::test]
async fn a_batch_over_the_limit_is_a_413() {
    let s = start(FIVE_POINTS, &[]);
    let events: Vec<Value> = (0..=rally::daemon::MAX_BATCH)
        .map(|n| json!({"id": format!("e-{n}"), "type": "checkin", "member": "m"}))
        .collect();
    let (status, answer) = s.post("/v1/events", &Value::from(events).to_string()).await;
    assert_eq!(status, 413);
    assert!(
        answer["error"].as_str().unwrap().contains("limit"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_a_413_with_a_json_error() {
    let s = start(FIVE_POINTS, &[]);
    let body = " ".repeat(rally::daemon::MAX_BODY_BYTES + 1);
    let (status, answer) = s.post("/v1/events", &body).await;
    assert_eq!(status, 413);
    assert!(answer["error"].is_string(), "{answer}");
}

#[tokio::test]
async fn over_the_rate_limit_events_are_refused_with_429() {
    let s = start(FIVE_POINTS, &[("RALLY_RATE_LIMIT", "1")]);
    // The bucket holds one full batch; a second one right after does not fit.
    let batch = |from: usize| {
        let events: Vec<Value> = (from..from + 600)
            .map(|n| json!({"id": format!("e-{n}"), "type": "checkin", "member": "m"}))
            .collect();
        Value::from(events).to_string()
    };
    assert_eq!(s.post("/v1/events", &batch(0)).await.0, 200);
    let (status, answer) = s.post("/v1/events", &batch(600)).await;
    assert_eq!(status, 429);
    assert!(answer["error"].as_str().unwrap().contains("rate limit"));
}

#[tokio::test]
async fn with_a_token_every_route_but_healthz_requires_it() {
    let token = "t0k3n-for-tests";
    let s = start(FIVE_POINTS, &[("RALLY_TOKEN", token)]);
    let event = checkin("e-1", "m-1");
    let bare = s
        .http
        .post(s.daemon.url("/v1/events"))
        .body(event.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 401);
    let (_, body) = answer(bare).await;
    assert!(body["error"].is_string());
    for path in ["/v1/rules", "/v1/members/m-1", "/metrics"] {
        let wrong = s
            .http
            .get(s.daemon.url(path))
            .bearer_auth("t0k3n-for-test")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "{path}");
    }
    let authorised = s
        .http
        .post(s.daemon.url("/v1/events"))
        .bearer_auth(token)
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(authorised.status().as_u16(), 200);
    assert_eq!(s.get("/healthz").await.0, 200);
    assert!(!s.daemon.log().contains(token), "{}", s.daemon.log());
}

#[tokio::test]
async fn metrics_count_events_by_status_and_firings_by_rule() {
    let s = start(FIVE_POINTS, &[]);
    s.post("/v1/events", &checkin("e-1", "m-1")).await;
    s.post("/v1/events", &checkin("e-1", "m-1")).await;
    let text = s
        .http
        .get(s.daemon.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"rally_events_total{status="accepted"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"rally_events_total{status="duplicate"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"rally_rule_firings_total{rule="checkin-points"} 1"#));
    assert!(text.contains("rally_store_sync_seconds_bucket"));
}

#[tokio::test]
async fn a_broken_rule_file_is_refused_with_its_errors_and_the_old_rules_keep_running() {
    let s = start(FIVE_POINTS, &[]);
    let (_, before) = s.get("/v1/rules").await;
    std::fs::write(s.rules.path().join("rules.yaml"), BROKEN).unwrap();
    let (status, refused) = s.post("/v1/rules/reload", "").await;
    assert_eq!(status, 422, "{refused}");
    let errors = refused["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("rules.yaml:6:9:")),
        "{refused}"
    );
    s.post("/v1/events", &checkin("e-1", "m-1")).await;
    assert_eq!(s.points("m-1").await, 5);
    let (_, after) = s.get("/v1/rules").await;
    assert_eq!(after["version"], before["version"]);
    assert_eq!(after["last_reload_error"], refused["errors"]);
}

#[tokio::test]
async fn a_good_rule_file_applies_from_the_next_event() {
    let s = start(FIVE_POINTS, &[]);
    s.post("/v1/events", &checkin("e-1", "m-1")).await;
    std::fs::write(s.rules.path().join("rules.yaml"), SEVEN_POINTS).unwrap();
    let (status, loaded) = s.post("/v1/rules/reload", "").await;
    assert_eq!(status, 200, "{loaded}");
    assert_eq!(loaded["rules"], 1);
    assert_eq!(loaded["last_reload_error"], json!([]));
    s.post("/v1/events", &checkin("e-2", "m-1")).await;
    assert_eq!(s.points("m-1").await, 12);
}

#[tokio::test]
async fn a_rule_file_changed_on_disk_is_reloaded_without_a_request() {
    let s = start(FIVE_POINTS, &[]);
    let (_, before) = s.get("/v1/rules").await;
    std::fs::write(s.rules.path().join("rules.yaml"), SEVEN_POINTS).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, now) = s.get("/v1/rules").await;
        if now["version"] != before["version"] {
            break;
        }
        assert!(Instant::now() < deadline, "no reload after 20 s: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.post("/v1/events", &checkin("e-1", "m-1")).await;
    assert_eq!(s.points("m-1").await, 7);
}

#[tokio::test]
async fn a_data_directory_inside_the_rules_directory_does_not_trigger_reloads() {
    let rules = rules_dir(FIVE_POINTS);
    let daemon = Daemon::start(rules.path(), &rules.path().join("data"), &[]);
    let http = client();
    for n in 0..5 {
        let response = http
            .post(daemon.url("/v1/events"))
            .body(checkin(&format!("e-{n}"), "m-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    // Longer than the debounce: a reload caused by the writes would have happened.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let metrics = http.get(daemon.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(!text.contains("rally_rule_reloads_total{"), "{text}");
}

#[tokio::test]
async fn sigterm_exits_0_and_every_acknowledged_event_is_there_after_restart() {
    let mut s = start(FIVE_POINTS, &[]);
    let body: Vec<Value> = (0..20)
        .map(|n| json!({"id": format!("e-{n}"), "type": "post", "member": "m-1"}))
        .collect();
    let (status, _) = s.post("/v1/events", &Value::from(body).to_string()).await;
    assert_eq!(status, 200);
    let exit = s.daemon.signal_and_wait(libc::SIGTERM);
    assert!(exit.success(), "{exit}\n{}", s.daemon.log());
    let log = s.daemon.log();
    s.daemon = Daemon::start(s.rules.path(), s.data.path(), &[]);
    let (status, member) = s.get("/v1/members/m-1").await;
    assert_eq!(status, 200, "{member}\nfirst run's log:\n{log}");
    assert_eq!(member["counters"]["events.post"], 20);
}

/// Zeroing a fresh 2 MiB huge page inside a commit stalled acknowledgements for
/// milliseconds; the daemon turns them off for itself (README, Performance).
#[cfg(target_os = "linux")]
#[test]
fn the_daemon_runs_without_transparent_huge_pages() {
    let s = start(FIVE_POINTS, &[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.daemon.pid())).unwrap();
    match status.lines().find_map(|l| l.strip_prefix("THP_enabled:")) {
        Some(enabled) => assert_eq!(enabled.trim(), "0", "{status}"),
        // Older kernels do not report it, and a kernel without THP has nothing to turn off.
        None => eprintln!("this kernel does not report THP_enabled; nothing to check"),
    }
}

#[test]
fn run_refuses_a_non_loopback_address_without_a_token() {
    let (code, stderr) = run_until_refused(rules_dir(FIVE_POINTS).path(), "0.0.0.0:0");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("RALLY_TOKEN"), "{stderr}");
}

#[test]
fn run_with_broken_rules_prints_every_error_as_path_line_col_and_exits_1() {
    let (code, stderr) = run_until_refused(rules_dir(BROKEN).path(), "127.0.0.1:0");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("rules.yaml:6:9:"), "{stderr}");
}
