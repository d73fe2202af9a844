//! The seam for store faults (DESIGN.md, "Seams for faults"): a test makes the next
//! commits, syncs or reads fail on demand, to check that nothing is acknowledged that
//! is not durable and that the daemon recovers.
//!
//! Present in release builds too, so the daemon under test is the daemon that ships,
//! but inert unless [`Faults::inject`] is called: nothing reads an environment variable
//! or a route, so production cannot switch it on by accident. A disarmed check is one
//! relaxed atomic load.
//!
//! An injected failure is a `sled::Error::Io`, exactly what a failing disk gives, so
//! it takes the same path through the store and its callers as a real one.

use std::sync::atomic::{AtomicU32, Ordering};

/// What can be made to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// [`Store::commit`](super::Store::commit) fails before anything is applied.
    Commit,
    /// [`Store::sync`](super::Store::sync) fails before flushing: what was committed
    /// stays in sled's memory, not yet durable.
    Sync,
    /// Every read of any keyspace fails (a get, or the first row of a scan).
    Read,
}

/// How many of each operation are still to fail. Shared (`Arc`) between the store and
/// the test that arms it.
#[derive(Debug, Default)]
pub struct Faults {
    commit: AtomicU32,
    sync: AtomicU32,
    read: AtomicU32,
}

/// Fail until [`Faults::clear`]: for faults hit by more than one thread (reads), where
/// a count would depend on who reads first.
pub const UNTIL_CLEARED: u32 = u32::MAX;

impl Faults {
    /// Makes the next `times` operations of kind `fault` fail ([`UNTIL_CLEARED`]: all
    /// of them until cleared). Replaces any count already set.
    pub fn inject(&self, fault: Fault, times: u32) {
        self.counter(fault).store(times, Ordering::SeqCst);
    }

    /// Lets operations of kind `fault` succeed again.
    pub fn clear(&self, fault: Fault) {
        self.inject(fault, 0);
    }

    /// Fails if a fault of this kind is armed, using up one of its count.
    pub(super) fn check(&self, fault: Fault) -> sled::Result<()> {
        let counter = self.counter(fault);
        if counter.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let took = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
            0 => None,
            UNTIL_CLEARED => Some(UNTIL_CLEARED),
            n => Some(n - 1),
        });
        match took {
            Ok(_) => Err(sled::Error::Io(std::io::Error::other(format!(
                "injected fault: {fault:?}"
            )))),
            Err(_) => Ok(()),
        }
    }

    fn counter(&self, fault: Fault) -> &AtomicU32 {
        match fault {
            Fault::Commit => &self.commit,
            Fault::Sync => &self.sync,
            Fault::Read => &self.read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_count_fails_that_many_checks_then_none() {
        let faults = Faults::default();
        faults.inject(Fault::Commit, 2);
        assert!(faults.check(Fault::Commit).is_err());
        assert!(
            faults.check(Fault::Sync).is_ok(),
            "other kinds are not armed"
        );
        assert!(faults.check(Fault::Commit).is_err());
        assert!(faults.check(Fault::Commit).is_ok());
    }

    #[test]
    fn a_fault_until_cleared_fails_every_check_until_cleared() {
        let faults = Faults::default();
        faults.inject(Fault::Read, UNTIL_CLEARED);
        for _ in 0..10 {
            assert!(faults.check(Fault::Read).is_err());
        }
        faults.clear(Fault::Read);
        assert!(faults.check(Fault::Read).is_ok());
    }
}
