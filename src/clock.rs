//! Time (SPEC §2.7). A [`Clock`] is a *reading* of time: the system clock for the
//! daemon, a test's clock in tests. The [`StepClock`] turns readings into the one
//! monotone time every step runs at: it only moves forward, so a late event, a
//! system clock set back or a timer due in the past can never make a step earlier
//! than the one before it, and no per-period record ever has to cope with an earlier
//! period. The engine never asks: it is given `now` with every step.

use std::sync::Mutex;

use chrono::{DateTime, Duration, TimeZone, Utc};

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

/// A clock a test sets by hand, for driving the daemon through days in milliseconds.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(at),
        }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How far ahead of the step clock an event's `at` may be: more is a client's clock
/// gone wrong (or a typo in a year), and would put `event.at` after the step's time.
pub const MAX_AHEAD: Duration = Duration::minutes(5);

/// The time steps run at: starts unset, moves to each reading that is later, never
/// goes back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepClock {
    now: Option<DateTime<Utc>>,
}

impl StepClock {
    /// A clock that already stands at `now` (as recorded in the store).
    pub fn at(now: Option<DateTime<Utc>>) -> Self {
        StepClock { now }
    }

    /// Moves the clock to `reading` unless it is already later; returns the time now,
    /// which is the time of the next step.
    pub fn advance(&mut self, reading: DateTime<Utc>) -> DateTime<Utc> {
        let next = self.now.map_or(reading, |current| current.max(reading));
        self.now = Some(next);
        next
    }

    /// The time of the latest step or reading; `None` before the first.
    pub fn now(&self) -> Option<DateTime<Utc>> {
        self.now
    }

    /// How the store keeps it: Unix milliseconds as decimal text.
    pub fn encode(&self) -> Option<Vec<u8>> {
        self.now
            .map(|t| t.timestamp_millis().to_string().into_bytes())
    }

    /// Reads what [`StepClock::encode`] wrote; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let millis: i64 = std::str::from_utf8(bytes).ok()?.parse().ok()?;
        let now = Utc.timestamp_millis_opt(millis).single()?;
        Some(StepClock { now: Some(now) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    #[test]
    fn the_step_clock_never_goes_back() {
        let mut clock = StepClock::default();
        assert_eq!(clock.now(), None);
        let t1 = t("2026-11-26T10:00:00Z");
        assert_eq!(clock.advance(t1), t1);
        assert_eq!(clock.advance(t("2026-11-25T10:00:00Z")), t1);
        assert_eq!(clock.now(), Some(t1));
    }

    #[test]
    fn the_step_clock_survives_its_encoding() {
        let mut clock = StepClock::default();
        assert_eq!(clock.encode(), None);
        clock.advance(t("2026-11-26T10:00:00.123Z"));
        let bytes = clock.encode().unwrap();
        assert_eq!(StepClock::decode(&bytes), Some(clock));
        assert_eq!(StepClock::decode(b"yesterday"), None);
    }
}
