//! SPEC §2.7: at DST changes a fixed-time job runs once when a gap ends and once in a
//! repeated hour; a wildcard or step job runs only at times that exist, and again in
//! a repeated hour.
//!
//! 2026 in New York: 8 March 02:00 EST jumps to 03:00 EDT (07:00Z); 1 November 02:00
//! EDT falls back to 01:00 EST (06:00Z), so 01:00–01:59 happens twice. In Berlin:
//! 29 March 02:00 CET jumps to 03:00 CEST (01:00Z); 25 October 03:00 CEST falls back
//! to 02:00 CET (01:00Z), so 02:00–02:59 happens twice.

use chrono_tz::America::New_York;
use chrono_tz::Europe::Berlin;

use super::{all, next, utc};
use crate::cronspec::CronSpec;

// Fixed-time jobs.

#[test]
fn a_fixed_time_skipped_by_spring_forward_runs_when_the_gap_ends() {
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
fn a_fixed_time_skipped_in_berlin_runs_when_the_gap_ends() {
    assert_eq!(
        all(
            "30 2 * * *",
            "2026-03-28T12:00:00Z",
            "2026-03-30T12:00:00Z",
            Berlin
        ),
        ["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]
    );
}

#[test]
fn several_fixed_times_inside_one_gap_run_once_at_its_end() {
    assert_eq!(
        all(
            "0,30 2 * * *",
            "2026-03-08T06:00:00Z",
            "2026-03-08T12:00:00Z",
            New_York
        ),
        ["2026-03-08T07:00:00+00:00"]
    );
}

#[test]
fn a_fixed_time_repeated_by_fall_back_runs_once_the_first_time() {
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
fn a_fixed_time_repeated_in_berlin_runs_once_the_first_time() {
    assert_eq!(
        all(
            "30 2 * * *",
            "2026-10-24T12:00:00Z",
            "2026-10-26T12:00:00Z",
            Berlin
        ),
        ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
    );
}

#[test]
fn during_the_repeated_hour_a_fixed_time_does_not_run_again() {
    assert_eq!(
        next("30 1 * * *", "2026-11-01T06:10:00Z", New_York),
        "2026-11-02T06:30:00+00:00"
    );
}

#[test]
fn daily_is_a_fixed_time_job() {
    // Havana's midnight spring-forward skips 00:00 on 8 March 2026 (05:00Z is 01:00 CDT).
    assert_eq!(
        next("@daily", "2026-03-07T12:00:00Z", chrono_tz::America::Havana),
        "2026-03-08T05:00:00+00:00"
    );
}

// Wildcard and step jobs.

#[test]
fn a_wildcard_minute_job_does_not_run_in_a_gap() {
    assert_eq!(
        all(
            "*/15 * * * *",
            "2026-03-08T06:40:00Z",
            "2026-03-08T07:20:00Z",
            New_York
        ),
        [
            "2026-03-08T06:45:00+00:00", // 01:45 EST
            "2026-03-08T07:00:00+00:00", // 03:00 EDT
            "2026-03-08T07:15:00+00:00"
        ]
    );
}

#[test]
fn a_stepped_job_whose_hour_is_skipped_does_not_run_that_day() {
    assert_eq!(
        all(
            "*/15 2 * * *",
            "2026-03-08T00:00:00Z",
            "2026-03-09T00:00:00Z",
            New_York
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        next("*/15 2 * * *", "2026-03-08T00:00:00Z", New_York),
        "2026-03-09T06:00:00+00:00"
    );
}

#[test]
fn an_hour_step_skips_the_hour_a_gap_removes() {
    // 00:00 EST, then 02:00 does not exist, then 04:00 EDT.
    assert_eq!(
        all(
            "0 */2 * * *",
            "2026-03-08T04:00:00Z",
            "2026-03-08T09:00:00Z",
            New_York
        ),
        ["2026-03-08T05:00:00+00:00", "2026-03-08T08:00:00+00:00"]
    );
}

#[test]
fn a_wildcard_hour_job_does_not_run_in_a_berlin_gap() {
    assert_eq!(
        all(
            "30 * * * *",
            "2026-03-29T00:00:00Z",
            "2026-03-29T02:00:00Z",
            Berlin
        ),
        ["2026-03-29T00:30:00+00:00", "2026-03-29T01:30:00+00:00"]
    );
}

#[test]
fn a_wildcard_hour_job_runs_again_in_a_repeated_hour() {
    // 00:30 and 01:30 CEST, 02:30 CEST, 02:30 CET again, 03:30 CET.
    assert_eq!(
        all(
            "30 * * * *",
            "2026-10-24T22:00:00Z",
            "2026-10-25T03:00:00Z",
            Berlin
        ),
        [
            "2026-10-24T22:30:00+00:00",
            "2026-10-24T23:30:00+00:00",
            "2026-10-25T00:30:00+00:00",
            "2026-10-25T01:30:00+00:00",
            "2026-10-25T02:30:00+00:00"
        ]
    );
}

#[test]
fn a_minute_step_in_a_fixed_hour_runs_through_the_repeated_hour_twice() {
    assert_eq!(
        all(
            "*/15 1 * * *",
            "2026-11-01T04:00:00Z",
            "2026-11-01T08:00:00Z",
            New_York
        ),
        [
            "2026-11-01T05:00:00+00:00",
            "2026-11-01T05:15:00+00:00",
            "2026-11-01T05:30:00+00:00",
            "2026-11-01T05:45:00+00:00",
            "2026-11-01T06:00:00+00:00",
            "2026-11-01T06:15:00+00:00",
            "2026-11-01T06:30:00+00:00",
            "2026-11-01T06:45:00+00:00"
        ]
    );
}

#[test]
fn an_hour_step_runs_twice_at_a_repeated_berlin_hour() {
    // 00:00 CEST, 02:00 CEST, 02:00 CET, 04:00 CET.
    assert_eq!(
        all(
            "0 */2 * * *",
            "2026-10-24T21:00:00Z",
            "2026-10-25T04:00:00Z",
            Berlin
        ),
        [
            "2026-10-24T22:00:00+00:00",
            "2026-10-25T00:00:00+00:00",
            "2026-10-25T01:00:00+00:00",
            "2026-10-25T03:00:00+00:00"
        ]
    );
}

#[test]
fn hourly_runs_at_every_hour_the_clock_shows_including_the_repeat() {
    assert_eq!(
        all(
            "@hourly",
            "2026-11-01T04:30:00Z",
            "2026-11-01T07:30:00Z",
            New_York
        ),
        [
            "2026-11-01T05:00:00+00:00", // 01:00 EDT
            "2026-11-01T06:00:00+00:00", // 01:00 EST
            "2026-11-01T07:00:00+00:00"  // 02:00 EST
        ]
    );
}

#[test]
fn inside_the_repeated_hour_the_next_run_of_a_wildcard_job_is_its_second_pass() {
    assert_eq!(
        next("30 * * * *", "2026-11-01T05:30:00Z", New_York),
        "2026-11-01T06:30:00+00:00"
    );
    assert_eq!(
        next("30 * * * *", "2026-11-01T06:10:00Z", New_York),
        "2026-11-01T06:30:00+00:00"
    );
}

// The latest occurrence, which campaigns use for their current phase.

#[test]
fn the_latest_fixed_time_in_a_repeated_hour_is_its_first_pass() {
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
fn the_latest_skipped_fixed_time_is_the_end_of_its_gap() {
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
fn the_latest_wildcard_run_in_a_repeated_hour_is_its_second_pass_once_passed() {
    let half_past = CronSpec::parse("30 * * * *").unwrap();
    assert_eq!(
        half_past.latest_at_or_before(utc("2026-11-01T06:40:00Z"), New_York),
        Some(utc("2026-11-01T06:30:00Z"))
    );
    assert_eq!(
        half_past.latest_at_or_before(utc("2026-11-01T06:20:00Z"), New_York),
        Some(utc("2026-11-01T05:30:00Z"))
    );
}

#[test]
fn the_latest_run_of_a_stepped_job_skips_its_lost_hour() {
    let stepped = CronSpec::parse("*/15 2 * * *").unwrap();
    assert_eq!(
        stepped.latest_at_or_before(utc("2026-03-08T12:00:00Z"), New_York),
        Some(utc("2026-03-07T07:45:00Z"))
    );
}
