//! The open group: steps that ran but are not committed yet, and what they changed
//! that the next steps of the same group must see as if it were committed — members,
//! event ids, tickets, and the last timer popped.
//!
//! One type so the rule "all of it lives until the commit, then all of it goes" is
//! stated once: [`OpenGroup::close`] is the only way out, and it hands the writes to
//! the commit while forgetting the rest (STYLE habit 10).

use foldhash::{HashMap, HashSet};

use crate::engine::Name;
use crate::member::Member;
use crate::store::{StepWrite, TimerKey};
use crate::tickets::Ticket;

#[derive(Debug, Default)]
pub(super) struct OpenGroup {
    writes: Vec<StepWrite>,
    /// Members changed by the group: the index of the write that holds each one's
    /// latest state (kept there, not copied). Ids kept inline when short: every step
    /// adds one, and every event its own id below.
    members: HashMap<Name, usize>,
    /// Event ids of the group.
    events: HashSet<Name>,
    /// Tickets changed by the group, newer than what the store holds.
    tickets: HashMap<u64, Ticket>,
    /// The last timer the group popped. Timers pop in key order, so every due timer
    /// up to this one is popped too — still in the store until the group commits,
    /// and skipped by the next scan. Set only once the timer's step is in the group.
    popped: Option<TimerKey>,
    /// Why the group must not be committed: a chain of credit steps stopped half way
    /// (`runner/credit.rs`). Set, the commit drops the group instead.
    broken: Option<String>,
    /// The earliest due time (Unix millis) of the timers the group's writes arm:
    /// asked before every event, so kept as writes join rather than found by a scan
    /// of the group.
    earliest_armed: Option<i64>,
}

impl OpenGroup {
    /// Adds a write that changes no member (or only members it has no state for).
    pub(super) fn push(&mut self, write: StepWrite) {
        if let Some(armed) = write.timers_set.iter().map(|(key, _)| key.due).min() {
            self.earliest_armed = Some(self.earliest_armed.map_or(armed, |e| e.min(armed)));
        }
        self.writes.push(write);
    }

    /// Adds a step's write with `member`'s new state, which the next steps find.
    pub(super) fn push_step(&mut self, member: Member, mut write: StepWrite) {
        self.members
            .insert(Name::from(member.id.as_str()), self.writes.len());
        // Room for this one member only: a step writes one, and growing the empty
        // vector would make room for four (large) members on every step.
        write.members.reserve_exact(1);
        write.members.push(member);
        self.push(write);
    }

    /// The earliest due time (Unix millis) of a timer the group arms, if it arms any.
    pub(super) fn earliest_armed(&self) -> Option<i64> {
        self.earliest_armed
    }

    /// A member's state in the group, if a step of it changed them.
    pub(super) fn member(&self, id: &str) -> Option<&Member> {
        let write = self.writes.get(*self.members.get(id)?)?;
        write.members.iter().find(|m| m.id == id)
    }

    pub(super) fn writes(&self) -> &[StepWrite] {
        &self.writes
    }

    pub(super) fn len(&self) -> usize {
        self.writes.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub(super) fn holds_event(&self, id: &str) -> bool {
        self.events.contains(id)
    }

    pub(super) fn add_event(&mut self, id: &str) {
        self.events.insert(Name::from(id));
    }

    pub(super) fn ticket(&self, number: u64) -> Option<&Ticket> {
        self.tickets.get(&number)
    }

    pub(super) fn put_ticket(&mut self, ticket: Ticket) {
        self.tickets.insert(ticket.number, ticket);
    }

    pub(super) fn popped(&self) -> Option<&TimerKey> {
        self.popped.as_ref()
    }

    /// Marks `key` popped; returns the mark before, for [`OpenGroup::unpop`] if the
    /// timer's step fails.
    pub(super) fn pop(&mut self, key: TimerKey) -> Option<TimerKey> {
        self.popped.replace(key)
    }

    pub(super) fn unpop(&mut self, before: Option<TimerKey>) {
        self.popped = before;
    }

    /// Marks the group as one that must not be committed, with why.
    pub(super) fn break_with(&mut self, why: String) {
        self.broken.get_or_insert(why);
    }

    pub(super) fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Ends the group: its writes, for the commit (or to drop); everything the group
    /// kept for its own steps is forgotten.
    pub(super) fn close(&mut self) -> Vec<StepWrite> {
        self.members.clear();
        self.events.clear();
        self.tickets.clear();
        self.popped = None;
        self.broken = None;
        self.earliest_armed = None;
        // The next group starts as large as this one: growing it step by step copied
        // every write (they are large) several times per group.
        let capacity = self.writes.len();
        std::mem::replace(&mut self.writes, Vec::with_capacity(capacity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_the_group_hands_over_its_writes_and_forgets_the_rest() {
        let mut open = OpenGroup::default();
        open.push_step(
            Member::new("m-1"),
            StepWrite {
                event_id: Some("e-1".into()),
                ..StepWrite::default()
            },
        );
        open.add_event("e-1");
        assert!(open.pop(TimerKey::new(1, "inactive", "m-1")).is_none());
        assert_eq!(open.member("m-1").map(|m| m.id.as_str()), Some("m-1"));
        let writes = open.close();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].members.len(), 1);
        assert!(open.is_empty());
        assert!(open.member("m-1").is_none());
        assert!(!open.holds_event("e-1"));
        assert!(open.popped().is_none());
    }

    #[test]
    fn the_earliest_timer_armed_is_known_until_the_group_closes() {
        let mut open = OpenGroup::default();
        let arming = |dues: &[i64]| StepWrite {
            timers_set: dues
                .iter()
                .map(|&due| (TimerKey::new(due, "inactive", "m-1"), Vec::new()))
                .collect(),
            ..StepWrite::default()
        };
        open.push(arming(&[]));
        assert_eq!(open.earliest_armed(), None);
        open.push(arming(&[30, 20]));
        open.push_step(Member::new("m-1"), arming(&[25]));
        open.push(arming(&[10, 40]));
        open.push(arming(&[]));
        assert_eq!(open.earliest_armed(), Some(10));
        open.close();
        assert_eq!(open.earliest_armed(), None);
    }

    #[test]
    fn a_failed_pop_restores_the_mark_before_it() {
        let mut open = OpenGroup::default();
        let first = TimerKey::new(1, "inactive", "m-1");
        open.pop(first.clone());
        let before = open.pop(TimerKey::new(2, "inactive", "m-2"));
        open.unpop(before);
        assert_eq!(open.popped(), Some(&first));
    }
}
