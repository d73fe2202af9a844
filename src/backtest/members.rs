//! Members whose end state differs between two runs: counts per kind of difference,
//! a few examples of each, and where tiers moved.
//!
//! Examples are the first [`EXAMPLES`] members by id: the same runs always show the
//! same members, and a reader can look them up in either document.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Serialize;

use super::summary::MemberEnd;
use crate::money;

/// Examples kept per kind of difference.
pub const EXAMPLES: usize = 5;

/// How many members differ in one way, and the first few of them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Differing<E> {
    pub count: u64,
    pub examples: Vec<E>,
}

// By hand: derived, it would ask `E: Default`, which no example needs.
impl<E> Default for Differing<E> {
    fn default() -> Self {
        Differing {
            count: 0,
            examples: Vec::new(),
        }
    }
}

impl<E> Differing<E> {
    fn note(&mut self, example: impl FnOnce() -> E) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(example());
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierExample {
    pub member: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// Badges or tags: what B has that A had not, and the reverse.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetExample {
    pub member: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointsExample {
    pub member: String,
    #[serde(serialize_with = "decimal")]
    pub a: Decimal,
    #[serde(serialize_with = "decimal")]
    pub b: Decimal,
}

fn decimal<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    money::to_json(*d).serialize(s)
}

/// Members who ended in tier `from` in A and `to` in B (`None`: no tier).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierMove {
    pub from: Option<String>,
    pub to: Option<String>,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemberDiff {
    /// Members in both runs: the ones compared below.
    pub compared: u64,
    /// Members in both whose tier, badges, tags or points differ.
    pub changed: u64,
    pub only_in_a: Differing<String>,
    pub only_in_b: Differing<String>,
    pub tier: Differing<TierExample>,
    pub badges: Differing<SetExample>,
    pub tags: Differing<SetExample>,
    pub points: Differing<PointsExample>,
    /// Every (from, to) pair of tiers that differ, by from then to (no tier first).
    pub tier_moves: Vec<TierMove>,
}

fn set_example(member: &str, a: &BTreeSet<String>, b: &BTreeSet<String>) -> SetExample {
    SetExample {
        member: member.to_string(),
        added: b.difference(a).cloned().collect(),
        removed: a.difference(b).cloned().collect(),
    }
}

pub fn compare_members(
    a: &BTreeMap<String, MemberEnd>,
    b: &BTreeMap<String, MemberEnd>,
) -> MemberDiff {
    let mut diff = MemberDiff::default();
    let mut moves: BTreeMap<(Option<&str>, Option<&str>), u64> = BTreeMap::new();
    for (id, ma) in a {
        let Some(mb) = b.get(id) else {
            diff.only_in_a.note(|| id.clone());
            continue;
        };
        diff.compared += 1;
        let mut changed = false;
        if ma.tier != mb.tier {
            changed = true;
            *moves
                .entry((ma.tier.as_deref(), mb.tier.as_deref()))
                .or_default() += 1;
            diff.tier.note(|| TierExample {
                member: id.clone(),
                a: ma.tier.clone(),
                b: mb.tier.clone(),
            });
        }
        if ma.badges != mb.badges {
            changed = true;
            diff.badges.note(|| set_example(id, &ma.badges, &mb.badges));
        }
        if ma.tags != mb.tags {
            changed = true;
            diff.tags.note(|| set_example(id, &ma.tags, &mb.tags));
        }
        if ma.points != mb.points {
            changed = true;
            diff.points.note(|| PointsExample {
                member: id.clone(),
                a: ma.points,
                b: mb.points,
            });
        }
        if changed {
            diff.changed += 1;
        }
    }
    for id in b.keys().filter(|id| !a.contains_key(*id)) {
        diff.only_in_b.note(|| id.clone());
    }
    diff.tier_moves = moves
        .into_iter()
        .map(|((from, to), count)| TierMove {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            count,
        })
        .collect();
    diff
}
