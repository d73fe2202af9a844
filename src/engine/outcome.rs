//! What a step decides: the member's new state plus the records it produced. The store
//! commits an outcome whole or not at all.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::member::Member;
use crate::store::keys::TimerKey;

/// Names and ids a step records are kept inline when they fit (a rule's id, a
/// member's, an event's, a trigger kind): a firing names five and a ledger entry four,
/// and most steps make one or both.
pub use crate::member::Name;

/// One award or deduction (SPEC §2.3): member, amount, balance after, reason, rule,
/// triggering event, time — and, when a cap clipped it, what was asked and which cap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub member: Name,
    pub amount: i64,
    pub balance: i64,
    pub reason: Name,
    pub rule: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Name>,
    #[serde(with = "utc")]
    pub at: DateTime<Utc>,
    /// The amount the rule asked for, when a cap awarded less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<i64>,
    /// `daily_cap` or `budget:<campaign>`, when a cap awarded less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped_by: Option<String>,
    /// Who made a manual adjustment (`rally.points`); `None` for a rule's award.
    /// Defaulted so ledger rows written before it existed still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The member whose rule credited this entry (`credit`); `None` for the member's
    /// own rules. Defaulted so older ledger rows still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A rule that fired (the rule history).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    pub rule: Name,
    pub member: Name,
    /// The trigger kind: `event`, `milestone`, `tier`, `inactive`, `returned`, `after`,
    /// `phase`, `schedule`.
    pub trigger: Name,
    #[serde(with = "utc")]
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Name>,
    /// The rule-set version that produced it.
    #[serde(default, skip_serializing_if = "Name::is_empty")]
    pub version: Name,
}

/// A rule that failed for this step and changed nothing (SPEC §2.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleFailure {
    pub rule: String,
    pub member: String,
    /// `path:line` of the rule, or of the failing line of its script.
    pub at: String,
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(rename = "time", with = "utc")]
    pub when: DateTime<Utc>,
}

/// Everything one step decided for one member.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub member: Member,
    pub ledger: Vec<LedgerEntry>,
    pub firings: Vec<Firing>,
    pub failures: Vec<RuleFailure>,
    /// Timers armed by this step (inactivity, delayed triggers), with their payload.
    pub timers_set: Vec<(TimerKey, Vec<u8>)>,
    /// Timers this step disarmed.
    pub timers_clear: Vec<TimerKey>,
    /// Points awarded per campaign by campaign-scoped rules (against their budgets).
    pub budget_spent: BTreeMap<String, i64>,
    /// Messages queued (the runner numbers them).
    pub messages: Vec<crate::outbox::OutboxRow>,
    /// Tickets opened.
    pub tickets: Vec<super::OpenedTicket>,
    /// Credits to other members, in the order they were made: the runner runs each
    /// credited member's step in the same commit group.
    pub credits: Vec<super::Credit>,
    /// The redemption a `redeem` event asked for, granted or refused.
    pub redemptions: Vec<crate::rewards::Redemption>,
    /// The member's rows on the boards whose score the step changed.
    pub leaderboards: Vec<crate::leaderboard::RankMove>,
    /// What the step ran short of in a cluster partition (`crate::shares`): the
    /// runner asks for more and runs the step again.
    pub shorts: Vec<crate::shares::Short>,
}

/// RFC 3339 UTC with `Z`, as every time in Rally's output.
pub mod utc {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::member::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}
