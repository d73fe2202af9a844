//! Writes: a group of steps in one batch, and the dispatcher's single-row updates.

use serde::Serialize;
use sled::IVec;

use super::keys::{self, TimerKey};
use super::{history, outbox_index};
use super::{Counters, Store, StoreError, TreeId, NEXT_HISTORY_SEQ, RESERVED_META};
use crate::engine::{Firing, LedgerEntry};
use crate::member::Member;

/// Everything one step changes. Within a step, removals apply before puts, so a step
/// that clears a timer and sets it again leaves it set; across the steps of a group,
/// later steps win.
#[derive(Clone, Debug, Default)]
pub struct StepWrite {
    /// The event this step applied, recorded as seen in the same batch. `None` for
    /// steps without an event (timers, acks by API). The caller checks [`Store::seen`]
    /// before stepping: the store does not refuse a repeated id.
    pub event_id: Option<crate::engine::Name>,
    /// The `at` of that event: its id is remembered by it for the de-duplication
    /// window ([`super::dedup`]). An id written without one is never forgotten.
    pub event_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Members' new states, stored whole.
    pub members: Vec<Member>,
    /// Appended to each entry's member's ledger; the store numbers them.
    pub ledger: Vec<LedgerEntry>,
    /// Appended to each firing's member's history; the store numbers them.
    pub firings: Vec<Firing>,
    pub timers_set: Vec<(TimerKey, Vec<u8>)>,
    pub timers_clear: Vec<TimerKey>,
    /// Keyed by a sequence number the caller assigns (see [`Store::outbox_last`]);
    /// the value is an encoded [`OutboxRow`](crate::outbox::OutboxRow), indexed by
    /// its member in the same batch. Rows are never removed by a step: only
    /// retention removes them, with their index rows.
    pub outbox_put: Vec<(u64, Vec<u8>)>,
    /// Keyed by ticket number (see [`Store::ticket_last`]).
    pub tickets_put: Vec<(u64, Vec<u8>)>,
    /// Names starting `store.` are reserved and refused.
    pub meta_put: Vec<(String, Vec<u8>)>,
    /// Meta names removed (after this step's puts).
    pub meta_remove: Vec<String>,
    /// Journal entries (`journal.rs` in the runner), each one line of compact JSON,
    /// keyed by a sequence number the caller assigns (see [`Store::journal_last`]):
    /// stored with the step they record, a group's consecutive entries in one row.
    pub journal: Vec<(u64, Vec<u8>)>,
    /// Members' rows in leaderboard rankings moved by this step: each `from` row
    /// removed, each `to` row written (see [`crate::leaderboard`]).
    pub leaderboards: Vec<crate::leaderboard::RankMove>,
    /// History rows numbered but not written: the step's, when its ledger entries and
    /// firings are kept elsewhere and the store keeps no history
    /// ([`Store::keeps_history`]). Counted with [`history_row_count`].
    pub history_rows: u64,
}

/// How many history rows `ledger` and `firings` make: one per member they touch.
pub fn history_row_count(ledger: &[LedgerEntry], firings: &[Firing]) -> u64 {
    history::row_count(ledger, firings)
}

impl Store {
    /// Commits every step of `group` in one sled batch: all of them or none, after a
    /// crash too. Not durable until [`Store::sync`] returns.
    pub fn commit(&self, group: &[StepWrite]) -> Result<(), StoreError> {
        self.commit_moving_members(&mut group.to_vec())
    }

    /// As [`Store::commit`], but a backend that keeps members as they are (memory)
    /// takes them out of `group` rather than copying them; the members left in `group`
    /// (all of them, for sled) are what the store now holds, for a caller's cache.
    pub fn commit_moving_members(&self, group: &mut [StepWrite]) -> Result<(), StoreError> {
        if group.is_empty() {
            return Ok(());
        }
        refuse_reserved_meta(group)?;
        self.faults
            .check(super::Fault::Commit)
            .map_err(StoreError::sled("committing a group of steps"))?;
        let mut counters = self.counters();
        let opened = self.opened()?;
        let (batch, next) = prepare(group, *counters, opened.database.form())?;
        opened
            .database
            .apply(batch)
            .map_err(StoreError::sled("committing a group of steps"))?;
        *counters = next;
        Ok(())
    }

    /// Replaces one outbox row (a delivery attempt's new status), if it is still
    /// there; returns whether it was. Atomic on its own. A row retention removed
    /// meanwhile stays removed: writing it back would bring it back without its
    /// `outbox_by_member` row. The member a row is addressed to never changes, so its
    /// index row is left as it is.
    pub fn outbox_update(&self, seq: u64, value: &[u8]) -> Result<bool, StoreError> {
        self.opened()?
            .keyspaces
            .outbox
            .replace_existing(keys::u64_key(seq), value)
            .map_err(StoreError::sled("updating an outbox row"))
    }
}

fn refuse_reserved_meta(group: &[StepWrite]) -> Result<(), StoreError> {
    let reserved = group
        .iter()
        .flat_map(|step| {
            step.meta_put
                .iter()
                .map(|(name, _)| name)
                .chain(&step.meta_remove)
        })
        .find(|name| name.starts_with(RESERVED_META));
    match reserved {
        Some(name) => Err(StoreError::ReservedMeta { name: name.clone() }),
        None => Ok(()),
    }
}

/// What a backend wants of a group's rows.
#[derive(Clone, Copy, Debug)]
pub(super) struct Form {
    /// Members handed over as they are ([`Batch::put_member`]) rather than encoded.
    pub(super) decoded_members: bool,
    /// Whether `history` rows are written at all; they are numbered either way, so
    /// the counters stay as they would be.
    pub(super) history: bool,
    /// Whether `seen` rows are filed by day for retention: not by a store nothing
    /// trims (`sim`, replay), where they would cost a row per event for nothing.
    pub(super) seen_by_day: bool,
}

/// Serializes the group into one batch, numbering history rows from
/// `counters`; returns the batch and the counters after it. A batch keeps the last
/// write to each key, so the order of the writes below is the order of precedence the
/// [`StepWrite`] docs promise.
fn prepare(
    group: &mut [StepWrite],
    counters: Counters,
    form: Form,
) -> Result<(Batch, Counters), StoreError> {
    let mut next = counters;
    // Sized up front: a group's members are large, and growing the vectors step by
    // step copied each of them several times.
    let mut batch = Batch {
        writes: Vec::with_capacity(2 * group.len()),
        members: Vec::with_capacity(if form.decoded_members { group.len() } else { 0 }),
    };
    let mut journal = super::journal::Runs::default();
    let mut seen = super::dedup::Record::new(form.seen_by_day);
    for step in group.iter_mut() {
        if form.decoded_members {
            for member in step.members.drain(..) {
                batch.put_member(member);
            }
        }
        let step = &*step;
        for member in &step.members {
            let key = keys::text_key(&member.id);
            let value = encode_member(key, member)?;
            put(&mut batch, TreeId::Members, key, value);
        }
        if form.history {
            for (member, row) in history::rows(&step.ledger, &step.firings) {
                let key = keys::member_seq(member, next.history);
                next.history += 1;
                let value = encode(TreeId::History, &key, &row)?;
                put(&mut batch, TreeId::History, &key, value);
            }
        } else {
            // Numbered as if written, so the counters stay as they would be.
            next.history += history::row_count(&step.ledger, &step.firings);
        }
        next.history += step.history_rows;
        for timer in &step.timers_clear {
            batch.remove_owned(TreeId::Timers, timer.encode());
        }
        for (timer, value) in &step.timers_set {
            batch.insert_owned(TreeId::Timers, timer.encode(), value.as_slice());
        }
        for (seq, value) in &step.outbox_put {
            let key = keys::u64_key(*seq);
            put(&mut batch, TreeId::Outbox, &key, value.as_slice());
            if let Some(index) = outbox_index::index_key(*seq, value) {
                put(&mut batch, TreeId::OutboxByMember, &index, IVec::default());
            }
        }
        for (number, value) in &step.tickets_put {
            let key = keys::u64_key(*number);
            put(&mut batch, TreeId::Tickets, &key, value.as_slice());
        }
        for (name, value) in &step.meta_put {
            put(
                &mut batch,
                TreeId::Meta,
                keys::text_key(name),
                value.as_slice(),
            );
        }
        for name in &step.meta_remove {
            remove(&mut batch, TreeId::Meta, keys::text_key(name));
        }
        for (seq, entry) in &step.journal {
            journal.push(*seq, entry);
        }
        for moved in &step.leaderboards {
            let (remove_key, put_key) = super::ranks::row_keys(moved);
            if let Some(key) = remove_key {
                batch.remove_owned(TreeId::Leaderboards, key);
            }
            batch.insert_owned(TreeId::Leaderboards, put_key, IVec::default());
        }
        if let Some(event_id) = &step.event_id {
            seen.seen(&mut batch, event_id, step.event_at);
        }
    }
    journal.write(&mut batch);
    seen.write(&mut batch);
    if next.history != counters.history {
        let value = keys::u64_key(next.history);
        put(
            &mut batch,
            TreeId::Meta,
            NEXT_HISTORY_SEQ.as_bytes(),
            &value[..],
        );
    }
    Ok((batch, next))
}

fn put(batch: &mut Batch, keyspace: TreeId, key: &[u8], value: impl Into<IVec>) {
    batch.insert(keyspace, key, value);
}

fn remove(batch: &mut Batch, keyspace: TreeId, key: &[u8]) {
    batch.remove(keyspace, key);
}

/// One row written: its keyspace, its key without the prefix, and its new value
/// (`None` removes it).
pub(super) type Write = (TreeId, Vec<u8>, Option<IVec>);

/// Writes to apply together, all or none, for either backend: a keyspace, a key
/// without its prefix, and the new value (`None` removes the row). Applied in order,
/// so a later write to the same key wins, as in a sled batch.
#[derive(Default)]
pub(super) struct Batch {
    writes: Vec<Write>,
    /// Members as they are, for a backend that keeps them so (see [`Form`]); applied
    /// in order, so a later step's member wins.
    members: Vec<Member>,
}

impl Batch {
    pub(super) fn insert(&mut self, keyspace: TreeId, key: &[u8], value: impl Into<IVec>) {
        self.writes
            .push((keyspace, key.to_vec(), Some(value.into())));
    }

    pub(super) fn remove(&mut self, keyspace: TreeId, key: &[u8]) {
        self.writes.push((keyspace, key.to_vec(), None));
    }

    /// As [`Batch::insert`], for a key encoded for this write alone: kept, not copied.
    pub(super) fn insert_owned(&mut self, keyspace: TreeId, key: Vec<u8>, value: impl Into<IVec>) {
        self.writes.push((keyspace, key, Some(value.into())));
    }

    /// As [`Batch::remove`], for a key encoded for this write alone.
    pub(super) fn remove_owned(&mut self, keyspace: TreeId, key: Vec<u8>) {
        self.writes.push((keyspace, key, None));
    }

    pub(super) fn put_member(&mut self, member: Member) {
        self.members.push(member);
    }

    pub(super) fn into_parts(self) -> (Vec<Write>, Vec<Member>) {
        (self.writes, self.members)
    }

    /// The same writes as one sled batch over the shared tree, keys behind their
    /// keyspace's prefix. sled is never handed decoded members (its [`Form`]).
    pub(super) fn into_sled(self) -> sled::Batch {
        debug_assert!(self.members.is_empty(), "sled stores members encoded");
        let mut batch = sled::Batch::default();
        for (keyspace, key, value) in self.writes {
            match value {
                Some(value) => batch.insert(keyspace.key(&key), value),
                None => batch.remove(keyspace.key(&key)),
            }
        }
        batch
    }
}

/// A member as MessagePack, fields in declaration order without their names (see the
/// module docs of [`super`] for why members are not JSON).
pub(super) fn encode_member(key: &[u8], member: &Member) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(512);
    rmp_serde::encode::write(&mut out, member).map_err(|e| StoreError::Encode {
        tree: TreeId::Members.name(),
        key: keys::describe(TreeId::Members.name(), key),
        message: e.to_string(),
    })?;
    Ok(out)
}

fn encode<T: Serialize>(tree: TreeId, key: &[u8], value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        tree: tree.name(),
        key: keys::describe(tree.name(), key),
        message: e.to_string(),
    })
}
