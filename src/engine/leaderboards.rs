//! What a step added to the member's score on each board (see [`crate::leaderboard`]):
//! the board's measure after the step minus the measure before it.
//!
//! "Before" is the member as the step found it, with its resetting counters already
//! started in the step's period: a counter that reset at the turn of the period reads 0
//! before, so its reset is not a loss. An expression that fails on either side adds
//! nothing (a board is a view; it never fails a step).

use chrono::{DateTime, Utc};

use super::run::campaign_bindings;
use crate::leaderboard::{period_of, ScoreGain};
use crate::member::Member;
use crate::money::Decimal;
use crate::rules::{Leaderboard, Measure, RuleSet};
use crate::script::Bindings;

/// The measure of every board for `before`, as the step found the member: kept until
/// the step is over, then handed to [`gains`].
pub(super) fn measure_before(
    rules: &RuleSet,
    member: &Member,
    now: DateTime<Utc>,
) -> Option<Vec<Option<Decimal>>> {
    if rules.leaderboards.is_empty() {
        return None;
    }
    let mut started = member.clone();
    started.start_periods(rules, now);
    Some(measures(rules, &started, now))
}

/// Each board whose measure moved between `before` and `after`, with the amount.
pub(super) fn gains(
    rules: &RuleSet,
    before: Option<Vec<Option<Decimal>>>,
    after: &Member,
    now: DateTime<Utc>,
) -> Vec<ScoreGain> {
    let Some(before) = before else {
        return Vec::new();
    };
    let after = measures(rules, after, now);
    rules
        .leaderboards
        .iter()
        .zip(before.into_iter().zip(after))
        .filter_map(|(board, pair)| match pair {
            (Some(before), Some(after)) if before != after => Some(ScoreGain {
                board: board.id.clone(),
                period: period_of(board, now, rules.settings.timezone),
                gain: (after - before).normalize(),
            }),
            _ => None,
        })
        .collect()
}

fn measures(rules: &RuleSet, member: &Member, now: DateTime<Utc>) -> Vec<Option<Decimal>> {
    let mut bindings: Option<Bindings> = None;
    rules
        .leaderboards
        .iter()
        .map(|board| measure(rules, board, member, now, &mut bindings))
        .collect()
}

fn measure(
    rules: &RuleSet,
    board: &Leaderboard,
    member: &Member,
    now: DateTime<Utc>,
    bindings: &mut Option<Bindings>,
) -> Option<Decimal> {
    match &board.by {
        Measure::Counter(name) => Some(member.counter(name)),
        Measure::Expr(expr) => {
            let bindings = bindings.get_or_insert_with(|| {
                Bindings::new(member, None, now, &campaign_bindings(rules, now))
            });
            rules.sandbox.eval_number(expr, bindings).ok()
        }
    }
}
