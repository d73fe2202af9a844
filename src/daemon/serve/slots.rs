//! The connection slots: how many connections the daemon holds open, and which one
//! gives way when they are all taken.
//!
//! Pure bookkeeping (the caller passes the time), so the choice of whom to close is
//! tested without sockets.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A connection's number, in accept order.
pub type ConnId = u64;

/// Every open connection and whether a request of it is being handled.
pub struct Slots {
    max: usize,
    next: ConnId,
    open: BTreeMap<ConnId, Slot>,
}

struct Slot {
    /// Requests of this connection inside a handler (HTTP/1: 0 or 1).
    in_handler: usize,
    /// Since when it has had no request in a handler: its accept, or its last answer.
    waiting_since: Instant,
    /// Told to close when another connection takes its slot.
    evict: Arc<Notify>,
}

/// What became of a new connection.
pub enum Admission {
    /// It has a slot; close the connection when `evict` is notified.
    Admitted { id: ConnId, evict: Arc<Notify> },
    /// Every slot holds a connection with a request in a handler: refuse it.
    Full,
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots {
            max: max.max(1),
            next: 0,
            open: BTreeMap::new(),
        }
    }

    /// Gives a new connection a slot. When all are taken, the connection that has
    /// waited longest without a request in a handler (idle keep-alive, or still
    /// sending its headers: a slow or idle client) is told to close and gives its slot
    /// up; a connection whose request is being handled is never closed for another.
    pub fn admit(&mut self, now: Instant) -> Admission {
        if self.open.len() >= self.max {
            let longest_waiting = self
                .open
                .iter()
                .filter(|(_, slot)| slot.in_handler == 0)
                .min_by_key(|(id, slot)| (slot.waiting_since, **id))
                .map(|(id, _)| *id);
            let Some(victim) = longest_waiting else {
                return Admission::Full;
            };
            if let Some(slot) = self.open.remove(&victim) {
                slot.evict.notify_one();
            }
        }
        let id = self.next;
        self.next += 1;
        let evict = Arc::new(Notify::new());
        self.open.insert(
            id,
            Slot {
                in_handler: 0,
                waiting_since: now,
                evict: Arc::clone(&evict),
            },
        );
        Admission::Admitted { id, evict }
    }

    /// A request of `id` entered a handler.
    pub fn handling(&mut self, id: ConnId) {
        if let Some(slot) = self.open.get_mut(&id) {
            slot.in_handler += 1;
        }
    }

    /// A request of `id` left its handler at `now`.
    pub fn handled(&mut self, id: ConnId, now: Instant) {
        if let Some(slot) = self.open.get_mut(&id) {
            slot.in_handler = slot.in_handler.saturating_sub(1);
            slot.waiting_since = now;
        }
    }

    /// `id` closed (or was evicted: then this does nothing).
    pub fn close(&mut self, id: ConnId) {
        self.open.remove(&id);
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn admitted(admission: Admission) -> (ConnId, Arc<Notify>) {
        match admission {
            Admission::Admitted { id, evict } => (id, evict),
            Admission::Full => panic!("refused"),
        }
    }

    /// Whether `evict` was notified (a stored permit completes at once).
    async fn was_told_to_close(evict: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(10), evict.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn below_the_limit_every_connection_is_admitted_and_none_is_closed() {
        let mut slots = Slots::new(2);
        let now = Instant::now();
        let (_, first) = admitted(slots.admit(now));
        let (_, second) = admitted(slots.admit(now));
        assert_eq!(slots.open(), 2);
        assert!(!was_told_to_close(&first).await);
        assert!(!was_told_to_close(&second).await);
    }

    #[tokio::test]
    async fn at_the_limit_the_connection_waiting_longest_gives_way() {
        let mut slots = Slots::new(2);
        let start = Instant::now();
        let (_, oldest) = admitted(slots.admit(start));
        let (_, newer) = admitted(slots.admit(start + Duration::from_secs(1)));
        admitted(slots.admit(start + Duration::from_secs(2)));
        assert_eq!(slots.open(), 2);
        assert!(was_told_to_close(&oldest).await);
        assert!(!was_told_to_close(&newer).await);
    }

    #[tokio::test]
    async fn a_connection_with_a_request_in_a_handler_is_never_closed_for_another() {
        let mut slots = Slots::new(2);
        let start = Instant::now();
        let (busy_id, busy) = admitted(slots.admit(start));
        let (_, idle) = admitted(slots.admit(start + Duration::from_secs(1)));
        slots.handling(busy_id);
        admitted(slots.admit(start + Duration::from_secs(2)));
        assert!(!was_told_to_close(&busy).await);
        assert!(was_told_to_close(&idle).await);
    }

    #[test]
    fn when_every_slot_has_a_request_in_a_handler_a_new_connection_is_refused() {
        let mut slots = Slots::new(1);
        let (id, _) = admitted(slots.admit(Instant::now()));
        slots.handling(id);
        assert!(matches!(slots.admit(Instant::now()), Admission::Full));
    }

    #[tokio::test]
    async fn an_answered_connection_waits_from_its_answer_not_from_its_accept() {
        let mut slots = Slots::new(2);
        let start = Instant::now();
        let (first_id, first) = admitted(slots.admit(start));
        let (_, second) = admitted(slots.admit(start + Duration::from_secs(1)));
        slots.handling(first_id);
        slots.handled(first_id, start + Duration::from_secs(2));
        admitted(slots.admit(start + Duration::from_secs(3)));
        assert!(!was_told_to_close(&first).await);
        assert!(was_told_to_close(&second).await);
    }
}
