//! What one delivery attempt does to its row: sent, retried later, or failed for good.
//!
//! Retries back off exponentially with full jitter (a random delay between zero and
//! `base · 2^(attempt-1)`, capped at `max`): many messages that failed together, when a
//! relay went down, do not all come back at the same instant when it returns.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::row::{OutboxRow, Status};
use crate::messaging::DeliveryError;

/// How the dispatcher retries and paces deliveries.
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchConfig {
    /// Attempts before a transiently failing message is marked failed (at least 1).
    pub max_attempts: u32,
    /// The retry delay's ceiling after the first failure; it doubles per failure.
    pub base_backoff: Duration,
    /// The retry delay never exceeds this.
    pub max_backoff: Duration,
    /// Deliveries in flight at once on one channel (at least 1): a relay or a webhook
    /// receiver sees no more connections than this from Rally.
    pub per_channel_concurrency: usize,
    /// Deliveries started per second on one channel, with bursts of up to one second's
    /// worth. Zero, negative or NaN means no limit.
    pub per_channel_rate: f64,
    /// Deliveries in flight across all channels: bounds memory with a large backlog.
    pub max_in_flight: usize,
    /// At shutdown, how long deliveries under way get to finish before they are
    /// abandoned (and sent again after a restart).
    pub shutdown_grace: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_attempts: 8,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5 * 60),
            per_channel_concurrency: 4,
            per_channel_rate: 20.0,
            max_in_flight: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The delay before the retry that follows failed attempt number `attempts` (1 after
/// the first failure): uniform in `0..=min(max, base · 2^(attempts-1))`.
pub fn backoff(config: &DispatchConfig, attempts: u32, rng: &mut impl Rng) -> Duration {
    let factor = 2u32
        .checked_pow(attempts.saturating_sub(1))
        .unwrap_or(u32::MAX);
    let ceiling = config
        .base_backoff
        .saturating_mul(factor)
        .min(config.max_backoff);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.gen_range(0..=millis))
}

/// The row after an attempt that ended at `now` with `result`.
pub fn settle(
    mut row: OutboxRow,
    result: Result<(), DeliveryError>,
    now: DateTime<Utc>,
    config: &DispatchConfig,
    rng: &mut impl Rng,
) -> OutboxRow {
    row.attempts = row.attempts.saturating_add(1);
    match result {
        Ok(()) => {
            row.status = Status::Sent;
            row.sent_at = Some(now);
        }
        Err(error) => {
            let give_up = error.is_permanent() || row.attempts >= config.max_attempts.max(1);
            row.last_error = Some(error.message);
            if give_up {
                row.status = Status::Failed;
            } else {
                row.status = Status::Pending;
                let delay = backoff(config, row.attempts, rng);
                let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                row.due = now
                    .checked_add_signed(delay)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
            }
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn row() -> OutboxRow {
        let at = utc("2026-11-10T10:00:00Z");
        OutboxRow {
            seq: 1,
            key: "r|1|m-1".to_string(),
            member: Some("m-1".to_string()),
            rule: Some("r".to_string()),
            channel: "email".to_string(),
            template: None,
            to: "a@example.com".to_string(),
            subject: "s".to_string(),
            body: "b".to_string(),
            html: false,
            webhook_body: None,
            marketing: true,
            status: Status::Pending,
            due: at,
            attempts: 0,
            last_error: None,
            created_at: at,
            sent_at: None,
        }
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn backoff_stays_under_a_ceiling_that_doubles_per_failure() {
        let config = DispatchConfig::default();
        let mut rng = rng();
        for attempts in 1..=6u32 {
            let ceiling = Duration::from_secs(1 << (attempts - 1));
            let delays: Vec<Duration> = (0..200)
                .map(|_| backoff(&config, attempts, &mut rng))
                .collect();
            assert!(delays.iter().all(|d| *d <= ceiling), "attempt {attempts}");
            // Full jitter spreads retries over the whole range, not just near its top.
            assert!(
                delays.iter().any(|d| *d < ceiling / 2),
                "attempt {attempts}"
            );
            assert!(
                delays.iter().any(|d| *d > ceiling / 2),
                "attempt {attempts}"
            );
        }
    }

    #[test]
    fn backoff_never_exceeds_the_maximum_even_after_many_failures() {
        let config = DispatchConfig::default();
        let mut rng = rng();
        for attempts in [10, 31, 32, 33, 1000, u32::MAX] {
            assert!(backoff(&config, attempts, &mut rng) <= config.max_backoff);
        }
    }

    #[test]
    fn a_delivered_message_is_sent_at_the_time_of_delivery() {
        let now = utc("2026-11-10T10:00:05Z");
        let row = settle(row(), Ok(()), now, &DispatchConfig::default(), &mut rng());
        assert_eq!(row.status, Status::Sent);
        assert_eq!(row.sent_at, Some(now));
        assert_eq!(row.attempts, 1);
    }

    #[test]
    fn a_transient_failure_is_retried_after_a_backoff() {
        let now = utc("2026-11-10T10:00:05Z");
        let config = DispatchConfig::default();
        let error = DeliveryError::transient("smtp: connection refused");
        let row = settle(row(), Err(error), now, &config, &mut rng());
        assert_eq!(row.status, Status::Pending);
        assert_eq!(row.attempts, 1);
        assert!(row.due >= now && row.due <= now + chrono::Duration::seconds(1));
        assert_eq!(row.last_error.as_deref(), Some("smtp: connection refused"));
    }

    #[test]
    fn a_transient_failure_on_the_last_attempt_fails_the_message() {
        let config = DispatchConfig::default();
        let before = OutboxRow {
            attempts: config.max_attempts - 1,
            ..row()
        };
        let error = DeliveryError::transient("timeout");
        let row = settle(
            before.clone(),
            Err(error),
            utc("2026-11-10T11:00:00Z"),
            &config,
            &mut rng(),
        );
        assert_eq!(row.status, Status::Failed);
        assert_eq!(row.attempts, config.max_attempts);
        assert_eq!(row.due, before.due);
    }

    #[test]
    fn a_permanent_failure_fails_the_message_at_once() {
        let error = DeliveryError::permanent("550 no such user");
        let now = utc("2026-11-10T10:00:05Z");
        let row = settle(
            row(),
            Err(error),
            now,
            &DispatchConfig::default(),
            &mut rng(),
        );
        assert_eq!(row.status, Status::Failed);
        assert_eq!(row.attempts, 1);
        assert_eq!(row.last_error.as_deref(), Some("550 no such user"));
    }

    #[test]
    fn a_deferred_message_that_fails_waits_as_pending() {
        let deferred = OutboxRow {
            status: Status::Deferred,
            ..row()
        };
        let error = DeliveryError::transient("503");
        let now = utc("2026-11-10T10:00:05Z");
        let row = settle(
            deferred,
            Err(error),
            now,
            &DispatchConfig::default(),
            &mut rng(),
        );
        assert_eq!(row.status, Status::Pending);
    }
}
