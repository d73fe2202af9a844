//! A keyspace: the rows of the one sled tree whose keys start with one prefix byte, or
//! the in-memory map of the same rows ([`memory`](super::memory)). Callers use the
//! keys of [`keys`](super::keys) as they are; for sled the prefix is added on the way
//! in and stripped on the way out, so no caller ever sees it, nor which backend holds
//! the rows.

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use sled::IVec;

use super::memory::{Cursor, Memory};
use super::{Fault, Faults, TreeId};

/// Every read goes through here, so an injected read fault (see [`Faults`]) reaches
/// every reader the way a failing disk would, whichever backend holds the rows.
pub(super) struct Keyspace {
    rows: Backing,
    pub(super) id: TreeId,
    faults: Arc<Faults>,
    /// Rows read so far (gets that found one, rows a scan yielded): lets a test check
    /// what a read touched, e.g. that one member's history reads no one else's rows.
    #[cfg(test)]
    pub(super) reads: Arc<std::sync::atomic::AtomicUsize>,
}

/// Where a keyspace's rows live.
#[derive(Clone)]
pub(super) enum Backing {
    /// The one sled tree, keys behind the keyspace's prefix byte.
    Sled(sled::Tree),
    /// The keyspace's own map, keys as callers give them.
    Memory(Arc<Memory>),
}

impl Keyspace {
    pub(super) fn new(rows: Backing, id: TreeId, faults: Arc<Faults>) -> Keyspace {
        Keyspace {
            rows,
            id,
            faults,
            #[cfg(test)]
            reads: Arc::default(),
        }
    }

    pub(super) fn get(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<IVec>> {
        self.faults.check(Fault::Read)?;
        let found = match &self.rows {
            Backing::Sled(tree) => tree.get(self.id.key(key.as_ref()))?,
            Backing::Memory(memory) => memory.get(self.id, key.as_ref()),
        };
        #[cfg(test)]
        if found.is_some() {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(found)
    }

    pub(super) fn contains_key(&self, key: impl AsRef<[u8]>) -> sled::Result<bool> {
        self.faults.check(Fault::Read)?;
        match &self.rows {
            Backing::Sled(tree) => tree.contains_key(self.id.key(key.as_ref())),
            Backing::Memory(memory) => Ok(memory.contains_key(self.id, key.as_ref())),
        }
    }

    /// One row on its own, outside any group: for tests that plant rows (damaged
    /// ones, or ones in an older format) the store itself would never write.
    #[cfg(test)]
    pub(super) fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> sled::Result<()> {
        match &self.rows {
            Backing::Sled(tree) => tree.insert(self.id.key(key.as_ref()), value).map(drop),
            Backing::Memory(memory) => {
                memory.insert(self.id, key.as_ref(), value.into());
                Ok(())
            }
        }
    }

    /// Replaces the row at `key` if there is one, atomically; returns whether there
    /// was. Never creates a row.
    pub(super) fn replace_existing(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<IVec>,
    ) -> sled::Result<bool> {
        let value = value.into();
        match &self.rows {
            Backing::Sled(tree) => {
                let previous = tree.fetch_and_update(self.id.key(key.as_ref()), |old| {
                    old.map(|_| value.clone())
                })?;
                Ok(previous.is_some())
            }
            Backing::Memory(memory) => Ok(memory.replace_existing(self.id, key.as_ref(), value)),
        }
    }

    /// Every row, in key order.
    pub(super) fn iter(&self) -> Rows {
        self.range::<&[u8], _>(..)
    }

    /// The rows whose (unprefixed) key falls in `range`, in key order. An open end
    /// stops at the keyspace's edge, never in the next keyspace.
    pub(super) fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Rows {
        let tree = match &self.rows {
            Backing::Sled(tree) => tree,
            Backing::Memory(memory) => {
                let bound = |bound: Bound<&K>| bound.map(|key| key.as_ref().to_vec());
                let cursor = Cursor::new(
                    Arc::clone(memory),
                    self.id,
                    bound(range.start_bound()),
                    bound(range.end_bound()),
                );
                return self.rows(Source::Memory(cursor));
            }
        };
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
        self.rows(Source::Sled(tree.range::<Vec<u8>, _>((start, end))))
    }

    pub(super) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Rows {
        let source = match &self.rows {
            Backing::Sled(tree) => Source::Sled(tree.scan_prefix(self.id.key(prefix.as_ref()))),
            Backing::Memory(memory) => {
                Source::Memory(Cursor::prefix(Arc::clone(memory), self.id, prefix.as_ref()))
            }
        };
        self.rows(source)
    }

    fn rows(&self, source: Source) -> Rows {
        Rows {
            source,
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
    source: Source,
    /// An injected read fault: the first row read is this error, then the scan ends.
    fault: Option<sled::Error>,
    failed: bool,
    #[cfg(test)]
    reads: Arc<std::sync::atomic::AtomicUsize>,
}

enum Source {
    /// Keys still behind their prefix byte.
    Sled(sled::Iter),
    Memory(Cursor),
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

    /// The next row from the front (or the back), prefix stripped, counted as read
    /// (in tests).
    fn advance(&mut self, back: bool) -> Option<sled::Result<(IVec, IVec)>> {
        if let Some(fault) = self.fault() {
            return fault;
        }
        let row = match &mut self.source {
            Source::Sled(iter) if back => iter.next_back().map(strip),
            Source::Sled(iter) => iter.next().map(strip),
            Source::Memory(cursor) if back => cursor.next_back().map(Ok),
            Source::Memory(cursor) => cursor.next().map(Ok),
        };
        #[cfg(test)]
        if matches!(row, Some(Ok(_))) {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        row
    }
}

impl Iterator for Rows {
    type Item = sled::Result<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advance(false)
    }
}

impl DoubleEndedIterator for Rows {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.advance(true)
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
