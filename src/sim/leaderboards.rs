//! The document's `leaderboards`: every board's ranking in every period the simulation
//! went through, built from the gains the steps reported, in the order they ran.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::leaderboard::{ScoreGain, Standings};
use crate::rules::RuleSet;

/// board id → period key → the ranking.
#[derive(Default)]
pub(super) struct Boards {
    boards: BTreeMap<String, BTreeMap<String, Standings>>,
    /// Steps with a gain so far: who reached a score first wins a tie.
    steps: u64,
}

impl Boards {
    /// The gains of one step, for one member.
    pub(super) fn add(&mut self, gains: &[(String, ScoreGain)]) {
        if gains.is_empty() {
            return;
        }
        self.steps += 1;
        for (member, gain) in gains {
            self.boards
                .entry(gain.board.clone())
                .or_default()
                .entry(gain.period.clone())
                .or_default()
                .add(member, gain.gain, self.steps);
        }
    }
}

/// Every board of `rules`, each period's first `size` places.
pub(super) struct View<'a> {
    pub boards: &'a Boards,
    pub rules: &'a RuleSet,
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.rules.leaderboards.len()))?;
        let none = BTreeMap::new();
        for board in &self.rules.leaderboards {
            let periods = self.boards.boards.get(&board.id).unwrap_or(&none);
            map.serialize_entry(
                &board.id,
                &Periods {
                    periods,
                    size: board.size,
                },
            )?;
        }
        map.end()
    }
}

struct Periods<'a> {
    periods: &'a BTreeMap<String, Standings>,
    size: usize,
}

impl Serialize for Periods<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.periods.len()))?;
        for (period, standings) in self.periods {
            map.serialize_entry(period, &Ranking(standings, self.size))?;
        }
        map.end()
    }
}

struct Ranking<'a>(&'a Standings, usize);

impl Serialize for Ranking<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let top = self.0.top(self.1);
        let mut seq = serializer.serialize_seq(Some(top.len()))?;
        for standing in top {
            seq.serialize_element(&serde_json::json!({
                "rank": standing.rank,
                "member": standing.member,
                "score": crate::money::to_json(standing.score),
            }))?;
        }
        seq.end()
    }
}
