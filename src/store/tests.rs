use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::test_backends::on_both_backends;
use super::*;
use crate::engine::{Firing, LedgerEntry};
use crate::member::Member;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).single().unwrap()
}

fn entry(member: &str, amount: i64, reason: &str) -> LedgerEntry {
    LedgerEntry {
        member: member.into(),
        amount,
        balance: amount,
        reason: reason.into(),
        rule: "r".into(),
        event: None,
        at: at(0),
        requested: None,
        clipped_by: None,
        operator: None,
        from: None,
    }
}

fn firing(member: &str, rule: &str) -> Firing {
    Firing {
        rule: rule.into(),
        member: member.into(),
        trigger: "event".into(),
        at: at(0),
        event: None,
        version: Default::default(),
    }
}

fn member_with_points(id: &str, points: i64) -> Member {
    Member {
        points,
        ..Member::new(id)
    }
}

/// The step an accepted event produces in the simplest case.
fn event_step(event: &str, member: &str, points: i64) -> StepWrite {
    StepWrite {
        event_id: Some(event.into()),
        members: vec![member_with_points(member, points)],
        ledger: vec![entry(member, points, event)],
        ..StepWrite::default()
    }
}

/// Opens a directory that a store or sled db in this process has just dropped (see
/// [`super::waiting_for_lock`]).
fn reopen(dir: &std::path::Path) -> Result<Store, StoreError> {
    super::waiting_for_lock(|| Store::open(dir))
}

#[test]
fn keyspace_prefixes_leave_room_for_the_bound_above_them() {
    for id in TreeId::ALL {
        assert!(id.prefix() < u8::MAX, "{}", id.name());
    }
}

#[test]
fn a_directory_in_the_older_layout_is_refused_not_shown_empty() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("members")
            .unwrap()
            .insert("m-1", "{}")
            .unwrap();
        db.flush().unwrap();
    }
    match reopen(dir.path()) {
        Err(StoreError::OlderLayout { path, tree }) => {
            assert_eq!((path.as_path(), tree), (dir.path(), "members"));
        }
        Err(other) => panic!("expected an older-layout error, got {other:?}"),
        Ok(_) => panic!("expected an older-layout error, got a store"),
    }
}

#[test]
fn the_older_layouts_error_says_what_to_do() {
    let error = StoreError::OlderLayout {
        path: "data".into(),
        tree: "ledger",
    };
    let message = error.to_string();
    assert!(message.contains("older Rally storage layout"), "{message}");
    assert!(message.contains("empty --data directory"), "{message}");
}

#[test]
fn empty_trees_of_the_older_layout_do_not_stop_an_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("members").unwrap();
        db.flush().unwrap();
    }
    let store = reopen(dir.path()).unwrap();
    store.commit(&[event_step("e-1", "m-1", 5)]).unwrap();
    assert_eq!(store.member_count().unwrap(), 1);
}

fn keyspaces_do_not_see_each_others_rows(fresh: fn() -> Store) {
    let store = fresh();
    // The same bytes as a member id, a meta name and a seen event id.
    let step = StepWrite {
        event_id: Some("x".into()),
        members: vec![member_with_points("m-1", 1), member_with_points("x", 2)],
        ledger: vec![entry("m-1", 1, "e")],
        firings: vec![firing("m-1", "r")],
        timers_set: vec![(TimerKey::new(0, "inactive", "m-1"), vec![])],
        outbox_put: vec![(1, b"o".to_vec())],
        tickets_put: vec![(1, b"t".to_vec())],
        meta_put: vec![("x".into(), b"meta".to_vec())],
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    assert_eq!(store.member_count().unwrap(), 2);
    let ids = member_ids(&store);
    assert_eq!(ids, ["m-1", "x"]);
    assert_eq!(store.members_after(Some("m-1"), 10).unwrap().len(), 1);
    assert_eq!(store.meta_get("x").unwrap(), Some(b"meta".to_vec()));
    assert_eq!(store.meta_get("m-1").unwrap(), None);
    let meta_names: Vec<String> = store
        .meta_scan("")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        meta_names,
        ["store.next_history_seq", "store.outbox_by_member", "x"]
    );
    assert!(store.seen("x").unwrap());
    assert!(!store.seen("m-1").unwrap());
    assert_eq!(store.ledger_all().unwrap().len(), 1);
    assert_eq!(store.firings_all().unwrap().len(), 1);
    assert_eq!(store.timers_due(i64::MAX, 100).unwrap().len(), 1);
    assert_eq!(store.outbox_scan(0, 100).unwrap(), [(1, b"o".to_vec())]);
    assert_eq!(store.outbox_last().unwrap(), Some(1));
    assert_eq!(store.tickets().unwrap(), [(1, b"t".to_vec())]);
    assert_eq!(store.ticket_last().unwrap(), Some(1));
}

fn open_ended_scans_stop_at_their_keyspaces_edge(fresh: fn() -> Store) {
    let store = fresh();
    // The highest possible key in the outbox, ticket and timer keyspaces, next to
    // every other keyspace holding rows.
    let step = StepWrite {
        members: vec![Member::new("\u{10FFFF}")],
        timers_set: vec![(TimerKey::new(i64::MAX, "\u{10FFFF}", "\u{10FFFF}"), vec![])],
        outbox_put: vec![(u64::MAX, b"last".to_vec())],
        tickets_put: vec![(u64::MAX, b"last".to_vec())],
        meta_put: vec![("\u{10FFFF}".into(), vec![])],
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    assert_eq!(store.outbox_scan(0, 100).unwrap().len(), 1);
    assert_eq!(store.outbox_last().unwrap(), Some(u64::MAX));
    assert_eq!(store.ticket_last().unwrap(), Some(u64::MAX));
    assert_eq!(store.timers_due(i64::MAX, 100).unwrap().len(), 1);
    assert_eq!(store.next_timer().unwrap().map(|t| t.due), Some(i64::MAX));
    assert_eq!(store.members_after(None, 100).unwrap().len(), 1);
    assert_eq!(store.meta_scan("\u{10FFFF}").unwrap().len(), 1);
}

#[test]
fn every_step_of_a_group_is_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let group: Vec<StepWrite> = (0..128)
        .map(|i| event_step(&format!("e-{i}"), &format!("m-{i}"), i))
        .collect();
    {
        let store = Store::open(dir.path()).unwrap();
        store.commit(&group).unwrap();
        store.sync().unwrap();
    }
    let store = reopen(dir.path()).unwrap();
    assert_eq!(store.member_count().unwrap(), 128);
    for i in 0..128 {
        assert!(store.seen(&format!("e-{i}")).unwrap());
        let member = store.member(&format!("m-{i}")).unwrap().unwrap();
        assert_eq!(member.points, i);
        assert_eq!(store.ledger(&format!("m-{i}")).unwrap().len(), 1);
    }
}

fn a_refused_group_writes_none_of_its_steps(fresh: fn() -> Store) {
    let store = fresh();
    let refused = StepWrite {
        meta_put: vec![("store.next_history_seq".into(), vec![0; 8])],
        ..StepWrite::default()
    };
    let result = store.commit(&[event_step("e-1", "m-1", 5), refused]);
    assert!(matches!(result, Err(StoreError::ReservedMeta { .. })));
    assert!(!store.seen("e-1").unwrap());
    assert_eq!(store.member("m-1").unwrap(), None);
    assert!(store.ledger("m-1").unwrap().is_empty());
}

fn a_refused_group_does_not_use_up_sequence_numbers(fresh: fn() -> Store) {
    let store = fresh();
    let refused = StepWrite {
        ledger: vec![entry("m-1", 1, "refused")],
        meta_put: vec![("store.x".into(), vec![])],
        ..StepWrite::default()
    };
    assert!(store.commit(&[refused]).is_err());
    store.commit(&[event_step("e-1", "m-1", 5)]).unwrap();
    assert_eq!(store.counters().history, 1);
}

#[test]
fn data_survives_dropping_and_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.commit(&[event_step("e-1", "m-1", 5)]).unwrap();
        store.sync().unwrap();
    }
    let store = reopen(dir.path()).unwrap();
    assert_eq!(store.member("m-1").unwrap().unwrap().points, 5);
    assert!(store.seen("e-1").unwrap());
}

#[test]
fn ledger_numbering_continues_after_reopening_instead_of_overwriting() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.commit(&[event_step("e-1", "m-1", 5)]).unwrap();
        store.sync().unwrap();
    }
    let store = reopen(dir.path()).unwrap();
    store.commit(&[event_step("e-2", "m-1", 7)]).unwrap();
    let reasons: Vec<String> = store
        .ledger("m-1")
        .unwrap()
        .into_iter()
        .map(|e| e.reason.into())
        .collect();
    assert_eq!(reasons, ["e-1", "e-2"]);
}

fn only_committed_event_ids_are_seen(fresh: fn() -> Store) {
    let store = fresh();
    store.commit(&[event_step("e-1", "m-1", 5)]).unwrap();
    assert!(store.seen("e-1").unwrap());
    assert!(!store.seen("e-2").unwrap());
}

fn a_members_ledger_is_in_commit_order_and_excludes_similar_ids(fresh: fn() -> Store) {
    let store = fresh();
    store.commit(&[event_step("e-1", "m-1", 1)]).unwrap();
    store.commit(&[event_step("e-2", "m-10", 2)]).unwrap();
    let step = StepWrite {
        ledger: vec![entry("m-1", 3, "a"), entry("m-1", 4, "b")],
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    let amounts: Vec<i64> = store
        .ledger("m-1")
        .unwrap()
        .iter()
        .map(|e| e.amount)
        .collect();
    assert_eq!(amounts, [1, 3, 4]);
    let all: Vec<i64> = store
        .ledger_all()
        .unwrap()
        .iter()
        .map(|e| e.amount)
        .collect();
    assert_eq!(all, [1, 2, 3, 4]);
}

fn firings_returns_the_most_recent_ones_oldest_first(fresh: fn() -> Store) {
    let store = fresh();
    for rule in ["a", "b", "c", "d"] {
        let step = StepWrite {
            firings: vec![firing("m-1", rule), firing("m-2", rule)],
            ..StepWrite::default()
        };
        store.commit(&[step]).unwrap();
    }
    let rules: Vec<String> = store
        .firings("m-1", 2)
        .unwrap()
        .into_iter()
        .map(|f| f.rule.into())
        .collect();
    assert_eq!(rules, ["c", "d"]);
    assert_eq!(store.firings_all().unwrap().len(), 8);
}

fn a_step_keeps_its_members_ledger_and_firings_in_one_history_row(fresh: fn() -> Store) {
    let store = fresh();
    let step = |rules: [&str; 2], reasons: [&str; 2]| StepWrite {
        ledger: reasons.iter().map(|r| entry("m-1", 1, r)).collect(),
        firings: rules.iter().map(|r| firing("m-1", r)).collect(),
        ..StepWrite::default()
    };
    store.commit(&[step(["a", "b"], ["1", "2"])]).unwrap();
    store.commit(&[step(["c", "d"], ["3", "4"])]).unwrap();
    assert_eq!(
        store.opened().unwrap().keyspaces.history.len(),
        2,
        "one row per step"
    );
    let reasons: Vec<String> = store
        .ledger("m-1")
        .unwrap()
        .into_iter()
        .map(|e| e.reason.into())
        .collect();
    assert_eq!(reasons, ["1", "2", "3", "4"]);
    // The most recent three span both rows.
    let rules: Vec<String> = store
        .firings("m-1", 3)
        .unwrap()
        .into_iter()
        .map(|f| f.rule.into())
        .collect();
    assert_eq!(rules, ["b", "c", "d"]);
    assert!(store.firings("m-1", 0).unwrap().is_empty());
}

fn later_steps_of_a_group_win_for_the_same_member(fresh: fn() -> Store) {
    let store = fresh();
    let group = [event_step("e-1", "m-1", 5), event_step("e-2", "m-1", 9)];
    store.commit(&group).unwrap();
    assert_eq!(store.member("m-1").unwrap().unwrap().points, 9);
    assert_eq!(store.ledger("m-1").unwrap().len(), 2);
}

/// The ids of every stored member, in the order `Store::members` lists them.
fn member_ids(store: &Store) -> Vec<String> {
    store
        .members()
        .unwrap()
        .into_iter()
        .map(|m| m.id.to_string())
        .collect()
}

fn members_are_listed_by_id(fresh: fn() -> Store) {
    let store = fresh();
    let step = StepWrite {
        members: ["m-b", "m-a", "m-c"].map(Member::new).to_vec(),
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    let ids = member_ids(&store);
    assert_eq!(ids, ["m-a", "m-b", "m-c"]);
}

/// sled only: the in-memory store keeps members decoded, so it holds no bytes to damage.
#[test]
fn a_corrupt_member_row_is_an_error_naming_tree_and_key() {
    let store = Store::open_temporary().unwrap();
    store
        .opened()
        .unwrap()
        .keyspaces
        .members
        .insert("m-1", "{not json")
        .unwrap();
    match store.member("m-1") {
        Err(StoreError::Corrupt { tree, key, .. }) => {
            assert_eq!((tree, key.as_str()), ("members", "m-1"));
        }
        other => panic!("expected a corrupt-row error, got {other:?}"),
    }
    assert!(store.members().is_err());
}

fn a_corrupt_timer_key_is_an_error_not_a_panic(fresh: fn() -> Store) {
    let store = fresh();
    store
        .opened()
        .unwrap()
        .keyspaces
        .timers
        .insert([0u8; 3], "x")
        .unwrap();
    assert!(matches!(
        store.next_timer(),
        Err(StoreError::Corrupt { tree: "timers", .. })
    ));
}

fn set_timers(store: &Store, timers: &[TimerKey]) {
    let step = StepWrite {
        timers_set: timers
            .iter()
            .map(|t| (t.clone(), t.id.as_bytes().to_vec()))
            .collect(),
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
}

fn timers_due_include_the_boundary_and_stop_at_max(fresh: fn() -> Store) {
    let store = fresh();
    let timers = [
        TimerKey::new(-5, "phase", "a"),
        TimerKey::new(10, "sla", "T-1"),
        TimerKey::new(10, "inactive", "m-1"),
        TimerKey::new(11, "inactive", "m-2"),
    ];
    set_timers(&store, &timers);
    let due: Vec<TimerKey> = store
        .timers_due(10, 100)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        due,
        [timers[0].clone(), timers[2].clone(), timers[1].clone()]
    );
    assert_eq!(store.timers_due(10, 1).unwrap().len(), 1);
    assert_eq!(store.timers_due(i64::MAX, 100).unwrap().len(), 4);
    assert_eq!(store.next_timer().unwrap(), Some(timers[0].clone()));
}

fn timers_due_after_a_key_resume_past_it(fresh: fn() -> Store) {
    let store = fresh();
    let timers = [
        TimerKey::new(-5, "phase", "a"),
        TimerKey::new(10, "inactive", "m-1"),
        TimerKey::new(10, "sla", "T-1"),
        TimerKey::new(11, "inactive", "m-2"),
    ];
    set_timers(&store, &timers);
    let due = |after: &TimerKey, up_to: i64, max: usize| -> (Vec<TimerKey>, Option<i64>) {
        let (rows, next) = store.timers_due_and_next(Some(after), up_to, max).unwrap();
        (rows.into_iter().map(|(k, _)| k).collect(), next)
    };
    // Past the rows it returns, when the next timer falls due.
    let after_first = due(&timers[0], 10, 100);
    assert_eq!(
        after_first,
        (vec![timers[1].clone(), timers[2].clone()], Some(11))
    );
    let after_same_due = due(&timers[1], 10, 100);
    assert_eq!(after_same_due.0, [timers[2].clone()]);
    // `max` reached: what comes next is not looked at.
    assert_eq!(due(&timers[0], 10, 1), (vec![timers[1].clone()], None));
    // A key past `up_to`: nothing due, and the next one's time.
    assert_eq!(due(&timers[3], 10, 100), (vec![], Some(i64::MAX)));
    assert_eq!(due(&timers[2], 10, 100), (vec![], Some(11)));
    let to_the_end = due(&timers[2], i64::MAX, 100);
    assert_eq!(to_the_end, (vec![timers[3].clone()], Some(i64::MAX)));
    // From the start.
    let (first, next) = store.timers_due_and_next(None, -5, 100).unwrap();
    assert_eq!((first.len(), next), (1, Some(10)));
}

fn a_step_that_clears_and_sets_the_same_timer_leaves_it_set(fresh: fn() -> Store) {
    let store = fresh();
    let timer = TimerKey::new(10, "inactive", "m-1");
    set_timers(&store, std::slice::from_ref(&timer));
    let rearm = StepWrite {
        timers_clear: vec![timer.clone()],
        timers_set: vec![(timer.clone(), b"again".to_vec())],
        ..StepWrite::default()
    };
    store.commit(&[rearm]).unwrap();
    assert_eq!(
        store.timers_due(10, 10).unwrap(),
        [(timer.clone(), b"again".to_vec())]
    );
    let clear = StepWrite {
        timers_clear: vec![timer],
        ..StepWrite::default()
    };
    store.commit(&[clear]).unwrap();
    assert_eq!(store.next_timer().unwrap(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn timers_due_are_exactly_the_due_ones_in_time_order(
        timers in proptest::collection::vec((-50i64..50, "[a-c]{1,2}", "[a-z0-9-]{1,4}"), 0..40),
        up_to in -60i64..60,
    ) {
        for store in [Store::open_temporary().unwrap(), Store::in_memory().unwrap()] {
            let timers: Vec<TimerKey> = timers.iter().cloned().map(|(d, k, i)| TimerKey::new(d, k, i)).collect();
            set_timers(&store, &timers);
            let mut expected: Vec<TimerKey> = timers.into_iter().filter(|t| t.due <= up_to).collect();
            expected.sort();
            expected.dedup();
            let due: Vec<TimerKey> = store.timers_due(up_to, usize::MAX).unwrap().into_iter().map(|(k, _)| k).collect();
            prop_assert_eq!(due, expected);
        }
    }
}

fn outbox_rows_are_scanned_in_order_and_updated(fresh: fn() -> Store) {
    let store = fresh();
    let step = StepWrite {
        outbox_put: vec![(3, b"c".to_vec()), (1, b"a".to_vec()), (2, b"b".to_vec())],
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    assert_eq!(
        store.outbox_scan(2, 10).unwrap(),
        [(2, b"b".to_vec()), (3, b"c".to_vec())]
    );
    assert!(store.outbox_update(2, b"sent").unwrap());
    assert_eq!(
        store.outbox_scan(0, 2).unwrap(),
        [(1, b"a".to_vec()), (2, b"sent".to_vec())]
    );
    assert_eq!(store.outbox_last().unwrap(), Some(3));
}

fn updating_an_outbox_row_that_is_gone_does_not_bring_it_back(fresh: fn() -> Store) {
    let store = fresh();
    assert!(!store.outbox_update(9, b"sent").unwrap());
    assert_eq!(store.outbox_scan(0, 10).unwrap(), []);
}

fn tickets_are_stored_by_number(fresh: fn() -> Store) {
    let store = fresh();
    assert_eq!(store.ticket_last().unwrap(), None);
    let step = StepWrite {
        tickets_put: vec![(2, b"two".to_vec()), (10, b"ten".to_vec())],
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    assert_eq!(store.ticket(10).unwrap(), Some(b"ten".to_vec()));
    assert_eq!(store.ticket(3).unwrap(), None);
    assert_eq!(store.tickets().unwrap().len(), 2);
    assert_eq!(store.ticket_last().unwrap(), Some(10));
}

fn meta_values_round_trip(fresh: fn() -> Store) {
    let store = fresh();
    let step = StepWrite {
        meta_put: vec![("rules.version".into(), b"v7".to_vec())],
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    assert_eq!(
        store.meta_get("rules.version").unwrap(),
        Some(b"v7".to_vec())
    );
    assert_eq!(store.meta_get("other").unwrap(), None);
}

#[test]
fn history_rows_are_counted_as_they_would_be_made() {
    let ledger = [
        entry("m-1", 1, "a"),
        entry("m-2", 1, "b"),
        entry("m-1", 1, "c"),
    ];
    let firings = [firing("m-3", "r"), firing("m-2", "r")];
    for (l, f) in [(0, 0), (1, 0), (0, 1), (3, 0), (3, 2), (1, 2)] {
        assert_eq!(
            history::row_count(&ledger[..l], &firings[..f]),
            history::rows(&ledger[..l], &firings[..f]).len() as u64,
            "{l} entries, {f} firings"
        );
    }
}

#[test]
fn a_store_without_history_numbers_its_rows_but_keeps_none() {
    let store = Store::in_memory_without_history().unwrap();
    store.commit(&[event_step("e-1", "m-1", 5)]).unwrap();
    let step = StepWrite {
        firings: vec![firing("m-1", "r")],
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    assert_eq!(store.counters().history, 2);
    assert_eq!(
        store.meta_get(NEXT_HISTORY_SEQ).unwrap(),
        Some(keys::u64_key(2).to_vec())
    );
    assert_eq!(store.opened().unwrap().keyspaces.history.len(), 0);
    assert!(matches!(
        store.ledger("m-1"),
        Err(StoreError::NotKept { what: "history" })
    ));
    assert!(store.firings("m-1", 10).is_err());
    assert!(store.ledger_all().is_err());
    assert!(store.trim_history(None, 10, at(0)).is_err());
    assert!(!store.keeps_history());
    assert!(Store::in_memory().unwrap().keeps_history());
    // Rows a caller kept elsewhere are numbered as if written.
    let counted = StepWrite {
        history_rows: history_row_count(&[], &[firing("m-1", "r"), firing("m-2", "r")]),
        ..StepWrite::default()
    };
    store.commit(&[counted]).unwrap();
    assert_eq!(store.counters().history, 4);
    // Everything else is kept.
    assert_eq!(store.member("m-1").unwrap().unwrap().points, 5);
    assert!(store.seen("e-1").unwrap());
}

fn members_are_walked_in_batches_in_id_order(fresh: fn() -> Store) {
    let store = fresh();
    let ids: Vec<String> = (0..600).map(|i| format!("m-{i}")).collect();
    let step = StepWrite {
        members: ids.iter().map(|id| Member::new(id)).collect(),
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
    let mut sorted = ids.clone();
    sorted.sort();
    let walked: Vec<String> = store
        .members_iter()
        .unwrap()
        .map(|m| m.unwrap().id.to_string())
        .collect();
    assert_eq!(walked, sorted);
    assert_eq!(store.member_count().unwrap(), 600);
    let page: Vec<String> = store
        .members_after(Some(&sorted[10]), 3)
        .unwrap()
        .into_iter()
        .map(|m| m.id.to_string())
        .collect();
    assert_eq!(page, sorted[11..14]);
    // The members keyspace read row by row gives them encoded, as sled holds them.
    let opened = store.opened().unwrap();
    let (key, value) = opened.keyspaces.members.last().unwrap().unwrap();
    assert_eq!(&key[..], sorted[599].as_bytes());
    let member = read::decode_member(&key, &value).unwrap();
    assert_eq!(member.id, sorted[599]);
    assert!(opened
        .keyspaces
        .members
        .get(keys::text_key("m-9"))
        .unwrap()
        .is_some());
    assert!(opened
        .keyspaces
        .members
        .get(keys::text_key("x"))
        .unwrap()
        .is_none());
}

fn seen_rows_read_as_applied(fresh: fn() -> Store) {
    let store = fresh();
    store
        .commit(&[event_step("e-2", "m-1", 1), event_step("e-1", "m-1", 2)])
        .unwrap();
    let opened = store.opened().unwrap();
    let seen = &opened.keyspaces.seen;
    assert_eq!(seen.get("e-1").unwrap().as_deref(), Some(SEEN_APPLIED));
    assert_eq!(seen.get("e-3").unwrap(), None);
    let rows: Vec<Vec<u8>> = seen.iter().map(|row| row.unwrap().0.to_vec()).collect();
    assert_eq!(rows, [b"e-1".to_vec(), b"e-2".to_vec()]);
    assert_eq!(seen.len(), 2);
}

#[test]
fn sync_succeeds_on_disk_in_a_temporary_store_and_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path()).unwrap().sync().unwrap();
    Store::open_temporary().unwrap().sync().unwrap();
    Store::in_memory().unwrap().sync().unwrap();
}

#[test]
fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    Store::open(&nested).unwrap();
    assert!(nested.join("db").exists());
}

#[test]
fn a_store_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
}

#[test]
fn a_member_too_big_for_sleds_log_is_synced_from_its_blob_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = Member::new("m-big");
    big.attrs
        .insert("bio".into(), "x".repeat(300 * 1024).into());
    {
        let store = Store::open(dir.path()).unwrap();
        let step = StepWrite {
            members: vec![big.clone()],
            ..StepWrite::default()
        };
        store.commit(&[step]).unwrap();
        store.sync().unwrap();
        let opened = store.opened().unwrap();
        let files = opened.files.as_ref().unwrap();
        assert!(files.synced_blob_count() > 0, "sled wrote no blob file");
    }
    let store = reopen(dir.path()).unwrap();
    assert_eq!(store.member("m-big").unwrap(), Some(big));
}

fn a_member_reads_back_exactly_with_attributes_of_every_json_kind(fresh: fn() -> Store) {
    let store = fresh();
    let mut member = member_with_points("m-1", 42);
    member.created_at = Some(at(0));
    member.last_active = Some(at(3_600_000));
    member.attrs = serde_json::json!({
        "name": "Lin", "age": 30, "big": u64::MAX, "score": 1.5, "vip": true,
        "nick": null, "langs": ["zh", "en"], "address": {"city": "Shanghai"}
    })
    .as_object()
    .cloned()
    .unwrap();
    member
        .counters
        .insert("spend_total", "1579.25".parse().unwrap());
    member.book.silence_fired = Some((1, 2));
    store
        .commit(&[StepWrite {
            members: vec![member.clone()],
            ..StepWrite::default()
        }])
        .unwrap();
    assert_eq!(store.member("m-1").unwrap(), Some(member.clone()));
    let stored = store
        .opened()
        .unwrap()
        .keyspaces
        .members
        .get(keys::text_key("m-1"))
        .unwrap()
        .unwrap();
    let json = serde_json::to_vec(&member).unwrap();
    assert!(
        stored.len() < json.len(),
        "{} vs {} bytes",
        stored.len(),
        json.len()
    );
}

fn a_member_written_before_fields_were_appended_reads_them_as_defaults(fresh: fn() -> Store) {
    /// `Member`'s first fields, as an older build would have written them.
    #[derive(serde::Serialize)]
    struct Older {
        id: String,
        created_at: Option<DateTime<Utc>>,
        joined_at: Option<DateTime<Utc>>,
        attrs: serde_json::Map<String, serde_json::Value>,
        points: i64,
    }
    let older = Older {
        id: "m-1".into(),
        created_at: Some(at(0)),
        joined_at: None,
        attrs: serde_json::Map::new(),
        points: 7,
    };
    let store = fresh();
    let bytes = rmp_serde::to_vec(&older).unwrap();
    store
        .opened()
        .unwrap()
        .keyspaces
        .members
        .insert(keys::text_key("m-1"), bytes)
        .unwrap();
    let member = store.member("m-1").unwrap().unwrap();
    assert_eq!(member.points, 7);
    assert_eq!(member.created_at, Some(at(0)));
    assert_eq!(*member.book, crate::member::Bookkeeping::default());
    assert!(member.tags.is_empty());
}

fn a_member_whose_counters_were_written_as_floats_reads_them_as_decimals(fresh: fn() -> Store) {
    /// `Member` up to its counters, as builds before exact counters wrote it.
    #[derive(serde::Serialize)]
    struct FloatCounters {
        id: String,
        created_at: Option<DateTime<Utc>>,
        joined_at: Option<DateTime<Utc>>,
        attrs: serde_json::Map<String, serde_json::Value>,
        points: i64,
        points_lifetime: i64,
        tier: Option<String>,
        tags: Vec<String>,
        badges: Vec<String>,
        counters: std::collections::BTreeMap<String, f64>,
    }
    let older = FloatCounters {
        id: "m-1".into(),
        created_at: Some(at(0)),
        joined_at: None,
        attrs: serde_json::Map::new(),
        points: 7,
        points_lifetime: 7,
        tier: None,
        tags: Vec::new(),
        badges: Vec::new(),
        counters: [
            ("spend_total".to_string(), 199.9),
            ("purchases".to_string(), 2.0),
        ]
        .into_iter()
        .collect(),
    };
    let store = fresh();
    let bytes = rmp_serde::to_vec(&older).unwrap();
    store
        .opened()
        .unwrap()
        .keyspaces
        .members
        .insert(keys::text_key("m-1"), bytes)
        .unwrap();
    let member = store.member("m-1").unwrap().unwrap();
    assert_eq!(member.counter("spend_total"), "199.9".parse().unwrap());
    assert_eq!(member.counter("purchases"), 2.into());
}

fn an_injected_commit_fault_stores_nothing_and_the_next_commit_reuses_the_numbers(
    fresh: fn() -> Store,
) {
    let store = fresh();
    store.faults().inject(Fault::Commit, 1);
    let step = event_step("e-1", "m-1", 5);
    assert!(store.commit(std::slice::from_ref(&step)).is_err());
    assert!(!store.seen("e-1").unwrap());
    assert!(store.member("m-1").unwrap().is_none());
    store.commit(&[step]).unwrap();
    assert!(store.seen("e-1").unwrap());
    assert_eq!(store.ledger("m-1").unwrap().len(), 1);
    assert_eq!(
        store.meta_get(NEXT_HISTORY_SEQ).unwrap(),
        Some(keys::u64_key(1).to_vec()),
        "the failed commit used up no history numbers"
    );
}

fn an_injected_read_fault_fails_gets_and_scans_until_cleared(fresh: fn() -> Store) {
    let store = fresh();
    store.commit(&[event_step("e-1", "m-1", 5)]).unwrap();
    store.faults().inject(Fault::Read, UNTIL_CLEARED);
    assert!(store.member("m-1").is_err());
    assert!(store.seen("e-1").is_err());
    assert!(store.members().is_err());
    assert!(store.timers_due(i64::MAX, 10).is_err());
    store.faults().clear(Fault::Read);
    assert_eq!(store.members().unwrap().len(), 1);
}

fn an_injected_sync_fault_fails_one_sync(fresh: fn() -> Store) {
    let store = fresh();
    store.faults().inject(Fault::Sync, 1);
    assert!(store.sync().is_err());
    store.sync().unwrap();
}

on_both_backends!(
    members_are_walked_in_batches_in_id_order,
    seen_rows_read_as_applied,
    keyspaces_do_not_see_each_others_rows,
    open_ended_scans_stop_at_their_keyspaces_edge,
    a_refused_group_writes_none_of_its_steps,
    a_refused_group_does_not_use_up_sequence_numbers,
    only_committed_event_ids_are_seen,
    a_members_ledger_is_in_commit_order_and_excludes_similar_ids,
    firings_returns_the_most_recent_ones_oldest_first,
    a_step_keeps_its_members_ledger_and_firings_in_one_history_row,
    later_steps_of_a_group_win_for_the_same_member,
    members_are_listed_by_id,
    a_corrupt_timer_key_is_an_error_not_a_panic,
    timers_due_include_the_boundary_and_stop_at_max,
    timers_due_after_a_key_resume_past_it,
    a_step_that_clears_and_sets_the_same_timer_leaves_it_set,
    outbox_rows_are_scanned_in_order_and_updated,
    updating_an_outbox_row_that_is_gone_does_not_bring_it_back,
    tickets_are_stored_by_number,
    meta_values_round_trip,
    a_member_reads_back_exactly_with_attributes_of_every_json_kind,
    a_member_written_before_fields_were_appended_reads_them_as_defaults,
    a_member_whose_counters_were_written_as_floats_reads_them_as_decimals,
    an_injected_commit_fault_stores_nothing_and_the_next_commit_reuses_the_numbers,
    an_injected_read_fault_fails_gets_and_scans_until_cleared,
    an_injected_sync_fault_fails_one_sync,
);

/// What each keyspace of a data directory holds: rows, key and value bytes. Run by
/// hand on a directory `scripts/scale.sh` left (no daemon may hold it):
/// `RALLY_CENSUS_DIR=/tmp/…/data cargo test --lib census -- --ignored --nocapture`.
#[test]
#[ignore = "reads the data directory named by RALLY_CENSUS_DIR"]
fn census_of_a_data_directory() {
    let Ok(dir) = std::env::var("RALLY_CENSUS_DIR") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).unwrap();
    let opened = store.opened().unwrap();
    for id in TreeId::ALL {
        let keyspace = Keyspace::new(opened.database.backing(), id, Arc::default());
        let (mut rows, mut keys, mut values) = (0u64, 0u64, 0u64);
        for row in keyspace.iter() {
            let (key, value) = row.unwrap();
            rows += 1;
            keys += key.len() as u64 + 1;
            values += value.len() as u64;
        }
        if id == TreeId::Members && rows > 0 {
            let (key, value) = keyspace.last().unwrap().unwrap();
            let member = read::decode_member(&key, &value).unwrap();
            let book = rmp_serde::to_vec(&member.book).unwrap().len();
            println!(
                "last member, {} bytes, book {book}: {member:?}",
                value.len()
            );
        }
        if rows > 0 {
            println!(
                "{:>18}: {rows:>9} rows, keys {:>6.1} B, values {:>6.1} B a row",
                id.name(),
                keys as f64 / rows as f64,
                values as f64 / rows as f64
            );
        }
    }
}

#[test]
fn a_cache_shared_by_partition_stores_adds_up_to_the_whole_with_a_floor() {
    let whole = CacheSize::mib(192);
    assert_eq!(whole.shared_by(16), CacheSize::mib(12));
    assert_eq!(whole.shared_by(1), whole);
    assert_eq!(whole.shared_by(0), whole);
    // Many partitions: each keeps a usable cache.
    assert_eq!(whole.shared_by(256), CacheSize::mib(8));
}
