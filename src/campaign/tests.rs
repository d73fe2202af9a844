use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Asia::Shanghai;
use chrono_tz::Tz;

use super::*;

mod dst;
use crate::cronspec::CronSpec;
use crate::rules::model::{Campaign, Phase, PhaseStart, SourcePos};

pub(super) fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn local(text: &str) -> NaiveDateTime {
    text.parse().unwrap()
}

/// A phase from its rule-file form: an absolute local time or a cron expression.
pub(super) fn phase(name: &str, start: &str) -> Phase {
    let start = match start.parse::<NaiveDateTime>() {
        Ok(at) => PhaseStart::At(at),
        Err(_) => PhaseStart::Cron(CronSpec::parse(start).unwrap()),
    };
    Phase {
        name: name.to_string(),
        start,
    }
}

pub(super) fn campaign(id: &str, zone: Tz, phases: Vec<Phase>, end: Option<&str>) -> Campaign {
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

pub(super) fn named(phase: Option<PhaseNow>) -> Option<String> {
    phase.map(|p| p.name)
}

pub(super) fn listed(found: Vec<Transition>) -> Vec<(String, Option<String>)> {
    found
        .into_iter()
        .map(|t| (t.at.to_rfc3339(), t.phase))
        .collect()
}

pub(super) fn entering(at: &str, phase: &str) -> (String, Option<String>) {
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
