//! The `leaderboards` keyspace: every board's ranking in every period, as an ordered
//! index ([`RankKey`]). A step's [`RankMove`] removes the member's old row and writes
//! the new one in the batch that writes the member (whose bookkeeping says where its
//! row is), so the index never holds two rows for one member in one period.
//!
//! Reading a period's first `n` places reads `n` rows; listing a board's periods
//! seeks once per period, never row by row.

use std::ops::Bound;

use super::keys::{self, RankKey};
use super::{Store, StoreError, TreeId};
use crate::leaderboard::{Place, RankMove, Standing};

/// The row `moved.from` to remove (if the member had one) and the row to write.
pub(super) fn row_keys(moved: &RankMove) -> (Option<Vec<u8>>, Vec<u8>) {
    let key = |place: &Place| {
        RankKey::encode_parts(
            &moved.board,
            &moved.period,
            place.score,
            place.reached,
            &moved.member,
        )
    };
    (moved.from.as_ref().map(key), key(&moved.to))
}

impl Store {
    /// The first `n` places of `board` in `period`, best first.
    pub fn leaderboard_top(
        &self,
        board: &str,
        period: &str,
        n: usize,
    ) -> Result<Vec<Standing>, StoreError> {
        let opened = self.opened()?;
        let rows = opened
            .keyspaces
            .leaderboards
            .scan_prefix(keys::rank_prefix(board, period));
        let mut out = Vec::with_capacity(n.min(1024));
        for (i, row) in rows.take(n).enumerate() {
            let (key, _) = row.map_err(StoreError::sled("reading a leaderboard"))?;
            let rank = RankKey::decode(&key)
                .map_err(|e| StoreError::corrupt(TreeId::Leaderboards.name(), &key, e))?;
            out.push(Standing {
                rank: i + 1,
                member: rank.member,
                score: rank.score,
                reached: rank.reached,
            });
        }
        Ok(out)
    }

    /// Every period of `board` that has a ranking, oldest key first (period keys of
    /// one board sort by time).
    pub fn leaderboard_periods(&self, board: &str) -> Result<Vec<String>, StoreError> {
        let opened = self.opened()?;
        let keyspace = &opened.keyspaces.leaderboards;
        let end = keys::after_prefix(&keys::board_prefix(board));
        let mut from = keys::board_prefix(board);
        let mut out = Vec::new();
        loop {
            let next = keyspace
                .range::<Vec<u8>, _>((Bound::Included(from), Bound::Excluded(end.clone())))
                .next();
            let Some(row) = next else {
                return Ok(out);
            };
            let (key, _) = row.map_err(StoreError::sled("reading a leaderboard"))?;
            let rank = RankKey::decode(&key)
                .map_err(|e| StoreError::corrupt(TreeId::Leaderboards.name(), &key, e))?;
            from = keys::after_prefix(&keys::rank_prefix(board, &rank.period));
            out.push(rank.period);
        }
    }
}

impl Store {
    /// Every row of every board, in key order: for the replay's self-check, which
    /// must find the index it rebuilt equal to the live one.
    pub fn leaderboard_rows(&self) -> Result<Vec<RankKey>, StoreError> {
        let opened = self.opened()?;
        let mut out = Vec::new();
        for row in opened.keyspaces.leaderboards.iter() {
            let (key, _) = row.map_err(StoreError::sled("reading a leaderboard"))?;
            out.push(
                RankKey::decode(&key)
                    .map_err(|e| StoreError::corrupt(TreeId::Leaderboards.name(), &key, e))?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
