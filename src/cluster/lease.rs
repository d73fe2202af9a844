//! The leases this node holds, and the fencing rule every commit and every read
//! obeys (docs/cluster.md, "Ownership: leases").
//!
//! A lease is held from the moment its renewal (or creation) was *sent* until
//! `sent + hold_for(ttl)`, measured on this process's monotonic clock. The server's
//! time-to-live starts when it stores the write, which is later, so this node always
//! gives up before anyone else can take the partition. A process that was paused
//! (SIGSTOP, a stall) wakes up with the monotonic clock moved on and finds its leases
//! lapsed before it can commit anything.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::partition::Partition;

/// One lease this node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// The key-value revision of our last write of the lease: the next renewal is a
    /// compare-and-set on it, so it fails if anyone else wrote the key since.
    pub revision: u64,
    /// Past this instant the lease may have expired on the server: nothing more may
    /// be committed or read under it.
    pub until: Instant,
}

/// The leases this node holds. Shared by the ownership loop, which renews and gives
/// them up, and by the appliers and readers, which check them. A std `Mutex`: it is
/// held for a map operation, never across an await.
#[derive(Debug, Default)]
pub struct Leases {
    held: Mutex<BTreeMap<Partition, Held>>,
}

impl Leases {
    /// Whether this node may still act for `partition` at `now`.
    pub fn holds(&self, partition: Partition, now: Instant) -> bool {
        self.lock()
            .get(&partition)
            .is_some_and(|held| now < held.until)
    }

    /// The lease on `partition`, lapsed or not, while this node has not given it up.
    pub fn get(&self, partition: Partition) -> Option<Held> {
        self.lock().get(&partition).copied()
    }

    /// A write of the lease (creation or renewal) sent at `sent` was stored at
    /// `revision`.
    pub fn written(&self, partition: Partition, revision: u64, sent: Instant, ttl: Duration) {
        let until = sent + hold_for(ttl);
        self.lock().insert(partition, Held { revision, until });
    }

    /// Gives `partition` up here: from now on nothing is committed or read under it.
    pub fn give_up(&self, partition: Partition) -> Option<Held> {
        self.lock().remove(&partition)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Partition, Held>> {
        // A panic while holding the map cannot leave it half-changed (every change is
        // one insert or remove), so a poisoned lock is still a valid map.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long a lease is acted on after its write was sent: a fifth of the TTL is left
/// as margin for the time the write takes to reach the server and clocks' drift.
pub fn hold_for(ttl: Duration) -> Duration {
    ttl - ttl / 5
}

/// How often leases are renewed: three tries before the lease lapses.
pub fn renew_every(ttl: Duration) -> Duration {
    ttl / 3
}

/// How many partitions a node should own when `live` nodes share `partitions`.
pub fn fair_share(partitions: u32, live: usize) -> usize {
    let live = live.max(1);
    (partitions as usize).div_ceil(live)
}

/// A lease's value (and a node's heartbeat): who holds it and where its HTTP API is,
/// so other nodes can forward reads to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub node: String,
    /// `http://HOST:PORT` as the node advertises it.
    pub http: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(5);

    #[test]
    fn a_written_lease_is_held_until_four_fifths_of_the_ttl_after_it_was_sent() {
        let leases = Leases::default();
        let sent = Instant::now();
        leases.written(Partition(3), 7, sent, TTL);
        assert!(leases.holds(Partition(3), sent + Duration::from_millis(3999)));
        assert!(!leases.holds(Partition(3), sent + Duration::from_millis(4000)));
        assert!(!leases.holds(Partition(4), sent));
    }

    #[test]
    fn a_renewal_moves_the_deadline_and_keeps_the_new_revision() {
        let leases = Leases::default();
        let sent = Instant::now();
        leases.written(Partition(1), 7, sent, TTL);
        leases.written(Partition(1), 9, sent + Duration::from_secs(3), TTL);
        assert!(leases.holds(Partition(1), sent + Duration::from_secs(6)));
        assert_eq!(leases.get(Partition(1)).map(|h| h.revision), Some(9));
    }

    #[test]
    fn a_lease_given_up_is_not_held_even_before_its_deadline() {
        let leases = Leases::default();
        let sent = Instant::now();
        leases.written(Partition(1), 7, sent, TTL);
        assert_eq!(leases.give_up(Partition(1)).map(|h| h.revision), Some(7));
        assert!(!leases.holds(Partition(1), sent));
    }

    #[test]
    fn the_fair_share_rounds_up_so_every_partition_has_a_taker() {
        assert_eq!(fair_share(16, 1), 16);
        assert_eq!(fair_share(16, 3), 6);
        assert_eq!(fair_share(16, 2), 8);
        assert_eq!(fair_share(16, 0), 16);
    }
}
