//! Tickets (SPEC §2.5): what `escalate` opens and the SLA ladder it climbs.
//!
//! A ticket is `open` at level 1 of its policy. Each level but the last has a `within`:
//! if the ticket is still open when it runs out, the ticket climbs to the next level
//! (whose people are then notified). Acknowledging stops the climb; resolving ends the
//! ticket. `open → acked → resolved`, or `open → resolved`; never backwards.
//!
//! Pure: the caller supplies the time, keeps the SLA timer (the deadline returned by
//! [`open`] and [`climb`]) and sends the notifications for the level reached.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::rules::{EscalationLevel, EscalationPolicy, Severity};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// `T-<number>`, what operators and the API use.
    pub id: String,
    /// Sequential from 1; the store's key.
    pub number: u64,
    pub member: String,
    /// The escalation policy's id.
    pub policy: String,
    #[serde(with = "severity")]
    pub severity: Severity,
    pub summary: String,
    pub status: TicketStatus,
    /// The level reached, 1-based: `levels[level - 1]` of the policy was notified last.
    pub level: usize,
    pub opened_at: DateTime<Utc>,
    /// Every level reached and when, level 1 (at opening) first.
    pub levels: Vec<LevelReached>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_note: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    Open,
    Acked,
    Resolved,
}

impl TicketStatus {
    /// As written in output and in `GET /v1/tickets?status=`.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Acked => "acked",
            TicketStatus::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<TicketStatus> {
        match text {
            "open" => Some(TicketStatus::Open),
            "acked" => Some(TicketStatus::Acked),
            "resolved" => Some(TicketStatus::Resolved),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelReached {
    pub level: usize,
    pub at: DateTime<Utc>,
}

/// What an SLA deadline did to a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Climb {
    /// The ticket climbed to `level`; notify it. `next_deadline` is when it climbs
    /// again if still open (`None` at the last level).
    Notified {
        level: usize,
        next_deadline: Option<DateTime<Utc>>,
    },
    /// Acknowledged or resolved meanwhile: nothing to do.
    AlreadyHandled,
    /// Already at the policy's last level: nowhere to climb.
    AtTop,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("ticket {id} is already acknowledged")]
    AlreadyAcked { id: String },
    #[error("ticket {id} is already resolved")]
    AlreadyResolved { id: String },
    #[error("no ticket {id}")]
    NotFound { id: String },
    #[error("\"{text}\" is not a ticket id (expected T-<number>, e.g. T-12)")]
    InvalidId { text: String },
}

/// `T-<number>`.
pub fn format_id(number: u64) -> String {
    format!("T-{number}")
}

/// The number in a ticket id: `"T-12"` → `Some(12)`. Only the exact form [`format_id`]
/// writes is accepted (no `t-12`, `T-012` or `T-0`), so one ticket has one id.
pub fn parse_id(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("T-")?;
    let number: u64 = digits.parse().ok()?;
    (number > 0 && format_id(number) == text).then_some(number)
}

/// Opens ticket `number` at level 1 of `policy`. Returns it with the instant it
/// climbs if nobody acknowledges it by then (`None` for a one-level policy).
pub fn open(
    number: u64,
    member: &str,
    policy: &EscalationPolicy,
    severity: Severity,
    summary: &str,
    now: DateTime<Utc>,
) -> (Ticket, Option<DateTime<Utc>>) {
    let ticket = Ticket {
        id: format_id(number),
        number,
        member: member.to_string(),
        policy: policy.id.clone(),
        severity,
        summary: summary.to_string(),
        status: TicketStatus::Open,
        level: 1,
        opened_at: now,
        levels: vec![LevelReached { level: 1, at: now }],
        acked_at: None,
        acked_by: None,
        acked_note: None,
        resolved_at: None,
        resolved_by: None,
        resolved_note: None,
    };
    let deadline = deadline(policy, 1, now);
    (ticket, deadline)
}

/// The level of `policy` the ticket has reached: whom to notify. `None` when the
/// policy no longer has that level (shortened by a reload).
pub fn current_level<'p>(
    ticket: &Ticket,
    policy: &'p EscalationPolicy,
) -> Option<&'p EscalationLevel> {
    ticket
        .level
        .checked_sub(1)
        .and_then(|i| policy.levels.get(i))
}

/// The SLA deadline of the ticket's level ran out: climb one level if still open.
pub fn climb(ticket: &mut Ticket, policy: &EscalationPolicy, now: DateTime<Utc>) -> Climb {
    if ticket.status != TicketStatus::Open {
        return Climb::AlreadyHandled;
    }
    if ticket.level >= policy.levels.len() {
        return Climb::AtTop;
    }
    ticket.level += 1;
    ticket.levels.push(LevelReached {
        level: ticket.level,
        at: now,
    });
    Climb::Notified {
        level: ticket.level,
        next_deadline: deadline(policy, ticket.level, now),
    }
}

/// Acknowledges an open ticket: it stops climbing.
pub fn ack(
    ticket: &mut Ticket,
    by: Option<&str>,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), TicketError> {
    match ticket.status {
        TicketStatus::Open => {}
        TicketStatus::Acked => {
            return Err(TicketError::AlreadyAcked {
                id: ticket.id.clone(),
            })
        }
        TicketStatus::Resolved => {
            return Err(TicketError::AlreadyResolved {
                id: ticket.id.clone(),
            })
        }
    }
    ticket.status = TicketStatus::Acked;
    ticket.acked_at = Some(now);
    ticket.acked_by = by.map(str::to_string);
    ticket.acked_note = note.map(str::to_string);
    Ok(())
}

/// Resolves an open or acknowledged ticket.
pub fn resolve(
    ticket: &mut Ticket,
    by: Option<&str>,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), TicketError> {
    if ticket.status == TicketStatus::Resolved {
        return Err(TicketError::AlreadyResolved {
            id: ticket.id.clone(),
        });
    }
    ticket.status = TicketStatus::Resolved;
    ticket.resolved_at = Some(now);
    ticket.resolved_by = by.map(str::to_string);
    ticket.resolved_note = note.map(str::to_string);
    Ok(())
}

/// When a ticket that reached `level` at `now` climbs again.
fn deadline(policy: &EscalationPolicy, level: usize, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let within = policy.levels.get(level.checked_sub(1)?)?.within?;
    now.checked_add_signed(within)
}

/// `low` / `normal` / `high`, as in rule files.
mod severity {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::rules::Severity;

    pub fn serialize<S: Serializer>(severity: &Severity, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(severity.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Severity, D::Error> {
        let text = String::deserialize(d)?;
        Severity::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown severity \"{text}\" (expected low, normal or high)"
            ))
        })
    }
}

#[cfg(test)]
mod tests;
