//! The event journal (issue: "know before it goes live"): the daemon records every
//! accepted input with its step; `rally replay --data` rebuilds the live state from it
//! exactly — after reloads, a campaign fan-out taking turns with events, and a SIGKILL
//! — and says where it differs when it does not; `GET /v1/journal` and `rally export`
//! stream the same lines; a replay under other rules prints `sim`'s document.

mod support;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rally::member::Member;
use rally::store::{StepWrite, Store};
use serde_json::{json, Value};
use support::daemon::{answer, client, post_until_acknowledged, rally, Daemon};

fn rules_yaml(checkin_points: u32, phase_start: DateTime<Utc>) -> String {
    format!(
        r#"
settings: {{ timezone: UTC }}
campaigns:
  - id: flash
    phases:
      - {{ name: on, start: "{start}" }}
    end: "{end}"
rules:
  - id: checkin-points
    trigger: {{ event: checkin }}
    actions: [ {{ points: {checkin_points} }} ]
  - id: flash-bonus
    trigger: {{ phase: {{ campaign: flash, enters: on }} }}
    audience: all
    actions: [ {{ points: 100 }} ]
  - id: fifty
    trigger: {{ milestone: points, at: 50 }}
    actions: [ {{ badge: fifty }} ]
"#,
        start = phase_start.format("%Y-%m-%dT%H:%M:%S"),
        end = (phase_start + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%S"),
    )
}

fn checkins(from: usize, to: usize, tag: &str) -> Vec<Value> {
    (from..to)
        .map(|n| {
            json!({"id": format!("{tag}-{n}"), "type": "checkin",
                   "member": format!("m{:03}", n % 300), "at": Utc::now().to_rfc3339()})
        })
        .collect()
}

async fn post_all(http: &reqwest::Client, base: &str, events: Vec<Value>) {
    for batch in events.chunks(50) {
        post_until_acknowledged(http, || base.to_string(), batch).await;
    }
}

fn rally_in(args: &[&str]) -> std::process::Output {
    rally().args(args).output().expect("run rally")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_the_journal_rebuilds_the_live_state_after_reloads_a_fanout_and_a_kill() {
    let rules = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    // Whole seconds: the phase starts at a second the rule file can name.
    let phase_start = DateTime::from_timestamp(Utc::now().timestamp() + 4, 0).unwrap();
    std::fs::write(rules.path().join("rules.yaml"), rules_yaml(5, phase_start)).unwrap();
    let http = client();
    let mut daemon = Daemon::start(rules.path(), data.path(), &[]);
    post_all(&http, &daemon.base, checkins(0, 300, "a")).await;

    // The phase starts: its fan-out over 300 members takes turns with more events.
    while Utc::now() < phase_start {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    post_all(&http, &daemon.base, checkins(0, 300, "b")).await;
    loop {
        let (_, member) = answer(
            http.get(daemon.url("/v1/members/m299"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if member["points"] == json!(110) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A reload, then SIGKILL in the middle of more events, and a restart.
    std::fs::write(rules.path().join("rules.yaml"), rules_yaml(7, phase_start)).unwrap();
    let reloaded = http
        .post(daemon.url("/v1/rules/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200);
    let killer = {
        let pid = daemon.pid();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    };
    let base = daemon.base.clone();
    let before_kill = tokio::spawn({
        let http = http.clone();
        async move {
            // Not waited for: some of these are cut off by the kill.
            for batch in checkins(0, 200, "c").chunks(20) {
                let body = Value::from(batch.to_vec()).to_string();
                if http
                    .post(format!("{base}/v1/events"))
                    .body(body)
                    .send()
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    });
    killer.await.unwrap();
    let _ = before_kill.await;
    daemon.kill();
    let mut daemon = Daemon::start(rules.path(), data.path(), &[]);
    let window = Utc::now();
    post_all(&http, &daemon.base, checkins(0, 120, "d")).await;

    let journal = http.get(daemon.url("/v1/journal")).send().await.unwrap();
    assert_eq!(journal.status(), 200);
    assert_eq!(
        journal.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let streamed = journal.text().await.unwrap();
    let kinds: Vec<String> = streamed
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // Two starts and a reload; the fan-out's batches where they ran among events.
    assert_eq!(kinds.iter().filter(|k| *k == "arm").count(), 3, "{kinds:?}");
    assert!(
        kinds.iter().filter(|k| *k == "batch").count() >= 3,
        "{kinds:?}"
    );
    assert!(kinds.iter().filter(|k| *k == "event").count() >= 720);
    // A window opens with the rules in force.
    let since = http
        .get(daemon.url(&format!(
            "/v1/journal?since={}",
            window.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first: Value = serde_json::from_str(since.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "arm");
    assert_eq!(since.lines().count(), 121, "{since}");
    assert!(first["files"]["rules.yaml"]
        .as_str()
        .unwrap()
        .contains("points: 7"));
    let (status, bad) = {
        answer(
            http.get(daemon.url("/v1/journal?since=yesterday"))
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().contains("since"), "{bad}");

    let (_, live_m000) = answer(
        http.get(daemon.url("/v1/members/m000"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    daemon.signal_and_wait(libc::SIGTERM);

    // The self-check: the replay is the live state.
    support::daemon::assert_replay_reproduces(data.path());
    let data_dir = data.path().to_str().unwrap();

    // `rally export` writes what the API streamed.
    let exported = rally_in(&["export", "--data", data_dir]);
    assert!(exported.status.success());
    assert_eq!(String::from_utf8_lossy(&exported.stdout), streamed);

    // An export replays on its own into `sim`'s document; other rules change it.
    let file = data
        .path()
        .parent()
        .unwrap()
        .join(format!("journal-{}.ndjson", std::process::id()));
    std::fs::write(&file, &exported.stdout).unwrap();
    let doc = replay_document(&["--journal", file.to_str().unwrap()]);
    assert_eq!(member_points(&doc, "m000"), live_m000["points"]);
    let cheaper = tempfile::tempdir().unwrap();
    std::fs::write(
        cheaper.path().join("rules.yaml"),
        rules_yaml(1, phase_start),
    )
    .unwrap();
    let other = replay_document(&[
        "--data",
        data_dir,
        "--rules",
        cheaper.path().to_str().unwrap(),
    ]);
    assert!(
        member_points(&other, "m000").as_i64().unwrap() < live_m000["points"].as_i64().unwrap(),
        "{}",
        member_points(&other, "m000")
    );
    let _ = std::fs::remove_file(file);

    // A live store that no longer matches its journal is caught, with the member and
    // the field named.
    tamper(data.path());
    let check = rally_in(&["replay", "--data", data_dir]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(said.contains("member \"m000\": points: live 1"), "{said}");
}

fn replay_document(args: &[&str]) -> Value {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    let out = rally_in(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn member_points(doc: &Value, id: &str) -> Value {
    doc["members"]
        .as_array()
        .and_then(|members| members.iter().find(|m| m["id"] == id))
        .map(|m| m["points"].clone())
        .unwrap_or_else(|| doc["members"][id]["points"].clone())
}

/// Sets m000's balance behind the journal's back.
fn tamper(data: &Path) {
    let store = support::runner::reopen(data);
    let mut member: Member = store.member("m000").unwrap().unwrap();
    member.points = 1;
    store
        .commit(&[StepWrite {
            members: vec![member],
            ..StepWrite::default()
        }])
        .unwrap();
    store.sync().unwrap();
    drop::<Store>(store);
    std::thread::sleep(Duration::from_millis(200));
}

/// Retention removes old entries a piece at a time, but keeps rule sets armed with
/// their files; a replay of what is left says it cannot rebuild the live state.
#[test]
fn trimming_keeps_the_rules_and_a_trimmed_journal_is_refused_by_the_self_check() {
    use support::runner::{event, t};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let rules = rally::rules::from_sources(
        &[(
            "rules.yaml",
            "rules:\n  - id: c\n    trigger: { event: checkin }\n    actions: [ { points: 1 } ]\n",
        )],
        &|_| None,
    )
    .unwrap();
    let mut runner = rally::runner::Runner::new(store, std::sync::Arc::new(rules)).unwrap();
    runner.keep_event_journal().unwrap();
    let start = t("2026-01-01T00:00:00Z");
    runner.arm(start).unwrap();
    for (n, at) in [
        "2026-01-01T00:00:01Z",
        "2026-01-02T00:00:00Z",
        "2026-03-01T00:00:00Z",
    ]
    .into_iter()
    .enumerate()
    {
        let line = format!(r#"{{"id":"e{n}","type":"checkin","member":"m","at":"{at}"}}"#);
        runner.apply_event(&event(&line), t(at)).unwrap();
        runner.commit().unwrap();
    }
    let store = runner.shared_store();
    let kinds = |store: &Store| {
        rally::runner::journal_lines(store, 0, 100)
            .unwrap()
            .into_iter()
            .map(|line| {
                (
                    line.seq,
                    serde_json::to_value(&line.entry).unwrap()["kind"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&store).len(), 4);
    // One entry per piece: the pass goes on until the first entry it keeps.
    let before = t("2026-02-01T00:00:00Z");
    let mut from = Some(0);
    let mut removed = 0;
    while let Some(start) = from {
        let piece = store.trim_journal(start, 1, before).unwrap();
        removed += piece.removed;
        from = piece.next;
    }
    assert_eq!(removed, 2);
    assert_eq!(
        kinds(&store),
        vec![(1, "arm".to_string()), (4, "event".to_string())]
    );
    drop(runner);
    drop(store);
    let store = support::runner::reopen(dir.path());
    // The arming is kept, but the events before the cut are gone.
    let refused = rally::replay::self_check(&store).map(|check| check.differences);
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("entries 2 to 3 are not in the journal"),
        "{message}"
    );
}

/// `rally explain --data` and `GET /v1/members/{id}/explain` re-run the journal and
/// trace the member's steps; an unknown member or event is said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_traces_a_members_step_from_the_journal_on_the_cli_and_over_http() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = root.join("rules");
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let imported = rally_in(&[
        "import",
        "--rules",
        rules.to_str().unwrap(),
        "--data",
        dir,
        "--events",
        root.join("examples/shipped/events.jsonl").to_str().unwrap(),
    ]);
    assert!(imported.status.success());

    let text = rally_in(&["explain", "--data", dir, "m-lin", "--event", "s-1"]);
    let said = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    assert!(said.contains("event s-1 (join"), "{said}");
    assert!(said.contains("✓ welcome-message"), "{said}");
    let json = rally_in(&["explain", "--data", dir, "m-lin", "--json"]);
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    assert!(steps.len() > 3, "{doc}");
    assert!(steps.iter().all(|step| step["member"] == "m-lin"));
    let unknown = rally_in(&["explain", "--data", dir, "m-lin", "--event", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("event \"nope\""));

    let clock = std::sync::Arc::new(rally::clock::SystemClock);
    let live = support::live::Live::start(&rules, data.path(), clock).await;
    let (status, over_http) = live.get("/v1/members/m-lin/explain?event=s-1").await;
    assert_eq!(status, 200, "{over_http}");
    assert_eq!(over_http["steps"].as_array().unwrap().len(), 1);
    assert_eq!(over_http["steps"][0]["input"]["id"], "s-1", "{over_http}");
    let (status, missing) = live.get("/v1/members/nobody/explain").await;
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("nobody"));
    live.stop().await;
}

/// Every check-in draws its points; the installation's secret decides the draws.
const DRAWING_RULES: &str = r#"
settings: { timezone: UTC }
rules:
  - id: lucky-checkin
    trigger: { event: checkin }
    actions: [ { points: "random_int(1, 1000000)" } ]
"#;

async fn drawn_points(daemon: &Daemon, http: &reqwest::Client) -> Vec<Value> {
    let mut points = Vec::new();
    for n in 0..20 {
        let (_, member) = answer(
            http.get(daemon.url(&format!("/v1/members/m{n:03}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        points.push(member["points"].clone());
    }
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draws_differ_between_installations_survive_a_restart_and_replay_exactly() {
    let rules = support::daemon::rules_dir(DRAWING_RULES);
    let http = client();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut seen = Vec::new();
    for data in [&one, &two] {
        let mut daemon = Daemon::start(rules.path(), data.path(), &[]);
        post_all(&http, &daemon.base, checkins(0, 20, "a")).await;
        seen.push(drawn_points(&daemon, &http).await);
        daemon.signal_and_wait(libc::SIGTERM);
    }
    assert_ne!(seen[0], seen[1], "two installations drew the same");

    // The key is kept: a restart goes on drawing under it, and the replay (on a fresh
    // store, from the journal alone) draws what the daemon drew.
    let key = Store::open(one.path())
        .unwrap()
        .meta_get("random.key")
        .unwrap();
    let mut daemon = Daemon::start(rules.path(), one.path(), &[]);
    post_all(&http, &daemon.base, checkins(20, 40, "b")).await;
    daemon.signal_and_wait(libc::SIGTERM);
    let after = Store::open(one.path())
        .unwrap()
        .meta_get("random.key")
        .unwrap();
    assert!(key.is_some());
    assert_eq!(key, after);
    support::daemon::assert_replay_reproduces(one.path());
}
