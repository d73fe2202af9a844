//! Leaderboards (`leaderboards:` in rule files): members ranked by what they gained of
//! a counter or an expression within each day, week or month of `settings.timezone`.
//!
//! How a score is kept, and why:
//! - the pure step reports, per board, what the member *gained* of the board's measure
//!   in that step ([`ScoreGain`]: measure after the step − measure before it, the
//!   member's resetting counters already started in the step's period). A period's
//!   score is the sum of its gains. So a counter that never resets (`events.post`)
//!   counts only what was earned within the period, and one that resets with the
//!   period counts its whole value — one rule for both, and nothing per member needs
//!   remembering at the start of a period;
//! - a gain belongs to the board's period containing the step's time, in
//!   `settings.timezone` (not the member's zone: everyone on a board shares one week);
//! - [`Standings`] is the ordered index of one board in one period, updated one gain at
//!   a time; reading the first `size` rows never scans the other members.

mod standings;

pub use standings::{Standing, Standings};

use chrono::{DateTime, Utc};

use crate::localtime;
use crate::money::Decimal;
use crate::rules::Leaderboard;

/// What one step added to one member's score on one board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreGain {
    pub board: String,
    /// The board's period the step fell in (`2026-W48`, `2026-11-26`, `2026-11`).
    pub period: String,
    /// May be negative: a board `by: points` loses what the member spends.
    pub gain: Decimal,
}

/// The key of `board`'s period containing `at`, in the rule set's time zone.
pub fn period_of(board: &Leaderboard, at: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    localtime::period_key(board.period, at, zone)
}

#[cfg(test)]
mod tests;
