//! sled storage: one tree per concern, keys encoded in [`keys`], and one transaction
//! per group of steps.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `members` | member id | `Member` as JSON |
//! | `ledger` | member ⊕ seq | `LedgerEntry` as JSON |
//! | `firings` | member ⊕ seq | `Firing` as JSON |
//! | `seen` | event id | [`SEEN_APPLIED`]: the event's step is committed |
//! | `timers` | due ⊕ kind ⊕ id ([`TimerKey`]) | the caller's bytes |
//! | `outbox` | seq | the caller's bytes |
//! | `tickets` | ticket number | the caller's bytes |
//! | `meta` | name | the caller's bytes; `store.*` names hold the store's counters |
//!
//! Invariants:
//! - [`Store::commit`] writes a whole group of steps in one sled transaction over all
//!   trees: after a crash either every step of the group is there or none is.
//! - Transaction closures may run more than once, so everything is serialized and every
//!   key computed before the transaction starts; the closure only replays writes.
//! - There is one writer. Ledger and firing sequence numbers come from counters kept
//!   in memory and persisted in `meta` in the same transaction as the rows they number.
//! - Durability is [`Store::sync`]: sled's flush, then `fdatasync` of sled's files
//!   (its log, and the blob files it writes for very large items; see `durable`).
//!   sled's background flusher is off (it contends with transactions for sled's lock,
//!   and a timer is not durability anyway).

mod durable;
mod error;
pub mod keys;
mod read;
mod write;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use durable::DataFiles;
pub use error::StoreError;
pub use keys::{KeyError, TimerKey};
pub use write::StepWrite;

/// The value of a `seen` row. A status byte rather than a time: the store reads no clock.
pub const SEEN_APPLIED: &[u8] = &[1];

/// Meta names starting with this belong to the store.
const RESERVED_META: &str = "store.";
const NEXT_LEDGER_SEQ: &str = "store.next_ledger_seq";
const NEXT_FIRING_SEQ: &str = "store.next_firing_seq";

pub struct Store {
    db: sled::Db,
    trees: Trees,
    /// What `sync` must fsync besides sled's flush. `None` for a temporary store,
    /// which promises no durability.
    files: Option<DataFiles>,
    /// The next sequence numbers; a std `Mutex` because it is held only while a group is
    /// prepared and committed, never across an await. It is advanced only after a
    /// commit succeeds, so a failed commit reuses the same numbers.
    counters: Mutex<Counters>,
}

#[derive(Clone, Copy, Debug)]
struct Counters {
    ledger: u64,
    firing: u64,
}

struct Trees {
    members: sled::Tree,
    ledger: sled::Tree,
    firings: sled::Tree,
    seen: sled::Tree,
    timers: sled::Tree,
    outbox: sled::Tree,
    tickets: sled::Tree,
    meta: sled::Tree,
}

/// Names a tree; `id as usize` is its index in [`TreeId::ALL`].
#[derive(Clone, Copy, Debug)]
enum TreeId {
    Members,
    Ledger,
    Firings,
    Seen,
    Timers,
    Outbox,
    Tickets,
    Meta,
}

impl TreeId {
    const ALL: [TreeId; 8] = [
        TreeId::Members,
        TreeId::Ledger,
        TreeId::Firings,
        TreeId::Seen,
        TreeId::Timers,
        TreeId::Outbox,
        TreeId::Tickets,
        TreeId::Meta,
    ];

    fn name(self) -> &'static str {
        match self {
            TreeId::Members => "members",
            TreeId::Ledger => "ledger",
            TreeId::Firings => "firings",
            TreeId::Seen => "seen",
            TreeId::Timers => "timers",
            TreeId::Outbox => "outbox",
            TreeId::Tickets => "tickets",
            TreeId::Meta => "meta",
        }
    }
}

impl Trees {
    fn open(db: &sled::Db) -> Result<Trees, StoreError> {
        let open = |id: TreeId| {
            db.open_tree(id.name())
                .map_err(StoreError::sled("opening a tree"))
        };
        Ok(Trees {
            members: open(TreeId::Members)?,
            ledger: open(TreeId::Ledger)?,
            firings: open(TreeId::Firings)?,
            seen: open(TreeId::Seen)?,
            timers: open(TreeId::Timers)?,
            outbox: open(TreeId::Outbox)?,
            tickets: open(TreeId::Tickets)?,
            meta: open(TreeId::Meta)?,
        })
    }

    fn get(&self, id: TreeId) -> &sled::Tree {
        match id {
            TreeId::Members => &self.members,
            TreeId::Ledger => &self.ledger,
            TreeId::Firings => &self.firings,
            TreeId::Seen => &self.seen,
            TreeId::Timers => &self.timers,
            TreeId::Outbox => &self.outbox,
            TreeId::Tickets => &self.tickets,
            TreeId::Meta => &self.meta,
        }
    }

    /// Every tree, in [`TreeId::ALL`] order, so `id as usize` indexes the result (and a
    /// transaction's view of it).
    fn all(&self) -> [&sled::Tree; 8] {
        TreeId::ALL.map(|id| self.get(id))
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
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
        let files = DataFiles::open(dir)?;
        Store::with_db(db, Some(files))
    }

    /// A store that lives in memory-backed temporary files and vanishes on drop: for
    /// `sim` and tests.
    pub fn open_temporary() -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .temporary(true)
            .flush_every_ms(None)
            .open()
            .map_err(StoreError::sled("opening a temporary database"))?;
        Store::with_db(db, None)
    }

    fn with_db(db: sled::Db, files: Option<DataFiles>) -> Result<Store, StoreError> {
        let trees = Trees::open(&db)?;
        let counter = |name: &str| -> Result<u64, StoreError> {
            match trees
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
            ledger: counter(NEXT_LEDGER_SEQ)?,
            firing: counter(NEXT_FIRING_SEQ)?,
        };
        Ok(Store {
            db,
            trees,
            files,
            counters: Mutex::new(counters),
        })
    }

    /// Makes every committed group durable: sled's flush, then `fdatasync` of the
    /// files sled wrote, because sled's flush ends in `sync_file_range`, which does not
    /// flush the device's write cache (see [`durable`]). Acknowledge work only after
    /// this returns.
    pub fn sync(&self) -> Result<(), StoreError> {
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
