//! Points expiry in the step (`settings.points.expire`, see [`crate::expiry`]).
//!
//! Every change of the balance goes through [`Run::move_points`]: an award forms a
//! lot due when the policy says, a deduction (a negative `points`, a redemption, an
//! operator's negative adjustment) spends the oldest lots first. Each member has at
//! most one expiry timer, armed at the end of every step for the earliest lot due or
//! `points_expiring` reminder not yet given. When it pops, due lots expire — one
//! ledger entry each, `reason: expired` — and due reminders run their rule once per
//! lot. A lot leaves the member when it expires, in the same step's commit as the
//! timer's removal, so a timer popping twice (or a replayed group) finds nothing to
//! expire again.
//!
//! A balance the lots do not cover (a store from before expiry was switched on) forms
//! one lot at the first step that sees it; with expiry switched off the lots are
//! forgotten and nothing expires.

use chrono::{DateTime, Duration, Utc};

use super::explain::Why;
use super::outcome::{LedgerEntry, Name};
use super::run::Run;
use crate::rules::Trigger;
use crate::store::keys::TimerKey;

/// The timer kind of the member's expiry timer; the timer's id is the member id.
pub const POINTS_EXPIRY: &str = "points_expiry";

/// What an expiry's ledger entry names as its rule: no rule made it, and no rule id
/// can hold parentheses.
pub const EXPIRY_RULE: &str = "(expiry)";

/// The ledger reason of an expiry.
const EXPIRED: &str = "expired";

impl Run<'_> {
    /// Brings the member's lots in line with the settings, before anything reads them.
    pub fn start_lots(&mut self) {
        let Some(policy) = self.rules().settings.points_expiry else {
            self.member.book.points_lots.clear();
            return;
        };
        if self.member.book.points_lots.total() != self.member.points {
            let due = policy.due(self.now(), self.zone());
            let balance = self.member.points;
            self.member
                .book
                .points_lots
                .reconcile(balance, self.now(), due);
        }
    }

    /// Adds `amount` points to the balance (a deduction when negative; the caller
    /// has made sure the balance stays at or above zero) and keeps the lots: the one
    /// place a balance changes.
    pub fn move_points(&mut self, amount: i64) {
        self.member.points += amount;
        if amount > 0 {
            self.member.points_lifetime += amount;
        }
        let Some(policy) = self.rules().settings.points_expiry else {
            return;
        };
        if amount > 0 {
            let due = policy.due(self.now(), self.zone());
            self.member.book.points_lots.add(amount, self.now(), due);
        } else {
            self.member.book.points_lots.spend(-amount);
        }
    }

    /// The member's expiry timer fell due at `due`: lots due by now expire, then the
    /// reminders due go out. A timer that is not the armed one does nothing.
    pub fn on_points_expiry(&mut self, due: i64) {
        if self.member.book.expiry_timer != Some(due) {
            self.note(|_| "this expiry timer was superseded: nothing runs".to_string());
            return;
        }
        self.member.book.expiry_timer = None;
        self.place_on_ladder();
        self.expire_due_lots();
        self.remind();
        self.drain();
    }

    /// One ledger entry per lot due, earliest first; never below a zero balance.
    fn expire_due_lots(&mut self) {
        let now = self.now();
        let expired = self.member.book.points_lots.take_due(now);
        if expired.is_empty() {
            return;
        }
        for lot in expired {
            let amount = lot.amount.min(self.member.points);
            if amount <= 0 {
                continue;
            }
            self.member.points -= amount;
            let balance = self.member.points;
            self.builtin_note(|_| {
                format!(
                    "{amount} points awarded {} expired → balance {balance}",
                    crate::member::rfc3339(lot.since)
                )
            });
            self.ledger.push(LedgerEntry {
                member: Name::from(self.member.id.as_str()),
                amount: -amount,
                balance,
                reason: Name::from(EXPIRED),
                rule: Name::from(EXPIRY_RULE),
                event: None,
                at: now,
                requested: None,
                clipped_by: None,
                operator: None,
                from: None,
            });
        }
        self.member_changed();
        self.detect(1, None);
    }

    /// Runs every `points_expiring` rule due for a lot, once per lot, with
    /// `member.points_expiring` showing that lot. A member who left gets none: their
    /// reminders are marked given all the same, or the timer would wake for them
    /// again at once.
    fn remind(&mut self) {
        let reminders = self.reminder_rules();
        if reminders.is_empty() {
            return;
        }
        let now = self.now();
        let windows: Vec<(&str, Duration)> = reminders
            .iter()
            .map(|&(index, before)| (self.rules().rules[index].id.as_str(), before))
            .collect();
        // One at a time: a reminder's rule may spend points, which moves the lots.
        while let Some(&(position, slot)) = self
            .member
            .book
            .points_lots
            .reminders_due(&windows, now)
            .first()
        {
            let (index, before) = reminders[slot];
            let rule_id = windows[slot].0;
            let Some(lot) = self.member.book.points_lots.mark_warned(position, rule_id) else {
                break;
            };
            self.consider(index, |_| Why::PointsExpiring {
                before: crate::duration::format(before),
                amount: lot.0,
                due: lot.1,
            });
            if self.member.left {
                self.skipped("the member left");
                continue;
            }
            self.member.book.points_lots.set_focus(Some(lot));
            self.member_changed();
            self.try_rule(index, 0);
            self.member.book.points_lots.set_focus(None);
            self.member_changed();
        }
    }

    /// `(rule index, how long before)` of every `points_expiring` rule, in run order.
    fn reminder_rules(&self) -> Vec<(usize, Duration)> {
        let rules = self.rules();
        rules
            .index
            .points_expiring
            .iter()
            .filter_map(|&index| match rules.rules[index].trigger {
                Trigger::PointsExpiring(before) => Some((index, before)),
                _ => None,
            })
            .collect()
    }

    /// Arms, moves or disarms the member's expiry timer for the next lot due or
    /// reminder. Returns the timer writes: what to set and what to clear.
    pub fn arm_expiry_timer(&mut self) -> (Vec<(TimerKey, Vec<u8>)>, Vec<TimerKey>) {
        let rules = self.rules();
        // Every step asks: the windows are read off the rules, not collected.
        let windows = rules.index.points_expiring.iter().filter_map(|&index| {
            let rule = &rules.rules[index];
            match rule.trigger {
                Trigger::PointsExpiring(before) => Some((rule.id.as_str(), before)),
                _ => None,
            }
        });
        let wanted = self
            .member
            .book
            .points_lots
            .next_wake(windows)
            .map(|at: DateTime<Utc>| at.timestamp_millis());
        let armed = self.member.book.expiry_timer;
        if armed == wanted {
            return (Vec::new(), Vec::new());
        }
        let id = &self.member.id;
        let clear = armed
            .map(|due| TimerKey::new(due, POINTS_EXPIRY, id.clone()))
            .into_iter()
            .collect();
        let set = wanted
            .map(|due| (TimerKey::new(due, POINTS_EXPIRY, id.clone()), Vec::new()))
            .into_iter()
            .collect();
        self.member.book.expiry_timer = wanted;
        (set, clear)
    }
}
