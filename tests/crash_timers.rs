//! SPEC §2.2 + §5 under fire: history loaded with `rally import` leaves thousands of
//! inactivity deadlines due by the time the daemon starts; the daemon is SIGKILLed,
//! several times, while it catches up on them, and after each restart it goes on. In
//! the end every deadline fired exactly once — one firing, one point, one tag per
//! member — and the state equals what `rally sim` computes from the same events.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{json, Value};
use support::daemon::{client, get_json, rally, rules_dir, Daemon};

/// Enough due deadlines that catching up takes many commits: a long stretch to be
/// killed in.
const MEMBERS: usize = 12_000;
const KILLS: usize = 4;
/// Generous: only a daemon that stopped making progress takes this long.
const PATIENCE: Duration = Duration::from_secs(300);

const RULES: &str = "\
rules:
  - id: silent-1d
    trigger: { inactive: 1d }
    actions:
      - tag: silent
      - points: 1
";

fn member(i: usize) -> String {
    format!("m-{i:04}")
}

/// One check-in per member, ten days ago, one second apart: every inactivity deadline
/// is due the moment its check-in is stored, and they fall due in member order.
fn checkins(now: DateTime<Utc>) -> Vec<Value> {
    let start = now - chrono::Duration::days(10);
    (0..MEMBERS)
        .map(|i| {
            let at = start + chrono::Duration::seconds(i as i64);
            json!({"id": format!("c-{i}"), "type": "checkin", "member": member(i),
                   "at": at.to_rfc3339_opts(SecondsFormat::Secs, true)})
        })
        .collect()
}

/// Whether member `i`'s deadline has fired, as far as the daemon at `base` says;
/// `None` while the daemon cannot answer.
async fn has_fired(http: &reqwest::Client, base: &str, i: usize) -> Option<bool> {
    match get_json(http, base, &format!("/v1/members/{}", member(i))).await? {
        (200, view) => Some(view["points"].as_i64().unwrap_or(0) > 0),
        (404, _) => Some(false),
        (status, body) => panic!("GET member {i}: {status} {body}"),
    }
}

/// Waits until member `i`'s deadline has fired, whatever restarts happen meanwhile.
async fn wait_until_fired(http: &reqwest::Client, base: &RwLock<String>, i: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let url = base.read().unwrap().clone();
        if has_fired(http, &url, i).await == Some(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {i}'s inactivity deadline never fired"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn sim_members(rules: &std::path::Path, events: &[Value], until: DateTime<Utc>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let output = rally()
        .arg("sim")
        .arg("--rules")
        .arg(rules)
        .arg("--events")
        .arg(&file)
        .arg("--until")
        .arg(until.to_rfc3339_opts(SecondsFormat::Secs, true))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["rejected"], json!([]));
    doc["members"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_due_inactivity_deadline_fires_exactly_once_across_kill_9_restarts() {
    let rules = rules_dir(RULES);
    let data = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let events = checkins(now);

    let history = data.path().join("history.jsonl");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&history, lines.join("\n")).unwrap();
    let store = data.path().join("store");
    let imported = rally()
        .args(["import", "--rules"])
        .arg(rules.path())
        .arg("--data")
        .arg(&store)
        .arg("--events")
        .arg(&history)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let summary: Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert_eq!(summary["accepted"], MEMBERS, "{summary}");

    let daemon = Daemon::start(rules.path(), &store, &[]);
    let base = Arc::new(RwLock::new(daemon.base.clone()));
    let daemon = Arc::new(Mutex::new(daemon));

    // Each kill lands just after some member's deadline fired, in a later stretch of
    // the member list each time: deadlines before it are done, those after it are due
    // and waiting.
    let http = client();
    for kill in 0..KILLS {
        let target =
            rand::thread_rng().gen_range(kill * MEMBERS / KILLS..(kill + 1) * MEMBERS / KILLS);
        wait_until_fired(&http, &base, target).await;
        let pause = rand::thread_rng().gen_range(0..20);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let (daemon, base, store) = (Arc::clone(&daemon), Arc::clone(&base), store.clone());
        let rules = rules.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut daemon = daemon.lock().unwrap();
            daemon.kill();
            *daemon = Daemon::start(&rules, &store, &[]);
            *base.write().unwrap() = daemon.base.clone();
        })
        .await
        .unwrap();
        eprintln!("kill -9 number {} after member {target} fired", kill + 1);
    }

    let base = base.read().unwrap().clone();
    for i in 0..MEMBERS {
        wait_until_fired(&http, &RwLock::new(base.clone()), i).await;
    }
    let expected = sim_members(rules.path(), &events, now);
    let mut seen = BTreeMap::new();
    for i in 0..MEMBERS {
        let id = member(i);
        let (_, view) = get_json(&http, &base, &format!("/v1/members/{id}"))
            .await
            .unwrap();
        assert_eq!(view["points"], 1, "member {id}: {view}");
        assert_eq!(view["tags"], json!(["silent"]), "member {id}: {view}");
        let (_, history) = get_json(&http, &base, &format!("/v1/members/{id}/history"))
            .await
            .unwrap();
        let firings: Vec<&Value> = history["firings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "silent-1d")
            .collect();
        assert_eq!(firings.len(), 1, "member {id}: {history}");
        assert_eq!(firings[0]["trigger"], "inactive", "member {id}: {history}");
        assert_eq!(view, expected[&id], "member {id}: daemon vs sim");
        seen.insert(id, view);
    }
    assert_eq!(seen.len(), expected.as_object().unwrap().len());
}
