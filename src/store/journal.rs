//! The journal's rows: how the entries the runner numbers are stored, read back and
//! removed by age (`settings.retention.journal`).
//!
//! A row holds a run of entries with consecutive numbers, keyed by the first; its
//! value is their texts, one JSON text per line, so the entry on line `i` is number
//! `key + i`. A group commit writes its entries as a few rows of up to
//! [`ROW_BYTES`](super::ROW_BYTES): every row written into sled's one tree costs a copy of its leaf, and
//! the journal's keys only grow, so one row per event made a leaf split every few
//! events. A row written one entry at a time (before rows held runs) is a run of one,
//! and reads the same.
//!
//! Removing old entries walks from the oldest row and stops at the first entry it
//! keeps: entries are numbered in step order and their times never go back. Rule
//! sets armed with their files are kept however old: they are few, and without them
//! the rest of the journal could not be replayed (`rally backtest` starts a window
//! from the rules in force). A row that loses some of its entries is written again as
//! the runs that are left.

use chrono::{DateTime, Utc};

use super::keys;
use super::read::Row;
use super::retention::Trimmed;
use super::write::Batch;
use super::{Store, StoreError, TreeId, ROW_BYTES};

/// Separates entries in a row; an entry is compact JSON, where a newline only
/// appears escaped.
const NEWLINE: u8 = b'\n';

/// The journal entries of a group, gathered into rows of consecutive numbers as the
/// group's steps are prepared.
#[derive(Default)]
pub(super) struct Runs {
    /// The run being gathered: its first number, how many, and their lines.
    open: Option<(u64, u64, Vec<u8>)>,
    done: Vec<(u64, Vec<u8>)>,
}

impl Runs {
    pub(super) fn push(&mut self, seq: u64, entry: &[u8]) {
        debug_assert!(!entry.contains(&NEWLINE), "a journal entry is one line");
        match &mut self.open {
            Some((first, count, lines))
                if *first + *count == seq && lines.len() + entry.len() < ROW_BYTES =>
            {
                lines.push(NEWLINE);
                lines.extend_from_slice(entry);
                *count += 1;
            }
            open => {
                if let Some((first, _, lines)) = open.take() {
                    self.done.push((first, lines));
                }
                *open = Some((seq, 1, entry.to_vec()));
            }
        }
    }

    pub(super) fn write(mut self, batch: &mut Batch) {
        if let Some((first, _, lines)) = self.open.take() {
            self.done.push((first, lines));
        }
        for (first, lines) in self.done {
            batch.insert(TreeId::Journal, &keys::u64_key(first), lines);
        }
    }
}

/// The entries of one row, numbered from its key.
fn entries(first: u64, value: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    value
        .split(|byte| *byte == NEWLINE)
        .zip(first..)
        .map(|(line, seq)| (seq, line))
}

/// A row's key: the number of its first entry.
fn row_number(key: &[u8]) -> Result<u64, StoreError> {
    super::read::number(TreeId::Journal, key)
}

impl Store {
    /// Up to `max` journal entries from sequence number `from` on, in order.
    pub fn journal_scan(&self, from: u64, max: usize) -> Result<Vec<Row<u64>>, StoreError> {
        let opened = self.opened()?;
        let journal = &opened.keyspaces.journal;
        let start = self.journal_row_holding(from)?.unwrap_or(from);
        let mut found = Vec::new();
        for row in journal.range(keys::u64_key(start)..) {
            let (key, value) = row.map_err(StoreError::sled("scanning the journal"))?;
            for (seq, line) in entries(row_number(&key)?, &value) {
                if found.len() == max {
                    return Ok(found);
                }
                if seq >= from {
                    found.push((seq, line.to_vec()));
                }
            }
        }
        Ok(found)
    }

    /// The highest journal sequence number in use: where a writer resumes numbering.
    pub fn journal_last(&self) -> Result<Option<u64>, StoreError> {
        let last = self
            .opened()?
            .keyspaces
            .journal
            .last()
            .map_err(StoreError::sled("reading the journal's last row"))?;
        last.map(|(key, value)| {
            let newlines = value.iter().filter(|byte| **byte == NEWLINE).count();
            Ok(row_number(&key)? + newlines as u64)
        })
        .transpose()
    }

    /// The key of the row that holds entry `seq`, or would: the last row at or before
    /// it.
    fn journal_row_holding(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        let opened = self.opened()?;
        let before = opened
            .keyspaces
            .journal
            .range(..=keys::u64_key(seq))
            .next_back()
            .transpose()
            .map_err(StoreError::sled("reading the journal"))?;
        before.map(|(key, _)| row_number(&key)).transpose()
    }

    /// Looks at the rows holding about `max` journal entries from `from` on (whole
    /// rows) and removes the entries before `before`, except rule sets armed with
    /// their files, in one batch. `next` is where the next piece starts, `None` once
    /// the pass met an entry it keeps by age or the journal's end.
    pub fn trim_journal(
        &self,
        from: u64,
        max: usize,
        before: DateTime<Utc>,
    ) -> Result<Trimmed<u64>, StoreError> {
        let opened = self.opened()?;
        let start = self.journal_row_holding(from)?.unwrap_or(from);
        let mut batch = Batch::default();
        let mut removed = 0;
        let mut looked_at = 0;
        let mut next = None;
        let mut reached_kept = false;
        for row in opened.keyspaces.journal.range(keys::u64_key(start)..) {
            if looked_at >= max || reached_kept {
                break;
            }
            let (key, value) = row.map_err(StoreError::sled("scanning the journal to trim it"))?;
            let mut kept = Runs::default();
            let mut removed_here = 0;
            for (seq, line) in entries(row_number(&key)?, &value) {
                let keep = if seq < from || reached_kept {
                    // Looked at by an earlier piece, or after the first entry kept.
                    true
                } else {
                    looked_at += 1;
                    next = Some(seq + 1);
                    match serde_json::from_slice::<Head>(line) {
                        // Unreadable: left for `rally replay` to report, not removed
                        // unseen.
                        Err(_) => true,
                        Ok(head) if head.at >= before => {
                            reached_kept = true;
                            true
                        }
                        Ok(head) => head.kind == "arm" && head.files.is_some(),
                    }
                };
                if keep {
                    kept.push(seq, line);
                } else {
                    removed_here += 1;
                }
            }
            if removed_here > 0 {
                batch.remove(TreeId::Journal, &key);
                kept.write(&mut batch);
                removed += removed_here;
            }
        }
        // The pass is over at the first entry kept, or at the journal's end.
        if reached_kept || looked_at < max {
            next = None;
        }
        if removed > 0 {
            opened
                .database
                .apply(batch)
                .map_err(StoreError::sled("removing old journal entries"))?;
        }
        Ok(Trimmed { removed, next })
    }
}

/// What trimming reads of an entry.
#[derive(serde::Deserialize)]
struct Head {
    kind: String,
    #[serde(with = "crate::engine::outcome::utc")]
    at: DateTime<Utc>,
    #[serde(default)]
    files: Option<serde::de::IgnoredAny>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;
    use crate::store::StepWrite;

    on_both_backends!(
        a_groups_entries_are_one_row_read_back_one_by_one_from_anywhere,
        a_large_group_is_rows_of_about_row_bytes_and_reads_across_them,
        rows_of_one_entry_and_runs_read_alike_and_gaps_start_a_new_row,
        trimming_part_of_a_row_keeps_the_armed_files_and_the_newer_entries,
    );

    fn entry(seq: u64, kind: &str, at: &str) -> (u64, Vec<u8>) {
        let files = if kind == "arm" { r#","files":{}"# } else { "" };
        let text = format!(r#"{{"seq":{seq},"kind":"{kind}","at":"{at}"{files}}}"#);
        (seq, text.into_bytes())
    }

    fn step(entries: Vec<(u64, Vec<u8>)>) -> StepWrite {
        StepWrite {
            journal: entries,
            ..StepWrite::default()
        }
    }

    fn seqs(store: &Store, from: u64, max: usize) -> Vec<u64> {
        let rows = store.journal_scan(from, max).unwrap();
        for (seq, line) in &rows {
            let head: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert_eq!(head["seq"], *seq, "line {seq} is its own entry");
        }
        rows.into_iter().map(|(seq, _)| seq).collect()
    }

    fn rows(store: &Store) -> usize {
        store.opened().unwrap().keyspaces.journal.len()
    }

    fn a_groups_entries_are_one_row_read_back_one_by_one_from_anywhere(fresh: fn() -> Store) {
        let store = fresh();
        assert_eq!(store.journal_last().unwrap(), None);
        let at = "2026-01-01T00:00:00Z";
        let group: Vec<StepWrite> = (1..=5)
            .map(|seq| step(vec![entry(seq, "event", at)]))
            .collect();
        store.commit(&group).unwrap();
        assert_eq!(rows(&store), 1);
        assert_eq!(store.journal_last().unwrap(), Some(5));
        assert_eq!(seqs(&store, 0, 100), [1, 2, 3, 4, 5]);
        assert_eq!(seqs(&store, 3, 100), [3, 4, 5], "from inside the row");
        assert_eq!(seqs(&store, 2, 2), [2, 3], "at most max");
        assert_eq!(seqs(&store, 6, 100), Vec::<u64>::new());
    }

    fn a_large_group_is_rows_of_about_row_bytes_and_reads_across_them(fresh: fn() -> Store) {
        let store = fresh();
        let at = "2026-01-01T00:00:00Z";
        let group: Vec<StepWrite> = (1..=400)
            .map(|seq| step(vec![entry(seq, "event", at)]))
            .collect();
        store.commit(&group).unwrap();
        let opened = store.opened().unwrap();
        let sizes: Vec<usize> = opened
            .keyspaces
            .journal
            .iter()
            .map(|row| row.unwrap().1.len())
            .collect();
        assert!(sizes.len() > 1, "{sizes:?}");
        assert!(sizes.iter().all(|size| *size < ROW_BYTES), "{sizes:?}");
        assert_eq!(seqs(&store, 0, 1000), (1..=400).collect::<Vec<_>>());
        assert_eq!(seqs(&store, 150, 3), [150, 151, 152]);
        assert_eq!(store.journal_last().unwrap(), Some(400));
    }

    fn rows_of_one_entry_and_runs_read_alike_and_gaps_start_a_new_row(fresh: fn() -> Store) {
        let store = fresh();
        let at = "2026-01-01T00:00:00Z";
        // A row of one entry, as every row was written before rows held runs.
        store.commit(&[step(vec![entry(1, "event", at)])]).unwrap();
        // A gap inside a group (numbering taken again after a failed group) starts
        // a row of its own.
        store
            .commit(&[
                step(vec![entry(2, "event", at), entry(3, "event", at)]),
                step(vec![entry(7, "event", at)]),
                step(vec![entry(8, "event", at)]),
            ])
            .unwrap();
        assert_eq!(rows(&store), 3);
        assert_eq!(seqs(&store, 0, 100), [1, 2, 3, 7, 8]);
        assert_eq!(seqs(&store, 4, 100), [7, 8], "from inside a gap");
        assert_eq!(store.journal_last().unwrap(), Some(8));
    }

    fn trimming_part_of_a_row_keeps_the_armed_files_and_the_newer_entries(fresh: fn() -> Store) {
        let store = fresh();
        let old = "2026-01-01T00:00:00Z";
        let new = "2026-03-01T00:00:00Z";
        store
            .commit(&[
                step(vec![entry(1, "event", old), entry(2, "arm", old)]),
                step(vec![entry(3, "event", old), entry(4, "event", new)]),
                step(vec![entry(5, "event", new)]),
            ])
            .unwrap();
        let before: DateTime<Utc> = "2026-02-01T00:00:00Z".parse().unwrap();
        // Pieces of about one entry: a piece takes whole rows, and the pass ends at
        // the first entry it keeps by age.
        let piece = store.trim_journal(0, 1, before).unwrap();
        assert_eq!((piece.removed, piece.next), (2, None));
        assert_eq!(seqs(&store, 0, 100), [2, 4, 5]);
        assert_eq!(rows(&store), 2, "the arming, then the run 4–5");
        assert_eq!(store.journal_last().unwrap(), Some(5));
        // Nothing left to remove: the rows stay as they are.
        let again = store.trim_journal(0, 10, before).unwrap();
        assert_eq!((again.removed, again.next), (0, None));
        assert_eq!(seqs(&store, 0, 100), [2, 4, 5]);
    }
}
