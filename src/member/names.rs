//! Maps keyed by a short name — a member's counters, and the bookkeeping kept per rule,
//! reward, counter or leaderboard — as one vector sorted by name, each name inline
//! when it fits in 23 bytes (every built-in name and most rule ids do).
//!
//! A step reads and writes the same few entries many times: the milestone watch walks
//! the counters after every change, the metrics read two before and after, a rule with
//! a `limit` reads and rewrites its period, every step checks each resetting counter's
//! period. A sorted map of heap strings made each of those reads chase pointers into
//! cold memory; here a member's entries are one contiguous block, and a search or a
//! walk touches a few cache lines.
//!
//! It iterates, serializes and compares in name order, as the `BTreeMap` it replaced
//! did, so every stored row and every output is unchanged.

use std::cmp::Ordering;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use smartstring::{Compact, SmartString};

use crate::lexical;

/// Maps up to this long are scanned, longer ones searched (see [`NameMap::search`]).
const SCANNED: usize = 16;

/// A name, key or id kept inline when it fits in 23 bytes — a map's key here, and
/// elsewhere a rule's or member's id, a tier, a period's key — so reading it does not
/// chase a pointer; written and read (serde) as the string it is.
pub type Name = SmartString<Compact>;

/// Values by name, in name order.
#[derive(Clone, PartialEq)]
pub struct NameMap<V> {
    /// Sorted by name; each name at most once.
    entries: Vec<(Name, V)>,
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap {
            entries: Vec::new(),
        }
    }
}

impl<V> NameMap<V> {
    pub fn new() -> Self {
        NameMap::default()
    }

    /// Where `name` is, or where it would go. A member holds a dozen entries or so:
    /// a scan, which mostly settles each name on its first word, costs less than a
    /// binary search's unpredictable branches. A longer map is searched.
    fn search(&self, name: &str) -> Result<usize, usize> {
        let name = name.as_bytes();
        if self.entries.len() > SCANNED {
            return self
                .entries
                .binary_search_by(|(key, _)| lexical::cmp(key.as_bytes(), name));
        }
        for (at, (key, _)) in self.entries.iter().enumerate() {
            match lexical::cmp(key.as_bytes(), name) {
                Ordering::Less => {}
                Ordering::Equal => return Ok(at),
                Ordering::Greater => return Err(at),
            }
        }
        Err(self.entries.len())
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.search(name).ok().map(|at| &self.entries[at].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        match self.search(name) {
            Ok(at) => Some(&mut self.entries[at].1),
            Err(_) => None,
        }
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.search(name).is_ok()
    }

    /// Sets `name`'s value; returns its previous one, if it had one.
    pub fn insert(&mut self, name: &str, value: V) -> Option<V> {
        match self.search(name) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (Name::from(name), value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<V> {
        self.search(name).ok().map(|at| self.entries.remove(at).1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Starts fetching the entries into the cache (see [`crate::prefetch`]).
    pub fn prefetch(&self) {
        crate::prefetch::bytes(
            self.entries.as_ptr(),
            std::mem::size_of_val(self.entries.as_slice()),
        );
    }

    /// Every entry, in name order.
    pub fn iter(&self) -> Iter<'_, V> {
        self.entries.iter().map(entry)
    }

    /// Every name, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        self.entries.iter().map(|(name, _)| name.as_str())
    }

    /// A reader that finds names asked for in sorted order by walking forward, never
    /// searching again from the start (see [`Walk::value`]).
    pub fn walk(&self) -> Walk<'_, V> {
        Walk {
            rest: &self.entries,
        }
    }
}

/// Reads entries by names asked for in ascending order, in one pass over them.
pub struct Walk<'a, V> {
    rest: &'a [(Name, V)],
}

impl<'a, V> Walk<'a, V> {
    /// The value of `name`, which must not sort before any name asked for earlier
    /// (a name out of order reads as absent); `None` when there is none.
    pub fn value(&mut self, name: &str) -> Option<&'a V> {
        let name = name.as_bytes();
        while let Some(((key, value), rest)) = self.rest.split_first() {
            match lexical::cmp(key.as_bytes(), name) {
                Ordering::Less => self.rest = rest,
                Ordering::Equal => {
                    self.rest = rest;
                    return Some(value);
                }
                Ordering::Greater => return None,
            }
        }
        None
    }
}

impl<V: fmt::Debug> fmt::Debug for NameMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The entries in name order ([`NameMap::iter`]).
pub type Iter<'a, V> =
    std::iter::Map<std::slice::Iter<'a, (Name, V)>, fn(&'a (Name, V)) -> (&'a str, &'a V)>;

fn entry<V>((name, value): &(Name, V)) -> (&str, &V) {
    (name.as_str(), value)
}

impl<'a, V> IntoIterator for &'a NameMap<V> {
    type Item = (&'a str, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<N: AsRef<str>, V> FromIterator<(N, V)> for NameMap<V> {
    /// Later values of a repeated name replace earlier ones, as a map's inserts do.
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let mut map = NameMap::new();
        for (name, value) in pairs {
            map.insert(name.as_ref(), value);
        }
        map
    }
}

/// A map of names to values, in name order: what a `BTreeMap<String, V>` writes.
impl<V: Serialize> Serialize for NameMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for NameMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(NameMapVisitor(PhantomData))
    }
}

struct NameMapVisitor<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for NameMapVisitor<V> {
    type Value = NameMap<V>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of names to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = NameMap::new();
        while let Some((name, value)) = access.next_entry::<String, V>()? {
            map.insert(&name, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::money::Decimal;

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
        let mut counters = NameMap::new();
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
        let counters: NameMap<Decimal> = NAMES
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
                assert_eq!(walk.value(name), counters.get(name), "{some:?}");
            }
        }
    }

    #[test]
    fn stores_the_bytes_a_sorted_map_stores_and_reads_them_back() {
        let map: BTreeMap<String, (String, u32)> = NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_string(), (format!("2026-W{i:02}"), i as u32)))
            .collect();
        let names: NameMap<(String, u32)> = map.clone().into_iter().collect();
        let bytes = rmp_serde::to_vec(&names).unwrap();
        assert_eq!(bytes, rmp_serde::to_vec(&map).unwrap());
        let back: NameMap<(String, u32)> = rmp_serde::from_slice(&bytes).unwrap();
        assert!(back == names);
        // Rows are not always written in order (JSON a person wrote, say).
        let json = r#"{"b": ["x", 2], "a": ["y", 1], "b": ["z", 3]}"#;
        let read: NameMap<(String, u32)> = serde_json::from_str(json).unwrap();
        let listed: Vec<(&str, &(String, u32))> = read.iter().collect();
        assert_eq!(listed, [("a", &("y".into(), 1)), ("b", &("z".into(), 3))]);
    }
}
