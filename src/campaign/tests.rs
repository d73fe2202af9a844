use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::America::New_York;
use chrono_tz::Asia::Shanghai;
use chrono_tz::Europe::Berlin;
use chrono_tz::Tz;

use super::*;
use crate::cronspec::CronSpec;
use crate::rules::model::{Campaign, Phase, PhaseStart, SourcePos};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn local(text: &str) -> NaiveDateTime {
    text.parse().unwrap()
}

/// A phase from its rule-file form: an absolute local time or a cron expression.
fn phase(name: &str, start: &str) -> Phase {
    let start = match start.parse::<NaiveDateTime>() {
        Ok(at) => PhaseStart::At(at),
        Err(_) => PhaseStart::Cron(CronSpec::parse(start).unwrap()),
    };
    Phase {
        name: name.to_string(),
        start,
    }
}

fn campaign(id: &str, zone: Tz, phases: Vec<Phase>, end: Option<&str>) -> Campaign {
    Campaign {
        id: id.to_string(),
        timezone: zone,
        phases,
        end: end.map(local),
        budget_points: None,
        at: SourcePos {
            file: Arc::from("campaigns.yaml"),
            line: 1,
            col: 1,
        },
    }
}

fn double11() -> Campaign {
    campaign(
        "double11",
        Shanghai,
        vec![
            phase("warmup", "2026-11-01T00:00:00"),
            phase("peak", "2026-11-10T20:00:00"),
            phase("wrapup", "2026-11-12T00:00:00"),
        ],
        Some("2026-11-15T00:00:00"),
    )
}

/// 2026-11-04 is a Wednesday, 2026-11-06 a Friday.
fn friday_salon() -> Campaign {
    campaign(
        "friday-salon",
        Shanghai,
        vec![
            phase("warmup", "0 9 * * Wed"),
            phase("live", "0 20 * * Fri"),
            phase("off", "0 22 * * Fri"),
        ],
        None,
    )
}

fn named(phase: Option<PhaseNow>) -> Option<String> {
    phase.map(|p| p.name)
}

fn listed(found: Vec<Transition>) -> Vec<(String, Option<String>)> {
    found
        .into_iter()
        .map(|t| (t.at.to_rfc3339(), t.phase))
        .collect()
}

fn entering(at: &str, phase: &str) -> (String, Option<String>) {
    (utc(at).to_rfc3339(), Some(phase.to_string()))
}

#[test]
fn absolute_phases_start_at_their_local_time_in_the_campaign_zone() {
    assert_eq!(
        listed(transitions(
            &double11(),
            utc("2026-10-01T00:00:00Z"),
            utc("2026-12-01T00:00:00Z")
        )),
        [
            entering("2026-10-31T16:00:00Z", "warmup"),
            entering("2026-11-10T12:00:00Z", "peak"),
            entering("2026-11-11T16:00:00Z", "wrapup"),
            (utc("2026-11-14T16:00:00Z").to_rfc3339(), None),
        ]
    );
}

#[test]
fn no_phase_is_current_before_the_first_start() {
    assert_eq!(phase_at(&double11(), utc("2026-10-31T15:59:59Z")), None);
}

#[test]
fn a_phase_is_current_from_its_start_instant() {
    assert_eq!(
        phase_at(&double11(), utc("2026-11-10T12:00:00Z")),
        Some(PhaseNow {
            name: "peak".to_string(),
            since: utc("2026-11-10T12:00:00Z")
        })
    );
    assert_eq!(
        named(phase_at(&double11(), utc("2026-11-10T11:59:59Z"))).as_deref(),
        Some("warmup")
    );
}

#[test]
fn no_phase_is_current_from_the_end_on() {
    assert_eq!(
        named(phase_at(&double11(), utc("2026-11-14T15:59:59Z"))).as_deref(),
        Some("wrapup")
    );
    assert_eq!(phase_at(&double11(), utc("2026-11-14T16:00:00Z")), None);
    assert_eq!(
        next_transition_after(&double11(), utc("2026-11-14T16:00:00Z")),
        None
    );
}

#[test]
fn the_window_is_open_at_its_start_and_closed_at_its_end() {
    let peak = utc("2026-11-10T12:00:00Z");
    let wrapup = utc("2026-11-11T16:00:00Z");
    assert_eq!(
        listed(transitions(&double11(), peak, wrapup)),
        [entering("2026-11-11T16:00:00Z", "wrapup")]
    );
}

#[test]
fn a_recurring_campaign_is_in_the_phase_that_started_most_recently() {
    let salon = friday_salon();
    let at = |t: &str| named(phase_at(&salon, utc(t)));
    assert_eq!(at("2026-11-04T00:59:00Z").as_deref(), Some("off")); // Wed 08:59, after last Friday
    assert_eq!(at("2026-11-04T01:00:00Z").as_deref(), Some("warmup")); // Wed 09:00
    assert_eq!(at("2026-11-06T11:59:00Z").as_deref(), Some("warmup")); // Fri 19:59
    assert_eq!(at("2026-11-06T12:00:00Z").as_deref(), Some("live")); // Fri 20:00
    assert_eq!(at("2026-11-06T14:00:00Z").as_deref(), Some("off")); // Fri 22:00
    assert_eq!(at("2026-11-10T00:00:00Z").as_deref(), Some("off")); // next Tuesday
}

#[test]
fn a_recurring_campaign_lists_every_occurrence_in_order() {
    assert_eq!(
        listed(transitions(
            &friday_salon(),
            utc("2026-11-02T00:00:00Z"),
            utc("2026-11-16T00:00:00Z")
        )),
        [
            entering("2026-11-04T01:00:00Z", "warmup"),
            entering("2026-11-06T12:00:00Z", "live"),
            entering("2026-11-06T14:00:00Z", "off"),
            entering("2026-11-11T01:00:00Z", "warmup"),
            entering("2026-11-13T12:00:00Z", "live"),
            entering("2026-11-13T14:00:00Z", "off"),
        ]
    );
}

#[test]
fn phases_starting_at_the_same_instant_resolve_to_the_one_written_last() {
    let c = campaign(
        "clash",
        Shanghai,
        vec![
            phase("weekly", "0 9 * * Mon"),
            phase("special", "0 9 2 * *"),
        ],
        None,
    );
    // Monday 2 November 09:00 local is both.
    let clash = utc("2026-11-02T01:00:00Z");
    assert_eq!(named(phase_at(&c, clash)).as_deref(), Some("special"));
    assert_eq!(
        next_transition_after(&c, utc("2026-11-01T00:00:00Z")),
        Some(Transition {
            at: clash,
            phase: Some("special".to_string())
        })
    );
}

#[test]
fn a_campaign_with_absolute_phases_counts_limits_once() {
    assert_eq!(
        cycle_key(&double11(), utc("2026-11-11T00:00:00Z")).as_deref(),
        Some("double11")
    );
}

#[test]
fn a_recurring_campaign_counts_limits_per_cycle_of_its_first_phase() {
    let salon = friday_salon();
    let key = |t: &str| cycle_key(&salon, utc(t));
    assert_eq!(
        key("2026-11-06T13:00:00Z").as_deref(),
        Some("friday-salon@2026-11-04T01:00:00Z")
    );
    assert_eq!(key("2026-11-10T00:00:00Z"), key("2026-11-04T01:00:00Z"));
    assert_eq!(
        key("2026-11-13T13:00:00Z").as_deref(),
        Some("friday-salon@2026-11-11T01:00:00Z")
    );
}

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
