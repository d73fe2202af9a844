//! A member's points as lots (`settings.points.expire`): every award forms a lot that
//! expires at its own due time, and every deduction takes from the oldest lot first.
//!
//! Invariants, kept by the methods here (the only way to change the lots):
//! - lots are in award order, each holding more than zero points;
//! - their total never exceeds the balance they track ([`Lots::reconcile`] restores it
//!   for state written before expiry was switched on);
//! - a lot leaves by being spent or by [`Lots::take_due`], never both, so nothing
//!   expires twice.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Points awarded together, expiring together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// Points left in the lot: awarded, less what was spent from it.
    pub amount: i64,
    /// When its first points were awarded.
    #[serde(with = "crate::member::stored_time::utc")]
    pub since: DateTime<Utc>,
    /// When what is left of it expires.
    #[serde(with = "crate::member::stored_time::utc")]
    pub due: DateTime<Utc>,
    /// The `points_expiring` rules that have considered it: each warns once per lot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warned: Vec<String>,
}

/// The member's lots, oldest award first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lots {
    lots: Vec<Lot>,
    /// While a `points_expiring` rule runs: the lot it is about, which
    /// `member.points_expiring` then shows. Never stored.
    #[serde(skip)]
    focus: Option<(i64, DateTime<Utc>)>,
}

impl Lots {
    pub fn iter(&self) -> impl Iterator<Item = &Lot> {
        self.lots.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.lots.is_empty()
    }

    pub fn total(&self) -> i64 {
        self.lots.iter().map(|lot| lot.amount).sum()
    }

    /// Forgets every lot (expiry was switched off).
    pub fn clear(&mut self) {
        self.lots.clear();
    }

    /// Records `amount` (> 0) points awarded at `now`, expiring at `due`. Points
    /// expiring at the same instant as the newest lot join it, unless a reminder
    /// already went out for it: one reminder per lot then covers everything in it.
    pub fn add(&mut self, amount: i64, now: DateTime<Utc>, due: DateTime<Utc>) {
        if amount <= 0 {
            return;
        }
        if let Some(last) = self.lots.last_mut() {
            if last.due == due && last.warned.is_empty() {
                last.amount += amount;
                return;
            }
        }
        self.lots.push(Lot {
            amount,
            since: now,
            due,
            warned: Vec::new(),
        });
    }

    /// Spends `amount` (> 0) points, oldest lot first; lots emptied are gone.
    /// Returns `(due, taken)` per lot touched. Spending more than the lots hold
    /// empties them all.
    pub fn spend(&mut self, amount: i64) -> Vec<(DateTime<Utc>, i64)> {
        let mut left = amount;
        let mut taken = Vec::new();
        while left > 0 {
            let Some(first) = self.lots.first_mut() else {
                break;
            };
            let take = first.amount.min(left);
            first.amount -= take;
            left -= take;
            taken.push((first.due, take));
            if first.amount == 0 {
                self.lots.remove(0);
            }
        }
        taken
    }

    /// Makes the lots add up to `balance`: a balance the lots do not cover (written
    /// by an older build, or while expiry was off) forms one lot awarded `now`; lots
    /// holding more than the balance give up their oldest points.
    pub fn reconcile(&mut self, balance: i64, now: DateTime<Utc>, due: DateTime<Utc>) {
        let total = self.total();
        if total < balance {
            self.add(balance - total, now, due);
        } else if total > balance {
            self.spend(total - balance);
        }
    }

    /// Removes and returns the lots due at or before `now`, earliest due first (lots
    /// due at the same instant in award order).
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Lot> {
        let (mut due, keep): (Vec<Lot>, Vec<Lot>) = std::mem::take(&mut self.lots)
            .into_iter()
            .partition(|lot| lot.due <= now);
        self.lots = keep;
        due.sort_by_key(|lot| lot.due);
        due
    }

    /// The lot that expires next (the earliest due; the oldest of those due together).
    pub fn next_expiring(&self) -> Option<&Lot> {
        self.lots.iter().min_by_key(|lot| lot.due)
    }

    /// What `member.points_expiring` shows: the lot a reminder is about while its rule
    /// runs, otherwise the next to expire. `(amount, due)`.
    pub fn points_expiring(&self) -> Option<(i64, DateTime<Utc>)> {
        self.focus
            .or_else(|| self.next_expiring().map(|lot| (lot.amount, lot.due)))
    }

    pub fn set_focus(&mut self, focus: Option<(i64, DateTime<Utc>)>) {
        self.focus = focus;
    }

    /// The reminders due at `now`: `(lot position, rule)` for every lot not yet due
    /// and every reminder rule `(rule id, how long before)` whose time has come and
    /// that has not considered the lot. In due order, then rule order.
    pub fn reminders_due(
        &self,
        rules: &[(&str, Duration)],
        now: DateTime<Utc>,
    ) -> Vec<(usize, usize)> {
        let mut due = Vec::new();
        for (position, lot) in self.lots.iter().enumerate() {
            if lot.due <= now {
                continue;
            }
            for (rule, (id, before)) in rules.iter().enumerate() {
                if remind_at(lot.due, *before) <= now && !lot.warned.iter().any(|w| w == id) {
                    due.push((lot.due, position, rule));
                }
            }
        }
        due.sort();
        due.into_iter().map(|(_, lot, rule)| (lot, rule)).collect()
    }

    /// Marks lot `position` as considered by reminder `rule`; returns its
    /// `(amount, due)`.
    pub fn mark_warned(&mut self, position: usize, rule: &str) -> Option<(i64, DateTime<Utc>)> {
        let lot = self.lots.get_mut(position)?;
        if !lot.warned.iter().any(|w| w == rule) {
            lot.warned.push(rule.to_string());
        }
        Some((lot.amount, lot.due))
    }

    /// When the member's expiry timer must next pop: the earliest lot due or
    /// reminder not yet given.
    pub fn next_wake<'r>(
        &self,
        rules: impl Iterator<Item = (&'r str, Duration)> + Clone,
    ) -> Option<DateTime<Utc>> {
        self.lots
            .iter()
            .flat_map(|lot| {
                let reminders = rules
                    .clone()
                    .filter(|(id, _)| !lot.warned.iter().any(|w| w == id))
                    .map(|(_, before)| remind_at(lot.due, before));
                std::iter::once(lot.due).chain(reminders)
            })
            .min()
    }
}

/// When a reminder `before` a lot due at `due` goes out.
fn remind_at(due: DateTime<Utc>, before: Duration) -> DateTime<Utc> {
    due.checked_sub_signed(before).unwrap_or(due)
}
