//! Writes: a group of steps in one transaction, and the dispatcher's single-row updates.

use std::convert::Infallible;

use serde::Serialize;
use sled::transaction::{TransactionError, TransactionResult, Transactional};
use sled::IVec;

use super::keys::{self, TimerKey};
use super::{
    Counters, Store, StoreError, TreeId, NEXT_FIRING_SEQ, NEXT_LEDGER_SEQ, RESERVED_META,
    SEEN_APPLIED,
};
use crate::engine::{Firing, LedgerEntry};
use crate::member::Member;

/// Everything one step changes. Within a step, removals apply before puts, so a step
/// that clears a timer and sets it again leaves it set; across the steps of a group,
/// later steps win.
#[derive(Clone, Debug, Default)]
pub struct StepWrite {
    /// The event this step applied, recorded as seen in the same transaction. `None` for
    /// steps without an event (timers, acks by API). The caller checks [`Store::seen`]
    /// before stepping: the store does not refuse a repeated id.
    pub event_id: Option<String>,
    /// Members' new states, stored whole.
    pub members: Vec<Member>,
    /// Appended to each entry's member's ledger; the store numbers them.
    pub ledger: Vec<LedgerEntry>,
    /// Appended to each firing's member's history; the store numbers them.
    pub firings: Vec<Firing>,
    pub timers_set: Vec<(TimerKey, Vec<u8>)>,
    pub timers_clear: Vec<TimerKey>,
    /// Keyed by a sequence number the caller assigns (see [`Store::outbox_last`]).
    pub outbox_put: Vec<(u64, Vec<u8>)>,
    pub outbox_remove: Vec<u64>,
    /// Keyed by ticket number (see [`Store::ticket_last`]).
    pub tickets_put: Vec<(u64, Vec<u8>)>,
    /// Names starting `store.` are reserved and refused.
    pub meta_put: Vec<(String, Vec<u8>)>,
    /// Meta names removed (after this step's puts).
    pub meta_remove: Vec<String>,
}

/// One write, fully prepared: `None` removes the key.
type Op = (TreeId, IVec, Option<IVec>);

impl Store {
    /// Commits every step of `group` in one sled transaction: all of them or none.
    /// Not durable until [`Store::sync`] returns.
    pub fn commit(&self, group: &[StepWrite]) -> Result<(), StoreError> {
        if group.is_empty() {
            return Ok(());
        }
        refuse_reserved_meta(group)?;
        let mut counters = self.counters();
        let (ops, next) = prepare(group, *counters)?;
        let trees = self.trees.all();
        // The closure may run more than once: it only replays `ops`, which were
        // computed above, so every run writes exactly the same thing.
        let result: TransactionResult<(), Infallible> = trees.as_slice().transaction(|views| {
            for (tree, key, value) in &ops {
                let view = &views[*tree as usize];
                match value {
                    Some(value) => view.insert(key.clone(), value.clone())?,
                    None => view.remove(key.clone())?,
                };
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                *counters = next;
                Ok(())
            }
            Err(TransactionError::Storage(source)) => Err(StoreError::Sled {
                context: "committing a group of steps",
                source,
            }),
            Err(TransactionError::Abort(never)) => match never {},
        }
    }

    /// Replaces one outbox row (a delivery attempt's new status). Atomic on its own.
    pub fn outbox_update(&self, seq: u64, value: &[u8]) -> Result<(), StoreError> {
        self.trees
            .outbox
            .insert(keys::u64_key(seq), value)
            .map_err(StoreError::sled("updating an outbox row"))?;
        Ok(())
    }

    /// Removes one outbox row (delivered, or given up on and recorded elsewhere).
    pub fn outbox_remove(&self, seq: u64) -> Result<(), StoreError> {
        self.trees
            .outbox
            .remove(keys::u64_key(seq))
            .map_err(StoreError::sled("removing an outbox row"))?;
        Ok(())
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

/// Serializes the group into writes, numbering ledger and firing rows from `counters`;
/// returns the writes and the counters after them.
fn prepare(group: &[StepWrite], counters: Counters) -> Result<(Vec<Op>, Counters), StoreError> {
    let mut next = counters;
    let mut ops = Vec::new();
    for step in group {
        for member in &step.members {
            let key = keys::text_key(&member.id);
            let value = encode(TreeId::Members, key, member)?;
            ops.push(put(TreeId::Members, key, value));
        }
        for entry in &step.ledger {
            let key = keys::member_seq(&entry.member, next.ledger);
            next.ledger += 1;
            let value = encode(TreeId::Ledger, &key, entry)?;
            ops.push(put(TreeId::Ledger, key, value));
        }
        for firing in &step.firings {
            let key = keys::member_seq(&firing.member, next.firing);
            next.firing += 1;
            let value = encode(TreeId::Firings, &key, firing)?;
            ops.push(put(TreeId::Firings, key, value));
        }
        for timer in &step.timers_clear {
            ops.push(remove(TreeId::Timers, timer.encode()));
        }
        for (timer, value) in &step.timers_set {
            ops.push(put(TreeId::Timers, timer.encode(), value.as_slice()));
        }
        for seq in &step.outbox_remove {
            ops.push(remove(TreeId::Outbox, &keys::u64_key(*seq)[..]));
        }
        for (seq, value) in &step.outbox_put {
            ops.push(put(
                TreeId::Outbox,
                &keys::u64_key(*seq)[..],
                value.as_slice(),
            ));
        }
        for (number, value) in &step.tickets_put {
            ops.push(put(
                TreeId::Tickets,
                &keys::u64_key(*number)[..],
                value.as_slice(),
            ));
        }
        for (name, value) in &step.meta_put {
            ops.push(put(TreeId::Meta, keys::text_key(name), value.as_slice()));
        }
        for name in &step.meta_remove {
            ops.push((TreeId::Meta, IVec::from(keys::text_key(name)), None));
        }
        if let Some(event_id) = &step.event_id {
            ops.push(put(TreeId::Seen, keys::text_key(event_id), SEEN_APPLIED));
        }
    }
    if next.ledger != counters.ledger {
        let value = keys::u64_key(next.ledger);
        ops.push(put(TreeId::Meta, NEXT_LEDGER_SEQ.as_bytes(), &value[..]));
    }
    if next.firing != counters.firing {
        let value = keys::u64_key(next.firing);
        ops.push(put(TreeId::Meta, NEXT_FIRING_SEQ.as_bytes(), &value[..]));
    }
    Ok((ops, next))
}

fn put(tree: TreeId, key: impl Into<IVec>, value: impl Into<IVec>) -> Op {
    (tree, key.into(), Some(value.into()))
}

fn remove(tree: TreeId, key: impl Into<IVec>) -> Op {
    (tree, key.into(), None)
}

fn encode<T: Serialize>(tree: TreeId, key: &[u8], value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        tree: tree.name(),
        key: keys::describe(tree.name(), key),
        message: e.to_string(),
    })
}
