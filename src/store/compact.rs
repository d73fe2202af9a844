//! Giving the space retention freed back to the file system (`rally compact`).
//!
//! sled 0.34 is log-structured: a removed row frees room in its segment, which later
//! writes reuse, but the data file never shrinks below the most it ever held. A
//! directory loaded with a year of history and then trimmed by retention keeps the
//! size of the history. Compacting copies the rows into a fresh database beside the
//! directory and puts it in the directory's place, so the file holds only what is
//! live.
//!
//! Offline only: sled locks the directory, so a running daemon makes it fail before
//! anything is written. The copy is made durable before the swap; the swap is two
//! renames, the original moved to `<dir>.precompact` first. An interruption before
//! the first leaves the original in place (a half-made copy is removed by the next
//! run). One between the two leaves no `<dir>`, the original whole under
//! `<dir>.precompact` and the finished copy under `<dir>.compacting`: opening the
//! store refuses to create an empty `<dir>` then ([`refuse_interrupted`]), and the
//! next `rally compact` finishes the swap. One after the second leaves only the
//! original to remove, which the next run does.

use std::path::{Path, PathBuf};

use super::durable::DataFiles;
use super::{refuse_older_layout, waiting_for_lock, CacheSize, StoreError, TREE};

/// Rows copied per batch: bounds the memory a copy holds, whatever the size.
const BATCH: usize = 10_000;

/// What a compaction did.
#[derive(Debug, PartialEq, Eq)]
pub struct Compacted {
    pub rows: u64,
    /// The data file's size before and after, in bytes.
    pub before: u64,
    pub after: u64,
}

/// Rewrites the database in `dir` with only its live rows (see the module docs).
pub fn compact(dir: &Path) -> Result<Compacted, StoreError> {
    let fresh = sibling(dir, "compacting");
    let kept = sibling(dir, "precompact");
    let io = |context: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io {
            context,
            path,
            source,
        }
    };
    if !dir.exists() && kept.exists() {
        // Interrupted between the renames: the copy was durable before the first.
        if !fresh.exists() {
            return Err(StoreError::CompactInterrupted {
                dir: dir.to_path_buf(),
                kept,
            });
        }
        let before = file_size(&kept);
        std::fs::rename(&fresh, dir)
            .map_err(io("cannot put the compacted database in place", &fresh))?;
        std::fs::remove_dir_all(&kept).map_err(io("cannot remove the old database", &kept))?;
        return Ok(Compacted {
            rows: count_rows(dir)?,
            before,
            after: file_size(dir),
        });
    }
    if kept.exists() {
        // Interrupted after the second rename: `dir` is the compacted copy.
        std::fs::remove_dir_all(&kept).map_err(io("cannot remove the old database", &kept))?;
    }
    // A copy an earlier run left half-made is worth nothing: the original is whole.
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)
            .map_err(io("cannot remove an unfinished compaction", &fresh))?;
    }
    let before = file_size(dir);
    let rows = {
        // sled's own default cache (1 GiB) for each of two databases would make a
        // copy of a large directory cost more memory than the daemon itself.
        // A store of this process closed just before (a test, a tool that stopped
        // its daemon in-process) may still hold the lock for a moment.
        let old = waiting_for_lock(|| {
            sled::Config::new()
                .path(dir)
                .flush_every_ms(None)
                .cache_capacity(CacheSize::DEFAULT.bytes)
                .open()
                .map_err(StoreError::sled("opening the database to compact it"))
        })?;
        refuse_older_layout(&old, dir)?;
        let source = old
            .open_tree(TREE)
            .map_err(StoreError::sled("opening the tree"))?;
        let new = sled::Config::new()
            .path(&fresh)
            .flush_every_ms(None)
            .cache_capacity(CacheSize::DEFAULT.bytes)
            .open()
            .map_err(StoreError::sled("creating the compacted database"))?;
        let target = new
            .open_tree(TREE)
            .map_err(StoreError::sled("creating the tree"))?;
        let mut rows = 0u64;
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for row in source.iter() {
            let (key, value) = row.map_err(StoreError::sled("reading a row to compact"))?;
            batch.insert(key, value);
            (rows, pending) = (rows + 1, pending + 1);
            if pending == BATCH {
                target
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(StoreError::sled("writing the compacted rows"))?;
                pending = 0;
            }
        }
        target
            .apply_batch(batch)
            .map_err(StoreError::sled("writing the compacted rows"))?;
        DataFiles::open(&fresh)?.sync(&new)?;
        rows
    };
    std::fs::rename(dir, &kept).map_err(io("cannot move the data directory aside", dir))?;
    std::fs::rename(&fresh, dir)
        .map_err(io("cannot put the compacted database in place", &fresh))?;
    std::fs::remove_dir_all(&kept).map_err(io("cannot remove the old database", &kept))?;
    Ok(Compacted {
        rows,
        before,
        after: file_size(dir),
    })
}

/// Refuses to open (and so create) a missing `dir` that an interrupted compaction
/// moved aside: a daemon started then would begin again with no members.
pub(super) fn refuse_interrupted(dir: &Path) -> Result<(), StoreError> {
    let kept = sibling(dir, "precompact");
    if !dir.exists() && kept.exists() {
        return Err(StoreError::CompactInterrupted {
            dir: dir.to_path_buf(),
            kept,
        });
    }
    Ok(())
}

/// The rows of the database in `dir`, for the report of a finished interrupted swap.
fn count_rows(dir: &Path) -> Result<u64, StoreError> {
    let db = waiting_for_lock(|| {
        sled::Config::new()
            .path(dir)
            .cache_capacity(CacheSize::DEFAULT.bytes)
            .open()
            .map_err(StoreError::sled("opening the compacted database"))
    })?;
    let tree = db
        .open_tree(TREE)
        .map_err(StoreError::sled("opening the tree"))?;
    Ok(tree.len() as u64)
}

/// `<dir>.<suffix>`, beside `dir`: the same file system, so a rename moves it.
pub(crate) fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    dir.with_file_name(name)
}

fn file_size(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("db")).map_or(0, |meta| meta.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::Member;
    use crate::store::{StepWrite, Store};

    #[test]
    fn compacting_keeps_every_live_row_and_gives_back_what_was_removed() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        {
            let store = Store::open(&dir).unwrap();
            for i in 0..2_000 {
                // Long ids: most of what is written is removed below.
                let step = StepWrite {
                    event_id: Some(format!("e-{i}-{}", "x".repeat(1_000)).into()),
                    event_at: Some(chrono::DateTime::UNIX_EPOCH),
                    members: vec![Member::new(&format!("m-{i}"))],
                    ..StepWrite::default()
                };
                store.commit(&[step]).unwrap();
            }
            assert_eq!(store.trim_seen(10_000, 1).unwrap().removed, 2_000);
            store.sync().unwrap();
        }
        let compacted = compact(&dir).unwrap();
        assert!(
            compacted.after < compacted.before / 2,
            "{compacted:?}: the removed rows' space is given back"
        );
        assert!(!sibling(&dir, "precompact").exists());
        let store = reopen(&dir).unwrap();
        assert_eq!(store.member_count().unwrap(), 2_000);
        assert!(store.member("m-1999").unwrap().is_some());
        assert!(!store.seen(&format!("e-1-{}", "x".repeat(1_000))).unwrap());
    }

    /// Opens `dir` after a database of this process closed it a moment ago.
    fn reopen(dir: &Path) -> Result<Store, StoreError> {
        waiting_for_lock(|| Store::open(dir))
    }

    /// A store of `n` members in `dir`, synced and closed.
    fn members(dir: &Path, n: usize) {
        let store = Store::open(dir).unwrap();
        for i in 0..n {
            let step = StepWrite {
                members: vec![Member::new(&format!("m-{i}"))],
                ..StepWrite::default()
            };
            store.commit(&[step]).unwrap();
        }
        store.sync().unwrap();
    }

    #[test]
    fn a_swap_interrupted_between_its_renames_is_refused_by_open_and_finished_by_compact() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        members(&dir, 3);
        // What an interruption after the first rename leaves: the copy made and
        // durable, the original moved aside, no `dir`.
        members(&sibling(&dir, "compacting"), 3);
        std::fs::rename(&dir, sibling(&dir, "precompact")).unwrap();
        let refused = reopen(&dir).map(|_| ()).unwrap_err();
        assert!(
            matches!(refused, StoreError::CompactInterrupted { .. }),
            "{refused}"
        );
        assert!(!dir.exists(), "opening created no empty store");
        let finished = compact(&dir).unwrap();
        assert_eq!(finished.rows, count_rows(&dir).unwrap());
        assert!(!sibling(&dir, "precompact").exists());
        assert!(!sibling(&dir, "compacting").exists());
        assert_eq!(reopen(&dir).unwrap().member_count().unwrap(), 3);
    }

    #[test]
    fn a_swap_interrupted_after_its_renames_only_leaves_the_original_to_remove() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        members(&dir, 2);
        members(&sibling(&dir, "precompact"), 5);
        compact(&dir).unwrap();
        assert!(!sibling(&dir, "precompact").exists());
        assert_eq!(reopen(&dir).unwrap().member_count().unwrap(), 2);
    }
}
