//! Applying a rule's actions (SPEC §2.3) to the working member. The caller restores
//! the member if any action fails, so a rule applies all of its actions or none.

use super::explain::{CapState, Effect};
use super::outcome::{LedgerEntry, Name};
use super::run::{Failed, Run};
use crate::localtime;
use crate::money::{self, Decimal};
use crate::rules::{Action, Amount, Rule, SetValue, Severity};
use crate::script::ScriptAction;
use crate::shares::Short;

/// Largest single award or deduction: far above any real use, far below overflow.
pub(super) const MAX_AWARD: i64 = 1_000_000_000;

impl Run<'_> {
    pub fn apply_actions(&mut self, rule: &Rule) -> Result<(), Failed> {
        let sandbox = self.rules().sandbox.clone();
        for action in &rule.actions {
            match action {
                Action::Points {
                    amount,
                    reason,
                    daily_cap,
                } => {
                    // For the trace: the amount's expression and what it read, taken
                    // before the award changes the member.
                    let mut computed = None;
                    let requested = match amount {
                        Amount::Fixed(n) => *n,
                        Amount::Expr(expr) => {
                            let value = match expr.native_amount(&self.member, self.event) {
                                Some(value) => value,
                                None => sandbox
                                    .eval_number(expr, self.bindings())
                                    .map_err(|e| Failed::script(e, expr))?,
                            };
                            if self.tracing() {
                                computed = Some((expr.text.trim().to_string(), self.reads(expr)));
                            }
                            value
                        }
                    };
                    let requested = whole_points(requested)?;
                    self.award(rule, requested, reason.as_deref(), *daily_cap)?;
                    if let Some((text, reads)) = computed {
                        self.points_computed(text, reads);
                    }
                }
                Action::Tag(name) => {
                    self.member.tags.insert(name.clone());
                    self.effect(|_| Effect::Tag { name: name.clone() });
                }
                Action::Untag(name) => {
                    self.member.tags.remove(name);
                    self.effect(|_| Effect::Untag { name: name.clone() });
                }
                Action::Badge(name) => self.badge(name),
                Action::Set(pairs) => {
                    for (key, value) in pairs {
                        let value = match value {
                            SetValue::Literal(v) => v.clone(),
                            SetValue::Expr(expr) => sandbox
                                .eval_value(expr, self.bindings())
                                .map_err(|e| Failed::script(e, expr))?,
                        };
                        self.effect(|_| Effect::Set {
                            key: key.clone(),
                            value: value.clone(),
                        });
                        self.member.attrs.insert(key.clone(), value);
                    }
                }
                Action::Script(script) => {
                    let requested = sandbox
                        .run_script(script, self.bindings())
                        .map_err(|e| Failed::script(e, script))?;
                    for request in requested {
                        self.apply_script_action(rule, request)?;
                    }
                }
                Action::Send {
                    template,
                    channel,
                    to,
                    transactional,
                } => self.send(rule, template, channel, to.as_ref(), *transactional)?,
                Action::Escalate {
                    policy,
                    severity,
                    summary,
                } => self.escalate(rule, policy, *severity, summary)?,
                Action::Credit(spec) => self.credit(rule, spec)?,
            }
            self.member_changed();
        }
        Ok(())
    }

    fn apply_script_action(&mut self, rule: &Rule, action: ScriptAction) -> Result<(), Failed> {
        match action {
            ScriptAction::Award { amount, reason } => {
                self.award(rule, amount, reason.as_deref(), true)
            }
            ScriptAction::Tag(name) => {
                self.effect(|_| Effect::Tag { name: name.clone() });
                self.member.tags.insert(name);
                Ok(())
            }
            ScriptAction::Untag(name) => {
                self.effect(|_| Effect::Untag { name: name.clone() });
                self.member.tags.remove(&name);
                Ok(())
            }
            ScriptAction::Badge(name) => {
                self.badge(&name);
                Ok(())
            }
            ScriptAction::Set(key, value) => {
                self.effect(|_| Effect::Set {
                    key: key.clone(),
                    value: value.clone(),
                });
                self.member.attrs.insert(key, value);
                Ok(())
            }
            ScriptAction::Send { template, channel } => {
                self.send(rule, &template, &channel, None, false)
            }
            ScriptAction::Escalate {
                policy,
                severity,
                summary,
            } => {
                let severity = Severity::parse(&severity).ok_or_else(|| {
                    Failed::new(format!("severity {severity:?} is not low, normal or high"))
                })?;
                self.escalate(rule, &policy, severity, &summary)
            }
        }
    }

    fn badge(&mut self, name: &str) {
        self.effect(|_| Effect::Badge {
            name: name.to_string(),
        });
        if !self.member.badges.iter().any(|b| b == name) {
            self.member.badges.push(name.to_string());
        }
    }

    /// Awards (or, when negative, deducts) points: clipped by the daily cap (unless
    /// `daily_cap` is false: `cap: false`), never taking the balance below zero,
    /// always recorded in the ledger.
    pub fn award(
        &mut self,
        rule: &Rule,
        requested: i64,
        reason: Option<&str>,
        daily_cap: bool,
    ) -> Result<(), Failed> {
        if requested.abs() > MAX_AWARD {
            return Err(Failed::new(format!(
                "{requested} points is more than one action may move (limit {MAX_AWARD})"
            )));
        }
        if requested == 0 {
            return Ok(());
        }
        let mut amount = requested;
        let mut clipped_by = None;
        let mut day_total = None;
        // What the caps stood at, for the trace only.
        let mut caps = Vec::new();
        if requested < 0 {
            if self.member.points + requested < 0 {
                return Err(Failed::new(format!(
                    "deducting {} points would take the balance below zero (balance is {})",
                    -requested, self.member.points
                )));
            }
        } else if let Some(cap) = self.rules().settings.daily_cap.filter(|_| daily_cap) {
            let today = localtime::local_day(self.now(), self.zone());
            let so_far = match self.member.book.points_day {
                Some((day, n)) if day == today => n,
                _ => 0,
            };
            let room = (cap - so_far).max(0);
            if self.tracing() {
                caps.push(CapState {
                    cap: "daily_cap".to_string(),
                    limit: cap,
                    used: so_far,
                    room,
                    period: Some(today.to_string()),
                });
            }
            if amount > room {
                amount = room;
                clipped_by = Some("daily_cap".to_string());
            }
            day_total = Some((today, so_far));
        }
        if amount > 0 {
            if let Some(Room {
                campaign,
                limit,
                room,
                by_share,
            }) = self.budget_room(rule)
            {
                if self.tracing() && room != i64::MAX {
                    caps.push(CapState {
                        cap: format!("budget:{campaign}"),
                        limit,
                        used: limit - room,
                        room,
                        period: None,
                    });
                }
                if amount > room {
                    if by_share {
                        self.shorts.push(Short::Budget {
                            campaign: campaign.clone(),
                            points: amount - room,
                        });
                    }
                    amount = room;
                    clipped_by = Some(format!("budget:{campaign}"));
                }
                *self.budget_spent.entry(campaign).or_insert(0) += amount;
            }
        }
        if let Some((today, so_far)) = day_total {
            self.member.book.points_day = Some((today, so_far + amount));
        }
        self.move_points(amount);
        self.effect(|run| Effect::Points {
            asked: requested,
            awarded: amount,
            balance: run.member.points,
            clipped_by: clipped_by.clone(),
            caps,
            from: None,
        });
        self.ledger.push(LedgerEntry {
            member: Name::from(self.member.id.as_str()),
            amount,
            balance: self.member.points,
            reason: Name::from(reason.unwrap_or(&rule.id)),
            rule: Name::from(rule.id.as_str()),
            event: self.event.map(|e| Name::from(e.id.as_str())),
            at: self.now(),
            requested: clipped_by.as_ref().map(|_| requested),
            clipped_by,
            from: None,
            operator: None,
        });
        Ok(())
    }
}

/// What a campaign's budget leaves a rule scoped to it.
struct Room {
    campaign: String,
    /// The budget, or in a cluster partition the part of it granted to the partition.
    limit: i64,
    /// Points left of `limit`, counting this step's earlier awards (unbounded without
    /// a budget).
    room: i64,
    /// `limit` is the partition's share, less than the budget: more may be granted.
    by_share: bool,
}

impl Run<'_> {
    /// For a rule scoped to a campaign: the campaign and the points its budget has
    /// left.
    fn budget_room(&self, rule: &Rule) -> Option<Room> {
        let id = &rule.during.as_ref()?.campaign;
        let campaign = self.rules().campaigns.iter().find(|c| c.id == *id)?;
        let Some(budget) = campaign.budget_points else {
            return Some(Room {
                campaign: id.clone(),
                limit: i64::MAX,
                room: i64::MAX,
                by_share: false,
            });
        };
        let share = self.ctx.shares.map(|shares| shares.budget(id));
        let limit = share.map_or(budget, |share| share.min(budget));
        let used = self.ctx.budget_used.get(id).copied().unwrap_or(0)
            + self.budget_spent.get(id).copied().unwrap_or(0);
        Some(Room {
            campaign: id.clone(),
            limit,
            room: (limit - used).max(0),
            by_share: limit < budget,
        })
    }
}

/// Points are integers: a computed amount is rounded toward zero
/// ([`money::whole_points`]).
pub(super) fn whole_points(value: Decimal) -> Result<i64, Failed> {
    money::whole_points(value)
        .filter(|whole| whole.abs() <= MAX_AWARD)
        .ok_or_else(|| {
            Failed::new(format!(
                "{} points is more than one action may move (limit {MAX_AWARD})",
                value.trunc()
            ))
        })
}
