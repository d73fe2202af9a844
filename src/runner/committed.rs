//! What the runner knows of the committed store without reading it: the members it
//! last committed, and a lower bound on the next timer. Both are exact only because
//! the runner is the store's one writer, and both go stale together when a commit
//! fails or the store is opened again — one type, so "forget" forgets both (STYLE
//! habit 10), and a commit is the only way in.

use foldhash::HashMap;

use crate::member::Member;
use crate::store::StepWrite;

/// Members kept (about 1–2 KiB each); past this the cache starts again empty.
const MEMBER_CACHE: usize = 32_768;

#[derive(Debug, Default)]
pub(super) struct Committed {
    /// Members as last committed, so a member's next step need not read and decode
    /// them back from the store.
    members: HashMap<String, Member>,
    /// No timer in the store that the open group has not popped is due before this
    /// (Unix millis; `i64::MAX` when there is none), or `None` when unknown: lets the
    /// common "is anything due?" question be answered without a scan of the timer
    /// index. A lower bound only: removing a timer leaves it where it was.
    due_floor: Option<i64>,
}

impl Committed {
    pub(super) fn member(&self, id: &str) -> Option<&Member> {
        self.members.get(id)
    }

    /// Takes a member out for a step that is about to run: its outcome brings the new
    /// state back with the next commit.
    pub(super) fn take_member(&mut self, id: &str) -> Option<Member> {
        self.members.remove(id)
    }

    pub(super) fn due_floor(&self) -> Option<i64> {
        self.due_floor
    }

    /// The next timer not popped, as a scan of the timer index found it.
    pub(super) fn found_next_timer(&mut self, due: i64) {
        self.due_floor = Some(due);
    }

    /// `writes` are committed: their members are what the store holds now, and a
    /// timer they armed may be the next one. Takes the members out of the writes.
    pub(super) fn committed(&mut self, writes: &mut [StepWrite]) {
        let armed = writes
            .iter()
            .flat_map(|write| &write.timers_set)
            .map(|(key, _)| key.due)
            .min();
        if let (Some(floor), Some(armed)) = (self.due_floor, armed) {
            self.due_floor = Some(floor.min(armed));
        }
        let changed: usize = writes.iter().map(|write| write.members.len()).sum();
        if self.members.len() + changed > MEMBER_CACHE {
            self.members.clear();
        }
        for write in writes {
            for member in write.members.drain(..) {
                self.members.insert(member.id.to_string(), member);
            }
        }
    }

    /// A commit failed, or the store was opened again: what the store holds may not
    /// be what was last committed (a group committed but never synced may be gone).
    pub(super) fn forget(&mut self) {
        self.members.clear();
        self.due_floor = None;
    }
}
