//! What can go wrong in the store, with enough context to find the row or file.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled itself failed (I/O, or corruption sled detected).
    #[error("sled failed while {context}: {source}")]
    Sled {
        context: &'static str,
        #[source]
        source: sled::Error,
    },
    /// A stored key or value does not decode: the database was written by something
    /// else or damaged. Names the row so an operator can look at it.
    #[error("corrupt row in tree `{tree}` at key {key}: {message}")]
    Corrupt {
        tree: &'static str,
        key: String,
        message: String,
    },
    /// A value could not be serialized; nothing was written.
    #[error("cannot encode the value for tree `{tree}` at key {key}: {message}")]
    Encode {
        tree: &'static str,
        key: String,
        message: String,
    },
    /// The data directory holds data in the storage layout of an earlier Rally (one sled
    /// tree per concern), which this Rally does not read.
    #[error(
        "the data directory {} was written by an older Rally storage layout (it has a \
         non-empty `{tree}` tree) and this Rally cannot read it: start with an empty \
         --data directory (move this one aside, or keep running the Rally that wrote it)",
        path.display()
    )]
    OlderLayout { path: PathBuf, tree: &'static str },
    /// `meta_put` used a name the store keeps for its own counters.
    #[error(
        "{} does not exist but {} does: a `rally compact` was interrupted between its two \
         renames; run `rally compact --data {}` again to finish it (the data is whole)",
        dir.display(), kept.display(), dir.display()
    )]
    CompactInterrupted { dir: PathBuf, kept: PathBuf },
    #[error("meta name `{name}` is reserved for the store (names starting `store.`)")]
    ReservedMeta { name: String },
    /// The database was dropped to be opened again after an I/O error, and that open
    /// failed; the next [`Store::reopen`](super::Store::reopen) tries again.
    #[error("the store is closed: opening it again after an I/O error failed: {0}")]
    Closed(String),
    /// Rows of a kind this store was opened without
    /// ([`Store::in_memory_without_history`](super::Store::in_memory_without_history)).
    #[error("this store does not keep {what}: it was opened for a run that reads what happened from its journal")]
    NotKept { what: &'static str },
    /// A step of the open group could not finish (a credited member could not be
    /// read after the crediting step joined the group): the whole group is dropped
    /// rather than stored half, and every event in it answered as not stored.
    #[error("the group was dropped, nothing of it stored: {0}")]
    GroupDropped(String),
    /// A snapshot that cannot be written or read back ([`Store::write_snapshot`](super::Store::write_snapshot)).
    #[error("snapshot: {0}")]
    Snapshot(String),
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// An I/O error (from sled or from a file sled writes), or a store left closed by
    /// one: what [`Store::reopen`](super::Store::reopen) may cure.
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            StoreError::Sled {
                source: sled::Error::Io(_),
                ..
            } | StoreError::Io { .. }
                | StoreError::Closed(_)
        )
    }

    pub(crate) fn sled(context: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
        move |source| StoreError::Sled { context, source }
    }

    pub(crate) fn corrupt(tree: &'static str, key: &[u8], message: impl ToString) -> StoreError {
        StoreError::Corrupt {
            tree,
            key: super::keys::describe(tree, key),
            message: message.to_string(),
        }
    }
}
