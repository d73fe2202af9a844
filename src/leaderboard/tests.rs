use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{gain, period_of, BoardScore, Place};
use crate::localtime::Period;
use crate::money::Decimal;
use crate::rules::{Leaderboard, Measure, SourcePos};

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
fn a_gain_in_the_same_period_adds_to_the_kept_score_and_moves_its_row() {
    let mut kept = Some(BoardScore {
        period: "2026-W48".into(),
        place: Place {
            score: Decimal::from(3),
            reached: 10,
        },
    });
    let moved = gain(
        &mut kept,
        "posters",
        "2026-W48".into(),
        "m",
        Decimal::from(2),
        utc("2026-11-24T00:00:00Z"),
    );
    assert_eq!(moved.from.map(|p| p.score), Some(Decimal::from(3)));
    assert_eq!(moved.to.score, Decimal::from(5));
    assert_eq!(kept.unwrap().place, moved.to);
}

#[test]
fn a_gain_in_a_new_period_starts_from_zero_and_leaves_the_old_row() {
    let mut kept = Some(BoardScore {
        period: "2026-W47".into(),
        place: Place {
            score: Decimal::from(9),
            reached: 10,
        },
    });
    let moved = gain(
        &mut kept,
        "posters",
        "2026-W48".into(),
        "m",
        Decimal::from(2),
        utc("2026-11-24T00:00:00Z"),
    );
    assert_eq!(moved.from, None);
    assert_eq!(moved.to.score, Decimal::from(2));
    assert_eq!(kept.unwrap().period, "2026-W48");
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
