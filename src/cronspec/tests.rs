use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;

use super::CronSpec;

mod dst;

pub(super) fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn next(expr: &str, after: &str, zone: chrono_tz::Tz) -> String {
    CronSpec::parse(expr)
        .unwrap()
        .next_after(utc(after), zone)
        .unwrap()
        .to_rfc3339()
}

pub(super) fn all(expr: &str, after: &str, up_to: &str, zone: chrono_tz::Tz) -> Vec<String> {
    CronSpec::parse(expr)
        .unwrap()
        .occurrences(utc(after), utc(up_to), zone)
        .map(|at| at.to_rfc3339())
        .collect()
}

// 2026-11-01 is a Sunday; Shanghai is UTC+8 all year.

#[test]
fn weekday_one_is_monday_as_in_crontab() {
    assert_eq!(
        next("0 9 * * 1", "2026-11-01T00:00:00Z", Shanghai),
        "2026-11-02T01:00:00+00:00"
    );
}

#[test]
fn weekday_zero_and_seven_are_both_sunday() {
    for expr in ["0 9 * * 0", "0 9 * * 7", "0 9 * * Sun"] {
        assert_eq!(
            next(expr, "2026-10-31T12:00:00Z", Shanghai),
            "2026-11-01T01:00:00+00:00",
            "{expr}"
        );
    }
}

#[test]
fn a_weekday_range_skips_the_weekend() {
    // From Friday 2026-11-06 10:00 local, the next weekday 09:00 is Monday the 9th.
    for expr in [
        "0 9 * * 1-5",
        "0 9 * * Mon-Fri",
        "0 9 * * mon-fri",
        "0 9 * * MON-FRI",
    ] {
        assert_eq!(
            next(expr, "2026-11-06T02:00:00Z", Shanghai),
            "2026-11-09T01:00:00+00:00",
            "{expr}"
        );
    }
}

#[test]
fn next_after_is_strictly_after() {
    assert_eq!(
        next("0 20 * * Fri", "2026-11-06T12:00:00Z", Shanghai),
        "2026-11-13T12:00:00+00:00"
    );
}

#[test]
fn six_fields_put_seconds_first() {
    assert_eq!(
        next("30 0 9 * * *", "2026-11-01T02:00:00Z", Shanghai),
        "2026-11-02T01:00:30+00:00"
    );
}

#[test]
fn a_seventh_field_is_the_year() {
    assert_eq!(
        next("0 0 9 * * * 2027", "2026-11-01T00:00:00Z", Shanghai),
        "2027-01-01T01:00:00+00:00"
    );
}

#[test]
fn the_wrong_number_of_fields_is_refused_with_the_count() {
    let err = CronSpec::parse("0 9 *").unwrap_err();
    assert_eq!(
        err.message,
        "expected 5 fields (or 6–7 with seconds), got 3"
    );
    assert_eq!(err.at, 0);
    assert_eq!(CronSpec::parse("").unwrap_err().at, 0);
}

#[test]
fn a_bad_field_is_reported_at_its_place_in_crontab_terms() {
    let err = CronSpec::parse("0 25 * * *").unwrap_err();
    assert_eq!(
        (err.at, err.message.as_str()),
        (2, "hour must be 0–23, found \"25\"")
    );
    let err = CronSpec::parse("0 9 * * Funday").unwrap_err();
    assert_eq!(err.at, 8);
    assert!(err
        .message
        .starts_with("day of week must be 0–7 or SUN–SAT"));
}

#[test]
fn seconds_are_checked_when_written_first() {
    let err = CronSpec::parse("60 0 9 * * *").unwrap_err();
    assert_eq!(
        (err.at, err.message.as_str()),
        (0, "second must be 0–59, found \"60\"")
    );
}

#[test]
fn the_text_is_kept_as_written() {
    assert_eq!(CronSpec::parse("0 9 * * 1").unwrap().text, "0 9 * * 1");
}

#[test]
fn restricting_both_day_fields_matches_either_as_in_crontab() {
    // The 1st of the month or any Monday: Monday 30 Nov, then Tuesday 1 Dec.
    assert_eq!(
        all(
            "0 9 1 * Mon",
            "2026-11-25T00:00:00Z",
            "2026-12-08T00:00:00Z",
            Shanghai
        ),
        [
            "2026-11-30T01:00:00+00:00",
            "2026-12-01T01:00:00+00:00",
            "2026-12-07T01:00:00+00:00"
        ]
    );
}

#[test]
fn the_latest_occurrence_includes_the_instant_itself() {
    let weekly = CronSpec::parse("0 9 * * Wed").unwrap();
    let wednesday = utc("2026-11-04T01:00:00Z");
    assert_eq!(
        weekly.latest_at_or_before(wednesday, Shanghai),
        Some(wednesday)
    );
    assert_eq!(
        weekly.latest_at_or_before(utc("2026-11-04T00:59:59Z"), Shanghai),
        Some(utc("2026-10-28T01:00:00Z"))
    );
}

#[test]
fn a_stepped_star_day_field_does_not_count_as_restricted() {
    // As in crontab: `*/2` weekdays with day 1 means the 1st, if it is one of those days.
    // 2026-11-01 is a Sunday (in `*/2`); 2026-12-01 a Tuesday (in); 2027-01-01 a Friday.
    assert_eq!(
        all(
            "0 9 1 * */2",
            "2026-10-25T00:00:00Z",
            "2027-01-15T00:00:00Z",
            Shanghai
        ),
        ["2026-11-01T01:00:00+00:00", "2026-12-01T01:00:00+00:00"]
    );
}

#[test]
fn a_day_range_with_a_weekday_means_either_not_the_first_such_weekday() {
    // The classic crontab surprise: days 1–7 *or* any Monday, not "the first Monday".
    // 2026-12-01 is a Tuesday; the days 1–7 run, and so do Mondays 14 and 21.
    let runs = all(
        "0 9 1-7 * Mon",
        "2026-11-30T02:00:00Z",
        "2026-12-22T00:00:00Z",
        Shanghai,
    );
    assert_eq!(runs.len(), 7 + 2, "{runs:?}");
    assert_eq!(runs[7], "2026-12-14T01:00:00+00:00");
}

#[test]
fn a_restricted_day_of_month_with_a_star_weekday_needs_that_day() {
    assert_eq!(
        all(
            "0 9 13 * *",
            "2026-11-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            Shanghai
        ),
        ["2026-11-13T01:00:00+00:00", "2026-12-13T01:00:00+00:00"]
    );
}

#[test]
fn month_names_and_numbers_mix_in_a_range() {
    // FEB-4 is February to April: from December, the next 1st is 1 February.
    assert_eq!(
        next("0 9 1 FEB-4 *", "2026-12-01T12:00:00Z", Shanghai),
        "2027-02-01T01:00:00+00:00"
    );
}

#[test]
fn weekday_names_and_numbers_mix_in_a_range() {
    // Saturday 7 November 2026: Mon-5 and 1-FRI both mean Monday to Friday.
    for expr in ["0 9 * * Mon-5", "0 9 * * 1-FRI"] {
        assert_eq!(
            next(expr, "2026-11-06T12:00:00Z", Shanghai),
            "2026-11-09T01:00:00+00:00",
            "{expr}"
        );
    }
}

#[test]
fn yearly_and_annually_run_at_midnight_on_the_first_of_january() {
    for expr in ["@yearly", "@annually"] {
        assert_eq!(
            next(expr, "2026-06-01T00:00:00Z", Shanghai),
            "2026-12-31T16:00:00+00:00",
            "{expr}"
        );
    }
}

#[test]
fn monthly_runs_at_midnight_on_the_first() {
    assert_eq!(
        next("@monthly", "2026-11-05T00:00:00Z", Shanghai),
        "2026-11-30T16:00:00+00:00"
    );
}

#[test]
fn weekly_runs_at_midnight_on_sunday() {
    // Sunday 8 November 2026, 00:00 in Shanghai.
    assert_eq!(
        next("@weekly", "2026-11-02T00:00:00Z", Shanghai),
        "2026-11-07T16:00:00+00:00"
    );
}

#[test]
fn daily_and_midnight_run_at_midnight() {
    for expr in ["@daily", "@midnight"] {
        assert_eq!(
            next(expr, "2026-11-02T00:00:00Z", Shanghai),
            "2026-11-02T16:00:00+00:00",
            "{expr}"
        );
    }
}

#[test]
fn hourly_runs_on_the_hour() {
    assert_eq!(
        next("@hourly", "2026-11-02T00:10:00Z", Shanghai),
        "2026-11-02T01:00:00+00:00"
    );
}

#[test]
fn a_day_that_no_month_of_the_expression_has_is_refused_at_the_day() {
    let err = CronSpec::parse("0 0 30 2 *").unwrap_err();
    assert_eq!(err.at, 4);
    assert_eq!(
        err.message,
        "day of month 30 never comes in month 2, so this never runs"
    );
    assert!(CronSpec::parse("0 0 31 APR,JUN *").is_err());
}

#[test]
fn a_day_that_some_month_of_the_expression_has_is_accepted() {
    assert!(CronSpec::parse("0 0 29 2 *").is_ok());
    assert!(CronSpec::parse("0 0 31 4-5 *").is_ok());
    assert!(CronSpec::parse("0 0 30-31 2,3 *").is_ok());
}

#[test]
fn a_missing_day_with_a_restricted_weekday_still_runs_on_that_weekday() {
    // Either day field may match: the Mondays of February.
    assert!(CronSpec::parse("0 0 30 2 Mon").is_ok());
}
