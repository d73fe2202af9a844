//! What a step added to the member's score on each board (see [`crate::leaderboard`]):
//! the board's measure after the step minus the measure before it, kept on the member
//! and reported as the member's row moving.
//!
//! "Before" is the member as the step found it, with its resetting counters already
//! started in the step's period: a counter that reset at the turn of the period reads 0
//! before, so its reset is not a loss. An expression that fails on either side adds
//! nothing (a board is a view; it never fails a step).

use chrono::{DateTime, Utc};
use smallvec::SmallVec;

use super::run::campaign_bindings;
use crate::leaderboard::{gain, period_of, RankMove};
use crate::member::Member;
use crate::money::Decimal;
use crate::rules::{Leaderboard, Measure, RuleSet};
use crate::script::Bindings;

/// The measure of every board for the member as the step found them, their
/// resetting counters already started in the step's period (the caller's duty): kept
/// until the step is over, then handed to [`moves`].
pub(super) fn measure_before(
    rules: &RuleSet,
    started: &Member,
    now: DateTime<Utc>,
) -> Option<Measures> {
    if rules.leaderboards.is_empty() {
        return None;
    }
    Some(measures(rules, started, now))
}

/// Each board whose measure moved between `before` and the step's end: the member's
/// kept score there gains the difference, and its row moves.
pub(super) fn moves(
    rules: &RuleSet,
    before: Option<Measures>,
    member: &mut Member,
    now: DateTime<Utc>,
) -> Vec<RankMove> {
    let Some(before) = before else {
        return Vec::new();
    };
    let after = measures(rules, member, now);
    let mut out = Vec::new();
    for (board, pair) in rules.leaderboards.iter().zip(before.into_iter().zip(after)) {
        let (Some(before), Some(after)) = pair else {
            continue;
        };
        if before == after {
            continue;
        }
        let period = period_of(board, now, rules.settings.timezone);
        let mut kept = member.book.leaderboards.remove(&board.id);
        out.push(gain(
            &mut kept,
            &board.id,
            period,
            &member.id,
            after - before,
            now,
        ));
        if let Some(kept) = kept {
            member.book.leaderboards.insert(&board.id, kept);
        }
    }
    out
}

/// Each board's measure, in the order of the rules' boards (`None` where its
/// expression failed). Inline for a few boards: every step measures twice, and a
/// vector was two allocations per step.
pub(super) type Measures = SmallVec<[Option<Decimal>; 4]>;

fn measures(rules: &RuleSet, member: &Member, now: DateTime<Utc>) -> Measures {
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
                Bindings::reading(
                    member,
                    None,
                    now,
                    || campaign_bindings(rules, now),
                    rules.reads.clone(),
                )
            });
            rules.sandbox.eval_number(expr, bindings).ok()
        }
    }
}
