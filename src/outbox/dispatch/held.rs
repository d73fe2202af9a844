//! Rows taken out of the dispatcher's normal course: held while a reload has removed
//! their channel, and failed rows queued again by hand (`POST /v1/messages/{id}/retry`).
//!
//! Both write a row outside a delivery, so both keep to the dispatcher's rule that a
//! row in flight is changed only by its delivery: a row is held only when not in
//! flight, and only a `failed` row (never in flight) is queued again.

use super::{lock, record, write_counted, Dispatcher, Inner};
use crate::outbox::row::{OutboxRow, RowError, Status};
use crate::store::StoreError;

/// Why a manual retry (`POST /v1/messages/{id}/retry`) did not queue a message.
#[derive(Debug, thiserror::Error)]
pub enum RequeueError {
    #[error("no message {0}")]
    Unknown(u64),
    #[error("message {seq} is {}, not failed: only a failed message can be retried", .status.as_str())]
    NotFailed { seq: u64, status: Status },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Row(#[from] RowError),
}

impl Dispatcher {
    /// Queues failed message `seq` again, due now, with a new retry window; returns
    /// the row as now stored. The store is synced before this returns.
    pub fn requeue(&self, seq: u64) -> Result<OutboxRow, RequeueError> {
        let inner = &self.inner;
        let _one_at_a_time = lock(&inner.requeue);
        let mut row = match inner.store.outbox_scan(seq, 1)?.pop() {
            Some((found, bytes)) if found == seq => OutboxRow::decode(seq, &bytes)?,
            _ => return Err(RequeueError::Unknown(seq)),
        };
        if row.status != Status::Failed {
            return Err(RequeueError::NotFailed {
                seq,
                status: row.status,
            });
        }
        row.status = Status::Pending;
        row.due = (inner.now)();
        row.attempts = 0;
        row.first_failed_at = None;
        if !write_counted(inner, &row, &row.encode()?)? {
            // Retention removed it between the read and the write.
            return Err(RequeueError::Unknown(seq));
        }
        inner.store.sync()?;
        {
            let mut low = lock(&inner.low_water);
            low.at = low.at.min(seq);
            low.reopened = Some(low.reopened.map_or(seq, |r| r.min(seq)));
        }
        tracing::info!(seq, key = %row.key, channel = %row.channel, "failed message queued again");
        inner.wake.notify_one();
        Ok(row)
    }
}

/// Holds `row`, whose channel the running rule set lacks, until a reload brings the
/// channel back: failing it would lose a message to a rule-file edit.
pub(super) fn hold(inner: &Inner, row: OutboxRow) {
    let row = OutboxRow {
        status: Status::Held,
        ..row
    };
    tracing::warn!(
        seq = row.seq, key = %row.key, channel = %row.channel,
        "message held: its channel was removed by a reload; it goes out if the channel returns"
    );
    record(inner, &row);
}

/// The held `row` pending again now that its channel is back, with a new retry window
/// (time spent held is not time spent trying).
pub(super) fn resume(inner: &Inner, row: OutboxRow) -> OutboxRow {
    let row = OutboxRow {
        status: Status::Pending,
        first_failed_at: None,
        ..row
    };
    tracing::info!(seq = row.seq, key = %row.key, channel = %row.channel, "held message resumed: its channel is back");
    record(inner, &row);
    row
}
