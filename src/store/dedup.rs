//! The de-duplication window (`settings.retention.event_ids`): how long the id of an
//! applied event is remembered, so that the same event sent again is answered
//! `duplicate` rather than applied twice.
//!
//! Ids cannot be kept forever (one `seen` row per event ever applied, never read
//! again once clients stop retrying), and an id that is forgotten must never let its
//! event in a second time. So the window is stated on the event's own `at`, not on
//! when it arrived: an event whose `at` is further behind the step clock than the
//! window is refused ([`too_old`]), whether or not its id is still remembered, and a
//! `seen` row is removed only once every event with that `at` would be refused.
//! Since the step clock never goes back, a forgotten id can only come back as a
//! refusal. The same rule runs in `sim`, `import`, replay and the daemon (it is part
//! of the step's arrival, [`crate::runner::Runner::apply_event`]), so they agree on
//! which events were applied. The daemon's retention removes rows from its files; a
//! run on a store in memory (`sim`, replay, backtest) removes them as its clock passes
//! each day, so its memory holds a window of ids, not one per event.
//!
//! Rows are found by age through `seen_by_day` (the day of the event's `at`, then the
//! ids of a group filed under it, see [`Record`]), written in the batch that writes
//! the `seen` rows: the lookup by id on every event stays one get, and a pass reads
//! only the rows it removes. A row is removed
//! once its whole day is more than the window and a day behind the clock: the spare
//! day keeps a wall clock set back by up to a day (the pass reads the wall clock, the
//! step clock never goes back) from removing an id whose event would still be let in.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::keys;
use super::write::Batch;
use super::{Store, StoreError, TreeId};

/// The window when `settings.retention.event_ids` does not say: a month. Clients
/// retry within minutes or hours, a sender that was down catches up within days, and
/// a monthly batch sent twice is still caught; a month of ids costs one small row per
/// event of that month.
pub const DEFAULT_WINDOW: Duration = Duration::days(30);

/// The refusal of an event that is older than the window: its id may be forgotten,
/// so it cannot be told from a duplicate any more.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "at: {at} is older than the de-duplication window: more than {window} before Rally's \
     clock ({now}), so it can no longer be told from a duplicate \
     (settings.retention.event_ids)"
)]
pub struct TooOld {
    pub at: String,
    pub now: String,
    /// The window as an operator writes it (`30d`).
    pub window: String,
}

/// `Some` when an event at `at`, arriving when the step clock reads `now`, is older
/// than `window` and must be refused.
pub fn too_old(at: DateTime<Utc>, now: DateTime<Utc>, window: Duration) -> Option<TooOld> {
    let oldest = now.checked_sub_signed(window)?;
    (at < oldest).then(|| TooOld {
        at: crate::member::rfc3339(at),
        now: crate::member::rfc3339(now),
        window: spoken(window),
    })
}

/// The day a `seen` row is filed under: days since the Unix epoch of the event's
/// `at`, UTC (day 0 before 1970: older than any window anyway).
pub fn day(at: DateTime<Utc>) -> u32 {
    u32::try_from(at.timestamp().div_euclid(86_400)).unwrap_or(0)
}

/// The first day whose rows a pass at `now` keeps: every row of an earlier day is
/// for events at least `window` and a day older than `now` (see the module docs).
pub fn first_kept_day(now: DateTime<Utc>, window: Duration) -> u32 {
    now.checked_sub_signed(window + Duration::days(1))
        .map_or(0, day)
}

/// `30d`, `36h`: how a window reads in an error.
fn spoken(window: Duration) -> String {
    if window.num_seconds() % 86_400 == 0 {
        format!("{}d", window.num_days())
    } else if window.num_seconds() % 3_600 == 0 {
        format!("{}h", window.num_hours())
    } else {
        format!("{}s", window.num_seconds())
    }
}

/// The `seen` rows of a group and, for a backend that wants them, its `seen_by_day`
/// rows: one per day its events fall on, keyed by the day and the first id filed under
/// it, holding every id of the group filed under that day. One row per group rather
/// than per event: every row written into sled's one tree costs a copy of its leaf,
/// and the day's keys only grow, so a row per event split a leaf every few events.
/// A row written before rows held lists has an empty value: its one id is in its key.
/// A day's row holds up to [`ROW_BYTES`](super::ROW_BYTES) of ids; a group with more
/// that day (a large request) files the rest in further rows, each keyed by its own
/// first id.
pub(super) struct Record {
    indexed: bool,
    /// Each day's row being gathered: its first id, and the ids.
    days: BTreeMap<u32, (String, Vec<u8>)>,
    full: Vec<(u32, String, Vec<u8>)>,
}

impl Record {
    pub(super) fn new(indexed: bool) -> Record {
        Record {
            indexed,
            days: BTreeMap::new(),
            full: Vec::new(),
        }
    }

    /// Writes the `seen` row of `id`, and files it under the day of `at` when `at` is
    /// known.
    pub(super) fn seen(&mut self, batch: &mut Batch, id: &str, at: Option<DateTime<Utc>>) {
        batch.insert(TreeId::Seen, keys::text_key(id), super::SEEN_APPLIED);
        if let (Some(at), true) = (at, self.indexed) {
            let day = day(at);
            let (first, ids) = self
                .days
                .entry(day)
                .or_insert_with(|| (id.to_string(), Vec::new()));
            if !ids.is_empty() && ids.len() + 4 + id.len() > super::ROW_BYTES {
                let full = (
                    std::mem::replace(first, id.to_string()),
                    std::mem::take(ids),
                );
                self.full.push((day, full.0, full.1));
            }
            push_id(ids, id);
        }
    }

    pub(super) fn write(self, batch: &mut Batch) {
        let rows = self.full.into_iter().chain(
            self.days
                .into_iter()
                .map(|(day, (first, ids))| (day, first, ids)),
        );
        for (day, first, ids) in rows {
            batch.insert(TreeId::SeenByDay, &keys::day_id(day, &first), ids);
        }
    }
}

/// An id in a `seen_by_day` row's list: its length (4 bytes, big-endian), then it.
fn push_id(ids: &mut Vec<u8>, id: &str) {
    let length = u32::try_from(id.len()).unwrap_or(u32::MAX);
    ids.extend_from_slice(&length.to_be_bytes());
    ids.extend_from_slice(id.as_bytes());
}

/// The ids of a `seen_by_day` row: the list in its value, or the one id in its key.
fn row_ids(key: &[u8], value: &[u8]) -> Result<Vec<String>, StoreError> {
    let corrupt = |message: &str| StoreError::corrupt(TreeId::SeenByDay.name(), key, message);
    if value.is_empty() {
        let (_, id) = keys::decode_day_id(key)
            .map_err(|e| StoreError::corrupt(TreeId::SeenByDay.name(), key, e))?;
        return Ok(vec![id]);
    }
    let mut ids = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let (length, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("an id's length is cut short"))?;
        let length = u32::from_be_bytes(*length) as usize;
        if after.len() < length {
            return Err(corrupt("an id is cut short"));
        }
        let (id, after) = after.split_at(length);
        let id = std::str::from_utf8(id).map_err(|_| corrupt("an id is not UTF-8"))?;
        ids.push(id.to_string());
        rest = after;
    }
    Ok(ids)
}

impl Store {
    /// Removes the ids of events filed under days before `first_kept` (see
    /// [`first_kept_day`]), at most `max` of them, each `seen` row with its
    /// `seen_by_day` row, in one batch; returns how many ids, and `next` when there may
    /// be more. A `seen_by_day` row (a group's ids, up to about 4 KiB) goes whole, so
    /// a call takes at least one row, however many ids it holds. Each call starts
    /// from the oldest day: what the last one removed is gone.
    ///
    /// Bounded by ids, not rows: a row holds hundreds of ids, and sled's memory grows
    /// with the removals a batch makes before it can consolidate the pages they
    /// change. Pieces of 256 rows were 77,000 removals a batch, and the daemon's first
    /// pass over a million imported ids took it from 430 MiB to 3.3 GiB; pieces of
    /// 256 ids keep it under 400 MiB (README, Performance).
    pub fn trim_seen(&self, max: usize, first_kept: u32) -> Result<super::Trimmed<()>, StoreError> {
        let opened = self.opened()?;
        let mut batch = Batch::default();
        let mut rows = 0;
        let mut removed = 0;
        let mut more = false;
        for row in opened
            .keyspaces
            .seen_by_day
            .range(..keys::day_prefix(first_kept))
        {
            let (key, value) =
                row.map_err(StoreError::sled("scanning the seen events to trim them"))?;
            let ids = row_ids(&key, &value)?;
            if rows > 0 && removed + ids.len() > max {
                more = true;
                break;
            }
            for id in ids {
                batch.remove(TreeId::Seen, keys::text_key(&id));
                removed += 1;
            }
            batch.remove(TreeId::SeenByDay, &key);
            rows += 1;
        }
        if rows > 0 {
            opened
                .database
                .apply(batch)
                .map_err(StoreError::sled("removing old seen events"))?;
        }
        Ok(super::Trimmed {
            removed,
            next: more.then_some(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;
    use crate::store::StepWrite;

    fn applied(store: &Store, id: &str, at: DateTime<Utc>) {
        let step = StepWrite {
            event_id: Some(id.into()),
            event_at: Some(at),
            ..StepWrite::default()
        };
        store.commit(&[step]).unwrap();
    }

    /// `event-00000`, `event-00001`, …: ids that sort in the order they are made.
    fn numbered_ids(count: usize) -> Vec<String> {
        (0..count).map(|n| format!("event-{n:05}")).collect()
    }

    /// Applies events with these ids, all at `at`, in one commit: one group, whose ids
    /// are filed in as many `seen_by_day` rows as they fill.
    fn applied_in_one_group(store: &Store, ids: &[String], at: DateTime<Utc>) {
        let group: Vec<StepWrite> = ids
            .iter()
            .map(|id| StepWrite {
                event_id: Some(id.as_str().into()),
                event_at: Some(at),
                ..StepWrite::default()
            })
            .collect();
        store.commit(&group).unwrap();
    }

    fn remembered(store: &Store, ids: &[&str]) -> Vec<bool> {
        ids.iter().map(|id| store.seen(id).unwrap()).collect()
    }

    on_both_backends!(
        trimming_forgets_the_ids_of_days_before_the_first_kept_and_keeps_the_rest,
        an_id_written_without_its_time_is_never_forgotten,
        a_group_files_its_ids_in_one_row_per_day_and_rows_of_one_id_still_trim,
    );

    fn a_group_files_its_ids_in_one_row_per_day_and_rows_of_one_id_still_trim(
        fresh: fn() -> Store,
    ) {
        let store = fresh();
        let group: Vec<StepWrite> = [
            ("a-1", "2026-01-01T08:00:00Z"),
            ("b-1", "2026-01-02T08:00:00Z"),
            // Ids are any text: a length and a NUL inside one are kept as they are.
            ("a-2\u{0}\u{0}\u{0}\u{3}x", "2026-01-01T09:00:00Z"),
            ("b-2", "2026-01-02T09:00:00Z"),
        ]
        .into_iter()
        .map(|(id, at)| StepWrite {
            event_id: Some(id.into()),
            event_at: Some(t(at)),
            ..StepWrite::default()
        })
        .collect();
        store.commit(&group).unwrap();
        let opened = store.opened().unwrap();
        assert_eq!(opened.keyspaces.seen_by_day.len(), 2, "a row per day");
        // A row written before rows held lists: the id in its key, an empty value.
        let old_day = day(t("2026-01-01T10:00:00Z"));
        applied(&store, "old", t("2026-01-01T10:00:00Z"));
        opened
            .keyspaces
            .seen_by_day
            .insert(keys::day_id(old_day, "old"), sled::IVec::default())
            .unwrap();
        let first_kept = day(t("2026-01-02T00:00:00Z"));
        let trimmed = store.trim_seen(10, first_kept).unwrap();
        assert_eq!((trimmed.removed, trimmed.next), (3, None));
        assert_eq!(
            remembered(
                &store,
                &["a-1", "a-2\u{0}\u{0}\u{0}\u{3}x", "old", "b-1", "b-2"]
            ),
            [false, false, false, true, true]
        );
        assert_eq!(opened.keyspaces.seen_by_day.len(), 1);
    }

    /// A piece is bounded by the ids it removes (sled's memory grows with the
    /// removals of one batch), and a row goes whole: one that holds more ids than the
    /// bound still goes alone.
    #[test]
    fn a_piece_removes_at_most_max_ids_in_whole_rows() {
        let store = Store::open_temporary().unwrap();
        let at = t("2026-01-01T08:00:00Z");
        applied_in_one_group(&store, &numbered_ids(2_000), at);
        let opened = store.opened().unwrap();
        let per_row: Vec<usize> = opened
            .keyspaces
            .seen_by_day
            .iter()
            .map(|row| {
                let (key, ids) = row.unwrap();
                row_ids(&key, &ids).unwrap().len()
            })
            .collect();
        assert!(per_row.len() >= 5, "{per_row:?}");
        let first_kept = day(at) + 1;

        let piece = store.trim_seen(1, first_kept).unwrap();
        assert_eq!((piece.removed, piece.next), (per_row[0], Some(())));
        let two_rows = per_row[1] + per_row[2];
        let piece = store.trim_seen(two_rows, first_kept).unwrap();
        assert_eq!((piece.removed, piece.next), (two_rows, Some(())));
        let piece = store
            .trim_seen(per_row[3] + per_row[4] - 1, first_kept)
            .unwrap();
        assert_eq!((piece.removed, piece.next), (per_row[3], Some(())));

        let mut removed = per_row[0] + two_rows + per_row[3];
        loop {
            let piece = store.trim_seen(256, first_kept).unwrap();
            assert!(piece.removed <= 256.max(*per_row.iter().max().unwrap()));
            removed += piece.removed;
            if piece.next.is_none() {
                break;
            }
        }
        assert_eq!(removed, 2_000);
        assert_eq!(opened.keyspaces.seen_by_day.len(), 0);
        assert!(!store.seen("event-01999").unwrap());
    }

    #[test]
    fn a_large_group_files_a_days_ids_in_rows_of_about_row_bytes() {
        let store = Store::open_temporary().unwrap();
        let at = t("2026-01-01T08:00:00Z");
        let ids = numbered_ids(1_000);
        applied_in_one_group(&store, &ids, at);
        let opened = store.opened().unwrap();
        let rows: Vec<(sled::IVec, sled::IVec)> = opened
            .keyspaces
            .seen_by_day
            .iter()
            .map(|row| row.unwrap())
            .collect();
        assert!(rows.len() > 1);
        assert!(rows
            .iter()
            .all(|(_, ids)| ids.len() <= crate::store::ROW_BYTES));
        let filed: Vec<String> = rows
            .iter()
            .flat_map(|(key, ids)| row_ids(key, ids).unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(filed, sorted, "every id filed once, rows in key order");
        let trimmed = store.trim_seen(10_000, day(at) + 1).unwrap();
        assert_eq!(trimmed.removed, 1_000);
        assert_eq!(opened.keyspaces.seen_by_day.len(), 0);
    }

    #[test]
    fn a_damaged_list_is_reported_as_corrupt_not_read_past() {
        let key = keys::day_id(1, "a");
        let mut ids = Vec::new();
        push_id(&mut ids, "a");
        push_id(&mut ids, "bcd");
        assert_eq!(row_ids(&key, &ids).unwrap(), ["a", "bcd"]);
        // 5 bytes are the whole first id: a list of one.
        for cut in (1..ids.len()).filter(|cut| *cut != 5) {
            let error = row_ids(&key, &ids[..cut]).unwrap_err().to_string();
            assert!(error.contains("cut short"), "{cut}: {error}");
        }
    }

    fn trimming_forgets_the_ids_of_days_before_the_first_kept_and_keeps_the_rest(
        fresh: fn() -> Store,
    ) {
        let store = fresh();
        applied(&store, "old-1", t("2026-01-01T08:00:00Z"));
        applied(&store, "old-2", t("2026-01-02T23:59:59Z"));
        applied(&store, "kept", t("2026-01-03T00:00:00Z"));
        let first_kept = day(t("2026-01-03T00:00:00Z"));

        // Pieces of one row: each call starts again from the oldest day.
        let first = store.trim_seen(1, first_kept).unwrap();
        assert_eq!((first.removed, first.next), (1, Some(())));
        assert_eq!(
            remembered(&store, &["old-1", "old-2", "kept"]),
            [false, true, true]
        );
        let second = store.trim_seen(1, first_kept).unwrap();
        assert_eq!(second.removed, 1);
        let last = store.trim_seen(1, first_kept).unwrap();
        assert_eq!((last.removed, last.next), (0, None));
        assert_eq!(
            remembered(&store, &["old-1", "old-2", "kept"]),
            [false, false, true]
        );
        let opened = store.opened().unwrap();
        assert_eq!(
            opened.keyspaces.seen_by_day.len(),
            1,
            "index rows go with their ids"
        );
    }

    fn an_id_written_without_its_time_is_never_forgotten(fresh: fn() -> Store) {
        let store = fresh();
        let step = StepWrite {
            event_id: Some("undated".into()),
            ..StepWrite::default()
        };
        store.commit(&[step]).unwrap();
        let trimmed = store.trim_seen(10, u32::MAX).unwrap();
        assert_eq!(trimmed.removed, 0);
        assert!(store.seen("undated").unwrap());
    }

    /// A store in memory without history (`sim`, replay) files its ids by day too:
    /// its runner trims them (`Runner::forget_old_event_ids`).
    #[test]
    fn a_store_in_memory_files_ids_by_day_for_its_runner_to_trim() {
        let store = Store::in_memory_without_history().unwrap();
        applied(&store, "e-1", t("2026-01-01T08:00:00Z"));
        applied(&store, "e-2", t("2026-01-03T08:00:00Z"));
        assert!(store.seen("e-1").unwrap());
        let first_kept = first_kept_day(t("2026-01-04T08:00:00Z"), Duration::days(1));
        assert_eq!(store.trim_seen(10, first_kept).unwrap().removed, 1);
        assert!(!store.seen("e-1").unwrap());
        assert!(store.seen("e-2").unwrap());
    }

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn an_event_inside_the_window_is_let_through() {
        let now = t("2026-03-31T12:00:00Z");
        assert_eq!(
            too_old(t("2026-03-01T12:00:00Z"), now, DEFAULT_WINDOW),
            None
        );
        assert_eq!(too_old(now, now, DEFAULT_WINDOW), None);
    }

    #[test]
    fn an_event_older_than_the_window_is_refused_naming_the_window_and_the_setting() {
        let refused = too_old(
            t("2026-03-01T11:59:59Z"),
            t("2026-03-31T12:00:00Z"),
            DEFAULT_WINDOW,
        )
        .unwrap();
        assert_eq!(
            refused.to_string(),
            "at: 2026-03-01T11:59:59Z is older than the de-duplication window: more than 30d \
             before Rally's clock (2026-03-31T12:00:00Z), so it can no longer be told from a \
             duplicate (settings.retention.event_ids)"
        );
    }

    #[test]
    fn a_row_is_removed_only_once_every_event_of_its_day_would_be_refused() {
        let window = Duration::days(30);
        let now = t("2026-03-31T12:00:00Z");
        let first_kept = first_kept_day(now, window);
        // The last instant of the newest day removed is refused now, and at every
        // later clock.
        let last_removed = DateTime::from_timestamp(i64::from(first_kept) * 86_400 - 1, 0).unwrap();
        assert!(too_old(last_removed, now, window).is_some());
        // A day's slack: the id of an event up to a day older than the window is
        // kept, the day before that is removed.
        assert!(day(t("2026-02-28T00:00:00Z")) >= first_kept);
        assert!(day(t("2026-02-27T23:59:59Z")) < first_kept);
    }

    #[test]
    fn days_count_from_the_epoch_and_never_go_below_zero() {
        assert_eq!(day(t("1970-01-01T23:59:59Z")), 0);
        assert_eq!(day(t("1970-01-02T00:00:00Z")), 1);
        assert_eq!(day(t("1969-12-31T00:00:00Z")), 0);
    }

    #[test]
    fn a_window_reads_as_written() {
        assert_eq!(spoken(Duration::days(30)), "30d");
        assert_eq!(spoken(Duration::hours(36)), "36h");
    }
}
