use chrono::{DateTime, Utc};

use crate::leaderboard::{gain, BoardScore, Place, RankMove};
use crate::money::Decimal;
use crate::store::keys::RankKey;
use crate::store::{StepWrite, Store};

fn key(score: &str, reached: i64, member: &str) -> Vec<u8> {
    RankKey {
        board: "posters".into(),
        period: "2026-W48".into(),
        score: score.parse().unwrap(),
        reached,
        member: member.into(),
    }
    .encode()
}

fn at(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap()
}

/// Steps as the engine reports them: each member's kept score gains, its row moves.
struct Board {
    kept: std::collections::BTreeMap<String, Option<BoardScore>>,
    store: Store,
}

impl Board {
    fn new(store: Store) -> Board {
        Board {
            kept: Default::default(),
            store,
        }
    }

    fn gain(&mut self, member: &str, period: &str, amount: i64, millis: i64) {
        let kept = self.kept.entry(member.into()).or_default();
        let moved = gain(
            kept,
            "posters",
            period.into(),
            member,
            Decimal::from(amount),
            at(millis),
        );
        self.store
            .commit(&[StepWrite {
                leaderboards: vec![moved],
                ..StepWrite::default()
            }])
            .unwrap();
    }

    fn ranking(&self, period: &str, n: usize) -> Vec<(usize, String, String)> {
        self.store
            .leaderboard_top("posters", period, n)
            .unwrap()
            .into_iter()
            .map(|s| (s.rank, s.member, s.score.to_string()))
            .collect()
    }
}

fn place(rank: usize, member: &str, score: &str) -> (usize, String, String) {
    (rank, member.into(), score.into())
}

fn backends() -> Vec<Store> {
    vec![
        Store::in_memory().unwrap(),
        Store::open_temporary().unwrap(),
    ]
}

#[test]
fn rank_keys_read_back_as_written() {
    for (score, reached, member) in [("3", 5, "m-1"), ("-2.5", -7, "a\0b"), ("0.0001", 0, "")] {
        let encoded = key(score, reached, member);
        let decoded = RankKey::decode(&encoded).unwrap();
        assert_eq!(decoded.score, score.parse::<Decimal>().unwrap());
        assert_eq!(
            (decoded.reached, decoded.member.as_str()),
            (reached, member)
        );
    }
}

#[test]
fn rank_keys_sort_by_score_high_first_then_earliest_then_member() {
    let ordered = [
        key("1000000", 9, "z"),
        key("12.5", 9, "z"),
        key("12", 1, "z"),
        key("12", 2, "a"),
        key("12", 2, "b"),
        key("0.0001", 0, "a"),
        key("0", 0, "a"),
        key("-3", 0, "a"),
    ];
    for pair in ordered.windows(2) {
        assert!(pair[0] < pair[1], "{:?} !< {:?}", pair[0], pair[1]);
    }
}

#[test]
fn the_highest_score_ranks_first_on_either_backend() {
    for store in backends() {
        let mut board = Board::new(store);
        board.gain("ann", "2026-W48", 2, 1);
        board.gain("bob", "2026-W48", 5, 2);
        board.gain("cyd", "2026-W48", 3, 3);
        assert_eq!(
            board.ranking("2026-W48", 10),
            [
                place(1, "bob", "5"),
                place(2, "cyd", "3"),
                place(3, "ann", "2")
            ]
        );
    }
}

#[test]
fn a_gain_moves_the_members_one_row() {
    for store in backends() {
        let mut board = Board::new(store);
        board.gain("ann", "2026-W48", 2, 1);
        board.gain("bob", "2026-W48", 3, 2);
        board.gain("ann", "2026-W48", 2, 3);
        assert_eq!(
            board.ranking("2026-W48", 10),
            [place(1, "ann", "4"), place(2, "bob", "3")]
        );
    }
}

#[test]
fn on_equal_scores_whoever_reached_it_first_ranks_first() {
    let mut board = Board::new(Store::in_memory().unwrap());
    board.gain("zed", "2026-W48", 3, 1);
    board.gain("amy", "2026-W48", 1, 2);
    board.gain("amy", "2026-W48", 2, 3);
    assert_eq!(
        board.ranking("2026-W48", 10),
        [place(1, "zed", "3"), place(2, "amy", "3")]
    );
}

#[test]
fn on_equal_scores_reached_in_the_same_millisecond_member_id_decides() {
    let mut board = Board::new(Store::in_memory().unwrap());
    board.gain("zed", "2026-W48", 3, 7);
    board.gain("amy", "2026-W48", 3, 7);
    assert_eq!(
        board.ranking("2026-W48", 10),
        [place(1, "amy", "3"), place(2, "zed", "3")]
    );
}

#[test]
fn a_new_period_starts_from_zero_and_the_closed_one_stays_readable() {
    let mut board = Board::new(Store::in_memory().unwrap());
    board.gain("ann", "2026-W48", 5, 1);
    board.gain("ann", "2026-W49", 1, 2);
    assert_eq!(board.ranking("2026-W48", 10), [place(1, "ann", "5")]);
    assert_eq!(board.ranking("2026-W49", 10), [place(1, "ann", "1")]);
    assert_eq!(
        board.store.leaderboard_periods("posters").unwrap(),
        ["2026-W48", "2026-W49"]
    );
    assert!(board.store.leaderboard_periods("other").unwrap().is_empty());
}

#[test]
fn top_reads_only_the_first_places() {
    let mut board = Board::new(Store::in_memory().unwrap());
    for (i, member) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        board.gain(member, "2026-W48", i as i64 + 1, i as i64);
    }
    assert_eq!(
        board.ranking("2026-W48", 2),
        [place(1, "e", "5"), place(2, "d", "4")]
    );
}

#[test]
fn a_move_without_a_previous_row_only_writes() {
    let moved = RankMove {
        board: "b".into(),
        period: "p".into(),
        member: "m".into(),
        from: None,
        to: Place {
            score: Decimal::ONE,
            reached: 0,
        },
    };
    let (remove, _) = super::row_keys(&moved);
    assert!(remove.is_none());
}
