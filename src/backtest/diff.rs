//! [`Difference`]: what changed between two runs ([`Summary`] A, the baseline, and B),
//! in the terms an operator judges a rule change by. It serializes as the `--json`
//! schema documented in docs/backtest.md; every list in it is in a chosen order (by
//! id, then template and status), so the same two runs always print the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::members::{compare_members, MemberDiff};
use super::summary::{MessageKind, RuleFigures, Summary};
use crate::money;

/// A figure in A and in B. Serializes as `{"a", "b", "delta", "pct"}`; `pct` is the
/// change relative to A in percent, to two places, `null` when A is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Change {
    pub a: Decimal,
    pub b: Decimal,
}

impl Change {
    pub fn new(a: impl Into<Decimal>, b: impl Into<Decimal>) -> Change {
        Change {
            a: a.into(),
            b: b.into(),
        }
    }

    pub fn delta(&self) -> Decimal {
        self.b - self.a
    }

    pub fn changed(&self) -> bool {
        self.a != self.b
    }

    /// The change relative to A, in percent, exact (rounding is for display).
    /// `None` when A is 0: no percentage describes growth from nothing.
    pub fn pct(&self) -> Option<Decimal> {
        if self.a.is_zero() {
            return None;
        }
        self.delta()
            .checked_mul(Decimal::ONE_HUNDRED)?
            .checked_div(self.a.abs())
    }

    fn entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("a", &money::to_json(self.a))?;
        map.serialize_entry("b", &money::to_json(self.b))?;
        map.serialize_entry("delta", &money::to_json(self.delta()))?;
        let pct = self.pct().map(|p| money::to_json(p.round_dp(2)));
        map.serialize_entry("pct", &pct)
    }
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        self.entries(&mut map)?;
        map.end()
    }
}

/// How a rule's figures moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleChange {
    /// Active in B only: it fired, failed or wrote to the ledger in B and not in A.
    /// (A sim document does not list rule definitions, so a rule in both rule sets
    /// that never fires in A is "added" too.)
    Added,
    /// Active in A only.
    Removed,
    /// Active in both, with a figure that differs.
    Changed,
    /// Active in both with the same figures.
    Same,
}

/// Messages of one template and status.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageDiff {
    pub template: Option<String>,
    pub status: String,
    pub count: Change,
}

impl Serialize for MessageDiff {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("template", &self.template)?;
        map.serialize_entry("status", &self.status)?;
        self.count.entries(&mut map)?;
        map.end()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleDiff {
    pub rule: String,
    pub change: RuleChange,
    pub firings: Change,
    pub points_awarded: Change,
    pub points_deducted: Change,
    pub errors: Change,
    /// Every (template, status) either side has, changed or not.
    pub messages: Vec<MessageDiff>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignDiff {
    pub campaign: String,
    /// The budget in A and in B (`null`: none, or no such campaign on that side).
    pub budget: Sides,
    /// Points its rules awarded: the budget used.
    pub points_awarded: Change,
}

/// A value that has no arithmetic, on each side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sides {
    #[serde(serialize_with = "decimal_or_null")]
    pub a: Option<Decimal>,
    #[serde(serialize_with = "decimal_or_null")]
    pub b: Option<Decimal>,
}

fn decimal_or_null<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    d.map(money::to_json).serialize(s)
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyDiff {
    pub policy: String,
    pub opened: Change,
    /// By status at the end of the run.
    pub by_status: BTreeMap<String, Change>,
}

/// The run-wide figures; each is a `--fail-if` metric of the same name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Totals {
    pub members: Change,
    pub firings: Change,
    pub points_awarded: Change,
    /// Deductions as a positive number.
    pub points_deducted: Change,
    /// The sum of every member's balance at the end.
    pub liability: Change,
    pub messages: Change,
    /// Every status either side has.
    pub messages_by_status: BTreeMap<String, Change>,
    pub tickets_opened: Change,
    pub errors: Change,
}

/// Summary A (the baseline) against summary B.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub totals: Totals,
    /// Every rule active on either side, by id.
    pub rules: Vec<RuleDiff>,
    /// Messages no rule sent (escalation notifications), by template and status.
    pub notifications: Vec<MessageDiff>,
    pub members: MemberDiff,
    pub campaigns: Vec<CampaignDiff>,
    pub tickets: Vec<PolicyDiff>,
}

impl Difference {
    pub fn between(a: &Summary, b: &Summary) -> Difference {
        Difference {
            totals: totals(a, b),
            rules: rules(a, b),
            notifications: messages(&a.notifications, &b.notifications),
            members: compare_members(&a.members, &b.members),
            campaigns: campaigns(a, b),
            tickets: tickets(a, b),
        }
    }

    pub fn rules_with(&self, change: RuleChange) -> usize {
        self.rules.iter().filter(|r| r.change == change).count()
    }
}

/// Ids on either side, in order.
fn union<'a, V>(a: &'a BTreeMap<String, V>, b: &'a BTreeMap<String, V>) -> BTreeSet<&'a str> {
    a.keys().chain(b.keys()).map(String::as_str).collect()
}

fn totals(a: &Summary, b: &Summary) -> Totals {
    let (status_a, status_b) = (a.messages_by_status(), b.messages_by_status());
    let messages_by_status: BTreeMap<String, Change> = union(&status_a, &status_b)
        .into_iter()
        .map(|status| {
            let count = |side: &BTreeMap<String, u64>| side.get(status).copied().unwrap_or(0);
            (
                status.to_string(),
                Change::new(count(&status_a), count(&status_b)),
            )
        })
        .collect();
    let sum = |side: &BTreeMap<String, u64>| side.values().sum::<u64>();
    Totals {
        members: Change::new(a.members.len() as u64, b.members.len() as u64),
        firings: Change::new(a.firings(), b.firings()),
        points_awarded: Change::new(a.points_awarded(), b.points_awarded()),
        points_deducted: Change::new(a.points_deducted(), b.points_deducted()),
        liability: Change::new(a.liability(), b.liability()),
        messages: Change::new(sum(&status_a), sum(&status_b)),
        messages_by_status,
        tickets_opened: Change::new(a.tickets_opened(), b.tickets_opened()),
        errors: Change::new(a.errors(), b.errors()),
    }
}

fn messages(a: &BTreeMap<MessageKind, u64>, b: &BTreeMap<MessageKind, u64>) -> Vec<MessageDiff> {
    let kinds: BTreeSet<&MessageKind> = a.keys().chain(b.keys()).collect();
    kinds
        .into_iter()
        .map(|kind| MessageDiff {
            template: kind.template.clone(),
            status: kind.status.clone(),
            count: Change::new(
                a.get(kind).copied().unwrap_or(0),
                b.get(kind).copied().unwrap_or(0),
            ),
        })
        .collect()
}

fn rules(a: &Summary, b: &Summary) -> Vec<RuleDiff> {
    let none = RuleFigures::default();
    union(&a.rules, &b.rules)
        .into_iter()
        .map(|rule| {
            let (in_a, in_b) = (a.rules.get(rule), b.rules.get(rule));
            let (fa, fb) = (in_a.unwrap_or(&none), in_b.unwrap_or(&none));
            let change = match (in_a, in_b) {
                (None, _) => RuleChange::Added,
                (_, None) => RuleChange::Removed,
                _ if fa == fb => RuleChange::Same,
                _ => RuleChange::Changed,
            };
            RuleDiff {
                rule: rule.to_string(),
                change,
                firings: Change::new(fa.firings, fb.firings),
                points_awarded: Change::new(fa.points_awarded, fb.points_awarded),
                points_deducted: Change::new(fa.points_deducted, fb.points_deducted),
                errors: Change::new(fa.errors, fb.errors),
                messages: messages(&fa.messages, &fb.messages),
            }
        })
        .collect()
}

fn campaigns(a: &Summary, b: &Summary) -> Vec<CampaignDiff> {
    union(&a.campaigns, &b.campaigns)
        .into_iter()
        .map(|id| {
            let (ca, cb) = (a.campaigns.get(id), b.campaigns.get(id));
            let used = |c: Option<&super::summary::CampaignEnd>| {
                c.map_or(Decimal::ZERO, |c| c.points_awarded)
            };
            CampaignDiff {
                campaign: id.to_string(),
                budget: Sides {
                    a: ca.and_then(|c| c.budget),
                    b: cb.and_then(|c| c.budget),
                },
                points_awarded: Change::new(used(ca), used(cb)),
            }
        })
        .collect()
}

fn tickets(a: &Summary, b: &Summary) -> Vec<PolicyDiff> {
    union(&a.tickets, &b.tickets)
        .into_iter()
        .map(|policy| {
            let (ta, tb) = (a.tickets.get(policy), b.tickets.get(policy));
            let statuses: BTreeSet<&String> = ta
                .iter()
                .chain(tb.iter())
                .flat_map(|t| t.by_status.keys())
                .collect();
            let count = |t: Option<&super::summary::TicketFigures>, status: &str| {
                t.and_then(|t| t.by_status.get(status))
                    .copied()
                    .unwrap_or(0)
            };
            PolicyDiff {
                policy: policy.to_string(),
                opened: Change::new(ta.map_or(0, |t| t.opened), tb.map_or(0, |t| t.opened)),
                by_status: statuses
                    .into_iter()
                    .map(|s| (s.clone(), Change::new(count(ta, s), count(tb, s))))
                    .collect(),
            }
        })
        .collect()
}
