//! When leaderboard closes run, driven on the daemon's `Runner`: each period's close
//! at its local midnight, closes missed in a long stretch each run in order, and a
//! reload re-arms a board whose close rules or period changed.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rally::runner::Runner;
use support::runner::{arrive_and_commit, runner, t};

fn board_rules(period: &str, with_close: bool) -> String {
    let mut yaml = format!(
        r#"
settings: {{ timezone: Europe/Berlin }}
leaderboards:
  - {{ id: posters, by: events.post, period: {period}, size: 3 }}
rules:
  - id: post-points
    trigger: {{ event: post }}
    actions: [ {{ points: 1 }} ]
"#
    );
    if with_close {
        yaml.push_str(
            "  - id: prize\n    trigger: { leaderboard: posters, closes: true }\n    actions: [ { points: \"100 * event.data.rank\" } ]\n",
        );
    }
    yaml
}

/// A runner started Tuesday 3 November 2026, 10:00 Berlin, with `m` posting then.
fn started(yaml: &str) -> Runner {
    let mut runner = runner(yaml);
    runner.keep_journal();
    let start = t("2026-11-03T09:00:00Z");
    runner.arm(start).unwrap();
    arrive_and_commit(
        &mut runner,
        r#"{"id":"p1","type":"post","member":"m","at":"2026-11-03T09:00:00Z"}"#,
        start,
    );
    runner
}

fn post(runner: &mut Runner, id: &str, at: &str) {
    let line = format!(r#"{{"id":"{id}","type":"post","member":"m","at":"{at}"}}"#);
    arrive_and_commit(runner, &line, t(at));
}

fn set_rules(runner: &mut Runner, yaml: &str, at: DateTime<Utc>) {
    let rules = rally::rules::from_sources(&[("rules.yaml", yaml)], &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}"));
    runner.run_due(at).unwrap();
    runner.set_rules(Arc::new(rules));
    runner.arm(at).unwrap();
    runner.commit().unwrap();
}

/// The prizes paid up to `until`: (time, the ledger's event naming the period).
fn prizes(runner: &mut Runner, until: &str) -> Vec<(String, String)> {
    runner.run_due(t(until)).unwrap();
    runner.commit().unwrap();
    runner
        .take_journal()
        .into_iter()
        .flat_map(|o| o.firings)
        .filter(|f| f.rule == "prize")
        .map(|f| {
            (
                rally::member::rfc3339(f.at),
                f.event.unwrap_or_default().into(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_week_closes_at_monday_midnight_local_time() {
    let mut runner = started(&board_rules("weekly", true));
    assert_eq!(
        prizes(&mut runner, "2026-11-10T00:00:00Z"),
        pairs(&[("2026-11-08T23:00:00Z", "leaderboard:posters:2026-W45")])
    );
}

#[test]
fn closes_missed_in_a_long_stretch_each_run_in_order() {
    let mut runner = started(&board_rules("weekly", true));
    post(&mut runner, "p2", "2026-11-18T09:00:00Z");
    // Week 46 had no post: its close has no place to pay.
    assert_eq!(
        prizes(&mut runner, "2026-11-30T12:00:00Z"),
        pairs(&[
            ("2026-11-08T23:00:00Z", "leaderboard:posters:2026-W45"),
            ("2026-11-22T23:00:00Z", "leaderboard:posters:2026-W47"),
        ])
    );
}

#[test]
fn a_reload_that_adds_close_rules_arms_the_next_close() {
    let mut runner = started(&board_rules("weekly", false));
    set_rules(
        &mut runner,
        &board_rules("weekly", true),
        t("2026-11-04T09:00:00Z"),
    );
    assert_eq!(
        prizes(&mut runner, "2026-11-10T00:00:00Z"),
        pairs(&[("2026-11-08T23:00:00Z", "leaderboard:posters:2026-W45")])
    );
}

#[test]
fn a_reload_that_removes_the_close_rules_disarms_the_close() {
    let mut runner = started(&board_rules("weekly", true));
    set_rules(
        &mut runner,
        &board_rules("weekly", false),
        t("2026-11-04T09:00:00Z"),
    );
    assert_eq!(prizes(&mut runner, "2026-11-20T00:00:00Z"), pairs(&[]));
    let armed: Vec<_> = support::runner::timers(runner.store())
        .into_iter()
        .filter(|(_, kind, _)| kind == "leaderboard")
        .collect();
    assert!(armed.is_empty(), "{armed:?}");
}

#[test]
fn a_reload_that_makes_a_weekly_board_daily_closes_that_night() {
    let mut runner = started(&board_rules("weekly", true));
    set_rules(
        &mut runner,
        &board_rules("daily", true),
        t("2026-11-04T09:00:00Z"),
    );
    post(&mut runner, "p2", "2026-11-04T10:00:00Z");
    assert_eq!(
        prizes(&mut runner, "2026-11-05T12:00:00Z"),
        pairs(&[("2026-11-04T23:00:00Z", "leaderboard:posters:2026-11-04")])
    );
}
