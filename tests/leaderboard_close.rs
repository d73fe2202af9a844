//! A leaderboard close in the daemon, over HTTP, under fire: a day of posts is
//! imported, then `rally run` starts after the day closed (a close missed while it was
//! down runs at start) and is SIGKILLed several times while the close awards a
//! thousand places. In the end each place was awarded exactly once, by its rank, the
//! same as `rally sim` from the same events, and `rally replay` reproduces the store.

mod support;

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use support::daemon::{assert_replay_reproduces, client, get_json, rally, rules_dir, Daemon};

/// Places on the board, all awarded: many batches, a long stretch to be killed in.
const MEMBERS: usize = 1_000;
const PATIENCE: Duration = Duration::from_secs(180);

fn member(i: usize) -> String {
    format!("m-{i:04}")
}

/// A daily board of posts whose close pays each place its rank in points.
fn rules() -> String {
    format!(
        r#"settings:
  timezone: UTC
leaderboards:
  - {{ id: daily_posters, by: events.post, period: daily, size: {MEMBERS} }}
rules:
  - id: daily-prize
    trigger: {{ leaderboard: daily_posters, closes: true }}
    actions:
      - points: {{ amount: "event.data.rank", reason: "daily poster" }}
      - tag: ranked
"#
    )
}

/// One post per member yesterday, a second apart: member `i` ranks `i + 1` (on equal
/// scores the first to reach one ranks first).
fn posts() -> String {
    let yesterday = (Utc::now() - chrono::Duration::days(1)).date_naive();
    let start = yesterday.and_hms_opt(10, 0, 0).unwrap().and_utc();
    (0..MEMBERS)
        .map(|i| {
            let at = start + chrono::Duration::seconds(i as i64);
            json!({"id": format!("p-{i}"), "type": "post", "member": member(i),
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
async fn a_close_killed_midway_awards_each_place_once_by_its_rank() {
    let rules = rules_dir(&rules());
    let data = tempfile::tempdir().unwrap();
    let history = data.path().join("history.jsonl");
    std::fs::write(&history, posts()).unwrap();
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
    // Killed later and later after it listens until a run finishes the close: each
    // run resumes from the last batch the one before committed.
    let mut killed_unfinished = 0;
    for attempt in 0..100u64 {
        let mut daemon = Daemon::start(rules.path(), &store, &[]);
        tokio::time::sleep(Duration::from_millis(5 + attempt * 5)).await;
        let finished = daemon.log().contains("leaderboard closed");
        daemon.kill();
        if finished {
            break;
        }
        killed_unfinished += 1;
    }
    assert!(
        killed_unfinished >= 2,
        "the close finished before the second kill: nothing was tested"
    );
    let daemon = Daemon::start(rules.path(), &store, &[]);
    let last = member(MEMBERS - 1);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some((200, view)) =
            get_json(&http, &daemon.base, &format!("/v1/members/{last}")).await
        {
            if view["tags"] == json!(["ranked"]) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the close never finished:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Each place once: its rank in points (twice would be double), and the tag.
    for i in 0..MEMBERS {
        let id = member(i);
        let (status, view) = get_json(&http, &daemon.base, &format!("/v1/members/{id}"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["points"], i + 1, "{id}: {view}");
        assert_eq!(view["tags"], json!(["ranked"]), "{id}: {view}");
    }
    drop(daemon);

    // `sim` over the same events, run past the close, pays the same.
    let until = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let simulated = run(&[
        "sim".as_ref(),
        "--rules".as_ref(),
        rules.path().as_os_str(),
        "--events".as_ref(),
        history.as_os_str(),
        "--until".as_ref(),
        until.as_ref(),
    ]);
    let doc: Value = serde_json::from_slice(&simulated.stdout).unwrap();
    for i in [0, 1, MEMBERS / 2, MEMBERS - 1] {
        assert_eq!(doc["members"][member(i)]["points"], i + 1);
    }

    assert_replay_reproduces(&store);
}

#[test]
fn sim_explains_a_close_step_with_the_place_it_paid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = rally()
        .current_dir(root)
        .args([
            "sim",
            "--rules",
            "examples/leaderboard",
            "--events",
            "examples/leaderboard/events.jsonl",
            "--explain",
            "m-ben",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stderr).unwrap();
    for expected in [
        "2026-11-29T23:00:00Z  leaderboard top_posters closed 2026-W48: rank 2, score 2  member m-ben",
        "✓ weekly-podium  examples/leaderboard/rules.yaml:28  [leaderboard top_posters closed 2026-W48 with the member at rank 2]  fired",
        "with event.data.rank = 2",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // The badge's rule is for the first place only: not even considered for the second.
    assert!(!text.contains("✓ poster-of-the-week"), "{text}");
}

#[test]
fn rally_check_reports_a_bad_close_trigger_where_it_is_written() {
    let check = |trigger: &str| {
        let yaml = format!(
            "leaderboards:\n  - {{ id: top_posters, by: events.post, period: weekly, size: 3 }}\nrules:\n  - id: w\n    trigger: {trigger}\n    actions: [ {{ points: 1 }} ]\n"
        );
        let dir = rules_dir(&yaml);
        let output = rally()
            .args(["check", "--rules"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8(output.stdout).unwrap()
            + String::from_utf8(output.stderr).unwrap().as_str()
    };
    let unknown = check("{ leaderboard: top_poster, closes: true }");
    assert!(
        unknown.contains(
            "rules.yaml:5:29: unknown leaderboard \"top_poster\" (did you mean \"top_posters\"?)"
        ),
        "{unknown}"
    );
    let top = check("{ leaderboard: top_posters, closes: true, top: 4 }");
    assert!(
        top.contains("rules.yaml:5:61: \"top\" must be at most the size of leaderboard \"top_posters\" (3), found 4"),
        "{top}"
    );
    let unknown_key = check("{ leaderboard: top_posters, closes: true, winners: 4 }");
    assert!(
        unknown_key.contains("rules.yaml:5:56: unknown key \"winners\" in trigger"),
        "{unknown_key}"
    );
    // The close's event is Rally's own: a rule waiting for it as an event would never
    // fire, so it is refused, pointing at the close trigger.
    let as_event = check("{ event: rally.leaderboard_close }");
    assert!(
        as_event.contains("rules.yaml:5:23: \"rally.leaderboard_close\" is reserved")
            && as_event.contains("trigger: { leaderboard: ID, closes: true }"),
        "{as_event}"
    );
}
