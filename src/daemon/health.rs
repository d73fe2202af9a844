//! What `GET /healthz` reports: whether the store took the last group of work.
//!
//! The writer is the only one that commits and syncs, so it alone records failures
//! and recoveries here; the handler only reads. Degraded from the first failed group
//! (a commit, a sync, or a read the group needed) until a later group is durable, with
//! the latest error and the time of the first failure, so an operator sees both what
//! is wrong now and how long it has been wrong.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

#[derive(Debug, Default)]
pub struct Health {
    degraded: Mutex<Option<Degraded>>,
}

#[derive(Clone, Debug)]
struct Degraded {
    error: String,
    since: DateTime<Utc>,
}

impl Health {
    /// The store failed at `at`; `since` stays the first failure of a run of them.
    pub fn failed(&self, error: &str, at: DateTime<Utc>) {
        let mut degraded = self.lock();
        let since = degraded.as_ref().map_or(at, |d| d.since);
        *degraded = Some(Degraded {
            error: error.to_string(),
            since,
        });
    }

    /// A group was committed and synced: the store works again.
    pub fn recovered(&self) {
        let mut degraded = self.lock();
        if let Some(was) = degraded.take() {
            tracing::info!(since = %was.since, "the store recovered");
        }
    }

    /// `None` when healthy, else the body `/healthz` answers with 503.
    pub fn degraded(&self) -> Option<Value> {
        self.lock().as_ref().map(|d| {
            json!({
                "status": "degraded",
                "store": d.error,
                "since": crate::member::rfc3339(d.since),
            })
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Degraded>> {
        // Every update writes the whole value, so a panic cannot leave half of one.
        self.degraded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_keeps_the_first_failure_time_and_the_latest_error_until_recovered() {
        let health = Health::default();
        assert!(health.degraded().is_none());
        let first = DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z").unwrap();
        let later = DateTime::parse_from_rfc3339("2026-11-01T10:05:00Z").unwrap();
        health.failed("commit failed", first.into());
        health.failed("sync failed", later.into());
        let body = health.degraded().unwrap();
        assert_eq!(body["store"], "sync failed");
        assert_eq!(body["since"], "2026-11-01T10:00:00Z");
        health.recovered();
        assert!(health.degraded().is_none());
    }
}
