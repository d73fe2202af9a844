//! The one source of "now". `sim` runs on a [`VirtualClock`] that only moves when the
//! simulation moves it (to the next event or due timer); the daemon runs on the
//! [`SystemClock`]. The engine never asks: it is given `now` with every step.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time, for the daemon.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Simulated time: starts unset, jumps forward when told, never goes back.
#[derive(Debug, Default)]
pub struct VirtualClock {
    now: Mutex<Option<DateTime<Utc>>>,
}

impl VirtualClock {
    /// Moves the clock to `to` unless it is already later; returns the time now.
    pub fn advance_to(&self, to: DateTime<Utc>) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        let next = now.map_or(to, |current| current.max(to));
        *now = Some(next);
        next
    }

    /// Whether the clock has been started.
    pub fn started(&self) -> Option<DateTime<Utc>> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for VirtualClock {
    /// The simulated time; the epoch before the first event.
    fn now(&self) -> DateTime<Utc> {
        self.started().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_clock_never_goes_back() {
        let clock = VirtualClock::default();
        let t1 = DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
            .unwrap()
            .into();
        let t0 = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .into();
        assert_eq!(clock.advance_to(t1), t1);
        assert_eq!(clock.advance_to(t0), t1);
        assert_eq!(clock.now(), t1);
    }
}
