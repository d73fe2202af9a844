//! One keyspace's rows in the in-memory store: a `BTreeMap` in sled's key order
//! (lexicographic bytes), whose searches compare keys a word at a time
//! ([`crate::lexical`]) instead of calling `memcmp` at every node they pass. A timer
//! or rank written at each step searches a map of one row per member, a score of
//! comparisons deep.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use sled::IVec;

use crate::lexical;

/// A keyspace's rows by key.
#[derive(Default)]
pub(super) struct Rows {
    map: BTreeMap<Key, IVec>,
}

impl Rows {
    pub(super) fn get(&self, key: &[u8]) -> Option<&IVec> {
        self.map.get(KeyBytes::of(key))
    }

    pub(super) fn get_mut(&mut self, key: &[u8]) -> Option<&mut IVec> {
        self.map.get_mut(KeyBytes::of(key))
    }

    pub(super) fn contains_key(&self, key: &[u8]) -> bool {
        self.map.contains_key(KeyBytes::of(key))
    }

    pub(super) fn insert(&mut self, key: Vec<u8>, value: IVec) {
        self.map.insert(Key(key), value);
    }

    pub(super) fn remove(&mut self, key: &[u8]) {
        self.map.remove(KeyBytes::of(key));
    }

    /// The rows between two bounds, in key order from either end. The bounds must
    /// not cross (`BTreeMap::range` panics if they do).
    pub(super) fn range<'a>(
        &'a self,
        (front, back): (Bound<&[u8]>, Bound<&[u8]>),
    ) -> impl DoubleEndedIterator<Item = (&'a [u8], &'a IVec)> + 'a {
        self.map
            .range::<KeyBytes, _>((front.map(KeyBytes::of), back.map(KeyBytes::of)))
            .map(|(key, value)| (key.0.as_slice(), value))
    }
}

/// A row's key, owned.
#[derive(Clone, PartialEq, Eq)]
struct Key(Vec<u8>);

/// A row's key, borrowed: what the map is searched by.
#[derive(PartialEq, Eq)]
#[repr(transparent)]
struct KeyBytes([u8]);

impl KeyBytes {
    fn of(bytes: &[u8]) -> &KeyBytes {
        // SAFETY: `KeyBytes` is a `repr(transparent)` wrapper of `[u8]`, so a
        // reference to one has the layout (pointer and length) and the lifetime of a
        // reference to the other.
        unsafe { &*(bytes as *const [u8] as *const KeyBytes) }
    }
}

impl Borrow<KeyBytes> for Key {
    fn borrow(&self) -> &KeyBytes {
        KeyBytes::of(&self.0)
    }
}

// `Key` orders as the `KeyBytes` it borrows as, as `Borrow` requires: by its bytes.
impl Ord for KeyBytes {
    fn cmp(&self, other: &Self) -> Ordering {
        lexical::cmp(&self.0, &other.0)
    }
}

impl PartialOrd for KeyBytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        KeyBytes::of(&self.0).cmp(KeyBytes::of(&other.0))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys in an order a map of plain byte vectors keeps them in, read back the same
    /// way: by key, in ranges from either end.
    #[test]
    fn keeps_and_ranges_rows_as_a_map_of_byte_vectors_does() {
        let keys: Vec<Vec<u8>> = [
            &b"t\x00\x00\x01m-1"[..],
            b"t\x00\x00\x01m-10",
            b"t\x00\x00\x01m-2",
            b"t\x00\x00\x02",
            b"t",
            b"",
            b"\xff\xff",
            b"r.weekly.2026-W48.\x00\x00\x00\x00\x00\x00\x00\x2a.m-7",
            b"r.weekly.2026-W48.\x00\x00\x00\x00\x00\x00\x01\x00.m-7",
        ]
        .iter()
        .map(|key| key.to_vec())
        .collect();
        let mut rows = Rows::default();
        let mut plain = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            rows.insert(key.clone(), IVec::from(&[i as u8][..]));
            plain.insert(key.clone(), IVec::from(&[i as u8][..]));
        }
        rows.remove(b"t");
        plain.remove(&b"t"[..]);
        let listed = |rows: &Rows, bounds| -> Vec<Vec<u8>> {
            rows.range(bounds).map(|(key, _)| key.to_vec()).collect()
        };
        let expected = |bounds: (Bound<&[u8]>, Bound<&[u8]>)| -> Vec<Vec<u8>> {
            plain
                .range::<[u8], _>(bounds)
                .map(|(key, _)| key.clone())
                .collect()
        };
        for from in &keys {
            assert_eq!(rows.get(from), plain.get(from.as_slice()));
            assert_eq!(rows.contains_key(from), plain.contains_key(from.as_slice()));
            for to in keys.iter().filter(|to| from <= *to) {
                for bounds in [
                    (Bound::Included(&from[..]), Bound::Included(&to[..])),
                    (Bound::Included(&from[..]), Bound::Excluded(&to[..])),
                    (Bound::Excluded(&from[..]), Bound::Unbounded),
                    (Bound::Unbounded, Bound::Excluded(&to[..])),
                ] {
                    assert_eq!(listed(&rows, bounds), expected(bounds), "{bounds:?}");
                    let backwards: Vec<Vec<u8>> = rows
                        .range(bounds)
                        .rev()
                        .map(|(key, _)| key.to_vec())
                        .collect();
                    let mut reversed = expected(bounds);
                    reversed.reverse();
                    assert_eq!(backwards, reversed);
                }
            }
        }
        if let Some(row) = rows.get_mut(b"") {
            *row = IVec::from(&b"changed"[..]);
        }
        assert_eq!(
            rows.get(b"").map(|row| row.to_vec()),
            Some(b"changed".to_vec())
        );
    }
}
