//! One board's ranking in one period, kept as an ordered index: rows sorted by score
//! (highest first), then by who reached that score first, then by member id; and a
//! per-member pointer to the member's row, so a gain moves one row instead of
//! re-sorting the board.
//!
//! Ties are broken, never shared: two members on the same score are ranked by which
//! of them reached it first (the earlier step), and — should they have reached it in
//! the same step number — by member id. Every process that sees the same steps in the
//! same order ranks them the same.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::money::Decimal;

/// The sort key of one member's row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    score: Reverse<Decimal>,
    /// The number of the step at which the member reached this score.
    reached: u64,
    member: String,
}

/// One member's place on a board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    /// 1 for the first place.
    pub rank: usize,
    pub member: String,
    pub score: Decimal,
}

#[derive(Clone, Debug, Default)]
pub struct Standings {
    rows: BTreeSet<Row>,
    /// member → (score, reached): where the member's row is, to remove it on a gain.
    by_member: BTreeMap<String, (Decimal, u64)>,
}

impl Standings {
    /// Adds `gain` to `member`'s score at step number `step` (steps are numbered in
    /// the order they ran). A zero gain changes nothing, not even who reached first.
    pub fn add(&mut self, member: &str, gain: Decimal, step: u64) {
        if gain.is_zero() {
            return;
        }
        let score = match self.by_member.get(member) {
            Some(&(score, reached)) => {
                self.rows.remove(&Row {
                    score: Reverse(score),
                    reached,
                    member: member.to_string(),
                });
                score + gain
            }
            None => gain,
        };
        self.rows.insert(Row {
            score: Reverse(score.normalize()),
            reached: step,
            member: member.to_string(),
        });
        self.by_member
            .insert(member.to_string(), (score.normalize(), step));
    }

    /// The first `n` places, best first.
    pub fn top(&self, n: usize) -> Vec<Standing> {
        self.rows
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, row)| Standing {
                rank: i + 1,
                member: row.member.clone(),
                score: row.score.0,
            })
            .collect()
    }

    /// How many members have a score in this period.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
