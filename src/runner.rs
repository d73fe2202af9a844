//! The imperative shell around the pure step: loads the member, runs the step, and
//! gathers the results into groups that the store commits in one transaction each.
//! `sim` and the daemon both drive the engine through a `Runner`, so they cannot
//! disagree about what an event does.
//!
//! Steps in a group that is not yet committed must see each other: the runner keeps
//! the members and event ids of the open group in memory, so a second event for the
//! same member — or a duplicate id — within one group behaves exactly as if the first
//! had already been committed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::engine::{self, Context, Input, Outcome};
use crate::event::Event;
use crate::member::Member;
use crate::rules::RuleSet;
use crate::store::{StepWrite, Store, StoreError};

/// What happened to one event.
#[derive(Debug)]
pub enum Applied {
    /// Its id was seen before: nothing changed.
    Duplicate,
    /// Its step ran; the outcome is in the open group.
    Accepted(Box<Outcome>),
}

pub struct Runner {
    /// Shared so the daemon's readers can use the same open database: sled allows one
    /// open per directory, and reads are safe alongside the one writer.
    store: Arc<Store>,
    rules: Arc<RuleSet>,
    group: Vec<StepWrite>,
    /// Members changed by the open group, newer than what the store holds.
    members: HashMap<String, Member>,
    /// Event ids of the open group.
    events: HashSet<String>,
}

impl Runner {
    pub fn new(store: Store, rules: Arc<RuleSet>) -> Self {
        Runner {
            store: Arc::new(store),
            rules,
            group: Vec::new(),
            members: HashMap::new(),
            events: HashSet::new(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, for readers on other threads (the daemon's HTTP handlers).
    pub fn shared_store(&self) -> Arc<Store> {
        Arc::clone(&self.store)
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Replaces the rule set between steps (hot reload).
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        self.rules = rules;
    }

    /// Steps waiting in the open group.
    pub fn pending(&self) -> usize {
        self.group.len()
    }

    /// A member as the next step would see it.
    pub fn member(&self, id: &str) -> Result<Option<Member>, StoreError> {
        match self.members.get(id) {
            Some(member) => Ok(Some(member.clone())),
            None => self.store.member(id),
        }
    }

    /// Runs the step for `event` at `now` (the event's time) and adds it to the group.
    pub fn apply_event(
        &mut self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        if self.events.contains(&event.id) || self.store.seen(&event.id)? {
            return Ok(Applied::Duplicate);
        }
        let member = self.member(&event.member)?;
        let ctx = Context {
            rules: &self.rules,
            now,
        };
        let outcome = engine::step(&ctx, member, &Input::Event(event));
        self.events.insert(event.id.clone());
        self.members
            .insert(outcome.member.id.clone(), outcome.member.clone());
        self.group.push(StepWrite {
            event_id: Some(event.id.clone()),
            members: vec![outcome.member.clone()],
            ledger: outcome.ledger.clone(),
            firings: outcome.firings.clone(),
            ..StepWrite::default()
        });
        Ok(Applied::Accepted(Box::new(outcome)))
    }

    /// Commits the open group in one transaction. On error nothing of the group is
    /// stored and the group is dropped: its events were not acknowledged.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.group.is_empty() {
            return Ok(());
        }
        let result = self.store.commit(&self.group);
        self.group.clear();
        self.members.clear();
        self.events.clear();
        result
    }
}
