//! A member's turn at the close of a leaderboard period (`trigger: { leaderboard: ID,
//! closes: true, top: N }`): the board's close rules whose `top` reaches the member's
//! rank run, in rule order.
//!
//! The rules see the close as an event of type `rally.leaderboard_close` (Rally's
//! own namespace: no client can post one, and no rule can name it as a trigger) whose `data` holds
//! `board`, `period`, `rank` and `score`: expressions, scripts and templates already
//! read `event.data`, so a close needs no binding of its own, and the ledger names the
//! close (`leaderboard:<board>:<period>`) as the entries' event.

use chrono::{DateTime, Utc};
use serde_json::{json, Map};

use super::explain::Why;
use super::run::Run;
use crate::event::Event;
use crate::leaderboard::Standing;
use crate::rules::Trigger;

/// The event type the close rules see.
pub const LEADERBOARD_CLOSE: &str = "rally.leaderboard_close";

/// One place of a closed period, as the step of its member sees it.
pub struct BoardClose {
    pub board: String,
    pub period: String,
    pub rank: usize,
    /// The event the rules see (see the module comment).
    pub event: Event,
}

impl BoardClose {
    /// The close of `board`'s `period` at `at`, for the member at `place`.
    pub fn new(board: &str, period: &str, place: &Standing, at: DateTime<Utc>) -> BoardClose {
        let mut data = Map::new();
        data.insert("board".into(), json!(board));
        data.insert("period".into(), json!(period));
        data.insert("rank".into(), json!(place.rank));
        data.insert("score".into(), crate::money::to_json(place.score));
        BoardClose {
            board: board.to_string(),
            period: period.to_string(),
            rank: place.rank,
            event: Event {
                id: format!("leaderboard:{board}:{period}"),
                kind: LEADERBOARD_CLOSE.to_string(),
                member: Some(place.member.clone()),
                at: Some(at.fixed_offset()),
                data,
            },
        }
    }

    pub fn member(&self) -> &str {
        self.event.member.as_deref().unwrap_or_default()
    }

    /// The score as the rules see it.
    pub fn score(&self) -> String {
        self.event
            .data
            .get("score")
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

impl Run<'_> {
    pub fn on_leaderboard_close(&mut self, close: &BoardClose) {
        let rules = self.rules();
        let Some(indices) = rules.index.leaderboard_close.get(&close.board) else {
            self.note(|_| {
                format!(
                    "no close rule of leaderboard {:?} in the current rules",
                    close.board
                )
            });
            return;
        };
        for &index in indices {
            let Trigger::LeaderboardClose { top, .. } = rules.rules[index].trigger else {
                continue;
            };
            // A rule for the top 3 does not run for the fourth place.
            if close.rank > top {
                continue;
            }
            self.consider(index, |_| Why::LeaderboardClose {
                board: close.board.clone(),
                period: close.period.clone(),
                rank: close.rank,
            });
            self.try_rule(index, 0);
        }
        self.drain();
    }
}
