//! Leaderboards (`leaderboards:` in rule files): members ranked by what they gained of
//! a counter or an expression within each day, week or month of `settings.timezone`.
//!
//! How a score is kept, and why:
//! - the pure step measures each board before and after it runs; the difference is
//!   what the member gained (the member's resetting counters already started in the
//!   step's period, so a reset is not a loss). A period's score is the sum of its
//!   gains. So a counter that never resets (`events.post`) counts only what was
//!   earned within the period, and one that resets with the period counts its whole
//!   value — one rule for both, and nothing to remember at the start of a period;
//! - a gain belongs to the board's period containing the step's time, in
//!   `settings.timezone` (not the member's zone: everyone on a board shares one week);
//! - the member keeps its current score on each board ([`BoardScore`], in its
//!   bookkeeping): the step computes the new score from it alone, and the step's
//!   [`RankMove`] says which row of the ordered index (`store::ranks`) to remove and
//!   which to write — in the same batch as the member, so the two never disagree.
//!
//! Ties are broken, never shared: on equal scores, whoever reached the score first
//! (the earlier step) ranks first; on the same millisecond, the smaller member id.
//! Every process that runs the same steps ranks them the same.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::localtime;
use crate::money::Decimal;
use crate::rules::Leaderboard;

pub mod close;

/// A member's score on one board in the period it last gained in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardScore {
    /// The board's period (`2026-W48`, `2026-11-26`, `2026-11`).
    pub period: String,
    pub place: Place,
}

/// Where a member stands in one period of one board: what orders its row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    #[serde(with = "decimal_text")]
    pub score: Decimal,
    /// When the member reached this score (Unix millis): the earlier ranks first.
    pub reached: i64,
}

/// A step's change to one board: the member's row `from` (none when the member had
/// no score in this period yet) moves `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RankMove {
    pub board: String,
    pub period: String,
    pub member: String,
    pub from: Option<Place>,
    pub to: Place,
}

/// One member's place on a board, as read from the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    /// 1 for the first place.
    pub rank: usize,
    pub member: String,
    pub score: Decimal,
    /// When the member reached the score (Unix millis).
    pub reached: i64,
}

/// The key of `board`'s period containing `at`, in the rule set's time zone.
pub fn period_of(board: &Leaderboard, at: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    localtime::period_key(board.period, at, zone)
}

/// Adds `gain` to what `kept` holds for the board (nothing carried over from an
/// earlier period) and says how the member's row moves. `kept` is updated.
pub fn gain(
    kept: &mut Option<BoardScore>,
    board: &str,
    period: String,
    member: &str,
    gain: Decimal,
    now: DateTime<Utc>,
) -> RankMove {
    let from = kept
        .take()
        .filter(|score| score.period == period)
        .map(|score| score.place);
    let before = from.as_ref().map_or(Decimal::ZERO, |place| place.score);
    let to = Place {
        score: (before + gain).normalize(),
        reached: now.timestamp_millis(),
    };
    *kept = Some(BoardScore {
        period: period.clone(),
        place: to.clone(),
    });
    RankMove {
        board: board.to_string(),
        period,
        member: member.to_string(),
        from,
        to,
    }
}

/// Places as `sim` prints them and the API returns them: `[{rank, member, score}]`.
pub fn places_json(places: &[Standing]) -> serde_json::Value {
    places
        .iter()
        .map(|place| {
            serde_json::json!({
                "rank": place.rank,
                "member": place.member,
                "score": crate::money::to_json(place.score),
            })
        })
        .collect()
}

/// A decimal as its text, as counters are stored (see [`crate::money::counters`]).
pub(crate) mod decimal_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::money::Decimal;

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.normalize().to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
