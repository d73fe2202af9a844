//! The in-memory backend: every keyspace a map of the rows sled would hold, for runs
//! that need no durability (`sim`, `rally test`, replay, backtest) and should go at the
//! speed of the step.
//!
//! It holds the keys sled holds (without the keyspace's prefix byte, one map per
//! keyspace), so the store's encodings, orderings and decodings are shared, not
//! copied:
//! - A `BTreeMap` orders byte strings as sled does (lexicographically), so scans,
//!   ranges and `first`/`last` give the rows in the same order ([`Rows`]).
//! - All the maps sit behind one lock, and a [`Batch`] is applied under it whole: a
//!   reader sees every write of a group or none, as with sled's batches.
//! - A scan ([`Cursor`]) holds no lock between rows: it remembers the last key it
//!   yielded and seeks past it for the next, so it sees rows written meanwhile as a
//!   sled iterator may, and a slow reader never stalls the writer.
//! - Values are [`IVec`]s, so handing one to a reader is a reference count (or a
//!   copy of at most 22 bytes), not a copy of the row.
//!
//! Where it departs from sled's rows, for speed and size ([`Tables`]):
//! - Members are kept decoded: encoding every step's member would cost more than the
//!   rest of a commit. The writer checks a member out for a step and the commit hands
//!   the new state back ([`Store::check_out_member`](super::Store::check_out_member)),
//!   so a member is moved, never copied, on the way through a step. Read as rows (a test, a scan of the keyspace) they are encoded
//!   on the way out, so they read as sled's would; a member row that does not decode
//!   cannot be stored at all.
//! - Seen event ids are a hash set of ids: looked up one at a time, never scanned in
//!   order (a scan still works, by searching the whole set), and their value is always
//!   [`SEEN_APPLIED`].
//! - `history` rows may be left out altogether
//!   ([`Store::in_memory_without_history`](super::Store::in_memory_without_history)).
//!
//! Nothing here fails: the only errors a memory store returns are the ones a test
//! injects through [`Faults`](super::Faults), checked by the callers as for sled.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sled::IVec;

use super::memory_members::Members;
use super::memory_rows::Rows;
use super::write::{self, Batch};
use super::{read, Prefetch, TreeId, SEEN_APPLIED};
use crate::member::Member;

/// How many members ahead a run over members in id order fetches their places (see
/// [`Memory::members_after`]).
const PLACES_AHEAD: usize = 3;

/// Every keyspace's rows.
#[derive(Default)]
pub(super) struct Tables {
    /// The keyspaces kept as bytes, by [`TreeId::index`]; the maps of `members` and
    /// `seen` stay empty (they are kept below).
    rows: [Rows; TreeId::COUNT],
    /// Members as they are: every step rewrites its member, and encoding it (as sled
    /// must) would cost more than the rest of the commit.
    members: Members,
    /// Ids of the events applied. Only ever looked up one id at a time, so hashed, not
    /// ordered; and the row's value is always [`SEEN_APPLIED`], so only the id is
    /// kept. One per event ever applied: the smallest form keeps the most.
    seen: HashSet<Box<[u8]>, Hashing>,
}

pub(super) struct Memory {
    tables: RwLock<Tables>,
    /// Whether `history` rows are kept (see [`Store::in_memory_without_history`]).
    ///
    /// [`Store::in_memory_without_history`]: super::Store::in_memory_without_history
    pub(super) keeps_history: bool,
}

impl Memory {
    pub(super) fn new(keeps_history: bool) -> Memory {
        Memory {
            tables: RwLock::default(),
            keeps_history,
        }
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, Tables> {
        // Writes below change the maps only through their own methods, which leave a
        // map whole even if they panic, so a poisoned lock holds usable maps.
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, tree: TreeId, key: &[u8]) -> Option<IVec> {
        self.read().get(tree, key)
    }

    pub(super) fn contains_key(&self, tree: TreeId, key: &[u8]) -> bool {
        let tables = self.read();
        match tree {
            TreeId::Seen => tables.seen.contains(key),
            TreeId::Members => member_id(key).is_some_and(|id| tables.members.get(id).is_some()),
            _ => tables.rows[tree.index()].contains_key(key),
        }
    }

    #[cfg(test)]
    pub(super) fn insert(&self, tree: TreeId, key: &[u8], value: IVec) {
        self.write().put(tree, key.to_vec(), value);
    }

    /// Replaces the row at `key` if there is one; returns whether there was. For the
    /// keyspaces kept as bytes (the outbox's rows, here).
    pub(super) fn replace_existing(&self, tree: TreeId, key: &[u8], value: IVec) -> bool {
        match self.write().rows[tree.index()].get_mut(key) {
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
        let mut tables = self.write();
        let (writes, members) = batch.into_parts();
        for (tree, key, value) in writes {
            match value {
                Some(value) => tables.put(tree, key, value),
                None => tables.remove(tree, &key),
            }
        }
        tables.members.put_all(members);
    }

    /// The member with this id, as committed.
    pub(super) fn member(&self, id: &str) -> Option<Member> {
        self.read().members.get(id).cloned()
    }

    /// The member with this id, taken out of the store (see
    /// [`Store::check_out_member`](super::Store::check_out_member)).
    pub(super) fn check_out(&self, id: &str) -> Option<Member> {
        self.write().members.check_out(id)
    }

    pub(super) fn prefetch(&self, ahead: &[(&str, Prefetch)]) {
        let tables = self.read();
        for &(id, depth) in ahead {
            tables.members.prefetch(id, depth);
        }
    }

    /// Up to `max` members after `after`, in id order.
    pub(super) fn members_after(&self, after: Bound<&str>, max: usize) -> Vec<Member> {
        let tables = self.read();
        let members = &tables.members;
        // Copied one after the other from wherever each lies: the places of the next
        // few are fetched ahead, and the contents of the next (see `crate::prefetch`).
        let bounds = (after, Bound::Unbounded);
        let mut places_ahead = members.ids(bounds).skip(PLACES_AHEAD);
        let mut next = members.ids(bounds).skip(1);
        let mut copied = Vec::with_capacity(max.min(members.len()));
        for (_, member) in members.range(bounds).take(max) {
            if let Some(id) = places_ahead.next() {
                members.prefetch(id, Prefetch::Place);
            }
            if let Some(id) = next.next() {
                members.prefetch(id, Prefetch::Member);
            }
            copied.push(member.clone());
        }
        copied
    }

    /// Every member, in id order, taken out of the store (see
    /// [`Store::take_members`](super::Store::take_members)).
    pub(super) fn take_members(&self) -> Vec<Member> {
        self.write().members.take_all()
    }

    pub(super) fn member_count(&self) -> usize {
        self.read().members.len()
    }
}

/// foldhash: a few times faster than std's SipHash on short ids, and seeded per
/// process as std's is, so ids chosen to collide cannot be planned ahead. Nothing is
/// read in hash order.
pub(super) type Hashing = foldhash::fast::RandomState;

impl Tables {
    /// The map of a keyspace kept as bytes (any but `members` and `seen`).
    pub(super) fn rows_mut(&mut self, tree: TreeId) -> &mut Rows {
        &mut self.rows[tree.index()]
    }

    fn get(&self, tree: TreeId, key: &[u8]) -> Option<IVec> {
        match tree {
            TreeId::Seen => self.seen.contains(key).then(|| IVec::from(SEEN_APPLIED)),
            TreeId::Members => {
                let member = self.members.get(member_id(key)?)?;
                write::encode_member(key, member).ok().map(IVec::from)
            }
            _ => self.rows[tree.index()].get(key).cloned(),
        }
    }

    fn put(&mut self, tree: TreeId, key: Vec<u8>, value: IVec) {
        match tree {
            // Every seen row the store writes holds `SEEN_APPLIED`.
            TreeId::Seen => {
                self.seen.insert(key.into_boxed_slice());
            }
            // Members arrive decoded (`Batch::put_member`); a member as bytes comes
            // only from a test planting a row, and one that does not decode cannot be
            // kept in a map of decoded members.
            TreeId::Members => match read::decode_member(&key, &value) {
                Ok(member) => self.members.put(member),
                Err(error) => {
                    tracing::warn!(%error, "a member row that does not decode is dropped")
                }
            },
            _ => {
                self.rows[tree.index()].insert(key, value);
            }
        }
    }

    fn remove(&mut self, tree: TreeId, key: &[u8]) {
        match tree {
            TreeId::Seen => {
                self.seen.remove(key);
            }
            TreeId::Members => {
                if let Some(id) = member_id(key) {
                    self.members.remove(id);
                }
            }
            _ => {
                self.rows[tree.index()].remove(key);
            }
        }
    }

    /// The first (or last) row between `front` and `back`. Ordered maps seek; the
    /// hashed `seen` set is searched whole (nothing scans it: rows are looked up by id).
    fn first_in(
        &self,
        tree: TreeId,
        front: &Bound<Vec<u8>>,
        back: &Bound<Vec<u8>>,
        last: bool,
    ) -> Option<(IVec, IVec)> {
        match tree {
            TreeId::Seen => {
                let bounds = (front.clone(), back.clone());
                let within = self.seen.iter().filter(|key| {
                    use std::ops::RangeBounds;
                    bounds.contains(&key.to_vec())
                });
                let key = if last { within.max() } else { within.min() }?;
                Some((IVec::from(&key[..]), IVec::from(SEEN_APPLIED)))
            }
            TreeId::Members => {
                let text = |bound: &Bound<Vec<u8>>| match bound {
                    Bound::Included(key) => {
                        Bound::Included(String::from_utf8_lossy(key).into_owned())
                    }
                    Bound::Excluded(key) => {
                        Bound::Excluded(String::from_utf8_lossy(key).into_owned())
                    }
                    Bound::Unbounded => Bound::Unbounded,
                };
                let (front, back) = (text(front), text(back));
                let mut rows = self.members.range((as_str(&front), as_str(&back)));
                let (id, member) = if last { rows.next_back() } else { rows.next() }?;
                let key = id.as_bytes();
                let value = write::encode_member(key, member).ok()?;
                Some((IVec::from(key), IVec::from(value)))
            }
            _ => {
                // Borrowed bounds: a timer scan seeks once per event or so.
                let bounds = (as_bytes(front), as_bytes(back));
                let mut rows = self.rows[tree.index()].range(bounds);
                let (key, value) = if last { rows.next_back() } else { rows.next() }?;
                Some((IVec::from(key), value.clone()))
            }
        }
    }
}

fn as_bytes(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn as_str(bound: &Bound<String>) -> Bound<&str> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_str()),
        Bound::Excluded(key) => Bound::Excluded(key.as_str()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A member row's key as the member id it is; `None` for bytes that are not UTF-8
/// (no member has such an id).
fn member_id(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key).ok()
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
        let (key, value) = self.seek(false)?;
        self.front = Bound::Excluded(key.to_vec());
        Some((key, value))
    }

    pub(super) fn next_back(&mut self) -> Option<(IVec, IVec)> {
        let (key, value) = self.seek(true)?;
        self.back = Bound::Excluded(key.to_vec());
        Some((key, value))
    }

    fn seek(&self, last: bool) -> Option<(IVec, IVec)> {
        // `BTreeMap::range` panics on a range that ends before it starts.
        if is_empty(&self.front, &self.back) {
            return None;
        }
        self.memory
            .read()
            .first_in(self.tree, &self.front, &self.back, last)
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
