//! Removing old rows (`settings.retention`): outbox rows in a final status and history
//! rows, a small piece at a time.
//!
//! Both run beside the writer, never through it, so trimming a year of rows does not
//! hold up events: each call examines at most `max` rows and removes what it found in
//! one atomic write, and the caller pauses between calls. sled applies a batch or a
//! transaction under a lock that excludes every other write, so a piece's size is
//! the longest it can delay a commit.
//!
//! - Outbox rows are removed in a sled transaction that reads each row again and
//!   removes it with its `outbox_by_member` row only if it is still removable: the
//!   dispatcher writes rows outside the writer (a manual retry turns `failed` into
//!   `pending`), and the transaction's lock orders that write entirely before or
//!   entirely after the removal. [`Store::outbox_update`] never writes back a removed
//!   row. The newest row is never removed: the writer numbers new rows after it
//!   ([`Store::outbox_last`]), and a number used twice would show one message's
//!   history under another's id.
//! - History rows are written once and never changed, so they are removed with a
//!   plain batch. A member's rows are keyed by a sequence number that grows with the
//!   step clock, which never goes back, so the walk reads each member's rows from the
//!   oldest and moves on to the next member at the first row it keeps: a pass costs a
//!   look at one row per member plus the rows it removes.

use std::ops::Bound;

use chrono::{DateTime, Utc};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::history;
use super::keys;
use super::outbox_index::index_key;
use super::write::Batch;
use super::{Database, Memory, Store, StoreError, TreeId};

/// What retention does with one stored outbox row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Old and final: remove it (and its index row).
    Remove,
    /// Not now: still open, settled too recently, or unreadable.
    Keep,
    /// Queued at or after the cutoff: so is every later row (they are numbered in
    /// step order), and none of them can be old enough.
    Stop,
}

/// What one call removed, and where the next call of the same pass starts; `next` is
/// `None` when the pass is over.
#[derive(Debug, PartialEq, Eq)]
pub struct Trimmed<K> {
    pub removed: usize,
    pub next: Option<K>,
}

impl Store {
    /// Looks at up to `max` outbox rows from `from` on and removes those `verdict`
    /// says to, with their index rows, in one transaction. Never the newest row.
    pub fn trim_outbox(
        &self,
        from: u64,
        max: usize,
        verdict: impl Fn(u64, &[u8]) -> Verdict,
    ) -> Result<Trimmed<u64>, StoreError> {
        let opened = self.opened()?;
        let outbox = &opened.keyspaces.outbox;
        let newest = match self.outbox_last()? {
            // sled refuses a range whose start is past its end.
            Some(newest) if from < newest => newest,
            _ => {
                return Ok(Trimmed {
                    removed: 0,
                    next: None,
                })
            }
        };
        let mut doomed = Vec::new();
        let (mut looked, mut stopped, mut last) = (0, false, from);
        for row in outbox
            .range(keys::u64_key(from)..keys::u64_key(newest))
            .take(max)
        {
            let (key, value) = row.map_err(StoreError::sled("scanning the outbox to trim it"))?;
            let seq = keys::decode_u64(&key)
                .map_err(|e| StoreError::corrupt(TreeId::Outbox.name(), &key, e))?;
            (looked, last) = (looked + 1, seq);
            match verdict(seq, &value) {
                Verdict::Remove => doomed.push(seq),
                Verdict::Keep => {}
                Verdict::Stop => {
                    stopped = true;
                    break;
                }
            }
        }
        let removed = if doomed.is_empty() {
            0
        } else {
            match &opened.database {
                Database::Sled { tree, .. } => remove_outbox_rows(tree, &doomed, &verdict)?,
                Database::Memory(memory) => remove_outbox_rows_in_memory(memory, &doomed, &verdict),
            }
        };
        let next = (!stopped && looked == max).then(|| last.saturating_add(1));
        Ok(Trimmed { removed, next })
    }

    /// Looks at up to `max` history rows after the key `after` (from the start when
    /// `None`) and removes, in one batch, those whose step ran before `before`. The
    /// `next` key is where the next call resumes.
    pub fn trim_history(
        &self,
        after: Option<&[u8]>,
        max: usize,
        before: DateTime<Utc>,
    ) -> Result<Trimmed<Vec<u8>>, StoreError> {
        let opened = self.opened()?;
        opened.database.history_kept()?;
        let rows = &opened.keyspaces.history;
        let mut start = after.map_or(Bound::Unbounded, |key| Bound::Excluded(key.to_vec()));
        let mut batch = Batch::default();
        let mut removed = 0;
        for _ in 0..max {
            let next = rows
                .range::<Vec<u8>, _>((start.clone(), Bound::Unbounded))
                .next()
                .transpose()
                .map_err(StoreError::sled("scanning the history to trim it"))?;
            let Some((key, value)) = next else {
                return finish_history(&opened.database, batch, removed, None);
            };
            start = Bound::Excluded(match history_verdict(&key, &value, before) {
                HistoryVerdict::Remove => {
                    batch.remove(TreeId::History, &key);
                    removed += 1;
                    key.to_vec()
                }
                // Every later row of this member is as recent or more: past them all.
                HistoryVerdict::KeepMember(member) => keys::member_seq(&member, u64::MAX),
                HistoryVerdict::Skip => key.to_vec(),
            });
        }
        let next = match start {
            Bound::Excluded(key) => Some(key),
            _ => None,
        };
        finish_history(&opened.database, batch, removed, next)
    }
}

/// Removes the outbox rows `seqs` that `verdict` still says to remove, read again
/// inside the transaction, with their index rows; returns how many.
fn remove_outbox_rows(
    tree: &sled::Tree,
    seqs: &[u64],
    verdict: &impl Fn(u64, &[u8]) -> Verdict,
) -> Result<usize, StoreError> {
    // The closure may run more than once: it only reads and stages writes.
    let outcome = tree.transaction(|tx| {
        let mut removed = 0;
        for &seq in seqs {
            let key = TreeId::Outbox.key(&keys::u64_key(seq));
            let Some(value) = tx.get(&key)? else {
                continue;
            };
            if verdict(seq, &value) != Verdict::Remove {
                continue;
            }
            tx.remove(key)?;
            if let Some(index) = index_key(seq, &value) {
                tx.remove(TreeId::OutboxByMember.key(&index))?;
            }
            removed += 1;
        }
        Ok::<_, ConflictableTransactionError<()>>(removed)
    });
    outcome.map_err(|e| match e {
        TransactionError::Storage(source) => StoreError::Sled {
            context: "removing old outbox rows",
            source,
        },
        // Nothing above aborts.
        TransactionError::Abort(()) => StoreError::Sled {
            context: "removing old outbox rows",
            source: sled::Error::Unsupported("the transaction aborted".into()),
        },
    })
}

/// [`remove_outbox_rows`] for the in-memory backend: one write lock stands for the
/// transaction, ordering a dispatcher's update entirely before or after the removal.
fn remove_outbox_rows_in_memory(
    memory: &Memory,
    seqs: &[u64],
    verdict: &impl Fn(u64, &[u8]) -> Verdict,
) -> usize {
    let mut trees = memory.write();
    let mut removed = 0;
    for &seq in seqs {
        let key = keys::u64_key(seq);
        let outbox = trees.rows_mut(TreeId::Outbox);
        let Some(value) = outbox.get(&key[..]) else {
            continue;
        };
        if verdict(seq, value) != Verdict::Remove {
            continue;
        }
        let index = index_key(seq, value);
        outbox.remove(&key[..]);
        if let Some(index) = index {
            trees.rows_mut(TreeId::OutboxByMember).remove(&index);
        }
        removed += 1;
    }
    removed
}

fn finish_history(
    database: &Database,
    batch: Batch,
    removed: usize,
    next: Option<Vec<u8>>,
) -> Result<Trimmed<Vec<u8>>, StoreError> {
    if removed > 0 {
        database
            .apply(batch)
            .map_err(StoreError::sled("removing old history rows"))?;
    }
    Ok(Trimmed { removed, next })
}

enum HistoryVerdict {
    Remove,
    /// This row, and so every later row of the member, is kept.
    KeepMember(String),
    /// A row that does not read: left alone, and the walk goes on past it.
    Skip,
}

fn history_verdict(key: &[u8], value: &[u8], before: DateTime<Utc>) -> HistoryVerdict {
    let Ok((member, _)) = keys::decode_member_seq(key) else {
        tracing::warn!(key = %key.escape_ascii(), "a history row with a damaged key is kept");
        return HistoryVerdict::Skip;
    };
    let row: history::Row = match serde_json::from_slice(value) {
        Ok(row) => row,
        Err(error) => {
            let key = keys::describe(TreeId::History.name(), key);
            tracing::warn!(%key, %error, "a history row that does not decode is kept");
            return HistoryVerdict::Skip;
        }
    };
    let ledger = row.ledger.iter().map(|entry| entry.at);
    let newest = ledger
        .chain(row.firings.iter().map(|firing| firing.at))
        .max();
    match newest {
        Some(at) if at < before => HistoryVerdict::Remove,
        Some(_) => HistoryVerdict::KeepMember(member),
        None => HistoryVerdict::Skip,
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
