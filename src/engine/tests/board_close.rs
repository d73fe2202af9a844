//! A member's step at the close of a leaderboard period: the board's close rules
//! within the member's rank run, and see the place in `event.data`.

use chrono::{DateTime, Utc};

use super::{dec, rule_set};
use crate::engine::{step, BoardClose, Context, Input, Outcome};
use crate::leaderboard::Standing;
use crate::member::Member;
use crate::rules::RuleSet;

const RULES: &str = r#"
settings: { timezone: UTC }
leaderboards:
  - { id: posters, by: events.post, period: weekly, size: 5 }
  - { id: other, by: points, period: daily, size: 5 }
rules:
  - id: podium
    trigger: { leaderboard: posters, closes: true, top: 3 }
    actions:
      - points: { amount: "40 - 10 * event.data.rank", reason: "week podium" }
  - id: first
    trigger: { leaderboard: posters, closes: true, top: 1 }
    if: event.data.score >= 2 && event.data.period == "2026-W48" && event.data.board == "posters"
    actions: [ { badge: poster-of-the-week } ]
"#;

fn close(rules: &RuleSet, board: &str, rank: usize, score: &str) -> Outcome {
    let at: DateTime<Utc> = "2026-11-30T00:00:00Z".parse().unwrap();
    let ctx = Context {
        rules,
        now: at,
        budget_used: &Default::default(),
        rewards: &Default::default(),
        next_ticket: 1,
        shares: None,
        random_key: Default::default(),
    };
    let place = Standing {
        rank,
        member: "m".into(),
        score: dec(score),
        reached: 0,
    };
    let input = BoardClose::new(board, "2026-W48", &place, at);
    step(
        &ctx,
        Some(Member::new("m")),
        &Input::LeaderboardClose(&input),
    )
}

fn fired(outcome: &Outcome) -> Vec<&str> {
    outcome.firings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn the_first_place_gets_every_close_rule_and_sees_its_rank() {
    let rules = rule_set(RULES);
    let outcome = close(&rules, "posters", 1, "3");
    assert_eq!(fired(&outcome), ["podium", "first"]);
    assert_eq!(outcome.member.points, 30);
    assert_eq!(outcome.member.badges, ["poster-of-the-week"]);
    assert_eq!(
        outcome.ledger[0].event.as_deref(),
        Some("leaderboard:posters:2026-W48")
    );
}

#[test]
fn a_place_beyond_a_rules_top_does_not_run_it() {
    let rules = rule_set(RULES);
    let third = close(&rules, "posters", 3, "3");
    assert_eq!(fired(&third), ["podium"]);
    assert_eq!(third.member.points, 10);
    assert!(close(&rules, "posters", 4, "1").firings.is_empty());
}

#[test]
fn the_score_is_visible_to_the_rules_condition() {
    let rules = rule_set(RULES);
    assert_eq!(fired(&close(&rules, "posters", 1, "1")), ["podium"]);
}

#[test]
fn another_boards_close_runs_none_of_these_rules() {
    let rules = rule_set(RULES);
    assert!(close(&rules, "other", 1, "9").firings.is_empty());
}
