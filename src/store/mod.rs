//! Storage: one tree, `rally`, holding one keyspace per concern (its keys start with
//! the keyspace's prefix byte), keys encoded in [`keys`], and one batch per group of
//! steps.
//!
//! Two backends behind the one [`Store`]: sled, on disk, for the daemon and `import`
//! ([`Store::open`]); and ordered maps in memory ([`memory`]) for `sim`, `rally test`,
//! replay and tests ([`Store::in_memory`], [`Store::in_memory_without_history`]), which
//! hold the same rows in the same order with the same all-or-nothing groups, so a run
//! gives the same results on either (`tests/store_backends.rs`). The table and the
//! invariants below are sled's; where the memory backend departs from them (members
//! kept decoded, seen ids in a hash set, history optionally not kept) `memory` says so.
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
//! | `outbox_by_member` | `0x08` | member ⊕ seq | empty: the outbox row `seq` is addressed to `member` |
//! | `journal` | `0x09` | seq of the row's first entry | a run of journal entries with consecutive numbers, one JSON text per line (see [`journal`]) |
//! | `leaderboards` | `0x0A` | board ⊕ period ⊕ score (descending) ⊕ reached ⊕ member ([`keys::RankKey`]) | empty: the member's place in that period (see [`ranks`]) |
//! | `seen_by_day` | `0x0B` | day of the event's `at` ⊕ the first event id filed ([`keys::day_id`]) | the ids of a group's events of that day, each a 4-byte length and the id; empty in rows of one id written before (see [`dedup`]) |
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
//! - `outbox_by_member` indexes the outbox so that a member's messages are read
//!   without reading anyone else's (see [`outbox_index`]). An index row is written in
//!   the batch that writes its outbox row and removed with it; it holds no status, so
//!   the dispatcher's updates of the row need not touch it. A data directory written
//!   before the index existed is indexed once when it is opened.
//! - The dispatcher writes a delivery's new outbox row status and the count of what it
//!   was (`metrics.delivery.*` meta rows) in one atomic write ([`outbox_counted`]).
//! - A `seen` row is written with its `seen_by_day` row in one batch, and retention
//!   removes the two together ([`dedup`]): the id lookup on the hot path stays one
//!   get, and a pass finds the rows past the de-duplication window without reading
//!   the others. `seen` rows written before the index existed have none and are kept.
//! - Retention ([`retention`]) removes old rows in small atomic pieces beside the
//!   writer; it never removes an outbox row that may still go out, nor the newest one.
//! - There is one writer. History sequence numbers come from a counter kept in memory
//!   and persisted in `meta` in the same batch as the rows it numbers.
//! - Durability is [`Store::sync`]: sled's flush, then `fdatasync` of sled's files
//!   (its log, and the blob files it writes for very large items; see `durable`).
//!   sled's background flusher is off (it contends with commits for sled's lock, and a
//!   timer is not durability anyway).
//! - After an I/O error (a full disk), sled 0.34 returns that error from every later
//!   call, even once the cause is gone: it keeps the first I/O error it meets.
//!   [`Store::reopen`] drops the database and opens it from its files, where sled's
//!   recovery keeps each batch whole or not at all (checked on a full tmpfs by
//!   `tests/full_disk.rs`). So every access takes the open database from one place,
//!   for that call only.
//! - Tests can make commits, syncs and reads fail on demand ([`Faults`]), on either
//!   backend.

pub mod compact;
pub mod dedup;
mod durable;
mod error;
mod faults;
mod history;
mod journal;
pub mod keys;
mod keyspace;
mod memory;
mod memory_members;
mod memory_rows;
mod outbox_counted;
mod outbox_index;
mod ranks;
mod read;
mod retention;
mod snapshot;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use durable::DataFiles;
pub use error::StoreError;
pub use faults::{Fault, Faults, UNTIL_CLEARED};
pub use keys::{KeyError, TimerKey};
use keyspace::{Backing, Keyspace};
use memory::Memory;
pub use read::{MemberHistory, Row};
pub use retention::{Trimmed, Verdict};
pub use write::{history_row_count, StepWrite};

/// How much of a member [`Store::prefetch_members`] asks for: each level is reached
/// through pointers the one before fetched, so a caller asks for them in turn, some
/// steps apart.
#[derive(Clone, Copy, Debug)]
pub enum Prefetch {
    /// Where the member is kept.
    Place,
    /// Its bookkeeping, counters, id and attributes.
    Member,
    /// The bookkeeping's own entries.
    Book,
}

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
    /// The open database: swapped for a fresh one by [`Store::reopen`], so every
    /// access takes it from here for the one call. `None` only between dropping a
    /// database that failed and opening it again (an open that fails leaves it so).
    opened: RwLock<Option<Arc<Opened>>>,
    /// Where the database lives; `None` for a temporary store, which is never reopened.
    dir: Option<PathBuf>,
    /// The next sequence numbers; a std `Mutex` because it is held only while a group is
    /// prepared and committed, never across an await. It is advanced only after a
    /// commit succeeds, so a failed commit reuses the same numbers.
    counters: Mutex<Counters>,
    /// Failures a test asked for (see [`faults`]); shared with every keyspace.
    faults: Arc<Faults>,
    /// sled's page cache, kept for [`Store::reopen`].
    cache: CacheSize,
}

/// One opened database and what is derived from it.
struct Opened {
    database: Database,
    keyspaces: Keyspaces,
    /// What `sync` must fsync besides sled's flush. `None` for a temporary store,
    /// which promises no durability.
    files: Option<DataFiles>,
}

/// What holds the rows: sled, or maps in memory (see [`memory`]).
enum Database {
    Sled {
        db: sled::Db,
        /// The tree behind every keyspace: what a group's batch is applied to.
        tree: sled::Tree,
    },
    Memory(Arc<Memory>),
}

impl Database {
    /// Applies `batch` whole: after a crash too, for sled.
    fn apply(&self, batch: write::Batch) -> sled::Result<()> {
        match self {
            Database::Sled { tree, .. } => tree.apply_batch(batch.into_sled()),
            Database::Memory(memory) => {
                memory.apply(batch);
                Ok(())
            }
        }
    }

    /// What this backend wants of a group's rows.
    fn form(&self) -> write::Form {
        match self {
            Database::Sled { .. } => write::Form {
                decoded_members: false,
                history: true,
                seen_by_day: true,
            },
            Database::Memory(memory) => write::Form {
                decoded_members: true,
                history: memory.keeps_history,
                // Filed by day so the runner can forget ids past the window (see
                // `Runner::forget_old_event_ids`), as the daemon's retention does.
                seen_by_day: true,
            },
        }
    }

    /// An error unless this backend keeps `history` rows.
    fn history_kept(&self) -> Result<(), StoreError> {
        match self {
            Database::Memory(memory) if !memory.keeps_history => {
                Err(StoreError::NotKept { what: "history" })
            }
            _ => Ok(()),
        }
    }

    /// Where the keyspaces find their rows.
    fn backing(&self) -> Backing {
        match self {
            Database::Sled { tree, .. } => Backing::Sled(tree.clone()),
            Database::Memory(memory) => Backing::Memory(Arc::clone(memory)),
        }
    }
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
    outbox_by_member: Keyspace,
    journal: Keyspace,
    leaderboards: Keyspace,
    seen_by_day: Keyspace,
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
    OutboxByMember = 0x08,
    Journal = 0x09,
    Leaderboards = 0x0A,
    SeenByDay = 0x0B,
}

impl TreeId {
    const COUNT: usize = 11;

    #[cfg(test)]
    const ALL: [TreeId; 11] = [
        TreeId::Members,
        TreeId::History,
        TreeId::Seen,
        TreeId::Timers,
        TreeId::Outbox,
        TreeId::Tickets,
        TreeId::Meta,
        TreeId::OutboxByMember,
        TreeId::Journal,
        TreeId::Leaderboards,
        TreeId::SeenByDay,
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
            TreeId::OutboxByMember => "outbox_by_member",
            TreeId::Journal => "journal",
            TreeId::Leaderboards => "leaderboards",
            TreeId::SeenByDay => "seen_by_day",
        }
    }

    fn prefix(self) -> u8 {
        self as u8
    }

    /// Its place among [`TreeId::COUNT`] keyspaces: the prefixes run from 1 with no gap.
    fn index(self) -> usize {
        usize::from(self.prefix() - 1)
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
    fn new(database: &Database, faults: &Arc<Faults>) -> Keyspaces {
        let keyspace = |id| Keyspace::new(database.backing(), id, Arc::clone(faults));
        Keyspaces {
            members: keyspace(TreeId::Members),
            history: keyspace(TreeId::History),
            seen: keyspace(TreeId::Seen),
            timers: keyspace(TreeId::Timers),
            outbox: keyspace(TreeId::Outbox),
            tickets: keyspace(TreeId::Tickets),
            meta: keyspace(TreeId::Meta),
            outbox_by_member: keyspace(TreeId::OutboxByMember),
            journal: keyspace(TreeId::Journal),
            leaderboards: keyspace(TreeId::Leaderboards),
            seen_by_day: keyspace(TreeId::SeenByDay),
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

    /// [`Store::open`], waiting (a few seconds at most) for the lock a store of this
    /// process dropped a moment ago still holds: sled releases it from a background
    /// thread.
    pub fn open_after_drop(dir: &Path) -> Result<Store, StoreError> {
        Store::open_after_drop_with(dir, CacheSize::DEFAULT)
    }

    /// [`Store::open_after_drop`] with `cache` for sled's page cache.
    pub fn open_after_drop_with(dir: &Path, cache: CacheSize) -> Result<Store, StoreError> {
        waiting_for_lock(|| Store::open_with(dir, cache, Arc::default()))
    }

    /// [`Store::open`], failing on demand as `faults` says: for tests of what the
    /// callers do when the store fails.
    pub fn open_with_faults(dir: &Path, faults: Arc<Faults>) -> Result<Store, StoreError> {
        Store::open_with(dir, CacheSize::DEFAULT, faults)
    }

    /// [`Store::open_with_faults`] with `cache` for sled's page cache.
    pub fn open_with(
        dir: &Path,
        cache: CacheSize,
        faults: Arc<Faults>,
    ) -> Result<Store, StoreError> {
        let opened = open_dir(dir, cache, &faults)?;
        let mut store = Store::with_opened(opened, Some(dir.to_path_buf()), faults)?;
        store.cache = cache;
        Ok(store)
    }

    /// A store that lives in memory-backed temporary files and vanishes on drop: for
    /// `sim` and tests.
    pub fn open_temporary() -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .temporary(true)
            .flush_every_ms(None)
            .open()
            .map_err(StoreError::sled("opening a temporary database"))?;
        let faults = Arc::default();
        let opened = Opened::new(db, None, &faults)?;
        Store::with_opened(opened, None, faults)
    }

    /// A store held in this process's memory ([`memory`]): the same rows, order and
    /// all-or-nothing groups as sled, at a fraction of the cost, and nothing survives
    /// the process. For tests, and anything that reads its history back from the
    /// store. Faults can be injected as into sled; `sync` and `reopen` do nothing.
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::memory(true)
    }

    /// [`Store::in_memory`] without `history` rows: ledger entries and firings are
    /// numbered as ever but not kept, and reading them is an error
    /// ([`StoreError::NotKept`]). For runs that take what happened from the runner's
    /// journal (`sim`, `rally test`, replay): kept, the history would be a second copy
    /// of it, growing with every event.
    pub fn in_memory_without_history() -> Result<Store, StoreError> {
        Store::memory(false)
    }

    /// Whether the rows live in this process's memory ([`Store::in_memory`]): nothing
    /// else trims them, so the runner forgets old event ids itself (see
    /// [`crate::runner::Runner::commit`]).
    pub fn is_in_memory(&self) -> bool {
        self.opened()
            .is_ok_and(|opened| matches!(opened.database, Database::Memory(_)))
    }

    fn memory(keeps_history: bool) -> Result<Store, StoreError> {
        let faults = Arc::default();
        let memory = Arc::new(Memory::new(keeps_history));
        let opened = Opened::with(Database::Memory(memory), None, &faults)?;
        Store::with_opened(opened, None, faults)
    }

    fn with_opened(
        opened: Opened,
        dir: Option<PathBuf>,
        faults: Arc<Faults>,
    ) -> Result<Store, StoreError> {
        let counters = opened.counters()?;
        Ok(Store {
            opened: RwLock::new(Some(Arc::new(opened))),
            dir,
            counters: Mutex::new(counters),
            faults,
            cache: CacheSize::DEFAULT,
        })
    }

    /// Drops the database and opens it again from its files, for a store that met an
    /// I/O error: sled 0.34 keeps the first I/O error it meets (a full disk, say) and
    /// returns it from every later call, even once the cause is gone, so only a new
    /// open recovers. What the files hold is then the truth: sled's recovery keeps each
    /// batch whole or drops it, and anything committed but not synced may be gone —
    /// callers must forget what they cached (see `Runner::reopen_store`). A temporary
    /// store cannot be reopened and is left as it is.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let mut opened = self.opened.write().unwrap_or_else(PoisonError::into_inner);
        // Ours must be the last handle for sled to let go of its lock on the files;
        // a read in flight holds one only for that read.
        drop(opened.take());
        let fresh = self.open_again(dir)?;
        *opened = Some(fresh.clone());
        tracing::warn!(dir = %dir.display(), "the store was opened again after an I/O error");
        Ok(())
    }

    /// The open database, for one call. A store left closed by a failed reopen is
    /// opened again here, so the first call after the cause is gone (space freed)
    /// finds it working.
    fn opened(&self) -> Result<Arc<Opened>, StoreError> {
        if let Some(opened) = self
            .opened
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(opened);
        }
        let Some(dir) = &self.dir else {
            return Err(StoreError::Closed(
                "a temporary store cannot be opened again".into(),
            ));
        };
        let mut opened = self.opened.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(opened) = opened.clone() {
            // Another caller opened it meanwhile.
            return Ok(opened);
        }
        let fresh = self.open_again(dir).map_err(|e| {
            tracing::error!(error = %e, "the store is still closed");
            StoreError::Closed(e.to_string())
        })?;
        *opened = Some(fresh.clone());
        tracing::warn!(dir = %dir.display(), "the store was opened again after an I/O error");
        Ok(fresh)
    }

    /// Opens `dir` again and takes the counters from it: what the files hold is the
    /// truth now.
    fn open_again(&self, dir: &Path) -> Result<Arc<Opened>, StoreError> {
        let fresh = open_dir_retrying(dir, self.cache, &self.faults)?;
        *self.counters() = fresh.counters()?;
        Ok(Arc::new(fresh))
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
        let opened = self.opened()?;
        match (&opened.database, &opened.files) {
            (Database::Sled { db, .. }, Some(files)) => files.sync(db),
            (Database::Sled { db, .. }, None) => db
                .flush()
                .map(drop)
                .map_err(StoreError::sled("flushing the database")),
            (Database::Memory(_), _) => Ok(()),
        }
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        // Counters change only after a successful commit, so a panic elsewhere while
        // the lock was held cannot have left them inconsistent.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A row that gathers what a group wrote (journal entries, the ids of a day's events)
/// grows to about this size, then the group's next ones start another. sled writes a
/// leaf (up to 17 rows) as a file of its own once it is over 128 KiB (a blob, synced
/// on its own), and rewrites the last leaf of a keyspace whose keys only grow every
/// few inserts: rows of a group's whole journal (30 KiB for 150 events) made that a new
/// blob file every few groups. 17 rows of this size stay under it.
const ROW_BYTES: usize = 4 * 1024;

/// How long [`Store::reopen`] waits for sled to let go of its lock on the files.
const REOPEN_WAIT: Duration = Duration::from_secs(5);

/// sled's page cache (`RALLY_CACHE_MB` for `rally run` and `rally import`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSize {
    bytes: u64,
}

impl CacheSize {
    /// sled's own default (1 GiB) let a daemon's memory grow with the data for as
    /// long as any soak ran; hot members are cached by the runner anyway, so a
    /// smaller page cache costs little and bounds the process.
    pub const DEFAULT: CacheSize = CacheSize::mib(192);

    pub const fn mib(mib: u64) -> CacheSize {
        CacheSize {
            bytes: mib * 1024 * 1024,
        }
    }

    /// One of `stores` stores' equal share of this cache, at least 8 MiB each: a
    /// cluster node's partition stores share the node's cache (`RALLY_CACHE_MB`).
    pub fn shared_by(self, stores: u32) -> CacheSize {
        CacheSize {
            bytes: (self.bytes / u64::from(stores.max(1))).max(Self::mib(8).bytes),
        }
    }

    /// `RALLY_CACHE_MB`, a positive whole number of MiB, or [`CacheSize::DEFAULT`]
    /// when it is unset; the error says what is wrong with it (after the name).
    pub fn from_env() -> Result<CacheSize, String> {
        match std::env::var("RALLY_CACHE_MB") {
            Err(_) => Ok(CacheSize::DEFAULT),
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(mib) if (1..=1 << 20).contains(&mib) => Ok(CacheSize::mib(mib)),
                _ => Err(format!(
                    "{text:?} is not a whole number of MiB from 1 to 1048576"
                )),
            },
        }
    }
}

fn open_dir(dir: &Path, cache: CacheSize, faults: &Arc<Faults>) -> Result<Opened, StoreError> {
    compact::refuse_interrupted(dir)?;
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        context: "cannot create the data directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let db = sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .cache_capacity(cache.bytes)
        .open()
        .map_err(StoreError::sled("opening the database"))?;
    refuse_older_layout(&db, dir)?;
    let files = DataFiles::open(dir)?;
    Opened::new(db, Some(files), faults)
}

/// [`open_dir`], retrying while the database just dropped still holds its lock.
fn open_dir_retrying(
    dir: &Path,
    cache: CacheSize,
    faults: &Arc<Faults>,
) -> Result<Opened, StoreError> {
    waiting_for_lock(|| open_dir(dir, cache, faults))
}

/// Runs `open` again while it fails because a database this process just dropped
/// still holds the files' lock, for up to [`REOPEN_WAIT`]: sled 0.34 releases it from
/// a background thread some moments after the drop (spacejam/sled#1234).
fn waiting_for_lock<T>(mut open: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let deadline = Instant::now() + REOPEN_WAIT;
    loop {
        match open() {
            Err(StoreError::Sled { source, .. })
                if source.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

impl Opened {
    fn new(
        db: sled::Db,
        files: Option<DataFiles>,
        faults: &Arc<Faults>,
    ) -> Result<Opened, StoreError> {
        let tree = db
            .open_tree(TREE)
            .map_err(StoreError::sled("opening the tree"))?;
        Opened::with(Database::Sled { db, tree }, files, faults)
    }

    fn with(
        database: Database,
        files: Option<DataFiles>,
        faults: &Arc<Faults>,
    ) -> Result<Opened, StoreError> {
        let keyspaces = Keyspaces::new(&database, faults);
        let opened = Opened {
            database,
            keyspaces,
            files,
        };
        outbox_index::ensure_built(&opened)?;
        Ok(opened)
    }

    /// The counters as last committed.
    fn counters(&self) -> Result<Counters, StoreError> {
        let history = match self
            .keyspaces
            .meta
            .get(NEXT_HISTORY_SEQ)
            .map_err(StoreError::sled("reading a counter"))?
        {
            None => 0,
            Some(bytes) => keys::decode_u64(&bytes)
                .map_err(|e| StoreError::corrupt("meta", NEXT_HISTORY_SEQ.as_bytes(), e))?,
        };
        Ok(Counters { history })
    }
}

#[cfg(test)]
mod test_backends;
#[cfg(test)]
mod tests;
