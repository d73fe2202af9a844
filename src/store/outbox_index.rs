//! `outbox_by_member`: which outbox rows are addressed to which member, so that a
//! member's history reads that member's messages and no one else's.
//!
//! An index row is `member ⊕ seq` with an empty value. It holds no status on purpose:
//! the dispatcher changes a row's status many times (pending, sent, failed, held) and
//! the history reads the row itself by `seq`, so there is nothing to keep in step.
//! It is written in the batch that writes its outbox row ([`index_key`], called by
//! `write::prepare`) and removed with it in one transaction (`retention`), so the two
//! agree after a crash. Rows with no member (staff notifications) are not indexed.
//!
//! A data directory written before the index existed has outbox rows and no index:
//! [`ensure_built`] indexes it when it is opened, once, and records in `meta` that it
//! did, so an upgrade keeps every member's message history.

use sled::IVec;

use super::keys;
use super::read::Row;
use super::write::Batch;
use super::{Opened, Store, StoreError, TreeId};
use crate::outbox::OutboxRow;

/// Present in `meta` once every outbox row has its index row.
pub(super) const INDEX_BUILT: &str = "store.outbox_by_member";

/// Index rows written per batch while indexing an older data directory.
const BUILD_BATCH: usize = 1024;

/// The `outbox_by_member` key for outbox row `seq` stored as `value`; `None` for a
/// row with no member, or one that does not read as an outbox row (it stays in the
/// outbox, delivered or not as before; it just cannot appear in a member's history).
pub(super) fn index_key(seq: u64, value: &[u8]) -> Option<Vec<u8>> {
    match OutboxRow::member_of(value) {
        Ok(member) => member.map(|member| keys::member_seq(&member, seq)),
        Err(error) => {
            tracing::warn!(seq, %error, "an outbox row that does not decode is not indexed by member");
            None
        }
    }
}

/// Indexes every outbox row by member unless `meta` says that was done; a fresh store
/// just records it. Idempotent: interrupted, it starts over on the next open.
pub(super) fn ensure_built(opened: &Opened) -> Result<(), StoreError> {
    let keyspaces = &opened.keyspaces;
    let built = keyspaces
        .meta
        .contains_key(INDEX_BUILT)
        .map_err(StoreError::sled("reading whether the outbox is indexed"))?;
    if built {
        return Ok(());
    }
    let mut batch = Batch::default();
    let (mut in_batch, mut indexed) = (0, 0_u64);
    for row in keyspaces.outbox.iter() {
        let (key, value) = row.map_err(StoreError::sled("indexing the outbox"))?;
        let Ok(seq) = keys::decode_u64(&key) else {
            tracing::warn!(key = %key.escape_ascii(), "an outbox row with a damaged key is not indexed by member");
            continue;
        };
        let Some(index) = index_key(seq, &value) else {
            continue;
        };
        batch.insert(TreeId::OutboxByMember, &index, IVec::default());
        (in_batch, indexed) = (in_batch + 1, indexed + 1);
        if in_batch == BUILD_BATCH {
            apply(opened, std::mem::take(&mut batch))?;
            in_batch = 0;
        }
    }
    // Last, after every index row: a crash before it leaves the index to be built
    // again, never recorded as built when it is not.
    batch.insert(TreeId::Meta, INDEX_BUILT.as_bytes(), &[1][..]);
    apply(opened, batch)?;
    if indexed > 0 {
        tracing::info!(
            messages = indexed,
            "indexed the outbox by member, once, for a data directory written by an earlier Rally"
        );
    }
    Ok(())
}

fn apply(opened: &Opened, batch: Batch) -> Result<(), StoreError> {
    opened
        .database
        .apply(batch)
        .map_err(StoreError::sled("indexing the outbox"))
}

impl Store {
    /// `member`'s messages (outbox rows), newest first, at most `limit`. Reads that
    /// member's index rows and the outbox rows they name, nothing else: the cost does
    /// not grow with other members' messages.
    pub fn member_messages(&self, member: &str, limit: usize) -> Result<Vec<Row<u64>>, StoreError> {
        let opened = self.opened()?;
        let keyspaces = &opened.keyspaces;
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        let index = keyspaces
            .outbox_by_member
            .scan_prefix(keys::member_prefix(member));
        for row in index.rev() {
            let (key, _) = row.map_err(StoreError::sled("reading a member's messages"))?;
            let (_, seq) = keys::decode_member_seq(&key)
                .map_err(|e| StoreError::corrupt(TreeId::OutboxByMember.name(), &key, e))?;
            let value = keyspaces
                .outbox
                .get(keys::u64_key(seq))
                .map_err(StoreError::sled("reading a member's messages"))?;
            // Retention removes a row and its index row together, but this scan may
            // have read the index row just before: then the row is simply gone.
            if let Some(value) = value {
                found.push((seq, value.to_vec()));
                if found.len() == limit {
                    break;
                }
            }
        }
        Ok(found)
    }
}
