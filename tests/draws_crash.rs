//! A draw in the daemon, over HTTP, under fire: `rally run` is SIGKILLed several times
//! while a phase rule's draw scans and awards thousands of members. In the end the
//! draw is listed once in `GET /v1/draws`, its winners are what `rally sim` draws
//! under the daemon's key from the same events, each winner was awarded exactly once
//! and nobody else was, and `rally replay` reproduces the store.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use support::daemon::{assert_replay_reproduces, client, get_json, rally, rules_dir, Daemon};

/// Enough members that the scan and the awards take many batches: a long stretch to
/// be killed in.
const MEMBERS: usize = 5_000;
const WINNERS: usize = 1_500;
const PATIENCE: Duration = Duration::from_secs(180);

fn member(i: usize) -> String {
    format!("m-{i:04}")
}

/// A campaign whose `open` phase began a minute ago, with a draw on entering it.
fn rules(now: chrono::DateTime<Utc>) -> String {
    let local = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    format!(
        r#"settings:
  timezone: UTC
campaigns:
  - id: launch
    phases:
      - {{ name: open, start: "{}" }}
    end: "{}"
rules:
  - id: launch-draw
    trigger: {{ phase: {{ campaign: launch, enters: open }} }}
    audience: all
    draw: {{ winners: {WINNERS} }}
    actions:
      - points: 50
      - badge: launch-winner
"#,
        local(now - chrono::Duration::minutes(1)),
        local(now + chrono::Duration::days(1)),
    )
}

/// One check-in per member, two hours ago: the import's clock stops before the phase.
fn checkins(now: chrono::DateTime<Utc>) -> String {
    let start = now - chrono::Duration::hours(2);
    (0..MEMBERS)
        .map(|i| {
            let at = start + chrono::Duration::seconds(i as i64);
            json!({"id": format!("c-{i}"), "type": "checkin", "member": member(i),
                   "at": at.to_rfc3339_opts(SecondsFormat::Secs, true)})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let output = rally().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draw_killed_midway_keeps_its_winners_and_awards_each_winner_once() {
    let now = Utc::now();
    let rules = rules_dir(&rules(now));
    let data = tempfile::tempdir().unwrap();
    let history = data.path().join("history.jsonl");
    std::fs::write(&history, checkins(now)).unwrap();
    let store = data.path().join("store");
    run(&[
        "import".as_ref(),
        "--rules".as_ref(),
        rules.path().as_os_str(),
        "--data".as_ref(),
        store.as_os_str(),
        "--events".as_ref(),
        history.as_os_str(),
    ]);

    let http = client();
    // Killed after 10 ms, then 20, 30 … (up to 200) until one run finishes the draw:
    // each run resumes from the last batch the one before committed. Growing, so that
    // the first kills land before a fast machine finishes the whole draw, and later
    // runs live long enough to commit batches.
    let mut killed_unfinished = 0;
    for attempt in 1..=100 {
        let mut daemon = Daemon::start(rules.path(), &store, &[]);
        let pause = Duration::from_millis((10 * attempt).min(200));
        tokio::time::sleep(pause).await;
        let finished = daemon.log().contains("draw finished");
        daemon.kill();
        if finished {
            break;
        }
        killed_unfinished += 1;
    }
    assert!(
        killed_unfinished >= 2,
        "the draw finished before the second kill: nothing was tested"
    );
    let daemon = Daemon::start(rules.path(), &store, &[]);
    let deadline = Instant::now() + PATIENCE;
    let listed = loop {
        if let Some((200, body)) = get_json(&http, &daemon.base, "/v1/draws").await {
            if !body["draws"].as_array().unwrap().is_empty() {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the draw never finished:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let draws = listed["draws"].as_array().unwrap();
    assert_eq!(draws.len(), 1, "{listed}");
    assert_eq!(draws[0]["rule"], "launch-draw");
    assert_eq!(draws[0]["wanted"], WINNERS);
    assert_eq!(draws[0]["eligible"], MEMBERS);
    assert_eq!(draws[0]["winners"], WINNERS);

    let (status, detail) = get_json(&http, &daemon.base, "/v1/draws/launch-draw")
        .await
        .unwrap();
    assert_eq!(status, 200, "{detail}");
    let winners: Vec<String> = detail["draws"][0]["winners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert_eq!(winners.iter().collect::<BTreeSet<_>>().len(), WINNERS);
    let (status, _) = get_json(&http, &daemon.base, "/v1/draws/nobody")
        .await
        .unwrap();
    assert_eq!(status, 404);

    // Every winner once, nobody else: 50 points and the badge exactly for the winners.
    let won: BTreeSet<&String> = winners.iter().collect();
    for i in 0..MEMBERS {
        let id = member(i);
        let (status, view) = get_json(&http, &daemon.base, &format!("/v1/members/{id}"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{view}");
        let (points, badges) = if won.contains(&id) {
            (50, json!(["launch-winner"]))
        } else {
            (0, json!([]))
        };
        assert_eq!(view["points"], points, "{id}: {view}");
        assert_eq!(view["badges"], badges, "{id}: {view}");
    }

    // The daemon's key, from its journal: `sim` under it draws the same winners.
    let journal = http
        .get(daemon.url("/v1/journal"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = journal
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find_map(|line| line["random_key"].as_str().map(str::to_string))
        .expect("an arm entry with the key");
    drop(daemon);
    let until = (now + chrono::Duration::minutes(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let simulated = run(&[
        "sim".as_ref(),
        "--rules".as_ref(),
        rules.path().as_os_str(),
        "--events".as_ref(),
        history.as_os_str(),
        "--until".as_ref(),
        until.as_ref(),
        "--seed".as_ref(),
        key.as_ref(),
    ]);
    let doc: Value = serde_json::from_slice(&simulated.stdout).unwrap();
    assert_eq!(doc["draws"][0]["winners"], json!(winners));

    assert_replay_reproduces(&store);
}
