//! What one partition of a cluster may spend of what every member shares: points of
//! campaign budgets, units and codes of rewards, ticket numbers (docs/cluster.md,
//! "Global state"). The single process has no shares: its steps see the whole.
//!
//! Invariants:
//! - shares only grow, by [`Grant`]s; each grant is recorded at the stream sequence
//!   of the message it was asked for, so a replay holds it from the start of that
//!   message, as the owner did from the moment it asked;
//! - a step that ran short of a share says so ([`Short`]); the runner asks for more
//!   and runs the step again, so the step that counts saw the grant, as the replay's
//!   step does. A step sees more room only as less clipping, so the steps of the same
//!   message that ran before the grant come out the same either way.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What a partition holds of the shared pools.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Shares {
    /// Points of each campaign's budget granted, in total.
    pub budget: BTreeMap<String, i64>,
    /// Units of each reward's stock granted, in total.
    pub stock: BTreeMap<String, u64>,
    /// Codes of each reward's pool granted.
    pub codes: BTreeMap<String, BTreeSet<String>>,
    /// Ticket numbers granted: `(first, count)` runs, in the order granted (which is
    /// also the order of the numbers: the cluster's counter only goes up).
    pub tickets: Vec<(u64, u64)>,
    /// Pools found spent ([`Short::pool`]), with the version of the rules they were
    /// found spent under: not asked again until the rules change (a reload may raise a
    /// budget or a stock).
    pub spent: BTreeMap<String, String>,
}

/// More of one pool for one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Grant {
    Budget {
        campaign: String,
        points: i64,
    },
    Stock {
        reward: String,
        units: u64,
    },
    Codes {
        reward: String,
        codes: Vec<String>,
    },
    Tickets {
        first: u64,
        count: u64,
    },
    /// Nothing: the pool had nothing left under rules `rules` (their version).
    Spent {
        pool: String,
        rules: String,
    },
}

/// What a step ran short of: its outcome holds less than the rules would give (an
/// award clipped, a redemption refused, a ticket not opened) because this partition's
/// share ran out, not (as far as the partition knows) the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Short {
    /// The award wanted `points` more than the share left.
    Budget {
        campaign: String,
        points: i64,
    },
    Stock {
        reward: String,
    },
    Codes {
        reward: String,
    },
    Tickets,
}

impl Short {
    /// The pool it draws from, as [`Shares::spent`] names it.
    pub fn pool(&self) -> String {
        match self {
            Short::Budget { campaign, .. } => format!("budget:{campaign}"),
            Short::Stock { reward } => format!("stock:{reward}"),
            Short::Codes { reward } => format!("codes:{reward}"),
            Short::Tickets => "tickets".to_string(),
        }
    }
}

impl Shares {
    /// Adds a grant.
    pub fn add(&mut self, grant: &Grant) {
        match grant {
            Grant::Budget { campaign, points } => {
                *self.budget.entry(campaign.clone()).or_insert(0) += points;
            }
            Grant::Stock { reward, units } => {
                *self.stock.entry(reward.clone()).or_insert(0) += units;
            }
            Grant::Codes { reward, codes } => {
                self.codes
                    .entry(reward.clone())
                    .or_default()
                    .extend(codes.iter().cloned());
            }
            Grant::Tickets { first, count } => self.tickets.push((*first, *count)),
            Grant::Spent { pool, rules } => {
                self.spent.insert(pool.clone(), rules.clone());
            }
        }
    }

    /// Whether `short`'s pool was found spent under the rules of version `rules`.
    pub fn is_spent(&self, short: &Short, rules: &str) -> bool {
        self.spent
            .get(&short.pool())
            .is_some_and(|version| version == rules)
    }

    /// Points of `campaign`'s budget granted.
    pub fn budget(&self, campaign: &str) -> i64 {
        self.budget.get(campaign).copied().unwrap_or(0)
    }

    /// Units of `reward` granted.
    pub fn stock(&self, reward: &str) -> u64 {
        self.stock.get(reward).copied().unwrap_or(0)
    }

    /// Whether `code` of `reward`'s pool is granted.
    pub fn has_code(&self, reward: &str, code: &str) -> bool {
        self.codes
            .get(reward)
            .is_some_and(|codes| codes.contains(code))
    }

    /// The `k`-th ticket number (from 0) at or after `next` among those granted.
    pub fn ticket_number(&self, next: u64, k: usize) -> Option<u64> {
        let mut skip = k as u64;
        for &(first, count) in &self.tickets {
            let end = first.saturating_add(count);
            let start = first.max(next);
            if start >= end {
                continue;
            }
            let here = end - start;
            if skip < here {
                return Some(start + skip);
            }
            skip -= here;
        }
        None
    }
}
