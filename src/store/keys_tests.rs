use proptest::prelude::*;

use super::*;

/// Strings with the bytes that stress the escaping: NUL, the separator's second byte,
/// the escape byte's neighbourhood and multi-byte UTF-8.
fn tricky_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('\u{0}'),
            Just('\u{1}'),
            Just('a'),
            Just('m'),
            Just('-'),
            Just('\u{7f}'),
            Just('é'),
            Just('积'),
            any::<char>(),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #[test]
    fn u64_keys_round_trip_and_keep_numeric_order(a: u64, b: u64) {
        prop_assert_eq!(decode_u64(&u64_key(a)), Ok(a));
        prop_assert_eq!(u64_key(a).cmp(&u64_key(b)), a.cmp(&b));
    }

    #[test]
    fn i64_keys_round_trip_and_keep_numeric_order_across_zero(a: i64, b: i64) {
        prop_assert_eq!(decode_i64(&i64_key(a)), Ok(a));
        prop_assert_eq!(i64_key(a).cmp(&i64_key(b)), a.cmp(&b));
    }

    #[test]
    fn member_seq_keys_round_trip(member in tricky_text(), seq: u64) {
        prop_assert_eq!(decode_member_seq(&member_seq(&member, seq)), Ok((member, seq)));
    }

    #[test]
    fn member_seq_keys_sort_by_member_then_seq(
        a in tricky_text(), sa: u64, b in tricky_text(), sb: u64,
    ) {
        let by_value = (a.as_bytes(), sa).cmp(&(b.as_bytes(), sb));
        prop_assert_eq!(member_seq(&a, sa).cmp(&member_seq(&b, sb)), by_value);
    }

    #[test]
    fn a_members_prefix_matches_only_its_own_rows(a in tricky_text(), b in tricky_text(), seq: u64) {
        let matches = member_seq(&b, seq).starts_with(&member_prefix(&a));
        prop_assert_eq!(matches, a == b);
    }

    #[test]
    fn timer_keys_round_trip(due: i64, kind in tricky_text(), id in tricky_text()) {
        let key = TimerKey::new(due, kind, id);
        prop_assert_eq!(TimerKey::decode(&key.encode()), Ok(key));
    }

    #[test]
    fn timer_keys_sort_like_due_then_kind_then_id(
        a in (any::<i64>(), tricky_text(), tricky_text()),
        b in (any::<i64>(), tricky_text(), tricky_text()),
    ) {
        let a = TimerKey::new(a.0, a.1, a.2);
        let b = TimerKey::new(b.0, b.1, b.2);
        prop_assert_eq!(a.encode().cmp(&b.encode()), a.cmp(&b));
    }

    #[test]
    fn timers_due_at_or_before_t_are_exactly_those_below_the_next_due_prefix(
        due in -5i64..5, t in -5i64..4, kind in tricky_text(), id in tricky_text(),
    ) {
        let below = TimerKey::new(due, kind, id).encode().as_slice() < due_prefix(t + 1).as_slice();
        prop_assert_eq!(below, due <= t);
    }

    #[test]
    fn text_keys_round_trip(text in tricky_text()) {
        prop_assert_eq!(decode_text(text_key(&text)), Ok(text));
    }
}

#[test]
fn a_nul_inside_a_member_id_is_escaped_not_taken_for_the_separator() {
    let key = member_seq("a\u{0}b", 7);
    assert_eq!(&key[..5], &[b'a', 0x00, 0xFF, b'b', 0x00]);
    assert_eq!(decode_member_seq(&key), Ok(("a\u{0}b".to_string(), 7)));
}

#[test]
fn truncated_and_malformed_keys_are_errors_not_panics() {
    let key = TimerKey::new(5, "sla", "T-1").encode();
    for len in 0..key.len() {
        assert!(
            TimerKey::decode(&key[..len]).is_err(),
            "prefix of {len} bytes"
        );
    }
    let mut extra = key.clone();
    extra.push(9);
    assert_eq!(
        TimerKey::decode(&extra),
        Err(KeyError::Trailing { count: 1 })
    );
    let mut bad_escape = i64_key(5).to_vec();
    bad_escape.extend_from_slice(&[b'x', 0x00, 0x07]);
    assert_eq!(
        TimerKey::decode(&bad_escape),
        Err(KeyError::BadEscape { byte: 0x07 })
    );
    assert_eq!(decode_text(&[0xC3]), Err(KeyError::NotUtf8));
}

#[test]
fn keys_are_described_in_their_trees_terms() {
    assert_eq!(describe("history", &member_seq("m-1", 3)), "m-1#3");
    assert_eq!(
        describe("timers", &TimerKey::new(10, "sla", "T-2").encode()),
        "10/sla/T-2"
    );
    assert_eq!(describe("outbox", &u64_key(42)), "42");
    assert_eq!(describe("ledger", &[0xC3]), "\\xc3");
}

#[test]
fn a_seen_by_day_key_round_trips_and_sorts_by_day_first() {
    let key = day_id(20_000, "e-\u{0}1");
    assert_eq!(
        decode_day_id(&key).unwrap(),
        (20_000, "e-\u{0}1".to_string())
    );
    assert!(day_id(19_999, "zzz") < day_id(20_000, "a"));
    assert!(day_id(19_999, "zzz").as_slice() < day_prefix(20_000).as_slice());
    assert!(day_prefix(20_000).as_slice() <= day_id(20_000, "").as_slice());
    assert_eq!(
        decode_day_id(&[0, 1]),
        Err(KeyError::Truncated {
            expected: "a 4-byte day"
        })
    );
}
