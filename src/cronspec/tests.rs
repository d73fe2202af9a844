use chrono::{DateTime, Utc};
use chrono_tz::America::New_York;
use chrono_tz::Asia::Shanghai;

use super::CronSpec;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn next(expr: &str, after: &str, zone: chrono_tz::Tz) -> String {
    CronSpec::parse(expr)
        .unwrap()
        .next_after(utc(after), zone)
        .unwrap()
        .to_rfc3339()
}

fn all(expr: &str, after: &str, up_to: &str, zone: chrono_tz::Tz) -> Vec<String> {
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
fn too_few_or_too_many_fields_are_refused_with_the_count() {
    let err = CronSpec::parse("0 9 * *").unwrap_err();
    assert!(err.contains("has 4 fields"), "{err}");
    assert!(
        err.contains("write 5 (minute hour day month weekday)"),
        "{err}"
    );
    assert!(CronSpec::parse("0 0 9 * * * 2027 1")
        .unwrap_err()
        .contains("has 8 fields"));
    assert!(CronSpec::parse("").unwrap_err().contains("has 0 fields"));
}

#[test]
fn other_errors_name_the_expression() {
    let err = CronSpec::parse("61 * * * *").unwrap_err();
    assert!(err.starts_with("cron expression \"61 * * * *\""), "{err}");
    let err = CronSpec::parse("0 9 * * Funday").unwrap_err();
    assert!(err.contains("Funday"), "{err}");
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
fn a_time_skipped_by_spring_forward_fires_when_the_gap_ends() {
    // 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT (07:00Z).
    assert_eq!(
        all(
            "30 2 * * *",
            "2026-03-07T12:00:00Z",
            "2026-03-09T12:00:00Z",
            New_York
        ),
        ["2026-03-08T07:00:00+00:00", "2026-03-09T06:30:00+00:00"]
    );
}

#[test]
fn times_inside_a_gap_fire_once_at_its_end() {
    assert_eq!(
        all(
            "*/15 * * * *",
            "2026-03-08T06:50:00Z",
            "2026-03-08T07:20:00Z",
            New_York
        ),
        ["2026-03-08T07:00:00+00:00", "2026-03-08T07:15:00+00:00"]
    );
}

#[test]
fn a_time_repeated_by_fall_back_fires_once_the_first_time() {
    // 2026-11-01 in New York: 02:00 EDT falls back to 01:00 EST; 01:30 happens at
    // 05:30Z and again at 06:30Z.
    assert_eq!(
        all(
            "30 1 * * *",
            "2026-10-31T12:00:00Z",
            "2026-11-02T12:00:00Z",
            New_York
        ),
        ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"]
    );
}

#[test]
fn during_the_repeated_hour_the_repeat_does_not_fire() {
    assert_eq!(
        next("30 1 * * *", "2026-11-01T06:10:00Z", New_York),
        "2026-11-02T06:30:00+00:00"
    );
}

#[test]
fn hourly_jobs_fire_once_per_local_hour_across_fall_back() {
    assert_eq!(
        all(
            "0 * * * *",
            "2026-11-01T04:30:00Z",
            "2026-11-01T07:30:00Z",
            New_York
        ),
        ["2026-11-01T05:00:00+00:00", "2026-11-01T07:00:00+00:00"]
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
fn the_latest_occurrence_in_a_repeated_hour_is_its_first_pass() {
    let daily = CronSpec::parse("30 1 * * *").unwrap();
    assert_eq!(
        daily.latest_at_or_before(utc("2026-11-01T06:40:00Z"), New_York),
        Some(utc("2026-11-01T05:30:00Z"))
    );
    assert_eq!(
        daily.latest_at_or_before(utc("2026-11-01T05:20:00Z"), New_York),
        Some(utc("2026-10-31T05:30:00Z"))
    );
}

#[test]
fn the_latest_occurrence_of_a_skipped_time_is_the_end_of_its_gap() {
    let daily = CronSpec::parse("30 2 * * *").unwrap();
    assert_eq!(
        daily.latest_at_or_before(utc("2026-03-08T07:00:00Z"), New_York),
        Some(utc("2026-03-08T07:00:00Z"))
    );
    assert_eq!(
        daily.latest_at_or_before(utc("2026-03-08T06:59:59Z"), New_York),
        Some(utc("2026-03-07T07:30:00Z"))
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
