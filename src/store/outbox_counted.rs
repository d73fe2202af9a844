//! A delivery's outcome and its count in one atomic write: the dispatcher changes an
//! outbox row and the `meta` row counting what that change was (the community
//! metrics' deliveries, `metrics::deliveries`) together, so a crash never keeps one
//! without the other.
//!
//! Both rows are read again inside the write: the count is decided from the row as
//! stored, not as the dispatcher last saw it, so a change that is not a transition
//! (a status written twice) counts nothing, and two writers of one count row never
//! lose an increment. sled runs it as a transaction (taken under the lock that
//! excludes every other write, retried whole on a conflict: `change` may run more
//! than once and must only compute); the memory backend under its write lock.

use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::keys;
use super::{Database, Store, StoreError, TreeId, RESERVED_META};

impl Store {
    /// As [`Store::outbox_update`] (nothing is written when retention removed the row
    /// meanwhile; returns whether it was there), and in the same atomic write the meta
    /// row `name` becomes what `change` returns, given the outbox row as stored before
    /// this write and the meta row's value; `None` leaves the meta row as it is.
    pub fn outbox_update_counted(
        &self,
        seq: u64,
        value: &[u8],
        name: &str,
        change: impl Fn(&[u8], Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        if name.starts_with(RESERVED_META) {
            return Err(StoreError::ReservedMeta {
                name: name.to_string(),
            });
        }
        let row_key = keys::u64_key(seq);
        let meta_key = keys::text_key(name);
        let opened = self.opened()?;
        match &opened.database {
            Database::Sled { tree, .. } => {
                let (row_key, meta_key) =
                    (TreeId::Outbox.key(&row_key), TreeId::Meta.key(meta_key));
                let outcome = tree.transaction(|tx| {
                    let Some(before) = tx.get(&row_key)? else {
                        return Ok(false);
                    };
                    let current = tx.get(&meta_key)?;
                    if let Some(counted) = change(&before, current.as_deref()) {
                        tx.insert(meta_key.as_slice(), counted)?;
                    }
                    tx.insert(row_key.as_slice(), value)?;
                    Ok::<_, ConflictableTransactionError<()>>(true)
                });
                outcome.map_err(|e| StoreError::Sled {
                    context: "updating an outbox row and its count",
                    source: match e {
                        TransactionError::Storage(source) => source,
                        // Nothing above aborts.
                        TransactionError::Abort(()) => {
                            sled::Error::Unsupported("the transaction aborted".into())
                        }
                    },
                })
            }
            Database::Memory(memory) => {
                let mut tables = memory.write();
                let Some(before) = tables.rows_mut(TreeId::Outbox).get(&row_key[..]).cloned()
                else {
                    return Ok(false);
                };
                let current = tables.rows_mut(TreeId::Meta).get(meta_key).cloned();
                if let Some(counted) = change(&before, current.as_deref()) {
                    tables
                        .rows_mut(TreeId::Meta)
                        .insert(meta_key.to_vec(), counted.into());
                }
                tables
                    .rows_mut(TreeId::Outbox)
                    .insert(row_key.to_vec(), value.into());
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_backends::on_both_backends;
    use super::*;
    use crate::store::StepWrite;

    /// Counts each write whose stored row was `pending`; the new row is `sent`.
    fn count_if_pending(before: &[u8], current: Option<&[u8]>) -> Option<Vec<u8>> {
        if before != b"pending" {
            return None;
        }
        let n: u64 = current.map_or(0, |c| std::str::from_utf8(c).unwrap().parse().unwrap());
        Some((n + 1).to_string().into_bytes())
    }

    fn with_row(fresh: fn() -> Store) -> Store {
        let store = fresh();
        store
            .commit(&[StepWrite {
                outbox_put: vec![(1, b"pending".to_vec())],
                ..StepWrite::default()
            }])
            .unwrap();
        store
    }

    fn a_row_and_its_count_change_together(fresh: fn() -> Store) {
        let store = with_row(fresh);
        assert!(store
            .outbox_update_counted(1, b"sent", "metrics.delivery.x", count_if_pending)
            .unwrap());
        assert_eq!(store.outbox_scan(1, 1).unwrap()[0].1, b"sent");
        assert_eq!(store.meta_get("metrics.delivery.x").unwrap().unwrap(), b"1");
    }

    fn writing_the_same_status_again_counts_nothing(fresh: fn() -> Store) {
        let store = with_row(fresh);
        for _ in 0..2 {
            store
                .outbox_update_counted(1, b"sent", "metrics.delivery.x", count_if_pending)
                .unwrap();
        }
        assert_eq!(store.meta_get("metrics.delivery.x").unwrap().unwrap(), b"1");
    }

    fn a_removed_row_is_neither_written_back_nor_counted(fresh: fn() -> Store) {
        let store = with_row(fresh);
        assert!(!store
            .outbox_update_counted(2, b"sent", "metrics.delivery.x", |_, _| Some(b"1".to_vec()))
            .unwrap());
        assert!(store.outbox_scan(2, 1).unwrap().is_empty());
        assert_eq!(store.meta_get("metrics.delivery.x").unwrap(), None);
    }

    fn the_stores_own_meta_rows_are_refused(fresh: fn() -> Store) {
        let store = with_row(fresh);
        let refused = store.outbox_update_counted(1, b"sent", "store.x", count_if_pending);
        assert!(matches!(refused, Err(StoreError::ReservedMeta { .. })));
        assert_eq!(store.outbox_scan(1, 1).unwrap()[0].1, b"pending");
    }

    on_both_backends!(
        a_row_and_its_count_change_together,
        writing_the_same_status_again_counts_nothing,
        a_removed_row_is_neither_written_back_nor_counted,
        the_stores_own_meta_rows_are_refused,
    );
}
