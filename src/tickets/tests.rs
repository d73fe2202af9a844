use std::sync::Arc;

use chrono::Duration;

use super::*;
use crate::rules::SourcePos;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn level(to: &str, within_hours: Option<i64>) -> EscalationLevel {
    EscalationLevel {
        channel: "email".to_string(),
        to: to.to_string(),
        within: within_hours.map(Duration::hours),
        template: None,
    }
}

/// support (2h) → lead (4h) → manager.
fn support() -> EscalationPolicy {
    EscalationPolicy {
        id: "support".to_string(),
        levels: vec![
            level("support-team", Some(2)),
            level("lead@shop.example", Some(4)),
            level("manager@shop.example", None),
        ],
        at: SourcePos {
            file: Arc::from("rules/escalations.yaml"),
            line: 2,
            col: 5,
        },
    }
}

fn opened() -> Ticket {
    let now = utc("2026-11-10T10:00:00Z");
    open(3, "m-7", &support(), Severity::High, "rating 1", now).0
}

#[test]
fn a_new_ticket_is_open_at_level_one_with_the_first_sla_deadline() {
    let now = utc("2026-11-10T10:00:00Z");
    let (ticket, deadline) = open(3, "m-7", &support(), Severity::High, "rating 1", now);
    assert_eq!(ticket.id, "T-3");
    assert_eq!(ticket.status, TicketStatus::Open);
    assert_eq!(ticket.level, 1);
    assert_eq!(ticket.levels, vec![LevelReached { level: 1, at: now }]);
    assert_eq!(deadline, Some(utc("2026-11-10T12:00:00Z")));
    assert_eq!(
        current_level(&ticket, &support()).unwrap().to,
        "support-team"
    );
}

#[test]
fn an_unacknowledged_ticket_climbs_every_level_and_stops_at_the_top() {
    let policy = support();
    let mut ticket = opened();
    let second = utc("2026-11-10T12:00:00Z");
    let third = utc("2026-11-10T16:00:00Z");
    assert_eq!(
        climb(&mut ticket, &policy, second),
        Climb::Notified {
            level: 2,
            next_deadline: Some(third)
        }
    );
    assert_eq!(
        climb(&mut ticket, &policy, third),
        Climb::Notified {
            level: 3,
            next_deadline: None
        }
    );
    assert_eq!(
        climb(&mut ticket, &policy, utc("2026-11-11T00:00:00Z")),
        Climb::AtTop
    );
    assert_eq!(ticket.level, 3);
    let reached: Vec<(usize, DateTime<Utc>)> =
        ticket.levels.iter().map(|l| (l.level, l.at)).collect();
    assert_eq!(
        reached,
        vec![(1, utc("2026-11-10T10:00:00Z")), (2, second), (3, third)]
    );
    assert_eq!(
        current_level(&ticket, &policy).unwrap().to,
        "manager@shop.example"
    );
}

#[test]
fn acknowledging_at_level_one_stops_the_climb() {
    let mut ticket = opened();
    ack(
        &mut ticket,
        Some("amy"),
        Some("on it"),
        utc("2026-11-10T11:00:00Z"),
    )
    .unwrap();
    assert_eq!(
        climb(&mut ticket, &support(), utc("2026-11-10T12:00:00Z")),
        Climb::AlreadyHandled
    );
    assert_eq!(ticket.level, 1);
    assert_eq!(ticket.status, TicketStatus::Acked);
    assert_eq!(ticket.acked_by.as_deref(), Some("amy"));
    assert_eq!(ticket.acked_note.as_deref(), Some("on it"));
    assert_eq!(ticket.acked_at, Some(utc("2026-11-10T11:00:00Z")));
}

#[test]
fn an_acknowledged_ticket_can_be_resolved() {
    let mut ticket = opened();
    ack(&mut ticket, None, None, utc("2026-11-10T11:00:00Z")).unwrap();
    resolve(
        &mut ticket,
        Some("amy"),
        Some("refunded"),
        utc("2026-11-10T15:00:00Z"),
    )
    .unwrap();
    assert_eq!(ticket.status, TicketStatus::Resolved);
    assert_eq!(ticket.resolved_at, Some(utc("2026-11-10T15:00:00Z")));
    assert_eq!(ticket.resolved_note.as_deref(), Some("refunded"));
}

#[test]
fn an_open_ticket_can_be_resolved_without_acknowledging_it() {
    let mut ticket = opened();
    resolve(&mut ticket, None, None, utc("2026-11-10T11:00:00Z")).unwrap();
    assert_eq!(ticket.status, TicketStatus::Resolved);
    assert_eq!(ticket.acked_at, None);
    assert_eq!(
        climb(&mut ticket, &support(), utc("2026-11-10T12:00:00Z")),
        Climb::AlreadyHandled
    );
}

#[test]
fn acknowledging_a_resolved_ticket_is_an_error_and_changes_nothing() {
    let mut ticket = opened();
    resolve(&mut ticket, None, None, utc("2026-11-10T11:00:00Z")).unwrap();
    let before = ticket.clone();
    let err = ack(&mut ticket, None, None, utc("2026-11-10T12:00:00Z")).unwrap_err();
    assert_eq!(err.to_string(), "ticket T-3 is already resolved");
    assert_eq!(ticket, before);
}

#[test]
fn acknowledging_twice_is_an_error() {
    let mut ticket = opened();
    ack(&mut ticket, Some("amy"), None, utc("2026-11-10T11:00:00Z")).unwrap();
    let err = ack(&mut ticket, Some("bo"), None, utc("2026-11-10T11:30:00Z")).unwrap_err();
    assert_eq!(err.to_string(), "ticket T-3 is already acknowledged");
    assert_eq!(ticket.acked_by.as_deref(), Some("amy"));
}

#[test]
fn resolving_twice_is_an_error() {
    let mut ticket = opened();
    resolve(&mut ticket, None, None, utc("2026-11-10T11:00:00Z")).unwrap();
    let err = resolve(&mut ticket, None, None, utc("2026-11-10T12:00:00Z")).unwrap_err();
    assert_eq!(
        err,
        TicketError::AlreadyResolved {
            id: "T-3".to_string()
        }
    );
}

#[test]
fn a_one_level_policy_has_no_deadline() {
    let mut policy = support();
    policy.levels.truncate(1);
    policy.levels[0].within = None;
    let (mut ticket, deadline) = open(
        1,
        "m-7",
        &policy,
        Severity::Low,
        "x",
        utc("2026-11-10T10:00:00Z"),
    );
    assert_eq!(deadline, None);
    assert_eq!(
        climb(&mut ticket, &policy, utc("2026-11-10T12:00:00Z")),
        Climb::AtTop
    );
}

#[test]
fn ticket_ids_parse_only_in_their_exact_form() {
    assert_eq!(parse_id("T-12"), Some(12));
    assert_eq!(parse_id("T-1"), Some(1));
    for bad in ["T-0", "T-012", "t-12", "T-", "T-1x", "12", "T--1", "T-+1"] {
        assert_eq!(parse_id(bad), None, "{bad}");
    }
}

#[test]
fn a_ticket_serializes_in_the_shape_sim_prints() {
    let mut ticket = opened();
    climb(&mut ticket, &support(), utc("2026-11-10T12:00:00Z"));
    let json = serde_json::to_value(&ticket).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": "T-3", "number": 3, "member": "m-7", "policy": "support",
            "severity": "high", "summary": "rating 1", "status": "open", "level": 2,
            "opened_at": "2026-11-10T10:00:00Z",
            "levels": [{"level": 1, "at": "2026-11-10T10:00:00Z"},
                       {"level": 2, "at": "2026-11-10T12:00:00Z"}]
        })
    );
    let back: Ticket = serde_json::from_value(json).unwrap();
    assert_eq!(back, ticket);
}

#[test]
fn an_acknowledged_ticket_serializes_its_acknowledgement() {
    let mut ticket = opened();
    ack(
        &mut ticket,
        Some("amy"),
        Some("on it"),
        utc("2026-11-10T11:00:00Z"),
    )
    .unwrap();
    let json = serde_json::to_value(&ticket).unwrap();
    assert_eq!(json["status"], "acked");
    assert_eq!(json["acked_at"], "2026-11-10T11:00:00Z");
    assert_eq!(json["acked_by"], "amy");
    assert_eq!(json["acked_note"], "on it");
}
