//! The outbox's index by member, and retention: what a member's history reads, what
//! an older data directory gets on open, and what trimming removes and keeps.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::engine::{Firing, LedgerEntry};
use crate::outbox::{OutboxRow, Status};
use crate::store::test_backends::on_both_backends;
use crate::store::{open_dir_retrying, outbox_index, Database, StepWrite, Store, TreeId};

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).single().unwrap() + Duration::days(n)
}

/// Outbox row `seq` for `member`, queued on `day(queued)` and, if final, settled then.
fn message(seq: u64, member: Option<&str>, status: Status, queued: i64) -> OutboxRow {
    OutboxRow {
        seq,
        key: format!("r|{seq}|{}", member.unwrap_or("staff")),
        member: member.map(str::to_string),
        rule: Some("r".into()),
        channel: "console".into(),
        template: None,
        to: "someone".into(),
        subject: String::new(),
        body: format!("message {seq}"),
        html: false,
        webhook_body: None,
        marketing: true,
        status,
        due: day(queued),
        attempts: 0,
        first_failed_at: None,
        last_error: None,
        created_at: day(queued),
        sent_at: (status == Status::Sent).then(|| day(queued)),
    }
}

fn queue(store: &Store, rows: &[OutboxRow]) {
    let step = StepWrite {
        outbox_put: rows.iter().map(|r| (r.seq, r.encode().unwrap())).collect(),
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
}

fn seqs(rows: &[(u64, Vec<u8>)]) -> Vec<u64> {
    rows.iter().map(|(seq, _)| *seq).collect()
}

/// Rows read from the outbox and from its index since the last call.
fn reads(store: &Store) -> (usize, usize) {
    let opened = store.opened().unwrap();
    let keyspaces = &opened.keyspaces;
    (
        keyspaces.outbox.reads.swap(0, Ordering::Relaxed),
        keyspaces.outbox_by_member.reads.swap(0, Ordering::Relaxed),
    )
}

fn a_members_messages_are_read_newest_first_without_touching_anyone_elses(fresh: fn() -> Store) {
    let store = fresh();
    // m-1's three messages among 1197 for m-10 (a longer id it prefixes).
    let rows: Vec<OutboxRow> = (1..=1200)
        .map(|seq| {
            let member = if seq % 400 == 0 { "m-1" } else { "m-10" };
            message(seq, Some(member), Status::Sent, 0)
        })
        .collect();
    queue(&store, &rows);
    reads(&store);
    let found = store.member_messages("m-1", 100).unwrap();
    assert_eq!(seqs(&found), [1200, 800, 400]);
    assert_eq!(
        reads(&store),
        (3, 3),
        "m-1's rows and index rows, nothing more"
    );
}

fn a_members_messages_stop_at_the_limit_and_read_no_further(fresh: fn() -> Store) {
    let store = fresh();
    let rows: Vec<OutboxRow> = (1..=50)
        .map(|seq| message(seq, Some("m-1"), Status::Sent, 0))
        .collect();
    queue(&store, &rows);
    reads(&store);
    assert_eq!(
        seqs(&store.member_messages("m-1", 3).unwrap()),
        [50, 49, 48]
    );
    assert_eq!(reads(&store), (3, 3));
    assert_eq!(store.member_messages("m-1", 0).unwrap(), []);
    assert_eq!(store.member_messages("m-2", 10).unwrap(), []);
}

fn a_members_messages_show_each_rows_current_status(fresh: fn() -> Store) {
    let store = fresh();
    queue(&store, &[message(1, Some("m-1"), Status::Pending, 0)]);
    let failed = OutboxRow {
        status: Status::Failed,
        last_error: Some("refused".into()),
        ..message(1, Some("m-1"), Status::Pending, 0)
    };
    assert!(store.outbox_update(1, &failed.encode().unwrap()).unwrap());
    let (seq, bytes) = store.member_messages("m-1", 10).unwrap().remove(0);
    assert_eq!(OutboxRow::decode(seq, &bytes).unwrap(), failed);
}

fn rows_without_a_member_or_that_do_not_decode_are_stored_but_not_indexed(fresh: fn() -> Store) {
    let store = fresh();
    let staff = message(1, None, Status::Sent, 0);
    let step = StepWrite {
        outbox_put: vec![(1, staff.encode().unwrap()), (2, b"not json".to_vec())],
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    assert_eq!(store.outbox_scan(0, 10).unwrap().len(), 2);
    assert_eq!(store.opened().unwrap().keyspaces.outbox_by_member.len(), 0);
}

#[test]
fn an_outbox_written_before_the_index_existed_is_indexed_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        queue(
            &store,
            &[
                message(1, Some("m-1"), Status::Sent, 0),
                message(2, Some("m-2"), Status::Failed, 0),
                message(3, Some("m-1"), Status::Pending, 0),
            ],
        );
        // What an earlier Rally left: the rows, no index, no record of one.
        let opened = store.opened().unwrap();
        let Database::Sled { tree, .. } = &opened.database else {
            panic!("an on-disk store is sled");
        };
        let index: Vec<_> = opened
            .keyspaces
            .outbox_by_member
            .iter()
            .map(|row| row.unwrap().0)
            .collect();
        for key in index {
            tree.remove(TreeId::OutboxByMember.key(&key)).unwrap();
        }
        tree.remove(TreeId::Meta.key(outbox_index::INDEX_BUILT.as_bytes()))
            .unwrap();
        assert_eq!(store.member_messages("m-1", 10).unwrap(), []);
        store.sync().unwrap();
    }
    let store = open_again(dir.path());
    assert_eq!(seqs(&store.member_messages("m-1", 10).unwrap()), [3, 1]);
    assert_eq!(seqs(&store.member_messages("m-2", 10).unwrap()), [2]);
    assert!(store.meta_get(outbox_index::INDEX_BUILT).unwrap().is_some());
}

/// Opens a directory this process just closed (sled lets go of its lock a moment
/// after the drop: see `open_dir_retrying`).
fn open_again(dir: &std::path::Path) -> Store {
    let faults = Arc::default();
    let opened = open_dir_retrying(dir, crate::store::CacheSize::DEFAULT, &faults).unwrap();
    Store::with_opened(opened, Some(dir.to_path_buf()), faults).unwrap()
}

/// One of each status, all queued on day 0 (and settled then, if final), then two
/// rows queued on day 40; the cutoff is day 30.
fn outbox_of_every_status(store: &Store) {
    let statuses = [
        Status::Sent,
        Status::Pending,
        Status::Failed,
        Status::Held,
        Status::Suppressed,
        Status::Capped,
        Status::Deferred,
    ];
    let mut rows: Vec<OutboxRow> = statuses
        .iter()
        .zip(1..)
        .map(|(&status, seq)| message(seq, Some("m-1"), status, 0))
        .collect();
    // Queued long ago, but sent only on day 35 (after a long quiet-hours deferral).
    rows.push(OutboxRow {
        sent_at: Some(day(35)),
        ..message(8, Some("m-1"), Status::Sent, 0)
    });
    rows.push(message(9, Some("m-1"), Status::Sent, 40));
    rows.push(message(10, Some("m-2"), Status::Sent, 40));
    queue(store, &rows);
}

fn trim_outbox_fully(store: &Store, before: DateTime<Utc>, max: usize) -> (usize, usize) {
    let (mut removed, mut calls, mut from) = (0, 0, 0);
    loop {
        let piece = store
            .trim_outbox(from, max, |seq, bytes| {
                OutboxRow::retention(seq, bytes, before)
            })
            .unwrap();
        (removed, calls) = (removed + piece.removed, calls + 1);
        match piece.next {
            Some(next) => from = next,
            None => return (removed, calls),
        }
    }
}

fn trimming_the_outbox_removes_old_final_rows_with_their_index_rows_and_keeps_the_rest(
    fresh: fn() -> Store,
) {
    let store = fresh();
    outbox_of_every_status(&store);
    let (removed, _) = trim_outbox_fully(&store, day(30), 100);
    assert_eq!(removed, 4, "sent, failed, suppressed, capped");
    assert_eq!(
        seqs(&store.outbox_scan(0, 100).unwrap()),
        [2, 4, 7, 8, 9, 10],
        "pending, held, deferred, sent late, and the recent ones"
    );
    assert_eq!(
        seqs(&store.member_messages("m-1", 100).unwrap()),
        [9, 8, 7, 4, 2]
    );
    assert_eq!(
        store.opened().unwrap().keyspaces.outbox_by_member.len(),
        6,
        "no index row outlives its row"
    );
}

fn trimming_the_outbox_in_small_pieces_removes_the_same_rows(fresh: fn() -> Store) {
    let store = fresh();
    outbox_of_every_status(&store);
    let (removed, calls) = trim_outbox_fully(&store, day(30), 2);
    assert_eq!(removed, 4);
    assert!(calls >= 4, "pieces of two rows: {calls} calls");
    assert_eq!(
        seqs(&store.outbox_scan(0, 100).unwrap()),
        [2, 4, 7, 8, 9, 10]
    );
}

fn the_newest_outbox_row_is_never_trimmed_because_new_rows_are_numbered_after_it(
    fresh: fn() -> Store,
) {
    let store = fresh();
    queue(
        &store,
        &[
            message(1, Some("m-1"), Status::Sent, 0),
            message(2, Some("m-1"), Status::Sent, 0),
        ],
    );
    assert_eq!(trim_outbox_fully(&store, day(30), 100).0, 1);
    assert_eq!(store.outbox_last().unwrap(), Some(2));
    assert_eq!(trim_outbox_fully(&store, day(30), 100).0, 0);
}

fn points_at(member: &str, at: DateTime<Utc>) -> StepWrite {
    StepWrite {
        ledger: vec![LedgerEntry {
            member: member.into(),
            amount: 5,
            balance: 5,
            reason: "r".into(),
            rule: "r".into(),
            event: None,
            at,
            requested: None,
            clipped_by: None,
            operator: None,
            from: None,
        }],
        firings: vec![Firing {
            rule: "r".into(),
            member: member.into(),
            trigger: "event".into(),
            at,
            event: None,
            version: Default::default(),
        }],
        ..StepWrite::default()
    }
}

fn trim_history_fully(store: &Store, before: DateTime<Utc>, max: usize) -> usize {
    let (mut removed, mut after) = (0, None::<Vec<u8>>);
    loop {
        let piece = store.trim_history(after.as_deref(), max, before).unwrap();
        removed += piece.removed;
        match piece.next {
            Some(next) => after = Some(next),
            None => return removed,
        }
    }
}

fn ledger_days(store: &Store, member: &str) -> Vec<DateTime<Utc>> {
    store
        .ledger(member)
        .unwrap()
        .into_iter()
        .map(|e| e.at)
        .collect()
}

fn trimming_the_history_removes_each_members_steps_before_the_cutoff(fresh: fn() -> Store) {
    for max in [1, 2, 100] {
        let store = fresh();
        let group = [
            points_at("m-1", day(0)),
            points_at("m-10", day(1)),
            points_at("m-1", day(20)),
            points_at("m-2", day(25)),
            points_at("m-1", day(40)),
            points_at("m-10", day(41)),
        ];
        store.commit(&group).unwrap();
        assert_eq!(
            trim_history_fully(&store, day(30), max),
            4,
            "pieces of {max}"
        );
        assert_eq!(ledger_days(&store, "m-1"), [day(40)]);
        assert_eq!(ledger_days(&store, "m-10"), [day(41)]);
        assert!(ledger_days(&store, "m-2").is_empty());
        assert_eq!(store.firings("m-1", 10).unwrap().len(), 1);
    }
}

on_both_backends!(
    a_members_messages_are_read_newest_first_without_touching_anyone_elses,
    a_members_messages_stop_at_the_limit_and_read_no_further,
    a_members_messages_show_each_rows_current_status,
    rows_without_a_member_or_that_do_not_decode_are_stored_but_not_indexed,
    trimming_the_outbox_removes_old_final_rows_with_their_index_rows_and_keeps_the_rest,
    trimming_the_outbox_in_small_pieces_removes_the_same_rows,
    the_newest_outbox_row_is_never_trimmed_because_new_rows_are_numbered_after_it,
    trimming_the_history_removes_each_members_steps_before_the_cutoff,
);
