//! What one delivery attempt does to its row: sent, retried later, or failed for good.
//!
//! Retries back off exponentially with full jitter (a random delay between zero and
//! `base · 2^(attempt-1)`, capped at the channel's `retry.max_backoff`): many messages
//! that failed together, when a relay went down, do not all come back at the same
//! instant when it returns. They go on until the channel's `retry.for` has passed since
//! the first failure (a day by default), so an outage of hours costs delay, not mail.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::row::{OutboxRow, Status};
use crate::messaging::DeliveryError;
use crate::rules::Retry;

/// How the dispatcher retries and paces deliveries. How long to retry, and the longest
/// wait, are the channel's (`retry:` in the rule file).
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchConfig {
    /// The retry delay's ceiling after the first failure; it doubles per failure.
    pub base_backoff: Duration,
    /// Deliveries in flight at once on one channel (at least 1): a relay or a webhook
    /// receiver sees no more connections than this from Rally.
    pub per_channel_concurrency: usize,
    /// Deliveries started per second on one channel, with bursts of up to one second's
    /// worth. Zero, negative or NaN means no limit.
    pub per_channel_rate: f64,
    /// Due messages taken from the store per channel at a time (started, or waiting for
    /// the channel's lane): bounds memory with a large backlog. Each channel has its
    /// own, so a channel with a backlog never takes another's turn.
    pub per_channel_queue: usize,
    /// At shutdown, how long deliveries under way get to finish before they are
    /// abandoned (and sent again after a restart).
    pub shutdown_grace: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            base_backoff: Duration::from_secs(1),
            per_channel_concurrency: 4,
            per_channel_rate: 20.0,
            per_channel_queue: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The delay before the retry that follows failed attempt number `attempts` (1 after
/// the first failure): uniform in `0..=min(max, base · 2^(attempts-1))`.
pub fn backoff(base: Duration, max: Duration, attempts: u32, rng: &mut impl Rng) -> Duration {
    let factor = 2u32
        .checked_pow(attempts.saturating_sub(1))
        .unwrap_or(u32::MAX);
    let ceiling = base.saturating_mul(factor).min(max);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.gen_range(0..=millis))
}

/// The row after an attempt that ended at `now` with `result`, on a channel that
/// retries as `retry` says.
pub fn settle(
    mut row: OutboxRow,
    result: Result<(), DeliveryError>,
    now: DateTime<Utc>,
    config: &DispatchConfig,
    retry: &Retry,
    rng: &mut impl Rng,
) -> OutboxRow {
    row.attempts = row.attempts.saturating_add(1);
    match result {
        Ok(()) => {
            row.status = Status::Sent;
            row.sent_at = Some(now);
        }
        Err(error) => {
            let first_failed = *row.first_failed_at.get_or_insert(now);
            let out_of_time = now.signed_duration_since(first_failed).ge(&retry.for_);
            row.last_error = Some(error.message.clone());
            if error.is_permanent() || out_of_time {
                row.status = Status::Failed;
            } else {
                row.status = Status::Pending;
                let max = retry.max_backoff.to_std().unwrap_or(Duration::ZERO);
                let delay = backoff(config.base_backoff, max, row.attempts, rng);
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
            first_failed_at: None,
            last_error: None,
            created_at: at,
            sent_at: None,
        }
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn fail(row: OutboxRow, now: DateTime<Utc>, retry: &Retry) -> OutboxRow {
        let error = DeliveryError::transient(format!("smtp: refused at {now}"));
        settle(
            row,
            Err(error),
            now,
            &DispatchConfig::default(),
            retry,
            &mut rng(),
        )
    }

    #[test]
    fn backoff_stays_under_a_ceiling_that_doubles_per_failure() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(3600));
        let mut rng = rng();
        for attempts in 1..=6u32 {
            let ceiling = Duration::from_secs(1 << (attempts - 1));
            let delays: Vec<Duration> = (0..200)
                .map(|_| backoff(base, max, attempts, &mut rng))
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
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(3600));
        let mut rng = rng();
        for attempts in [10, 31, 32, 33, 1000, u32::MAX] {
            assert!(backoff(base, max, attempts, &mut rng) <= max);
        }
    }

    #[test]
    fn a_delivered_message_is_sent_at_the_time_of_delivery() {
        let now = utc("2026-11-10T10:00:05Z");
        let config = DispatchConfig::default();
        let row = settle(row(), Ok(()), now, &config, &Retry::default(), &mut rng());
        assert_eq!(row.status, Status::Sent);
        assert_eq!(row.sent_at, Some(now));
        assert_eq!(row.attempts, 1);
    }

    #[test]
    fn a_transient_failure_is_retried_after_a_backoff() {
        let now = utc("2026-11-10T10:00:05Z");
        let row = fail(row(), now, &Retry::default());
        assert_eq!(row.status, Status::Pending);
        assert_eq!(row.attempts, 1);
        assert_eq!(row.first_failed_at, Some(now));
        assert!(row.due >= now && row.due <= now + chrono::Duration::seconds(1));
        assert!(row.last_error.unwrap().starts_with("smtp: refused"));
    }

    /// Fails `row` at each due time in turn until it is failed for good; returns the
    /// last row and the waits between attempts.
    fn fail_until_given_up(
        mut row: OutboxRow,
        retry: &Retry,
    ) -> (OutboxRow, Vec<chrono::Duration>) {
        let mut clock = row.due;
        let mut waits = Vec::new();
        let mut rng = rng();
        for _ in 0..100_000 {
            let error = DeliveryError::transient(format!("smtp: refused at {clock}"));
            let config = DispatchConfig::default();
            row = settle(row, Err(error), clock, &config, retry, &mut rng);
            if row.status == Status::Failed {
                return (row, waits);
            }
            waits.push(row.due - clock);
            clock = row.due;
        }
        panic!("still retrying after 100000 attempts");
    }

    #[test]
    fn a_failing_message_is_retried_for_a_day_then_failed_with_the_last_error() {
        let start = row().due;
        let (last, waits) = fail_until_given_up(row(), &Retry::default());
        let failed_at = start + waits.iter().copied().sum::<chrono::Duration>();
        assert!(failed_at - start >= chrono::Duration::hours(24));
        // It gives up at the first attempt after the day is over.
        assert!(failed_at - start <= chrono::Duration::hours(25));
        assert_eq!(last.status, Status::Failed);
        assert_eq!(last.first_failed_at, Some(start));
        assert_eq!(
            last.last_error.as_deref(),
            Some(format!("smtp: refused at {failed_at}").as_str())
        );
        // Far more than the eight attempts of old, and never an hour apart or more.
        assert!(last.attempts > 20, "{} attempts", last.attempts);
        assert!(waits.iter().all(|w| *w <= chrono::Duration::hours(1)));
        assert!(waits.iter().any(|w| *w > chrono::Duration::minutes(30)));
    }

    #[test]
    fn the_first_waits_double_from_the_base_backoff() {
        let (_, waits) = fail_until_given_up(row(), &Retry::default());
        for (n, wait) in waits.iter().take(8).enumerate() {
            assert!(
                *wait <= chrono::Duration::seconds(1 << n),
                "wait {n}: {wait}"
            );
        }
    }

    #[test]
    fn a_channel_retry_setting_sets_the_window_and_the_longest_wait() {
        let retry = Retry {
            for_: chrono::Duration::hours(2),
            max_backoff: chrono::Duration::minutes(5),
        };
        let start = row().due;
        let (last, waits) = fail_until_given_up(row(), &retry);
        let failed_at = start + waits.iter().copied().sum::<chrono::Duration>();
        assert!(failed_at - start >= chrono::Duration::hours(2));
        assert!(failed_at - start <= chrono::Duration::hours(2) + chrono::Duration::minutes(5));
        assert!(waits.iter().all(|w| *w <= chrono::Duration::minutes(5)));
        assert_eq!(last.status, Status::Failed);
    }

    #[test]
    fn a_permanent_failure_fails_the_message_at_once() {
        let error = DeliveryError::permanent("550 no such user");
        let now = utc("2026-11-10T10:00:05Z");
        let config = DispatchConfig::default();
        let row = settle(
            row(),
            Err(error),
            now,
            &config,
            &Retry::default(),
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
        let row = fail(deferred, utc("2026-11-10T10:00:05Z"), &Retry::default());
        assert_eq!(row.status, Status::Pending);
    }
}
