//! A member's counters: a few names (the built-in ones, `events.<type>`, the rules'
//! own) with their exact values.
//!
//! Kept as one vector sorted by name, each name inline when it fits in 23 bytes (every
//! built-in name and most custom ones do). A step reads and writes the same dozen
//! counters many times — the milestone watch walks them after every change, the
//! metrics read two before and after, the leaderboards one — and a sorted map of heap
//! strings made each of those reads chase pointers into cold memory. Here a member's
//! counters are one contiguous block: a search or a walk touches a few cache lines.
//!
//! It iterates in name order, as the map it replaced did, so every output that lists
//! counters, and the stored row, is unchanged.

use std::fmt;

use smartstring::{Compact, SmartString};

use crate::money::Decimal;

/// A counter's name, inline when short.
type Name = SmartString<Compact>;

/// A member's counters by name, in name order.
#[derive(Clone, Default, PartialEq)]
pub struct Counters {
    /// Sorted by name; each name at most once.
    entries: Vec<(Name, Decimal)>,
}

impl Counters {
    pub fn new() -> Self {
        Counters::default()
    }

    fn search(&self, name: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(key, _)| key.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&Decimal> {
        self.search(name).ok().map(|at| &self.entries[at].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Decimal> {
        match self.search(name) {
            Ok(at) => Some(&mut self.entries[at].1),
            Err(_) => None,
        }
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.search(name).is_ok()
    }

    /// Sets a counter; returns its previous value, if it had one.
    pub fn insert(&mut self, name: &str, value: Decimal) -> Option<Decimal> {
        match self.search(name) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (Name::from(name), value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Decimal> {
        self.search(name).ok().map(|at| self.entries.remove(at).1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every counter, in name order.
    pub fn iter(&self) -> Iter<'_> {
        self.entries.iter().map(entry)
    }

    /// Every counter's name, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        self.entries.iter().map(|(name, _)| name.as_str())
    }

    /// A reader that finds names asked for in sorted order by walking forward, never
    /// searching again from the start (see [`Walk::value`]).
    pub fn walk(&self) -> Walk<'_> {
        Walk {
            rest: &self.entries,
        }
    }
}

/// Reads counters by names asked for in ascending order, in one pass over them.
pub struct Walk<'a> {
    rest: &'a [(Name, Decimal)],
}

impl Walk<'_> {
    /// The value of `name`, which must not sort before any name asked for earlier
    /// (a name out of order reads as absent); `None` when the member lacks it.
    pub fn value(&mut self, name: &str) -> Option<Decimal> {
        while let Some(((key, _), rest)) = self.rest.split_first() {
            if !before(key, name) {
                break;
            }
            self.rest = rest;
        }
        match self.rest.split_first() {
            Some(((key, value), rest)) if key.as_str() == name => {
                self.rest = rest;
                Some(*value)
            }
            _ => None,
        }
    }
}

/// `a < b` as strings order, settled on the first byte when the first bytes differ
/// (most counter names a walk passes differ from the one it looks for right there).
fn before(a: &str, b: &str) -> bool {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x < y,
        _ => a < b,
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The counters in name order ([`Counters::iter`]).
pub type Iter<'a> = std::iter::Map<
    std::slice::Iter<'a, (Name, Decimal)>,
    fn(&'a (Name, Decimal)) -> (&'a str, &'a Decimal),
>;

fn entry((name, value): &(Name, Decimal)) -> (&str, &Decimal) {
    (name.as_str(), value)
}

impl<'a> IntoIterator for &'a Counters {
    type Item = (&'a str, &'a Decimal);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<N: AsRef<str>> FromIterator<(N, Decimal)> for Counters {
    /// Later values of a repeated name replace earlier ones, as a map's inserts do.
    fn from_iter<I: IntoIterator<Item = (N, Decimal)>>(pairs: I) -> Self {
        let mut counters = Counters::new();
        for (name, value) in pairs {
            counters.insert(name.as_ref(), value);
        }
        counters
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Names that stay inline, one that does not (24 bytes), non-ASCII, and the empty one.
    const NAMES: [&str; 9] = [
        "purchases",
        "events.checkin",
        "checkin_streak",
        "a_counter_name_of_24_byt",
        "checkin_best",
        "é",
        "",
        "spend_total",
        "B",
    ];

    #[test]
    fn reads_and_writes_as_a_sorted_map_does() {
        let mut counters = Counters::new();
        let mut map = BTreeMap::new();
        for (i, name) in NAMES.iter().chain(NAMES.iter().rev()).enumerate() {
            let value = Decimal::from(i);
            assert_eq!(
                counters.insert(name, value),
                map.insert(name.to_string(), value)
            );
            assert_eq!(counters.len(), map.len());
        }
        let listed: Vec<(String, Decimal)> =
            counters.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let expected: Vec<(String, Decimal)> = map.clone().into_iter().collect();
        assert_eq!(listed, expected);
        for name in NAMES.iter().copied().chain(["absent", "zzz", "a"]) {
            assert_eq!(counters.get(name), map.get(name), "{name:?}");
            assert_eq!(counters.contains_key(name), map.contains_key(name));
        }
        if let Some(value) = counters.get_mut("purchases") {
            *value = Decimal::from(99);
        }
        assert_eq!(counters.get("purchases"), Some(&Decimal::from(99)));
        assert_eq!(counters.remove("é"), map.remove("é"));
        assert_eq!(counters.remove("é"), None);
        assert_eq!(counters.len(), map.len());
        assert!(!counters.is_empty());
    }

    #[test]
    fn a_walk_reads_what_a_search_per_name_reads() {
        let counters: Counters = NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| (*name, Decimal::from(i + 1)))
            .collect();
        let mut asked: Vec<&str> = NAMES
            .iter()
            .copied()
            .chain(["a", "checkin", "checkin_bests", "zzz", "events"])
            .collect();
        asked.sort();
        asked.dedup();
        // Every subset of the sorted names, by bit mask.
        for mask in 0u32..(1 << asked.len()) {
            let some: Vec<&str> = asked
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, name)| *name)
                .collect();
            let mut walk = counters.walk();
            for name in &some {
                assert_eq!(walk.value(name), counters.get(name).copied(), "{some:?}");
            }
        }
    }

    #[test]
    fn before_orders_names_as_strings_do() {
        let names = [
            "",
            "a",
            "ab",
            "b",
            "B",
            "checkin_best",
            "checkins",
            "é",
            "e",
            "zz",
        ];
        for a in names {
            for b in names {
                assert_eq!(before(a, b), a < b, "{a:?} {b:?}");
            }
        }
    }
}
