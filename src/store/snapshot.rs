//! A store's rows as one stream of bytes, and a store made again from it: what a
//! cluster node uploads as a partition's snapshot and a new owner restores
//! (docs/cluster.md, "Snapshots").
//!
//! The format: a header line, then each row of the shared tree in key order as its key
//! and value, each preceded by its length (4 bytes, big-endian), then a trailer (the
//! length `u32::MAX`, then the row count as 8 bytes) so that a snapshot cut short is
//! told from a whole one. Keys keep their keyspace prefix: a restored store holds
//! exactly the rows the snapshot was taken from.

use std::io::{Read, Write};
use std::path::Path;

use super::{Database, Store, StoreError};

const HEADER: &[u8] = b"rally-snapshot 1\n";
const TRAILER: u32 = u32::MAX;
/// Rows written to a restored store per batch: bounds the memory a restore holds.
const BATCH: usize = 10_000;

impl Store {
    /// Writes every row to `out` (see the module docs); returns how many. Taken while
    /// nothing else commits, it is the state at one point of the store's history.
    pub fn write_snapshot(&self, out: &mut impl Write) -> Result<u64, StoreError> {
        let opened = self.opened()?;
        let Database::Sled { tree, .. } = &opened.database else {
            return Err(StoreError::Snapshot(
                "a store in memory has no snapshot".into(),
            ));
        };
        let io = |e: std::io::Error| StoreError::Snapshot(format!("cannot write it: {e}"));
        out.write_all(HEADER).map_err(io)?;
        let mut rows = 0u64;
        for row in tree.iter() {
            let (key, value) = row.map_err(StoreError::sled("reading a row for a snapshot"))?;
            for part in [&key, &value] {
                let len = u32::try_from(part.len())
                    .ok()
                    .filter(|&len| len != TRAILER)
                    .ok_or_else(|| StoreError::Snapshot("a row over 4 GiB".into()))?;
                out.write_all(&len.to_be_bytes()).map_err(io)?;
                out.write_all(part).map_err(io)?;
            }
            rows += 1;
        }
        out.write_all(&TRAILER.to_be_bytes()).map_err(io)?;
        out.write_all(&rows.to_be_bytes()).map_err(io)?;
        out.flush().map_err(io)?;
        Ok(rows)
    }

    /// Makes a store in `dir`, which must not hold one, from the snapshot read from
    /// `input`, durably; returns how many rows it holds. A snapshot that is cut short
    /// or damaged is refused, and what was made of it is removed.
    pub fn restore_snapshot(dir: &Path, input: &mut impl Read) -> Result<u64, StoreError> {
        if dir.exists() {
            return Err(StoreError::Snapshot(format!(
                "{} exists: a snapshot is restored into a new directory",
                dir.display()
            )));
        }
        let restored = restore_into(dir, input);
        if restored.is_err() {
            // Half a store must not be opened as a whole one later.
            let _ = std::fs::remove_dir_all(dir);
        }
        restored
    }
}

fn restore_into(dir: &Path, input: &mut impl Read) -> Result<u64, StoreError> {
    let mut header = vec![0; HEADER.len()];
    read_exact(input, &mut header)?;
    if header != HEADER {
        return Err(StoreError::Snapshot("not a Rally snapshot".into()));
    }
    let store = Store::open(dir)?;
    let opened = store.opened()?;
    let Database::Sled { tree, .. } = &opened.database else {
        return Err(StoreError::Snapshot("not a store on disk".into()));
    };
    let mut rows = 0u64;
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    loop {
        let Some(key) = part(input)? else {
            break;
        };
        let value =
            part(input)?.ok_or_else(|| StoreError::Snapshot("a row without its value".into()))?;
        batch.insert(key, value);
        (rows, pending) = (rows + 1, pending + 1);
        if pending == BATCH {
            tree.apply_batch(std::mem::take(&mut batch))
                .map_err(StoreError::sled("writing restored rows"))?;
            pending = 0;
        }
    }
    let mut count = [0; 8];
    read_exact(input, &mut count)?;
    if u64::from_be_bytes(count) != rows {
        return Err(StoreError::Snapshot(format!(
            "{rows} rows read, but the snapshot says {}",
            u64::from_be_bytes(count)
        )));
    }
    tree.apply_batch(batch)
        .map_err(StoreError::sled("writing restored rows"))?;
    drop(opened);
    store.sync()?;
    Ok(rows)
}

/// The next length-prefixed part; `None` at the trailer.
fn part(input: &mut impl Read) -> Result<Option<Vec<u8>>, StoreError> {
    let mut len = [0; 4];
    read_exact(input, &mut len)?;
    let len = u32::from_be_bytes(len);
    if len == TRAILER {
        return Ok(None);
    }
    let mut bytes = vec![0; len as usize];
    read_exact(input, &mut bytes)?;
    Ok(Some(bytes))
}

fn read_exact(input: &mut impl Read, into: &mut [u8]) -> Result<(), StoreError> {
    input.read_exact(into).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => StoreError::Snapshot("it is cut short".into()),
        _ => StoreError::Snapshot(format!("cannot read it: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::Member;
    use crate::store::StepWrite;

    fn store_with_members(dir: &Path, n: usize) -> Store {
        let store = Store::open(dir).unwrap();
        let members = (0..n).map(|i| Member::new(&format!("m-{i}"))).collect();
        store
            .commit(&[StepWrite {
                members,
                meta_put: vec![("cluster.applied".into(), 42u64.to_be_bytes().to_vec())],
                ..StepWrite::default()
            }])
            .unwrap();
        store
    }

    #[test]
    fn a_restored_store_holds_every_row_of_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_members(&dir.path().join("a"), 25_000);
        let mut bytes = Vec::new();
        let rows = store.write_snapshot(&mut bytes).unwrap();
        assert!(rows > 25_000, "{rows}");
        let into = dir.path().join("b");
        assert_eq!(
            Store::restore_snapshot(&into, &mut &bytes[..]).unwrap(),
            rows
        );
        let restored = Store::open(&into).unwrap();
        assert_eq!(restored.member_count().unwrap(), 25_000);
        assert_eq!(
            restored.member("m-24999").unwrap(),
            store.member("m-24999").unwrap()
        );
        assert_eq!(
            restored.meta_get("cluster.applied").unwrap(),
            Some(42u64.to_be_bytes().to_vec())
        );
    }

    #[test]
    fn a_snapshot_cut_short_or_damaged_is_refused_and_leaves_no_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_members(&dir.path().join("a"), 10);
        let mut bytes = Vec::new();
        store.write_snapshot(&mut bytes).unwrap();
        let into = dir.path().join("b");
        let cut = &bytes[..bytes.len() - 3];
        let error = Store::restore_snapshot(&into, &mut &cut[..]).unwrap_err();
        assert!(error.to_string().contains("cut short"), "{error}");
        assert!(!into.exists());
        let mut wrong_count = bytes.clone();
        let last = wrong_count.len() - 1;
        wrong_count[last] ^= 1;
        let error = Store::restore_snapshot(&into, &mut &wrong_count[..]).unwrap_err();
        assert!(error.to_string().contains("rows read"), "{error}");
        assert!(!into.exists());
        let error = Store::restore_snapshot(&into, &mut &b"hello"[..]).unwrap_err();
        assert!(
            error.to_string().contains("cut short") || error.to_string().contains("not a Rally")
        );
        // Never over a store that is there.
        let error = Store::restore_snapshot(&dir.path().join("a"), &mut &bytes[..]).unwrap_err();
        assert!(error.to_string().contains("exists"), "{error}");
    }
}
