//! The files sled writes and what it takes to make them durable.
//!
//! sled 0.34 keeps its log in `<dir>/db`, its settings in `<dir>/conf`, and any log
//! item too big for a segment (over ~128 KiB: a tree node holding large members) in a
//! file of its own under `<dir>/blobs`. Its flush ends in `sync_file_range`, which
//! leaves the device's write cache; it never syncs `conf` or blob files at all. This
//! module adds the `fsync`s sled leaves out.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::StoreError;

pub(super) struct DataFiles {
    blobs_dir: PathBuf,
    db_path: PathBuf,
    /// Kept open: `fdatasync` on any descriptor of the file flushes its data.
    db: File,
    /// Blob files already synced, so each sync touches only new ones.
    synced_blobs: Mutex<HashSet<OsString>>,
}

impl DataFiles {
    /// Call right after sled opened `dir`.
    pub(super) fn open(dir: &Path) -> Result<DataFiles, StoreError> {
        let db_path = dir.join("db");
        let db = File::open(&db_path).map_err(io("cannot open sled's data file", &db_path))?;
        // A crash right after creating the database must not leave an empty `conf` or
        // lose the directory entries.
        sync_path(&dir.join("conf"), "cannot fsync sled's config file")?;
        sync_path(dir, "cannot fsync the data directory")?;
        let files = DataFiles {
            blobs_dir: dir.join("blobs"),
            db_path,
            db,
            synced_blobs: Mutex::new(HashSet::new()),
        };
        files.sync_new_blobs()?;
        Ok(files)
    }

    /// Blob files first (sled wrote them while committing, before the log records that
    /// point at them), then sled's flush, then the log itself.
    pub(super) fn sync(&self, db: &sled::Db) -> Result<(), StoreError> {
        self.sync_new_blobs()?;
        db.flush()
            .map_err(StoreError::sled("flushing the database"))?;
        self.db
            .sync_data()
            .map_err(io("cannot fdatasync sled's data file", &self.db_path))
    }

    fn sync_new_blobs(&self) -> Result<(), StoreError> {
        let entries = match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("cannot list sled's blobs", &self.blobs_dir)(e)),
        };
        let mut synced = self
            .synced_blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut present = HashSet::new();
        let mut any_new = false;
        for entry in entries {
            let entry = entry.map_err(io("cannot list sled's blobs", &self.blobs_dir))?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                match File::open(entry.path()) {
                    Ok(file) => file
                        .sync_data()
                        .map_err(io("cannot fdatasync a blob", &entry.path()))?,
                    // sled removes blobs it no longer needs, possibly while we list them.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(io("cannot open a blob", &entry.path())(e)),
                }
                any_new = true;
            }
            present.insert(name);
        }
        if any_new {
            sync_path(&self.blobs_dir, "cannot fsync sled's blob directory")?;
        }
        *synced = present;
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn synced_blob_count(&self) -> usize {
        self.synced_blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// `fsync` of a file or a directory (Linux allows both opened read-only).
fn sync_path(path: &Path, context: &'static str) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(context, path))
}

fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        context,
        path,
        source,
    }
}
