//! One pass over the outbox: which rows to start now, per channel, and where the next
//! pass begins.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::held::{hold, resume};
use super::{lock, Inner, PAGE};
use crate::outbox::row::{OutboxRow, Status};
use crate::store::StoreError;

/// Every row below `at` is final. A manual retry reopens a final row: it lowers `at`
/// and notes the row in `reopened`, so a scan under way, which read past that row
/// before it was reopened, does not raise `at` above it again.
pub(super) struct LowWater {
    pub(super) at: u64,
    pub(super) reopened: Option<u64>,
}

/// What one scan found and started.
pub(super) struct Pass {
    pub(super) started: usize,
    /// The earliest due time among waiting rows not started (unknown for channels in
    /// `truncated`).
    pub(super) next_due: Option<DateTime<Utc>>,
    /// Channels whose share was full with due rows left over.
    pub(super) truncated: BTreeSet<String>,
}

impl Inner {
    /// Collects into `due` the waiting rows due at `now` and not in flight, up to
    /// `share` in flight per channel, marking them in flight. Holds the open rows of a
    /// channel the running set lacks; resumes held rows whose channel is back.
    pub(super) fn scan(
        &self,
        now: DateTime<Utc>,
        share: usize,
        due: &mut Vec<OutboxRow>,
    ) -> Result<Pass, StoreError> {
        let mut from = lock(&self.low_water).at;
        let channels = self.channels();
        let mut taken = self.in_flight_by_channel();
        let mut oldest_open = None;
        let mut pass = Pass {
            started: 0,
            next_due: None,
            truncated: BTreeSet::new(),
        };
        loop {
            let page = self.store.outbox_scan(from, PAGE)?;
            let full = page.len() == PAGE;
            for (seq, bytes) in page {
                from = seq.saturating_add(1);
                let Some(mut row) = self.decode(seq, &bytes) else {
                    continue;
                };
                if !row.status.is_open() {
                    continue;
                }
                oldest_open.get_or_insert(seq);
                let known = channels.retry(&row.channel).is_some();
                if row.status == Status::Held {
                    if !known {
                        continue;
                    }
                    row = resume(self, row);
                } else if !known {
                    let in_flight = lock(&self.in_flight);
                    if !in_flight.contains_key(&seq) {
                        if let Some(row) = self.fresh(seq)? {
                            hold(self, row);
                        }
                    }
                    continue;
                }
                if row.due > now {
                    pass.next_due = Some(pass.next_due.map_or(row.due, |d| d.min(row.due)));
                    continue;
                }
                let mut in_flight = lock(&self.in_flight);
                if in_flight.contains_key(&seq) {
                    continue;
                }
                // The page may be older than the row: a delivery that ended since it
                // was read (it records its outcome before it leaves `in_flight`, and
                // that lock is held now) left the row sent, or pending for later.
                // Starting from the old copy would send the message twice.
                let Some(row) = self.fresh(seq)?.filter(|row| row.due <= now) else {
                    continue;
                };
                let count = taken.entry(row.channel.clone()).or_insert(0);
                if *count >= share {
                    // Other channels' rows may lie further on: keep looking.
                    pass.truncated.insert(row.channel.clone());
                    continue;
                }
                *count += 1;
                in_flight.insert(seq, row.channel.clone());
                due.push(row);
            }
            if !full {
                break;
            }
        }
        let mut low = lock(&self.low_water);
        let reopened = low.reopened.take().unwrap_or(u64::MAX);
        low.at = oldest_open.unwrap_or(from).min(reopened);
        pass.started = due.len();
        Ok(pass)
    }

    /// Row `seq` as stored now, if it is still waiting to go out.
    fn fresh(&self, seq: u64) -> Result<Option<OutboxRow>, StoreError> {
        let Some((found, bytes)) = self.store.outbox_scan(seq, 1)?.pop() else {
            return Ok(None);
        };
        if found != seq {
            return Ok(None);
        }
        Ok(self
            .decode(seq, &bytes)
            .filter(|row| row.status.is_open() && row.status != Status::Held))
    }

    /// Rows in flight on each channel.
    pub(super) fn in_flight_by_channel(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for channel in lock(&self.in_flight).values() {
            *counts.entry(channel.clone()).or_insert(0) += 1;
        }
        counts
    }
}
