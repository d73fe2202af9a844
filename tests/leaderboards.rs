//! Leaderboards (`leaderboards:`): rankings per period through `rally sim`, and
//! `GET /v1/leaderboards/{id}` over HTTP against the real binary.

mod support;

use serde_json::{json, Value};
use support::daemon::{assert_replay_reproduces, rally_within_a_minute, rules_dir, Session};

const POSTERS: &str = r#"
settings: { timezone: UTC }
leaderboards:
  - { id: posters, by: events.post, period: weekly, size: 3 }
  - { id: buyers, by: spend_total, period: monthly, size: 2 }
"#;

fn post(id: &str, member: &str, at: &str) -> String {
    json!({"id": id, "type": "post", "member": member, "at": at}).to_string()
}

/// `[(rank, member, score)]` of a ranking as printed.
fn places(ranking: &Value) -> Vec<(u64, String, String)> {
    ranking
        .as_array()
        .unwrap_or_else(|| panic!("a ranking: {ranking}"))
        .iter()
        .map(|p| {
            (
                p["rank"].as_u64().unwrap(),
                p["member"].as_str().unwrap().to_string(),
                p["score"].to_string(),
            )
        })
        .collect()
}

fn place(rank: u64, member: &str, score: &str) -> (u64, String, String) {
    (rank, member.to_string(), score.to_string())
}

#[test]
fn sim_ranks_each_week_by_what_was_gained_in_it_with_ties_to_the_first_to_reach() {
    let events = [
        // Week 48 (Mon 23 Nov – Sun 29 Nov).
        post("e1", "ann", "2026-11-23T09:00:00Z"),
        post("e2", "bob", "2026-11-23T10:00:00Z"),
        post("e3", "bob", "2026-11-24T10:00:00Z"),
        post("e4", "ann", "2026-11-25T10:00:00Z"),
        post("e5", "cyd", "2026-11-26T10:00:00Z"),
        post("e6", "dan", "2026-11-27T10:00:00Z"),
        post("e7", "dan", "2026-11-28T10:00:00Z"),
        post("e8", "dan", "2026-11-29T10:00:00Z"),
        // Week 49: only what is posted from Monday counts.
        post("e9", "cyd", "2026-11-30T10:00:00Z"),
    ]
    .join("\n");
    let doc = support::sim::run(POSTERS, &events, "2026-12-01T00:00:00Z");
    let weeks = &doc["leaderboards"]["posters"];
    // bob reached 2 on Tuesday, ann on Wednesday: bob first. Size 3: cyd is not shown.
    assert_eq!(
        places(&weeks["2026-W48"]),
        [
            place(1, "dan", "3"),
            place(2, "bob", "2"),
            place(3, "ann", "2")
        ]
    );
    assert_eq!(places(&weeks["2026-W49"]), [place(1, "cyd", "1")]);
    assert_eq!(doc["leaderboards"]["buyers"], json!({}));
}

#[test]
fn sim_without_boards_prints_no_leaderboards_section() {
    let doc = support::sim::run(
        "rules: []\n",
        &post("e1", "ann", "2026-11-23T09:00:00Z"),
        "2026-11-24T00:00:00Z",
    );
    assert!(doc.get("leaderboards").is_none(), "{doc}");
}

#[test]
fn rally_check_reports_every_board_problem_at_its_file_line_and_column() {
    let rules = rules_dir(
        "leaderboards:\n  - { id: posters, by: event.post, period: weekly, size: 3 }\n  - { id: posters, by: points, period: yearly, size: 0 }\n",
    );
    let out = rally_within_a_minute(&["check", "--rules", rules.path().to_str().unwrap()], &[]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
    .replace(&format!("{}/", rules.path().display()), "");
    assert!(!out.status.success(), "{said}");
    for expected in [
        "rules.yaml:2:24: unknown counter \"event.post\"",
        "rules.yaml:3:11: leaderboard \"posters\" is already defined at rules.yaml:2:11",
        "rules.yaml:3:40: \"period\" must be one of daily, weekly, monthly, found \"yearly\"",
        "rules.yaml:3:54: \"size\" must be a positive integer, found 0",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
}

/// A time a few seconds before the daemon's clock (the wall clock), so events are
/// in the current period unless the week turned over in those seconds.
fn seconds_ago(n: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(n))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_the_current_ranking_and_a_closed_period_on_request() {
    let session = Session::start(POSTERS, &[]);
    let events: Vec<Value> = [
        ("e1", "ann", 3),
        ("e2", "bob", 2),
        ("e3", "bob", 1),
        ("e4", "ann", 0),
        ("e5", "ann", 0),
    ]
    .iter()
    .map(|(id, member, ago)| serde_json::from_str(&post(id, member, &seconds_ago(*ago))).unwrap())
    .collect();
    let acked =
        support::daemon::post_until_acknowledged(&session.http, || session.daemon.url(""), &events)
            .await;
    assert!(acked.iter().all(|s| s == "accepted"), "{acked:?}");

    let (status, body) = session.get("/v1/leaderboards/posters").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["current"], true);
    assert_eq!(body["every"], "weekly");
    assert_eq!(body["size"], 3);
    let week = body["period"].as_str().unwrap().to_string();
    assert!(week.contains("-W"), "{body}");
    assert_eq!(
        places(&body["places"]),
        [place(1, "ann", "3"), place(2, "bob", "2")]
    );

    let (status, body) = session
        .get(&format!("/v1/leaderboards/posters?period={week}"))
        .await;
    assert_eq!((status, body["current"].clone()), (200, json!(true)));
    let (status, body) = session
        .get("/v1/leaderboards/posters?period=2020-W01")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["current"].clone(), body["places"].clone()),
        (json!(false), json!([]))
    );

    let (status, body) = session.get("/v1/leaderboards/nope").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("no leaderboard \"nope\""));

    let mut session = session;
    session.daemon.kill();
    assert_replay_reproduces(session.data.path());
}
