//! Message deliveries, counted where they happen: in the dispatcher, outside any step.
//!
//! The dispatcher writes a row's new status and the count of what that was in one
//! atomic write ([`Store::outbox_update_counted`]), deciding what it was from the row
//! as stored ([`Delivery::of`]): only a change of status is counted, so a status
//! written twice is counted once, and a crash keeps both or neither. The counts live
//! in rows of their own, `metrics.delivery.<day>` (`settings.timezone`), by channel:
//! the runner's [`Tally`](super::Tally) writes its rows whole from memory and would
//! write over counts it does not keep. Retention removing outbox rows leaves them be.
//!
//! What a step decides (queued, deferred, capped, suppressed when queued) is the
//! Tally's; the journal replays steps, never deliveries, so `rally replay` neither
//! rebuilds nor compares these rows.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::outbox::Status;
use crate::store::{Store, StoreError};

/// Meta names of the delivery counts start with this (inside [`super::META`]).
pub const DELIVERY: &str = "metrics.delivery.";

/// What the dispatcher did to a message, as a report counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Its channel accepted it.
    Sent,
    /// Given up: a permanent error, or the channel's `retry.for` ran out.
    Failed,
    /// An attempt failed, and it goes out again later.
    Retried,
    /// Withheld as it was going out: the member unsubscribed or left after it was
    /// queued.
    SuppressedAtSending,
    /// A failed message queued again by hand (`POST /v1/messages/{id}/retry`).
    Requeued,
}

impl Delivery {
    /// What writing `after` over a row stored as `before` is. `None` for what is not
    /// a delivery (held while a reload removed its channel, resumed when it returns)
    /// and for no change of status (the row already says so): never counted twice.
    pub fn of(before: Status, after: Status) -> Option<Delivery> {
        let waiting = before.is_waiting();
        match after {
            Status::Sent if waiting => Some(Delivery::Sent),
            Status::Failed if waiting => Some(Delivery::Failed),
            Status::Pending if waiting => Some(Delivery::Retried),
            Status::Suppressed if waiting => Some(Delivery::SuppressedAtSending),
            Status::Pending if before == Status::Failed => Some(Delivery::Requeued),
            _ => None,
        }
    }
}

/// One channel's deliveries on one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Delivered {
    pub sent: u64,
    pub failed: u64,
    /// Attempts that failed and were tried again later (not messages: a message
    /// retried three times counts three).
    pub retried: u64,
    pub suppressed_at_sending: u64,
    pub requeued: u64,
}

impl Delivered {
    fn count(&mut self, delivery: Delivery) {
        let count = match delivery {
            Delivery::Sent => &mut self.sent,
            Delivery::Failed => &mut self.failed,
            Delivery::Retried => &mut self.retried,
            Delivery::SuppressedAtSending => &mut self.suppressed_at_sending,
            Delivery::Requeued => &mut self.requeued,
        };
        *count += 1;
    }

    pub fn add(&mut self, other: &Delivered) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.retried += other.retried;
        self.suppressed_at_sending += other.suppressed_at_sending;
        self.requeued += other.requeued;
    }
}

/// One day's deliveries, by channel: one stored row.
pub type DeliveryDay = BTreeMap<String, Delivered>;

/// Every day's deliveries.
pub type Deliveries = BTreeMap<NaiveDate, DeliveryDay>;

/// The meta name of `day`'s row.
pub fn row_name(day: NaiveDate) -> String {
    format!("{DELIVERY}{day}")
}

/// The day's row as stored (`current`, none yet) with one more `delivery` on
/// `channel`; an error when the stored row does not read.
pub fn counted(
    current: Option<&[u8]>,
    channel: &str,
    delivery: Delivery,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut day: DeliveryDay = match current {
        Some(bytes) => serde_json::from_slice(bytes)?,
        None => DeliveryDay::new(),
    };
    day.entry(channel.to_string()).or_default().count(delivery);
    serde_json::to_vec(&day)
}

/// Every day's deliveries stored in `store`.
pub fn load(store: &Store) -> Result<Deliveries, StoreError> {
    let mut out = Deliveries::new();
    for (name, bytes) in store.meta_scan(DELIVERY)? {
        let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt("meta", name.as_bytes(), e);
        let day = name[DELIVERY.len()..]
            .parse::<NaiveDate>()
            .map_err(|e| corrupt(&e))?;
        let row: DeliveryDay = serde_json::from_slice(&bytes).map_err(|e| corrupt(&e))?;
        out.insert(day, row);
    }
    Ok(out)
}

/// The days `[from, to]` of `deliveries`, summed by channel.
pub fn summed(deliveries: &Deliveries, from: NaiveDate, to: NaiveDate) -> DeliveryDay {
    let mut sum = DeliveryDay::new();
    for day in deliveries.range(from..=to).map(|(_, day)| day) {
        for (channel, delivered) in day {
            sum.entry(channel.clone()).or_default().add(delivered);
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_STATUS: [Status; 7] = [
        Status::Pending,
        Status::Deferred,
        Status::Sent,
        Status::Failed,
        Status::Capped,
        Status::Suppressed,
        Status::Held,
    ];

    #[test]
    fn a_waiting_message_that_goes_out_fails_or_is_retried_is_counted_so() {
        for before in [Status::Pending, Status::Deferred] {
            assert_eq!(Delivery::of(before, Status::Sent), Some(Delivery::Sent));
            assert_eq!(Delivery::of(before, Status::Failed), Some(Delivery::Failed));
            assert_eq!(
                Delivery::of(before, Status::Pending),
                Some(Delivery::Retried)
            );
            assert_eq!(
                Delivery::of(before, Status::Suppressed),
                Some(Delivery::SuppressedAtSending)
            );
        }
    }

    #[test]
    fn a_failed_message_queued_again_is_requeued_and_counts_again_when_it_goes_out() {
        assert_eq!(
            Delivery::of(Status::Failed, Status::Pending),
            Some(Delivery::Requeued)
        );
        assert_eq!(
            Delivery::of(Status::Pending, Status::Sent),
            Some(Delivery::Sent)
        );
    }

    #[test]
    fn a_final_status_written_again_is_not_counted_again() {
        for status in EVERY_STATUS.into_iter().filter(|s| !s.is_waiting()) {
            assert_eq!(Delivery::of(status, status), None, "{status:?}");
        }
        // Nothing moves a final message but a manual retry of a failed one.
        for before in [Status::Sent, Status::Capped, Status::Suppressed] {
            for after in EVERY_STATUS {
                assert_eq!(Delivery::of(before, after), None, "{before:?} → {after:?}");
            }
        }
    }

    #[test]
    fn holding_and_resuming_a_message_is_not_a_delivery() {
        assert_eq!(Delivery::of(Status::Pending, Status::Held), None);
        assert_eq!(Delivery::of(Status::Deferred, Status::Held), None);
        assert_eq!(Delivery::of(Status::Held, Status::Pending), None);
    }

    #[test]
    fn counts_add_up_per_channel_in_the_days_row() {
        let mut row = None;
        for (channel, delivery) in [
            ("email", Delivery::Retried),
            ("email", Delivery::Sent),
            ("hook", Delivery::Failed),
            ("email", Delivery::Sent),
        ] {
            row = Some(counted(row.as_deref(), channel, delivery).unwrap());
        }
        let day: DeliveryDay = serde_json::from_slice(&row.unwrap()).unwrap();
        assert_eq!(
            day["email"],
            Delivered {
                sent: 2,
                retried: 1,
                ..Delivered::default()
            }
        );
        assert_eq!(
            day["hook"],
            Delivered {
                failed: 1,
                ..Delivered::default()
            }
        );
    }

    #[test]
    fn a_count_row_that_does_not_read_is_an_error_not_a_fresh_start() {
        assert!(counted(Some(b"not json"), "email", Delivery::Sent).is_err());
    }

    #[test]
    fn days_outside_the_range_are_not_summed() {
        let day = |d: &str| d.parse::<NaiveDate>().unwrap();
        let one = |sent| -> DeliveryDay {
            [(
                "email".to_string(),
                Delivered {
                    sent,
                    ..Delivered::default()
                },
            )]
            .into()
        };
        let deliveries: Deliveries = [
            (day("2026-11-01"), one(1)),
            (day("2026-11-02"), one(10)),
            (day("2026-11-03"), one(100)),
        ]
        .into();
        let sum = summed(&deliveries, day("2026-11-02"), day("2026-11-03"));
        assert_eq!(sum["email"].sent, 110);
    }
}
