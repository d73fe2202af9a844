//! What a step adds to a member's leaderboard scores: the member's row on each board
//! whose measure moved, with its score in the step's period.

use super::{dec, ev, rule_set, Sim};

const BOARDS: &str = r#"
settings: { timezone: UTC }
counters:
  - { id: posts_week, on: post, reset: weekly }
leaderboards:
  - { id: all_posts, by: events.post, period: weekly, size: 3 }
  - { id: week_posts, by: posts_week, period: weekly, size: 3 }
  - { id: spenders, by: "member.spend_total * 2", period: monthly, size: 3 }
rules:
  - id: post-points
    trigger: { event: post }
    actions: [ { points: 10 } ]
"#;

fn scores(sim: &Sim) -> Vec<(String, String, String)> {
    sim.outcomes
        .last()
        .unwrap()
        .leaderboards
        .iter()
        .map(|g| (g.board.clone(), g.period.clone(), g.to.score.to_string()))
        .collect()
}

fn score(board: &str, period: &str, amount: &str) -> (String, String, String) {
    (board.into(), period.into(), amount.into())
}

#[test]
fn a_counter_that_never_resets_scores_what_was_gained_in_the_period() {
    let rules = rule_set(BOARDS);
    let mut sim = Sim::new(&rules);
    // Three posts the week before: not part of this week's score.
    for (id, at) in [
        ("e0", "2026-11-17T10:00:00Z"),
        ("e1", "2026-11-18T10:00:00Z"),
        ("e2", "2026-11-19T10:00:00Z"),
    ] {
        sim.send(ev(id, "post", "m", at, "{}"));
    }
    sim.send(ev("e3", "post", "m", "2026-11-24T10:00:00Z", "{}"));
    sim.send(ev("e4", "post", "m", "2026-11-25T10:00:00Z", "{}"));
    let found = scores(&sim);
    assert!(
        found.contains(&score("all_posts", "2026-W48", "2")),
        "{found:?}"
    );
    assert_eq!(sim.member("m").counter("events.post"), dec("5"));
}

#[test]
fn a_counter_reset_at_the_turn_of_the_period_is_not_a_loss() {
    let rules = rule_set(BOARDS);
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-24T10:00:00Z", "{}"));
    sim.send(ev("e2", "post", "m", "2026-11-25T10:00:00Z", "{}"));
    // Monday of the next week: `posts_week` starts again at 0 before the post.
    sim.send(ev("e3", "post", "m", "2026-11-30T10:00:00Z", "{}"));
    let found = scores(&sim);
    assert!(
        found.contains(&score("week_posts", "2026-W49", "1")),
        "{found:?}"
    );
    assert!(
        found.contains(&score("all_posts", "2026-W49", "1")),
        "{found:?}"
    );
}

#[test]
fn an_expression_board_gains_the_change_of_its_value() {
    let rules = rule_set(BOARDS);
    let mut sim = Sim::new(&rules);
    sim.send(ev(
        "e1",
        "purchase",
        "m",
        "2026-11-24T10:00:00Z",
        r#"{"amount": 12.5}"#,
    ));
    assert_eq!(scores(&sim), [score("spenders", "2026-11", "25")]);
}

#[test]
fn a_step_that_moves_no_measure_reports_no_gain() {
    let rules = rule_set(BOARDS);
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "login", "m", "2026-11-24T10:00:00Z", "{}"));
    assert_eq!(scores(&sim), []);
}

#[test]
fn a_points_board_loses_what_the_member_spends() {
    let rules = rule_set(
        r#"
leaderboards:
  - { id: earners, by: points, period: daily, size: 5 }
rules:
  - id: post-points
    trigger: { event: post }
    actions: [ { points: 10 } ]
  - id: redeem
    trigger: { event: redeem }
    actions: [ { points: -4 } ]
"#,
    );
    let mut sim = Sim::new(&rules);
    sim.send(ev("e1", "post", "m", "2026-11-24T10:00:00Z", "{}"));
    assert_eq!(scores(&sim), [score("earners", "2026-11-24", "10")]);
    sim.send(ev("e2", "redeem", "m", "2026-11-24T11:00:00Z", "{}"));
    assert_eq!(scores(&sim), [score("earners", "2026-11-24", "6")]);
}
