//! sled storage: one tree, `rally`, holding one keyspace per concern (its keys start
//! with the keyspace's prefix byte), keys encoded in [`keys`], and one batch per group
//! of steps.
//!
//! | keyspace | prefix | key after the prefix | value |
//! |---|---|---|---|
//! | `members` | `0x01` | member id | `Member` as MessagePack, fields by position |
//! | `history` | `0x02` | member ⊕ seq | one step's ledger entries and firings for the member, as JSON |
//! | `seen` | `0x03` | event id | [`SEEN_APPLIED`]: the event's step is committed |
//! | `timers` | `0x04` | due ⊕ kind ⊕ id ([`TimerKey`]) | the caller's bytes |
//! | `outbox` | `0x05` | seq | the caller's bytes |
//! | `tickets` | `0x06` | ticket number | the caller's bytes |
//! | `meta` | `0x07` | name | the caller's bytes; `store.*` names hold the store's counters |
//!
//! Invariants:
//! - [`Store::commit`] writes a whole group of steps with one `Tree::apply_batch`:
//!   sled logs the batch so that after a crash either every step of the group is there
//!   or none is. That guarantee covers one tree only, which is why everything lives in
//!   one tree. (A multi-tree transaction gives the same guarantee but first reads every
//!   key it writes, for old values nobody here wants.)
//! - A keyspace is every key that starts with its prefix byte, and a prefix is one
//!   fixed byte, so the order of the keys after it is exactly the order [`keys`]
//!   promises, and a scan of one keyspace ends before the next begins. The prefixes are
//!   the on-disk format: never renumber them.
//! - A data directory written by the earlier layout (one sled tree per concern) is
//!   refused on open with [`StoreError::OlderLayout`], never shown as an empty store.
//! - Members are MessagePack, not JSON: every event rewrites its member, and sled
//!   rewrites whole leaf nodes of them as it consolidates, so their size is paid
//!   again and again (a third smaller than JSON, and faster both ways). Fields go
//!   by position; `Member` is `#[serde(default)]`, so a record written before a field
//!   was appended reads with that field's default. Append new fields, never reorder.
//!   Counters are exact decimals written as text; a member written when they were
//!   floats still reads, each float as the decimal it printed as
//!   ([`money::counters`](crate::money::counters)).
//! - A step's ledger entries and firings share one `history` row per member: every
//!   row written is a cost (sled splits a leaf every few inserts), and most steps award
//!   points and fire a rule together.
//! - There is one writer. History sequence numbers come from a counter kept in memory
//!   and persisted in `meta` in the same batch as the rows it numbers.
//! - Durability is [`Store::sync`]: sled's flush, then `fdatasync` of sled's files
//!   (its log, and the blob files it writes for very large items; see `durable`).
//!   sled's background flusher is off (it contends with commits for sled's lock, and a
//!   timer is not durability anyway).

mod durable;
mod error;
mod faults;
mod history;
pub mod keys;
mod keyspace;
mod read;
mod write;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use durable::DataFiles;
pub use error::StoreError;
pub use faults::{Fault, Faults, UNTIL_CLEARED};
pub use keys::{KeyError, TimerKey};
use keyspace::Keyspace;
pub use write::StepWrite;

/// The value of a `seen` row. A status byte rather than a time: the store reads no clock.
pub const SEEN_APPLIED: &[u8] = &[1];

/// The one sled tree every keyspace lives in. Named rather than sled's default tree,
/// which every sled database has, so that `tree_names` tells the layouts apart.
const TREE: &str = "rally";

/// Meta names starting with this belong to the store.
const RESERVED_META: &str = "store.";
const NEXT_HISTORY_SEQ: &str = "store.next_history_seq";

/// The sled trees of the earlier layout, one per concern: a directory holding any of
/// them with data in it is refused (see [`refuse_older_layout`]).
const OLDER_LAYOUT_TREES: [&str; 8] = [
    "members", "ledger", "firings", "seen", "timers", "outbox", "tickets", "meta",
];

pub struct Store {
    db: sled::Db,
    /// The tree behind every keyspace: what a group's batch is applied to.
    tree: sled::Tree,
    keyspaces: Keyspaces,
    /// What `sync` must fsync besides sled's flush. `None` for a temporary store,
    /// which promises no durability.
    files: Option<DataFiles>,
    /// The next sequence numbers; a std `Mutex` because it is held only while a group is
    /// prepared and committed, never across an await. It is advanced only after a
    /// commit succeeds, so a failed commit reuses the same numbers.
    counters: Mutex<Counters>,
    /// Failures a test asked for (see [`faults`]); shared with every keyspace.
    faults: Arc<Faults>,
}

#[derive(Clone, Copy, Debug)]
struct Counters {
    history: u64,
}

struct Keyspaces {
    members: Keyspace,
    history: Keyspace,
    seen: Keyspace,
    timers: Keyspace,
    outbox: Keyspace,
    tickets: Keyspace,
    meta: Keyspace,
}

/// Names a keyspace. The discriminant is its prefix byte: part of the on-disk format.
/// Below `0xFF`, so `prefix + 1` bounds a keyspace from above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum TreeId {
    Members = 0x01,
    History = 0x02,
    Seen = 0x03,
    Timers = 0x04,
    Outbox = 0x05,
    Tickets = 0x06,
    Meta = 0x07,
}

impl TreeId {
    #[cfg(test)]
    const ALL: [TreeId; 7] = [
        TreeId::Members,
        TreeId::History,
        TreeId::Seen,
        TreeId::Timers,
        TreeId::Outbox,
        TreeId::Tickets,
        TreeId::Meta,
    ];

    fn name(self) -> &'static str {
        match self {
            TreeId::Members => "members",
            TreeId::History => "history",
            TreeId::Seen => "seen",
            TreeId::Timers => "timers",
            TreeId::Outbox => "outbox",
            TreeId::Tickets => "tickets",
            TreeId::Meta => "meta",
        }
    }

    fn prefix(self) -> u8 {
        self as u8
    }

    /// `key` as stored: behind this keyspace's prefix.
    fn key(self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + key.len());
        out.push(self.prefix());
        out.extend_from_slice(key);
        out
    }
}

impl Keyspaces {
    fn new(tree: &sled::Tree, faults: &Arc<Faults>) -> Keyspaces {
        let keyspace = |id| Keyspace::new(tree.clone(), id, Arc::clone(faults));
        Keyspaces {
            members: keyspace(TreeId::Members),
            history: keyspace(TreeId::History),
            seen: keyspace(TreeId::Seen),
            timers: keyspace(TreeId::Timers),
            outbox: keyspace(TreeId::Outbox),
            tickets: keyspace(TreeId::Tickets),
            meta: keyspace(TreeId::Meta),
        }
    }
}

/// Refuses a directory written by the earlier layout, one sled tree per concern:
/// opening it as if it were new would show an empty store and then write a second,
/// diverging one beside the real data. Trees that exist but are empty hold nothing to
/// lose, so they are let be.
fn refuse_older_layout(db: &sled::Db, dir: &Path) -> Result<(), StoreError> {
    let names = db.tree_names();
    for tree in OLDER_LAYOUT_TREES {
        if !names.iter().any(|name| name == tree.as_bytes()) {
            // `open_tree` would create it: look only at trees that exist.
            continue;
        }
        let old = db
            .open_tree(tree)
            .map_err(StoreError::sled("checking for an older storage layout"))?;
        if !old.is_empty() {
            return Err(StoreError::OlderLayout {
                path: dir.to_path_buf(),
                tree,
            });
        }
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_faults(dir, Arc::default())
    }

    /// [`Store::open`], failing on demand as `faults` says: for tests of what the
    /// callers do when the store fails.
    pub fn open_with_faults(dir: &Path, faults: Arc<Faults>) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            context: "cannot create the data directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .open()
            .map_err(StoreError::sled("opening the database"))?;
        refuse_older_layout(&db, dir)?;
        let files = DataFiles::open(dir)?;
        Store::with_db(db, Some(files), faults)
    }

    /// A store that lives in memory-backed temporary files and vanishes on drop: for
    /// `sim` and tests.
    pub fn open_temporary() -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .temporary(true)
            .flush_every_ms(None)
            .open()
            .map_err(StoreError::sled("opening a temporary database"))?;
        Store::with_db(db, None, Arc::default())
    }

    fn with_db(
        db: sled::Db,
        files: Option<DataFiles>,
        faults: Arc<Faults>,
    ) -> Result<Store, StoreError> {
        let tree = db
            .open_tree(TREE)
            .map_err(StoreError::sled("opening the tree"))?;
        let keyspaces = Keyspaces::new(&tree, &faults);
        let counter = |name: &str| -> Result<u64, StoreError> {
            match keyspaces
                .meta
                .get(name)
                .map_err(StoreError::sled("reading a counter"))?
            {
                None => Ok(0),
                Some(bytes) => keys::decode_u64(&bytes)
                    .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e)),
            }
        };
        let counters = Counters {
            history: counter(NEXT_HISTORY_SEQ)?,
        };
        Ok(Store {
            db,
            tree,
            keyspaces,
            files,
            counters: Mutex::new(counters),
            faults,
        })
    }

    /// The switches that make this store fail on demand (inert until a test arms them).
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Makes every committed group durable: sled's flush, then `fdatasync` of the
    /// files sled wrote, because sled's flush ends in `sync_file_range`, which does not
    /// flush the device's write cache (see [`durable`]). Acknowledge work only after
    /// this returns.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.faults
            .check(Fault::Sync)
            .map_err(StoreError::sled("flushing the database"))?;
        match &self.files {
            Some(files) => files.sync(&self.db),
            None => self
                .db
                .flush()
                .map(drop)
                .map_err(StoreError::sled("flushing the database")),
        }
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        // Counters change only after a successful commit, so a panic elsewhere while
        // the lock was held cannot have left them inconsistent.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
