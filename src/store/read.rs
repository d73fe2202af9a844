//! Reads. Every decode failure names its tree and key; nothing here panics on bad data.

use std::ops::Bound;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::history;
use super::keys::{self, TimerKey};
use super::keyspace::{self, Keyspace};
use super::{Database, Fault, Prefetch, Store, StoreError, TreeId};
use crate::engine::{Firing, LedgerEntry};
use crate::member::Member;

/// One stored row: the key decoded, the value as written.
pub type Row<K> = (K, Vec<u8>);

/// Members cloned per look at an in-memory store's members by [`Store::members_iter`].
const MEMBERS_PER_READ: usize = 256;

/// [`Store::members_iter`]'s members, from either backend.
enum Members<S, M> {
    Sled(S),
    Memory(M),
}

impl<S, M> Iterator for Members<S, M>
where
    S: Iterator<Item = Result<Member, StoreError>>,
    M: Iterator<Item = Result<Member, StoreError>>,
{
    type Item = Result<Member, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Members::Sled(rows) => rows.next(),
            Members::Memory(members) => members.next(),
        }
    }
}

impl Store {
    pub fn member(&self, id: &str) -> Result<Option<Member>, StoreError> {
        let key = keys::text_key(id);
        let opened = self.opened()?;
        if let Database::Memory(memory) = &opened.database {
            self.read_fault("reading a member")?;
            return Ok(memory.member(id));
        }
        opened
            .keyspaces
            .members
            .get(key)
            .map_err(StoreError::sled("reading a member"))?
            .map(|value| decode_member(key, &value))
            .transpose()
    }

    /// A member for the one writer's step that is about to change them (SPEC's
    /// single writer, see `runner.rs`): from sled a decoded copy, as [`Store::member`];
    /// from the memory backend the member itself, taken out of the store until the
    /// group holding their new state is committed with [`Store::commit_moving_members`]
    /// — a member changed by every event is then never copied. Until that commit the
    /// member is not in the memory store at all: the writer must find them in its open
    /// group, and a group that fails to commit loses them (memory stores serve runs
    /// that stop at the first failed commit: sim, replay, backtest, `rally test`).
    pub fn check_out_member(&self, id: &str) -> Result<Option<Member>, StoreError> {
        let opened = self.opened()?;
        if let Database::Memory(memory) = &opened.database {
            self.read_fault("reading a member")?;
            return Ok(memory.check_out(id));
        }
        drop(opened);
        self.member(id)
    }

    /// Starts fetching into the processor's cache what the steps of the members of
    /// the next events will read, in a memory store (see [`crate::prefetch`]);
    /// nothing in sled. `ahead` names members with how deep to fetch each.
    pub fn prefetch_members(&self, ahead: &[(&str, Prefetch)]) {
        if let Ok(opened) = self.opened() {
            if let Database::Memory(memory) = &opened.database {
                memory.prefetch(ahead);
            }
        }
    }

    /// Every member, ordered by id.
    pub fn members(&self) -> Result<Vec<Member>, StoreError> {
        self.members_iter()?.collect()
    }

    /// Every member, ordered by id, for a run that is over (`sim`'s document): a memory
    /// store hands its members over rather than copying them, and holds none after;
    /// sled's are read as [`Store::members`] reads them.
    pub fn take_members(&self) -> Result<Vec<Member>, StoreError> {
        let opened = self.opened()?;
        if let Database::Memory(memory) = &opened.database {
            self.read_fault("scanning members")?;
            return Ok(memory.take_members());
        }
        drop(opened);
        self.members()
    }

    /// Every member, ordered by id, one at a time: for stores too big to hold at once.
    pub fn members_iter(
        &self,
    ) -> Result<impl Iterator<Item = Result<Member, StoreError>>, StoreError> {
        let opened = self.opened()?;
        if let Database::Memory(memory) = &opened.database {
            // In batches, each under the lock for a moment, decoded members cloned.
            self.read_fault("scanning members")?;
            let memory = Arc::clone(memory);
            let mut after: Option<String> = None;
            let mut batch = std::collections::VecDeque::new();
            let members = std::iter::from_fn(move || {
                if batch.is_empty() {
                    let bound = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                    batch.extend(memory.members_after(bound, MEMBERS_PER_READ));
                    after = batch.back().map(|member: &Member| member.id.to_string());
                }
                batch.pop_front().map(Ok)
            });
            return Ok(Members::Memory(members));
        }
        Ok(Members::Sled(opened.keyspaces.members.iter().map(|row| {
            let (key, value) = row.map_err(StoreError::sled("scanning members"))?;
            decode_member(&key, &value)
        })))
    }

    /// Up to `max` members whose id sorts after `after` (all from the start when
    /// `None`), ordered by id: a fan-out walks the members in batches with this.
    pub fn members_after(
        &self,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let opened = self.opened()?;
        if let Database::Memory(memory) = &opened.database {
            self.read_fault("scanning members")?;
            let after = after.map_or(Bound::Unbounded, Bound::Excluded);
            return Ok(memory.members_after(after, max));
        }
        let start = match after {
            Some(id) => Bound::Excluded(keys::text_key(id).to_vec()),
            None => Bound::Unbounded,
        };
        opened
            .keyspaces
            .members
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(max)
            .map(|row| {
                let (key, value) = row.map_err(StoreError::sled("scanning members"))?;
                decode_member(&key, &value)
            })
            .collect()
    }

    /// Every meta entry whose name starts with `prefix`, ordered by name.
    pub fn meta_scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.opened()?
            .keyspaces
            .meta
            .scan_prefix(prefix.as_bytes())
            .map(|row| {
                let (key, value) = row.map_err(StoreError::sled("scanning meta"))?;
                let name = String::from_utf8(key.to_vec())
                    .map_err(|e| StoreError::corrupt("meta", &key, e))?;
                Ok((name, value.to_vec()))
            })
            .collect()
    }

    /// Walks the whole keyspace (sled keeps no count): use sparingly.
    pub fn member_count(&self) -> Result<usize, StoreError> {
        let opened = self.opened()?;
        if let Database::Memory(memory) = &opened.database {
            self.read_fault("counting members")?;
            return Ok(memory.member_count());
        }
        Ok(opened.keyspaces.members.len())
    }

    /// Whether an event's step has been committed.
    pub fn seen(&self, event_id: &str) -> Result<bool, StoreError> {
        self.opened()?
            .keyspaces
            .seen
            .contains_key(keys::text_key(event_id))
            .map_err(StoreError::sled("reading the seen events"))
    }

    /// A member's ledger, oldest first.
    pub fn ledger(&self, member: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut ledger = Vec::new();
        for row in self.history_rows(member)? {
            ledger.extend(row?.ledger);
        }
        Ok(ledger)
    }

    /// A member's `limit` most recent firings, most recent last.
    pub fn firings(&self, member: &str, limit: usize) -> Result<Vec<Firing>, StoreError> {
        let mut newest_first = Vec::new();
        for row in self.history_rows(member)?.rev() {
            if newest_first.len() >= limit {
                break;
            }
            newest_first.extend(row?.firings.into_iter().rev());
        }
        newest_first.truncate(limit);
        newest_first.reverse();
        Ok(newest_first)
    }

    /// Whether this store writes `history` rows ([`Store::in_memory_without_history`]
    /// does not). A caller that keeps the ledger and firings elsewhere need not hand a
    /// store that drops them a copy: [`StepWrite::history_rows`] numbers them instead.
    /// A store that cannot be read answers true, the safe side.
    pub fn keeps_history(&self) -> bool {
        self.opened()
            .map_or(true, |opened| opened.database.history_kept().is_ok())
    }

    /// A member's history rows, oldest first (double-ended: newest first in reverse).
    fn history_rows(
        &self,
        member: &str,
    ) -> Result<impl DoubleEndedIterator<Item = Result<history::Row, StoreError>>, StoreError> {
        let opened = self.opened()?;
        opened.database.history_kept()?;
        Ok(opened
            .keyspaces
            .history
            .scan_prefix(keys::member_prefix(member))
            .map(|row| {
                let (key, value) = row.map_err(StoreError::sled("scanning the history"))?;
                json(TreeId::History, &key, &value)
            }))
    }

    /// The member's history row after the one whose key is `after` (the first row
    /// when `None`), with its key: a reader walking one member's history a row at a
    /// time holds that row only (the self-check walks every member's this way, in
    /// step with the replay).
    pub fn member_history_after(
        &self,
        member: &str,
        after: Option<&[u8]>,
    ) -> Result<Option<(Vec<u8>, MemberHistory)>, StoreError> {
        let opened = self.opened()?;
        opened.database.history_kept()?;
        let prefix = keys::member_prefix(member);
        let history = &opened.keyspaces.history;
        let mut rows = match after {
            Some(after) => history.range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded)),
            None => history.range(prefix.as_slice()..),
        };
        let Some(row) = rows.next() else {
            return Ok(None);
        };
        let (key, value) = row.map_err(StoreError::sled("scanning the history"))?;
        if !key.starts_with(&prefix) {
            return Ok(None);
        }
        let row: history::Row = json(TreeId::History, &key, &value)?;
        Ok(Some((key.to_vec(), (row.ledger, row.firings))))
    }

    /// How many ledger entries and firings the whole history holds, read a row at a
    /// time.
    pub fn history_counts(&self) -> Result<(u64, u64), StoreError> {
        let opened = self.opened()?;
        opened.database.history_kept()?;
        let mut counts = (0, 0);
        for row in opened.keyspaces.history.iter() {
            let (key, value) = row.map_err(StoreError::sled("scanning the history"))?;
            let row: history::Row = json(TreeId::History, &key, &value)?;
            counts.0 += row.ledger.len() as u64;
            counts.1 += row.firings.len() as u64;
        }
        Ok(counts)
    }

    /// Every ledger entry of every member, in the order they were committed. Reads the
    /// whole keyspace: for `sim` and exports, not for the hot path.
    pub fn ledger_all(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        Ok(self.history_all()?.flat_map(|row| row.ledger).collect())
    }

    /// Every firing of every member, in the order they were committed. Reads the whole
    /// keyspace: for `sim` and exports, not for the hot path.
    pub fn firings_all(&self) -> Result<Vec<Firing>, StoreError> {
        Ok(self.history_all()?.flat_map(|row| row.firings).collect())
    }

    pub fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .opened()?
            .keyspaces
            .meta
            .get(keys::text_key(name))
            .map_err(StoreError::sled("reading meta"))?
            .map(|value| value.to_vec()))
    }

    /// Timers due at or before `up_to` (Unix millis), smallest first, at most `max`.
    /// Reads only the rows it returns.
    pub fn timers_due(&self, up_to: i64, max: usize) -> Result<Vec<Row<TimerKey>>, StoreError> {
        let rows = match up_to.checked_add(1) {
            Some(after) => self
                .opened()?
                .keyspaces
                .timers
                .range(..keys::due_prefix(after)),
            None => self.opened()?.keyspaces.timers.iter(),
        };
        timer_rows(rows, max)
    }

    /// Up to `max` timers due at or before `up_to`, smallest first, only those whose
    /// key sorts after `after` when given (a caller that popped timers not yet
    /// committed resumes past them); and, when fewer than `max` were due, when
    /// the next timer past them falls due (`i64::MAX`: there is none). One scan tells
    /// a caller both what to run and that nothing more is due before then; it reads
    /// one row past those it returns.
    pub fn timers_due_and_next(
        &self,
        after: Option<&TimerKey>,
        up_to: i64,
        max: usize,
    ) -> Result<(Vec<Row<TimerKey>>, Option<i64>), StoreError> {
        let timers = &self.opened()?.keyspaces.timers;
        let rows = match after {
            Some(after) => timers.range((Bound::Excluded(after.encode()), Bound::Unbounded)),
            None => timers.iter(),
        };
        let mut due = Vec::new();
        for row in rows {
            if due.len() == max {
                return Ok((due, None));
            }
            let (key, value) = row.map_err(StoreError::sled("scanning the timers"))?;
            let key = timer_key(&key)?;
            if key.due > up_to {
                return Ok((due, Some(key.due)));
            }
            due.push((key, value.to_vec()));
        }
        Ok((due, Some(i64::MAX)))
    }

    /// The timer that falls due first, if any: what a clock sleeps until.
    pub fn next_timer(&self) -> Result<Option<TimerKey>, StoreError> {
        let first = self
            .opened()?
            .keyspaces
            .timers
            .first()
            .map_err(StoreError::sled("reading the first timer"))?;
        first.map(|(key, _)| timer_key(&key)).transpose()
    }

    /// Outbox rows with sequence number `from` or later, in order, at most `max`.
    pub fn outbox_scan(&self, from: u64, max: usize) -> Result<Vec<Row<u64>>, StoreError> {
        let rows = self.opened()?.keyspaces.outbox.range(keys::u64_key(from)..);
        numbered_rows(rows.take(max), TreeId::Outbox)
    }

    /// The highest outbox sequence number in use: where a writer resumes numbering.
    pub fn outbox_last(&self) -> Result<Option<u64>, StoreError> {
        last_number(&self.opened()?.keyspaces.outbox)
    }

    pub fn ticket(&self, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .opened()?
            .keyspaces
            .tickets
            .get(keys::u64_key(number))
            .map_err(StoreError::sled("reading a ticket"))?
            .map(|value| value.to_vec()))
    }

    /// Every ticket, by number.
    pub fn tickets(&self) -> Result<Vec<Row<u64>>, StoreError> {
        numbered_rows(self.opened()?.keyspaces.tickets.iter(), TreeId::Tickets)
    }

    /// The highest ticket number in use: `T-<n+1>` is the next ticket.
    pub fn ticket_last(&self) -> Result<Option<u64>, StoreError> {
        last_number(&self.opened()?.keyspaces.tickets)
    }
}

/// A member as `write::encode_member` wrote it: MessagePack.
pub(super) fn decode_member(key: &[u8], value: &[u8]) -> Result<Member, StoreError> {
    rmp_serde::from_slice(value).map_err(|e| StoreError::corrupt(TreeId::Members.name(), key, e))
}

/// One history row of a member: a step's ledger entries and firings.
pub type MemberHistory = (Vec<LedgerEntry>, Vec<Firing>);

fn json<T: DeserializeOwned>(tree: TreeId, key: &[u8], value: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::corrupt(tree.name(), key, e))
}

/// Up to `max` timer rows, keys decoded.
fn timer_rows(rows: keyspace::Rows, max: usize) -> Result<Vec<Row<TimerKey>>, StoreError> {
    rows.take(max)
        .map(|row| {
            let (key, value) = row.map_err(StoreError::sled("scanning the timers"))?;
            Ok((timer_key(&key)?, value.to_vec()))
        })
        .collect()
}

fn timer_key(key: &[u8]) -> Result<TimerKey, StoreError> {
    TimerKey::decode(key).map_err(|e| StoreError::corrupt(TreeId::Timers.name(), key, e))
}

pub(super) fn number(tree: TreeId, key: &[u8]) -> Result<u64, StoreError> {
    keys::decode_u64(key).map_err(|e| StoreError::corrupt(tree.name(), key, e))
}

fn numbered_rows(
    rows: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    tree: TreeId,
) -> Result<Vec<Row<u64>>, StoreError> {
    rows.map(|row| {
        let (key, value) = row.map_err(StoreError::sled("scanning numbered rows"))?;
        Ok((number(tree, &key)?, value.to_vec()))
    })
    .collect()
}

fn last_number(keyspace: &Keyspace) -> Result<Option<u64>, StoreError> {
    let last = keyspace
        .last()
        .map_err(StoreError::sled("reading the last row"))?;
    last.map(|(key, _)| number(keyspace.id, &key)).transpose()
}

impl Store {
    /// An injected read fault, as a keyspace's read would meet it: for the reads of
    /// an in-memory store that bypass the keyspaces (members, kept decoded).
    fn read_fault(&self, context: &'static str) -> Result<(), StoreError> {
        self.faults
            .check(Fault::Read)
            .map_err(StoreError::sled(context))
    }

    /// Every history row, in the order they were committed.
    fn history_all(&self) -> Result<impl Iterator<Item = history::Row>, StoreError> {
        let id = TreeId::History;
        let opened = self.opened()?;
        opened.database.history_kept()?;
        let mut rows = opened
            .keyspaces
            .history
            .iter()
            .map(|row| {
                let (key, value) = row.map_err(StoreError::sled("scanning the history"))?;
                let (_, seq) = keys::decode_member_seq(&key)
                    .map_err(|e| StoreError::corrupt(id.name(), &key, e))?;
                Ok((seq, json(id, &key, &value)?))
            })
            .collect::<Result<Vec<(u64, history::Row)>, StoreError>>()?;
        rows.sort_by_key(|(seq, _)| *seq);
        Ok(rows.into_iter().map(|(_, row)| row))
    }
}
