//! `history` rows: what one step recorded for one member — its ledger entries and its
//! rule firings — stored together so that a step costs one row, not one per entry.

use serde::{Deserialize, Serialize};

use crate::engine::{Firing, LedgerEntry};

/// A row as written: borrowed from the step.
#[derive(Default, Serialize)]
pub(super) struct NewRow<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ledger: Vec<&'a LedgerEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub firings: Vec<&'a Firing>,
}

/// A row as read back.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct Row {
    pub ledger: Vec<LedgerEntry>,
    pub firings: Vec<Firing>,
}

/// A step's ledger entries and firings, one row per member in the order the members
/// first appear (a step's entries all belong to its member, but nothing relies on it).
pub(super) fn rows<'a>(
    ledger: &'a [LedgerEntry],
    firings: &'a [Firing],
) -> Vec<(&'a str, NewRow<'a>)> {
    fn row<'a, 'r>(
        rows: &'r mut Vec<(&'a str, NewRow<'a>)>,
        member: &'a str,
    ) -> &'r mut NewRow<'a> {
        let index = match rows.iter().position(|(m, _)| *m == member) {
            Some(index) => index,
            None => {
                rows.push((member, NewRow::default()));
                rows.len() - 1
            }
        };
        &mut rows[index].1
    }
    let mut rows = Vec::new();
    for entry in ledger {
        row(&mut rows, &entry.member).ledger.push(entry);
    }
    for firing in firings {
        row(&mut rows, &firing.member).firings.push(firing);
    }
    rows
}

/// How many rows [`rows`] would make, one per member among the entries and firings,
/// without making them (a step has a handful of either: no allocation beats a set).
pub(super) fn row_count(ledger: &[LedgerEntry], firings: &[Firing]) -> u64 {
    let member = |i: usize| match ledger.get(i) {
        Some(entry) => entry.member.as_str(),
        None => firings[i - ledger.len()].member.as_str(),
    };
    let all = ledger.len() + firings.len();
    // Mostly every entry and firing is the step's own member's.
    if all > 0 && (1..all).all(|i| member(i) == member(0)) {
        return 1;
    }
    let first_seen = (0..all).filter(|&i| (0..i).all(|j| member(j) != member(i)));
    first_seen.count() as u64
}
