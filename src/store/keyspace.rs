//! A keyspace: the rows of the one sled tree whose keys start with one prefix byte.
//! Callers use the keys of [`keys`](super::keys) as they are; the prefix is added on
//! the way in and stripped on the way out, so no caller ever sees it.

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use sled::IVec;

use super::{Fault, Faults, TreeId};

/// Every read goes through here, so an injected read fault (see [`Faults`]) reaches
/// every reader the way a failing disk would.
pub(super) struct Keyspace {
    tree: sled::Tree,
    pub(super) id: TreeId,
    faults: Arc<Faults>,
    /// Rows read so far (gets that found one, rows a scan yielded): lets a test check
    /// what a read touched, e.g. that one member's history reads no one else's rows.
    #[cfg(test)]
    pub(super) reads: Arc<std::sync::atomic::AtomicUsize>,
}

impl Keyspace {
    pub(super) fn new(tree: sled::Tree, id: TreeId, faults: Arc<Faults>) -> Keyspace {
        Keyspace {
            tree,
            id,
            faults,
            #[cfg(test)]
            reads: Arc::default(),
        }
    }

    pub(super) fn get(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<IVec>> {
        self.faults.check(Fault::Read)?;
        let found = self.tree.get(self.id.key(key.as_ref()))?;
        #[cfg(test)]
        if found.is_some() {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(found)
    }

    pub(super) fn contains_key(&self, key: impl AsRef<[u8]>) -> sled::Result<bool> {
        self.faults.check(Fault::Read)?;
        self.tree.contains_key(self.id.key(key.as_ref()))
    }

    /// One row on its own, outside any group: for tests that plant rows (damaged
    /// ones, or ones in an older format) the store itself would never write.
    #[cfg(test)]
    pub(super) fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> sled::Result<()> {
        self.tree.insert(self.id.key(key.as_ref()), value).map(drop)
    }

    /// Replaces the row at `key` if there is one, atomically; returns whether there
    /// was. Never creates a row.
    pub(super) fn replace_existing(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<IVec>,
    ) -> sled::Result<bool> {
        let value = value.into();
        let previous = self
            .tree
            .fetch_and_update(self.id.key(key.as_ref()), |old| old.map(|_| value.clone()))?;
        Ok(previous.is_some())
    }

    /// Every row, in key order.
    pub(super) fn iter(&self) -> Rows {
        self.range::<&[u8], _>(..)
    }

    /// The rows whose (unprefixed) key falls in `range`, in key order. An open end
    /// stops at the keyspace's edge, never in the next keyspace.
    pub(super) fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Rows {
        let start = match range.start_bound() {
            Bound::Included(key) => Bound::Included(self.id.key(key.as_ref())),
            Bound::Excluded(key) => Bound::Excluded(self.id.key(key.as_ref())),
            Bound::Unbounded => Bound::Included(vec![self.id.prefix()]),
        };
        let end = match range.end_bound() {
            Bound::Included(key) => Bound::Included(self.id.key(key.as_ref())),
            Bound::Excluded(key) => Bound::Excluded(self.id.key(key.as_ref())),
            // Prefixes are below 0xFF (tested), so `prefix + 1` is the next keyspace.
            Bound::Unbounded => Bound::Excluded(vec![self.id.prefix() + 1]),
        };
        self.rows(self.tree.range::<Vec<u8>, _>((start, end)))
    }

    pub(super) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Rows {
        self.rows(self.tree.scan_prefix(self.id.key(prefix.as_ref())))
    }

    fn rows(&self, iter: sled::Iter) -> Rows {
        Rows {
            iter,
            fault: self.faults.check(Fault::Read).err(),
            failed: false,
            #[cfg(test)]
            reads: Arc::clone(&self.reads),
        }
    }

    pub(super) fn first(&self) -> sled::Result<Option<(IVec, IVec)>> {
        self.iter().next().transpose()
    }

    pub(super) fn last(&self) -> sled::Result<Option<(IVec, IVec)>> {
        self.iter().next_back().transpose()
    }

    /// Walks the whole keyspace (sled keeps no count).
    pub(super) fn len(&self) -> usize {
        self.iter().count()
    }
}

/// Rows of one keyspace, keys without the prefix; double-ended like sled's.
pub(super) struct Rows {
    iter: sled::Iter,
    /// An injected read fault: the first row read is this error, then the scan ends.
    fault: Option<sled::Error>,
    failed: bool,
    #[cfg(test)]
    reads: Arc<std::sync::atomic::AtomicUsize>,
}

impl Rows {
    /// The injected error once, then the end; `None` when there is no fault.
    fn fault(&mut self) -> Option<Option<sled::Result<(IVec, IVec)>>> {
        if self.failed {
            return Some(None);
        }
        let fault = self.fault.take()?;
        self.failed = true;
        Some(Some(Err(fault)))
    }

    /// Counts `row` as read (in tests) and strips its prefix.
    fn yielded(
        &self,
        row: Option<sled::Result<(IVec, IVec)>>,
    ) -> Option<sled::Result<(IVec, IVec)>> {
        #[cfg(test)]
        if matches!(row, Some(Ok(_))) {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        row.map(strip)
    }
}

impl Iterator for Rows {
    type Item = sled::Result<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(fault) = self.fault() {
            return fault;
        }
        let row = self.iter.next();
        self.yielded(row)
    }
}

impl DoubleEndedIterator for Rows {
    fn next_back(&mut self) -> Option<Self::Item> {
        if let Some(fault) = self.fault() {
            return fault;
        }
        let row = self.iter.next_back();
        self.yielded(row)
    }
}

/// Every key in a keyspace's range starts with its prefix byte, so it is never empty;
/// the empty arm only keeps a damaged tree from becoming a panic.
fn strip(row: sled::Result<(IVec, IVec)>) -> sled::Result<(IVec, IVec)> {
    row.map(|(key, value)| match key.len() {
        0 => (key, value),
        len => (key.subslice(1, len - 1), value),
    })
}
