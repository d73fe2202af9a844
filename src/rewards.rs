//! The rewards catalog (`rewards:` in rule files): what a member may spend points on,
//! and the one decision of a redemption — granted with its code, or refused with a
//! reason — taken from values alone (the reward, what the installation has issued of
//! it, the member, the time).
//!
//! Invariants:
//! - stock and the codes pool are shared by every member: what was issued lives in the
//!   store ([`RewardRecord`], meta `reward.<id>`), is read into the step's context and
//!   written in the same commit as the member, and every step runs on the one writer
//!   thread — so two redemptions never both see the last unit;
//! - a code is handed out once, ever: the record keeps issued codes by value, so a
//!   codes file changed by a reload never hands out a code again;
//! - a refused redemption changes nothing but its own record (meta `redemption.<event
//!   id>`), which the API answers from and `rally replay` compares.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

use crate::localtime::{self, Period};
use crate::member::Member;
use crate::rules::{During, Limit, LimitPer, RuleSet, SourcePos};
use crate::shares::{Shares, Short};

/// The event type a member redeems with; `data.reward` names the reward.
pub const REDEEM: &str = "redeem";
/// Meta names: `reward.<id>` holds a [`RewardRecord`].
pub const REWARD_META: &str = "reward.";
/// Meta names: `redemption.<event id>` holds a [`Redemption`].
pub const REDEMPTION_META: &str = "redemption.";
/// What a redemption's ledger entry names as its rule: no rule made it, and no rule
/// id can hold parentheses.
pub const REDEMPTION_RULE: &str = "(redemption)";

/// One reward of the catalog, compiled.
pub struct Reward {
    pub id: String,
    /// As members see it (`Gift card 50`).
    pub name: String,
    /// Points a redemption deducts; greater than zero.
    pub cost: i64,
    /// Units for every member together; `None`: no limit but the codes pool.
    pub stock: Option<u64>,
    /// How often one member may redeem it, per member-local period.
    pub limit: Option<Limit>,
    /// Tiers that may redeem it; empty: every member.
    pub tiers: Vec<String>,
    /// Redeemable only while the campaign is in one of these phases.
    pub during: Option<During>,
    /// The codes file's codes, in file order: each handed out once, first unissued
    /// first.
    pub codes: Option<Vec<String>>,
    pub at: SourcePos,
}

impl Reward {
    /// Units still available, `None` when neither stock nor a codes pool bounds it.
    pub fn left(&self, record: &RewardRecord) -> Option<u64> {
        let by_stock = self.stock.map(|s| s.saturating_sub(record.issued));
        let by_codes = self.codes_left(record);
        match (by_stock, by_codes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Units this cluster partition may still hand out of its shares (`record` is
    /// what it issued itself); [`Reward::left`] without shares.
    pub fn left_in(&self, record: &RewardRecord, shares: Option<&Shares>) -> Option<u64> {
        let Some(shares) = shares else {
            return self.left(record);
        };
        match (
            self.stock_left_in(record, shares),
            self.codes_left_in(record, shares),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What a partition out of this reward ran short of: units of stock, codes of the
    /// pool, or both (more may be granted, or the pool may be empty too).
    pub fn shorts(&self, record: &RewardRecord, shares: &Shares) -> Vec<Short> {
        let reward = || self.id.clone();
        let mut shorts = Vec::new();
        if self.stock_left_in(record, shares) == Some(0) {
            shorts.push(Short::Stock { reward: reward() });
        }
        if self.codes_left_in(record, shares) == Some(0) {
            shorts.push(Short::Codes { reward: reward() });
        }
        shorts
    }

    fn stock_left_in(&self, record: &RewardRecord, shares: &Shares) -> Option<u64> {
        let granted = shares.stock(&self.id);
        self.stock
            .map(|stock| stock.min(granted).saturating_sub(record.issued))
    }

    fn codes_left_in(&self, record: &RewardRecord, shares: &Shares) -> Option<u64> {
        let codes = self.codes.as_ref()?;
        let usable = |c: &&String| shares.has_code(&self.id, c) && !record.codes.contains(*c);
        Some(codes.iter().filter(usable).count() as u64)
    }

    /// Codes of the pool never handed out (`None` without a pool).
    pub fn codes_left(&self, record: &RewardRecord) -> Option<u64> {
        self.codes
            .as_ref()
            .map(|codes| codes.iter().filter(|c| !record.codes.contains(*c)).count() as u64)
    }

    /// The code the next redemption gets: the first of the file not yet issued.
    /// In a cluster partition, the first of those granted to it.
    fn next_code(&self, record: &RewardRecord, shares: Option<&Shares>) -> Option<&str> {
        let granted = |c: &&String| shares.is_none_or(|s| s.has_code(&self.id, c));
        self.codes
            .as_ref()?
            .iter()
            .find(|c| !record.codes.contains(*c) && granted(c))
            .map(String::as_str)
    }

    /// How `GET /v1/rewards` and `sim` show the reward.
    pub fn view(&self, record: &RewardRecord) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "cost": self.cost,
            "stock": self.stock,
            "issued": record.issued,
            "left": self.left(record),
            "codes_left": self.codes_left(record),
        })
    }
}

/// What the installation has issued of one reward, across every member and every
/// rule set (a reload that changes the catalog keeps it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RewardRecord {
    /// Redemptions granted: what `stock` is measured against.
    pub issued: u64,
    /// Every code handed out, by value.
    pub codes: BTreeSet<String>,
}

impl RewardRecord {
    /// Counts a granted redemption.
    pub fn grant(&mut self, code: Option<&str>) {
        self.issued += 1;
        if let Some(code) = code {
            self.codes.insert(code.to_string());
        }
    }
}

/// One redemption asked for, and what came of it. Stored under its event's id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Redemption {
    pub member: String,
    pub reward: String,
    /// The `redeem` event (for `POST .../redeem`: the request's key).
    pub event: String,
    #[serde(with = "crate::engine::outcome::utc")]
    pub at: DateTime<Utc>,
    /// The reward's cost at the time (0 for an unknown reward).
    pub cost: i64,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Granted (with the code handed out, if the reward has a pool) or refused (why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Verdict {
    Granted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    Refused {
        reason: String,
    },
}

impl Redemption {
    pub fn granted(&self) -> bool {
        matches!(self.verdict, Verdict::Granted { .. })
    }

    pub fn code(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Granted { code } => code.as_deref(),
            Verdict::Refused { .. } => None,
        }
    }

    /// What the `redeem` event's rules see in `event.data` besides `reward`:
    /// `result` (`granted`/`refused`), `cost`, and `code` or `reason`.
    pub fn data(&self) -> Vec<(&'static str, Value)> {
        let mut data = vec![("cost", json!(self.cost))];
        match &self.verdict {
            Verdict::Granted { code } => {
                data.push(("result", json!("granted")));
                if let Some(code) = code {
                    data.push(("code", json!(code)));
                }
            }
            Verdict::Refused { reason } => {
                data.push(("result", json!("refused")));
                data.push(("reason", json!(reason)));
            }
        }
        data
    }
}

/// Why a redemption is refused, in the words the member and the operator read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    #[error("unknown reward {0:?}")]
    UnknownReward(String),
    #[error("not available now: campaign {campaign} is not {phases}")]
    OutOfPhase { campaign: String, phases: String },
    #[error("not for tier {tier}: only {allowed}")]
    Tier { tier: String, allowed: String },
    #[error("out of stock")]
    OutOfStock,
    #[error("limit reached: {times} per {per}")]
    LimitReached { times: u32, per: &'static str },
    #[error("insufficient points: balance {balance}, cost {cost}")]
    Insufficient { balance: i64, cost: i64 },
}

/// A redemption that may go ahead: what it deducts, the code it hands out, and the
/// member's limit count to write back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub cost: i64,
    pub code: Option<String>,
    /// The period the member's limit counts in and the count after this redemption.
    pub limit: Option<(String, u32)>,
}

/// Decides a redemption of `reward` by `member` at `now`, given what has been issued
/// (and in a cluster partition, what it holds of the stock and codes). Checked in
/// this order, the first failing one answering: availability (campaign phase, tier,
/// stock and codes), the member's limit, the balance.
pub fn judge(
    rules: &RuleSet,
    records: &BTreeMap<String, RewardRecord>,
    shares: Option<&Shares>,
    member: &Member,
    reward: &str,
    now: DateTime<Utc>,
) -> Result<Grant, Refusal> {
    let Some(reward) = rules.rewards.iter().find(|r| r.id == reward) else {
        return Err(Refusal::UnknownReward(reward.to_string()));
    };
    if let Some(during) = &reward.during {
        if !in_phase(rules, during, now) {
            return Err(Refusal::OutOfPhase {
                campaign: during.campaign.clone(),
                phases: match during.phases.as_slice() {
                    [] => "running".to_string(),
                    phases => format!("in phase {}", phases.join(" or ")),
                },
            });
        }
    }
    if !reward.tiers.is_empty() {
        let tier = member.tier.as_deref().unwrap_or_default();
        if !reward.tiers.iter().any(|allowed| allowed == tier) {
            return Err(Refusal::Tier {
                tier: if tier.is_empty() {
                    "(none)".into()
                } else {
                    tier.to_owned()
                },
                allowed: reward.tiers.join(", "),
            });
        }
    }
    let empty = RewardRecord::default();
    let record = records.get(&reward.id).unwrap_or(&empty);
    if reward.left_in(record, shares) == Some(0) {
        return Err(Refusal::OutOfStock);
    }
    let limit = match reward.limit {
        Some(limit) => {
            let key =
                limit_key(rules, reward, limit.per, member, now).ok_or(Refusal::LimitReached {
                    times: limit.times,
                    per: per_name(limit.per),
                })?;
            let used = match member.book.reward_limits.get(&reward.id) {
                Some((period, count)) if *period == key => *count,
                _ => 0,
            };
            if used >= limit.times {
                return Err(Refusal::LimitReached {
                    times: limit.times,
                    per: per_name(limit.per),
                });
            }
            Some((key, used + 1))
        }
        None => None,
    };
    if member.points < reward.cost {
        return Err(Refusal::Insufficient {
            balance: member.points,
            cost: reward.cost,
        });
    }
    Ok(Grant {
        cost: reward.cost,
        code: reward.next_code(record, shares).map(str::to_string),
        limit,
    })
}

/// The period a reward's `limit` counts in (as a rule's `limit` does); `None` when its
/// campaign has no current run.
fn limit_key(
    rules: &RuleSet,
    reward: &Reward,
    per: LimitPer,
    member: &Member,
    now: DateTime<Utc>,
) -> Option<String> {
    let period = match per {
        LimitPer::Day => Period::Day,
        LimitPer::Week => Period::Week,
        LimitPer::Month => Period::Month,
        LimitPer::Ever => Period::Ever,
        LimitPer::Campaign => {
            let id = &reward.during.as_ref()?.campaign;
            let campaign = rules.campaigns.iter().find(|c| c.id == *id)?;
            return crate::campaign::cycle_key(campaign, now);
        }
    };
    let zone = localtime::member_zone(member.attr_str("timezone"), rules.settings.timezone);
    Some(localtime::period_key(period, now, zone))
}

fn per_name(per: LimitPer) -> &'static str {
    match per {
        LimitPer::Day => "day",
        LimitPer::Week => "week",
        LimitPer::Month => "month",
        LimitPer::Ever => "ever",
        LimitPer::Campaign => "campaign",
    }
}

fn in_phase(rules: &RuleSet, during: &During, now: DateTime<Utc>) -> bool {
    let Some(campaign) = rules.campaigns.iter().find(|c| c.id == during.campaign) else {
        return false;
    };
    match crate::campaign::phase_at(campaign, now) {
        Some(phase) => during.phases.is_empty() || during.phases.contains(&phase.name),
        None => false,
    }
}

/// The catalog as `sim` and `GET /v1/rewards` show it: every reward of `rules` in the
/// order written, with what `records` says was issued.
pub fn catalog(rules: &RuleSet, records: &BTreeMap<String, RewardRecord>) -> Vec<Value> {
    let empty = RewardRecord::default();
    rules
        .rewards
        .iter()
        .map(|r| r.view(records.get(&r.id).unwrap_or(&empty)))
        .collect()
}
