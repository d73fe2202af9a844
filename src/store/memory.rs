//! The in-memory backend: every keyspace an ordered map of the same bytes sled would
//! hold, for runs that need no durability (`sim`, `rally test`, replay, backtest) and
//! should go at the speed of the step.
//!
//! It holds exactly the keys and values the sled backend writes (keys without the
//! keyspace's prefix byte, one map per keyspace), so every encoding, ordering and
//! decoding rule of the store is shared, not copied:
//! - A `BTreeMap` orders byte strings as sled does (lexicographically), so scans,
//!   ranges and `first`/`last` give the rows in the same order.
//! - All the maps sit behind one lock, and a [`Batch`] is applied under it whole: a
//!   reader sees every write of a group or none, as with sled's batches.
//! - A scan ([`Cursor`]) holds no lock between rows: it remembers the last key it
//!   yielded and seeks past it for the next, so it sees rows written meanwhile as a
//!   sled iterator may, and a slow reader never stalls the writer.
//! - Values are [`IVec`]s, so handing one to a reader is a reference count (or a
//!   copy of at most 22 bytes), not a copy of the row.
//!
//! Nothing here fails: the only errors a memory store returns are the ones a test
//! injects through [`Faults`](super::Faults), checked by the callers as for sled.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sled::IVec;

use super::write::Batch;
use super::TreeId;

/// One map per keyspace, indexed by [`TreeId::index`].
pub(super) type Trees = [BTreeMap<Vec<u8>, IVec>; TreeId::COUNT];

#[derive(Default)]
pub(super) struct Memory {
    trees: RwLock<Trees>,
}

impl Memory {
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Trees> {
        // Writes below change the maps only through `BTreeMap`'s own methods, which
        // leave a map whole even if they panic, so a poisoned lock holds usable maps.
        self.trees.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, Trees> {
        self.trees.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, tree: TreeId, key: &[u8]) -> Option<IVec> {
        self.read()[tree.index()].get(key).cloned()
    }

    pub(super) fn contains_key(&self, tree: TreeId, key: &[u8]) -> bool {
        self.read()[tree.index()].contains_key(key)
    }

    #[cfg(test)]
    pub(super) fn insert(&self, tree: TreeId, key: &[u8], value: IVec) {
        self.write()[tree.index()].insert(key.to_vec(), value);
    }

    /// Replaces the row at `key` if there is one; returns whether there was.
    pub(super) fn replace_existing(&self, tree: TreeId, key: &[u8], value: IVec) -> bool {
        match self.write()[tree.index()].get_mut(key) {
            Some(row) => {
                *row = value;
                true
            }
            None => false,
        }
    }

    /// Applies every write of `batch`, in order, under one lock: readers see all of
    /// them or none.
    pub(super) fn apply(&self, batch: Batch) {
        let mut trees = self.write();
        for (tree, key, value) in batch.into_writes() {
            let rows = &mut trees[tree.index()];
            match value {
                Some(value) => {
                    rows.insert(key, value);
                }
                None => {
                    rows.remove(&key);
                }
            }
        }
    }
}

/// The rows of one keyspace between two bounds, in key order from either end.
pub(super) struct Cursor {
    memory: Arc<Memory>,
    tree: TreeId,
    /// Moves up past each row `next` yields.
    front: Bound<Vec<u8>>,
    /// Moves down past each row `next_back` yields.
    back: Bound<Vec<u8>>,
}

impl Cursor {
    pub(super) fn new(
        memory: Arc<Memory>,
        tree: TreeId,
        front: Bound<Vec<u8>>,
        back: Bound<Vec<u8>>,
    ) -> Cursor {
        Cursor {
            memory,
            tree,
            front,
            back,
        }
    }

    /// The rows from `prefix` on that start with it.
    pub(super) fn prefix(memory: Arc<Memory>, tree: TreeId, prefix: &[u8]) -> Cursor {
        let back = match successor(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        Cursor::new(memory, tree, Bound::Included(prefix.to_vec()), back)
    }

    pub(super) fn next(&mut self) -> Option<(IVec, IVec)> {
        let (key, value) = self.seek(|mut rows| rows.next())?;
        self.front = Bound::Excluded(key.to_vec());
        Some((key, value))
    }

    pub(super) fn next_back(&mut self) -> Option<(IVec, IVec)> {
        let (key, value) = self.seek(|mut rows| rows.next_back())?;
        self.back = Bound::Excluded(key.to_vec());
        Some((key, value))
    }

    fn seek(
        &self,
        pick: impl FnOnce(
            std::collections::btree_map::Range<'_, Vec<u8>, IVec>,
        ) -> Option<(&Vec<u8>, &IVec)>,
    ) -> Option<(IVec, IVec)> {
        // `BTreeMap::range` panics on a range that ends before it starts.
        if is_empty(&self.front, &self.back) {
            return None;
        }
        let trees = self.memory.read();
        let rows = trees[self.tree.index()].range((self.front.clone(), self.back.clone()));
        pick(rows).map(|(key, value)| (IVec::from(key.as_slice()), value.clone()))
    }
}

/// Whether no key can lie between `front` and `back`.
fn is_empty(front: &Bound<Vec<u8>>, back: &Bound<Vec<u8>>) -> bool {
    use Bound::{Excluded, Included, Unbounded};
    match (front, back) {
        (Unbounded, _) | (_, Unbounded) => false,
        (Included(start), Included(end)) => start > end,
        (Included(start) | Excluded(start), Included(end) | Excluded(end)) => start >= end,
    }
}

/// The smallest key greater than every key starting with `prefix`; `None` when there
/// is none (the prefix is empty or all `0xFF`).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&byte| byte != 0xFF)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefixs_successor_is_past_every_key_that_starts_with_it() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(successor(&[0xFF, 0xFF]), None);
        assert_eq!(successor(&[]), None);
    }

    #[test]
    fn empty_ranges_are_told_apart_from_ranges_of_one_key() {
        let key = || b"k".to_vec();
        assert!(!is_empty(&Bound::Included(key()), &Bound::Included(key())));
        assert!(is_empty(&Bound::Excluded(key()), &Bound::Included(key())));
        assert!(is_empty(&Bound::Included(key()), &Bound::Excluded(key())));
        assert!(is_empty(
            &Bound::Included(b"l".to_vec()),
            &Bound::Included(key())
        ));
        assert!(!is_empty(&Bound::Excluded(key()), &Bound::Unbounded));
    }
}
