//! `rally import` (SPEC §3, §2.7): history goes into a data directory on `sim`'s
//! virtual clock, and a daemon started on it afterwards continues from it.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};
use support::daemon::{client, get_json, rally, rules_dir, Daemon};

const RULES: &str = r#"
settings:
  timezone: Asia/Shanghai
  points: { daily_cap: 30 }
rules:
  - id: checkin-points
    trigger: { event: checkin }
    limit: { times: 1, per: day }
    actions:
      - points: 10
  - id: purchase-points
    trigger: { event: purchase }
    actions:
      - points: 25
"#;

const HISTORY: &str = r#"{"id":"h-1","type":"join","member":"m-1","at":"2026-10-01T09:00:00+08:00","data":{"name":"Lin"}}
{"id":"h-2","type":"checkin","member":"m-1","at":"2026-10-01T09:30:00+08:00"}
{"id":"h-3","type":"purchase","member":"m-1","at":"2026-10-01T10:00:00+08:00","data":{"amount":12.5}}
{"id":"h-4","type":"checkin","member":"m-2","at":"2026-10-02T09:00:00+08:00"}
{"id":"h-5","type":"checkin","member":"m-1","at":"2026-10-02T09:00:00+08:00"}
"#;

fn import(rules: &Path, data: &Path, events: &Path) -> Output {
    rally()
        .args(["import", "--rules"])
        .arg(rules)
        .arg("--data")
        .arg(data)
        .arg("--events")
        .arg(events)
        .output()
        .expect("run rally import")
}

fn summary(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON summary")
}

fn sim(rules: &Path, events: &Path) -> Value {
    let output = rally()
        .args(["sim", "--rules"])
        .arg(rules)
        .arg("--events")
        .arg(events)
        .output()
        .expect("run rally sim");
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("a sim document")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_history_is_what_sim_computes_and_a_daemon_continues_from_it() {
    let rules = rules_dir(RULES);
    let work = tempfile::tempdir().unwrap();
    let events = write(work.path(), "history.jsonl", HISTORY.as_bytes());
    let data = work.path().join("data");

    let done = summary(&import(rules.path(), &data, &events));
    assert_eq!(done["accepted"], 5, "{done}");
    assert_eq!(done["rejected"], json!([]));
    assert_eq!(done["now"], "2026-10-02T01:00:00Z");
    let expected = sim(rules.path(), &events);

    let daemon = Daemon::start(rules.path(), &data, &[]);
    let http = client();
    for id in ["m-1", "m-2"] {
        let (status, view) = get_json(&http, &daemon.base, &format!("/v1/members/{id}"))
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(view, expected["members"][id], "member {id}: import vs sim");
    }
    // The daemon goes on from the imported state: its clock is today, a new day.
    let response = http
        .post(daemon.url("/v1/events"))
        .body(r#"{"id":"live-1","type":"checkin","member":"m-1"}"#)
        .send()
        .await
        .unwrap();
    let (_, answer) = support::daemon::answer(response).await;
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");
    let (_, view) = get_json(&http, &daemon.base, "/v1/members/m-1")
        .await
        .unwrap();
    assert_eq!(
        view["points"],
        expected["members"]["m-1"]["points"].as_i64().unwrap() + 10
    );
}

#[test]
fn importing_the_same_history_twice_changes_nothing() {
    let rules = rules_dir(RULES);
    let work = tempfile::tempdir().unwrap();
    let events = write(work.path(), "history.jsonl", HISTORY.as_bytes());
    let data = work.path().join("data");
    summary(&import(rules.path(), &data, &events));
    let again = summary(&import(rules.path(), &data, &events));
    assert_eq!(again["accepted"], 0, "{again}");
    assert_eq!(again["duplicates"], 5, "{again}");
    let member = rally()
        .args(["member", "m-1", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let member: Value = serde_json::from_slice(&member.stdout).unwrap();
    assert_eq!(
        member["member"]["points"], 40,
        "10 + 20 (capped at 30 on 1 Oct) + 10"
    );
}

#[test]
fn bad_lines_and_events_from_the_future_are_listed_and_the_rest_is_imported() {
    let rules = rules_dir(RULES);
    let work = tempfile::tempdir().unwrap();
    let mut bytes = HISTORY.as_bytes().to_vec();
    bytes.extend_from_slice(b"{\"id\":\"h-6\",\"type\":\"checkin\",\"member\":\"m-\xff\",\"at\":\"2026-10-03T09:00:00+08:00\"}\n");
    bytes.extend_from_slice(b"{\"id\":\"h-7\",\"type\":\"checkin\",\"member\":\"m-1\",\"at\":\"2999-01-01T00:00:00Z\"}\n");
    bytes.extend_from_slice(b"{\"id\":\"h-8\",\"type\":\"checkin\"}\n");
    bytes.extend_from_slice(b"{\"id\":\"h-9\",\"type\":\"checkin\",\"member\":\"m-2\",\"at\":\"2026-10-03T09:00:00+08:00\"}\n");
    let events = write(work.path(), "history.jsonl", &bytes);
    let done = summary(&import(rules.path(), &work.path().join("data"), &events));
    assert_eq!(done["accepted"], 6, "{done}");
    let rejected = done["rejected"].as_array().unwrap();
    let lines: Vec<i64> = rejected
        .iter()
        .map(|r| r["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [6, 7, 8], "{done}");
    assert!(
        rejected[0]["error"].as_str().unwrap().contains("UTF-8"),
        "{done}"
    );
    assert!(
        rejected[1]["error"]
            .as_str()
            .unwrap()
            .contains("in the future"),
        "{done}"
    );
    assert!(
        rejected[2]["error"].as_str().unwrap().starts_with("member"),
        "{done}"
    );
}

#[test]
fn a_long_import_reports_its_progress() {
    let rules = rules_dir(RULES);
    let work = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..10_500)
        .map(|i| {
            json!({"id": format!("c-{i}"), "type": "checkin", "member": format!("m-{}", i % 300),
                   "at": format!("2026-10-{:02}T09:00:00Z", 1 + i / 1000)})
            .to_string()
        })
        .collect();
    let events = write(work.path(), "history.jsonl", lines.join("\n").as_bytes());
    let output = import(rules.path(), &work.path().join("data"), &events);
    assert_eq!(summary(&output)["accepted"], 10_500);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rally: 10000 lines: 10000 accepted, 0 duplicate, 0 rejected"),
        "{stderr}"
    );
}

#[test]
fn import_refuses_a_data_directory_a_daemon_holds() {
    let rules = rules_dir(RULES);
    let work = tempfile::tempdir().unwrap();
    let events = write(work.path(), "history.jsonl", HISTORY.as_bytes());
    let data = work.path().join("data");
    let daemon = Daemon::start(rules.path(), &data, &[]);
    let output = import(rules.path(), &data, &events);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a running daemon holds"), "{stderr}");
    drop(daemon);
}
