use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{period_of, Standings};
use crate::localtime::Period;
use crate::money::Decimal;
use crate::rules::{Leaderboard, Measure, SourcePos};

fn dec(n: i64) -> Decimal {
    Decimal::from(n)
}

fn ranking(board: &Standings, n: usize) -> Vec<(usize, String, i64)> {
    board
        .top(n)
        .into_iter()
        .map(|s| (s.rank, s.member, s.score.try_into().unwrap()))
        .collect()
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn weekly() -> Leaderboard {
    Leaderboard {
        id: "posters".into(),
        by: Measure::Counter("events.post".into()),
        period: Period::Week,
        size: 3,
        at: SourcePos {
            file: "rules.yaml".into(),
            line: 1,
            col: 1,
        },
    }
}

#[test]
fn the_highest_score_ranks_first() {
    let mut board = Standings::default();
    board.add("ann", dec(2), 1);
    board.add("bob", dec(5), 2);
    board.add("cyd", dec(3), 3);
    assert_eq!(
        ranking(&board, 10),
        [
            (1, "bob".into(), 5),
            (2, "cyd".into(), 3),
            (3, "ann".into(), 2)
        ]
    );
}

#[test]
fn gains_accumulate_and_move_the_member_up() {
    let mut board = Standings::default();
    board.add("ann", dec(2), 1);
    board.add("bob", dec(3), 2);
    board.add("ann", dec(2), 3);
    assert_eq!(ranking(&board, 10)[0], (1, "ann".into(), 4));
    assert_eq!(board.len(), 2, "the member's old row is gone");
}

#[test]
fn on_equal_scores_who_reached_it_first_ranks_first() {
    let mut board = Standings::default();
    board.add("zed", dec(3), 1);
    board.add("amy", dec(1), 2);
    board.add("amy", dec(2), 3);
    assert_eq!(
        ranking(&board, 10),
        [(1, "zed".into(), 3), (2, "amy".into(), 3)]
    );
}

#[test]
fn on_equal_scores_reached_at_the_same_step_member_id_decides() {
    let mut board = Standings::default();
    board.add("zed", dec(3), 7);
    board.add("amy", dec(3), 7);
    assert_eq!(
        ranking(&board, 10),
        [(1, "amy".into(), 3), (2, "zed".into(), 3)]
    );
}

#[test]
fn a_zero_gain_does_not_make_the_member_a_later_arrival() {
    let mut board = Standings::default();
    board.add("amy", dec(3), 1);
    board.add("zed", dec(3), 2);
    board.add("amy", dec(0), 3);
    assert_eq!(ranking(&board, 1), [(1, "amy".into(), 3)]);
}

#[test]
fn a_loss_moves_the_member_down() {
    let mut board = Standings::default();
    board.add("amy", dec(5), 1);
    board.add("zed", dec(3), 2);
    board.add("amy", dec(-4), 3);
    assert_eq!(
        ranking(&board, 10),
        [(1, "zed".into(), 3), (2, "amy".into(), 1)]
    );
}

#[test]
fn top_reads_only_the_first_places() {
    let mut board = Standings::default();
    for (i, member) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        board.add(member, dec(i as i64 + 1), i as u64);
    }
    assert_eq!(
        ranking(&board, 2),
        [(1, "e".into(), 5), (2, "d".into(), 4)]
    );
}

#[test]
fn a_week_is_counted_in_the_rule_sets_zone_not_utc() {
    // Sunday 20:00 in New York is already Monday in UTC.
    let sunday_evening = utc("2026-11-30T01:00:00Z");
    let zone: Tz = chrono_tz::America::New_York;
    assert_eq!(period_of(&weekly(), sunday_evening, zone), "2026-W48");
    assert_eq!(period_of(&weekly(), sunday_evening, Tz::UTC), "2026-W49");
}

#[test]
fn the_week_a_clock_change_falls_in_is_one_period() {
    // Europe/Berlin leaves summer time on Sunday 2026-10-25 at 03:00 local.
    let zone = chrono_tz::Europe::Berlin;
    let monday = utc("2026-10-18T22:30:00Z"); // Monday 00:30 CEST
    let sunday_late = utc("2026-10-25T22:30:00Z"); // Sunday 23:30 CET
    let next_monday = utc("2026-10-25T23:30:00Z"); // Monday 00:30 CET
    assert_eq!(period_of(&weekly(), monday, zone), "2026-W43");
    assert_eq!(period_of(&weekly(), sunday_late, zone), "2026-W43");
    assert_eq!(period_of(&weekly(), next_monday, zone), "2026-W44");
}
