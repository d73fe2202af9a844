//! An operator's manual points adjustment: the built-in event `rally.points`
//! (`POST /v1/members/{id}/points` makes one). Being an event, it is idempotent by its
//! id, journaled and replayed like any other, and `sim` does exactly what the daemon
//! does with it.
//!
//! It is never clipped — no daily cap, no campaign budget: an operator who gives 500
//! points means 500 — and it never takes a balance below zero: a deduction larger than
//! the balance is refused whole, so the operator learns the balance instead of finding
//! a smaller deduction in the ledger. Milestones and tiers react as to any change of
//! points.

use thiserror::Error;

use super::outcome::{LedgerEntry, Name};
use super::run::Run;
use crate::event::Event;
use crate::member::Member;

/// What a ledger entry of an adjustment names as its rule: no rule made it, and no
/// rule id can hold parentheses.
pub const ADJUSTMENT_RULE: &str = "(adjustment)";

/// Why an adjustment changes nothing.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    /// An adjustment is no sign of life: it never creates a member.
    #[error("member: {0:?} is unknown: an adjustment never creates a member")]
    UnknownMember(String),
    #[error("insufficient points: balance {balance}, deduction {deduction}")]
    Insufficient { balance: i64, deduction: i64 },
}

/// The points an adjustment moves (validated with the event: non-zero, bounded).
pub fn adjustment_amount(event: &Event) -> i64 {
    event
        .data
        .get("amount")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_default()
}

/// Whether an adjustment to `member` (`None`: unknown) must be refused. The runner
/// asks before the step, so a refused adjustment is rejected like a bad event: not
/// recorded as seen, not journaled.
pub fn refuse_adjustment(member: Option<&Member>, event: &Event) -> Option<Refusal> {
    let Some(member) = member else {
        return Some(Refusal::UnknownMember(
            event.member.clone().unwrap_or_default(),
        ));
    };
    let amount = adjustment_amount(event);
    (member.points + amount < 0).then(|| Refusal::Insufficient {
        balance: member.points,
        deduction: -amount,
    })
}

impl Run<'_> {
    /// Applies an adjustment the runner accepted. Refused here too (reported, nothing
    /// changed) should a caller skip the runner's check, so a balance can never go
    /// below zero whoever drives the engine.
    pub(super) fn adjust(&mut self, event: &Event) {
        if let Some(refusal) = refuse_adjustment(Some(&self.member), event) {
            self.failures.push(super::RuleFailure {
                rule: ADJUSTMENT_RULE.to_string(),
                member: self.member.id.to_string(),
                at: format!("event {}", event.id),
                error: refusal.to_string(),
                event: Some(event.id.clone()),
                when: self.now(),
            });
            return;
        }
        let amount = adjustment_amount(event);
        self.move_points(amount);
        let balance = self.member.points;
        let operator = event.data_str("operator").unwrap_or_default().to_string();
        self.builtin_note(|_| {
            format!("points adjusted by {operator}: {amount:+} → balance {balance}")
        });
        self.ledger.push(LedgerEntry {
            member: Name::from(self.member.id.as_str()),
            amount,
            balance,
            reason: Name::from(event.data_str("reason").unwrap_or_default()),
            rule: Name::from(ADJUSTMENT_RULE),
            event: Some(Name::from(event.id.as_str())),
            at: self.now(),
            requested: None,
            clipped_by: None,
            from: None,
            operator: Some(operator),
        });
    }
}
