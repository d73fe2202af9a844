//! Phases across DST changes (SPEC §2.7): absolute starts and fixed-time cron starts
//! skipped by a gap start when it ends and start once in a repeated hour; wildcard and
//! step cron starts happen only at times that exist, and again in a repeated hour.

use chrono::DateTime;
use chrono_tz::America::New_York;
use chrono_tz::Europe::Berlin;
use chrono_tz::Tz;

use super::{campaign, entering, listed, local, phase, utc};
use crate::campaign::{local_to_utc, phase_at, transitions, Campaign, PhaseNow};

#[test]
fn a_local_time_in_a_spring_forward_gap_means_the_end_of_the_gap() {
    // Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z).
    assert_eq!(
        local_to_utc(local("2026-03-29T02:30:00"), Berlin),
        utc("2026-03-29T01:00:00Z")
    );
    // New York 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z).
    assert_eq!(
        local_to_utc(local("2026-03-08T02:00:00"), New_York),
        utc("2026-03-08T07:00:00Z")
    );
}

#[test]
fn a_local_time_repeated_by_fall_back_means_its_first_occurrence() {
    // Berlin 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 CEST = 00:30Z.
    assert_eq!(
        local_to_utc(local("2026-10-25T02:30:00"), Berlin),
        utc("2026-10-25T00:30:00Z")
    );
}

#[test]
fn an_absolute_phase_start_inside_a_gap_or_an_overlap_follows_the_same_rules() {
    let c = campaign(
        "dst",
        New_York,
        vec![
            phase("spring", "2026-03-08T02:30:00"),
            phase("autumn", "2026-11-01T01:30:00"),
        ],
        None,
    );
    assert_eq!(
        listed(transitions(
            &c,
            utc("2026-01-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z")
        )),
        [
            entering("2026-03-08T07:00:00Z", "spring"),
            entering("2026-11-01T05:30:00Z", "autumn"),
        ]
    );
}

#[test]
fn a_fixed_time_cron_phase_in_a_berlin_gap_starts_when_the_gap_ends() {
    let c = campaign(
        "night",
        Berlin,
        vec![phase("night", "30 2 * * *"), phase("day", "0 12 * * *")],
        None,
    );
    assert_eq!(
        listed(transitions(
            &c,
            utc("2026-03-28T12:00:00Z"),
            utc("2026-03-29T12:00:00Z")
        )),
        [
            entering("2026-03-29T01:00:00Z", "night"),
            entering("2026-03-29T10:00:00Z", "day"),
        ]
    );
}

#[test]
fn a_fixed_time_cron_phase_in_a_repeated_hour_starts_once() {
    let c = campaign(
        "night",
        Berlin,
        vec![phase("night", "30 2 * * *"), phase("day", "0 12 * * *")],
        None,
    );
    assert_eq!(
        listed(transitions(
            &c,
            utc("2026-10-24T12:00:00Z"),
            utc("2026-10-25T12:00:00Z")
        )),
        [
            entering("2026-10-25T00:30:00Z", "night"),
            entering("2026-10-25T11:00:00Z", "day"),
        ]
    );
    assert_eq!(
        phase_at(&c, utc("2026-10-25T01:45:00Z")).map(|p| p.since),
        Some(utc("2026-10-25T00:30:00Z"))
    );
}

/// Every two hours "on", half an hour later "off".
fn pulse(zone: Tz) -> Campaign {
    campaign(
        "pulse",
        zone,
        vec![phase("on", "0 */2 * * *"), phase("off", "30 */2 * * *")],
        None,
    )
}

#[test]
fn a_stepped_cron_phase_starts_again_in_a_repeated_hour() {
    // Berlin 2026-10-25: 02:00–02:59 happens at 00:00Z (CEST) and again at 01:00Z (CET).
    assert_eq!(
        listed(transitions(
            &pulse(Berlin),
            utc("2026-10-24T23:00:00Z"),
            utc("2026-10-25T02:00:00Z")
        )),
        [
            entering("2026-10-25T00:00:00Z", "on"),
            entering("2026-10-25T00:30:00Z", "off"),
            entering("2026-10-25T01:00:00Z", "on"),
            entering("2026-10-25T01:30:00Z", "off"),
        ]
    );
    assert_eq!(
        phase_at(&pulse(Berlin), utc("2026-10-25T01:10:00Z")),
        Some(PhaseNow {
            name: "on".to_string(),
            since: utc("2026-10-25T01:00:00Z")
        })
    );
}

#[test]
fn a_stepped_cron_phase_does_not_start_in_a_skipped_hour() {
    // New York 2026-03-08: 00:00 EST on, 00:30 off, 02:00 and 02:30 do not exist, 04:00
    // EDT on.
    assert_eq!(
        listed(transitions(
            &pulse(New_York),
            utc("2026-03-08T04:00:00Z"),
            utc("2026-03-08T08:10:00Z")
        )),
        [
            entering("2026-03-08T05:00:00Z", "on"),
            entering("2026-03-08T05:30:00Z", "off"),
            entering("2026-03-08T08:00:00Z", "on"),
        ]
    );
    assert_eq!(
        phase_at(&pulse(New_York), utc("2026-03-08T07:30:00Z")).map(|p| p.since),
        Some(utc("2026-03-08T05:30:00Z"))
    );
}

#[test]
fn hourly_cron_phases_start_in_both_passes_of_new_yorks_repeated_hour() {
    // 2026-11-01: 01:00–01:59 happens at 05:00Z (EDT) and again at 06:00Z (EST).
    let c = campaign(
        "tick",
        New_York,
        vec![phase("top", "0 * * * *"), phase("half", "30 * * * *")],
        None,
    );
    assert_eq!(
        listed(transitions(
            &c,
            utc("2026-11-01T04:50:00Z"),
            utc("2026-11-01T06:50:00Z")
        )),
        [
            entering("2026-11-01T05:00:00Z", "top"),
            entering("2026-11-01T05:30:00Z", "half"),
            entering("2026-11-01T06:00:00Z", "top"),
            entering("2026-11-01T06:30:00Z", "half"),
        ]
    );
    assert_eq!(
        phase_at(&c, utc("2026-11-01T06:10:00Z")).map(|p| p.since),
        Some(utc("2026-11-01T06:00:00Z"))
    );
}

proptest::proptest! {
    /// Catch-up and live running agree: the current phase is always the one entered by
    /// the latest transition, across New York's DST changes and at any second of 2026.
    #[test]
    fn the_current_phase_is_the_one_the_latest_transition_entered(
        secs in proptest::prop_oneof![
            utc("2026-01-03T00:00:00Z").timestamp()..utc("2026-12-31T00:00:00Z").timestamp(),
            utc("2026-03-07T00:00:00Z").timestamp()..utc("2026-03-10T00:00:00Z").timestamp(),
            utc("2026-10-31T00:00:00Z").timestamp()..utc("2026-11-03T00:00:00Z").timestamp(),
        ]
    ) {
        let c = campaign(
            "dst-daily",
            New_York,
            vec![phase("a", "30 1 * * *"), phase("b", "30 2 * * *"), phase("c", "0 3 * * Sun")],
            None,
        );
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        let last = transitions(&c, t - chrono::Duration::days(2), t).pop().unwrap();
        proptest::prop_assert_eq!(
            phase_at(&c, t),
            Some(PhaseNow { name: last.phase.unwrap(), since: last.at })
        );
    }
}

proptest::proptest! {
    /// The same agreement for wildcard and step phases, which run twice in a repeated
    /// hour and not at all in a skipped one, across Berlin's changes in 2026.
    #[test]
    fn the_current_wildcard_phase_is_the_one_the_latest_transition_entered(
        secs in proptest::prop_oneof![
            utc("2026-03-28T00:00:00Z").timestamp()..utc("2026-03-31T00:00:00Z").timestamp(),
            utc("2026-10-24T00:00:00Z").timestamp()..utc("2026-10-27T00:00:00Z").timestamp(),
        ]
    ) {
        let c = campaign(
            "dst-wild",
            Berlin,
            vec![phase("a", "20 * * * *"), phase("b", "*/30 2 * * *"), phase("c", "50 */3 * * *")],
            None,
        );
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        let last = transitions(&c, t - chrono::Duration::days(1), t).pop().unwrap();
        proptest::prop_assert_eq!(
            phase_at(&c, t),
            Some(PhaseNow { name: last.phase.unwrap(), since: last.at })
        );
    }
}
