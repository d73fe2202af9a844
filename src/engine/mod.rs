//! The pure step (DESIGN.md): `(rule set, member, input, now) → Outcome`. No I/O, no
//! clock, no sled: everything here is testable with values alone.
//!
//! A step runs in this order:
//! 1. the built-in effects of the event (profile, streaks, spend, `events.<type>`,
//!    activity) and custom counters;
//! 2. the rules triggered by the event, by priority;
//! 3. cascades: milestones crossed and tier changes caused by 1 and 2, in the order they
//!    happened, each running its rules by priority — bounded, so a loop is reported and
//!    stopped instead of hanging.
//!
//! A rule either applies all its actions or none: a failing `if`, expression, script
//! or deduction restores the member to what it was before that rule and is reported.

mod actions;
mod adjust;
mod after;
mod board_close;
mod builtin;
mod cascade;
mod credit;
mod draw;
mod expiry;
pub mod explain;
mod leaderboards;
mod messages;
pub mod outcome;
mod redeem;
mod run;
mod snapshot;
#[cfg(test)]
mod tests;
mod timed;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

pub use adjust::{adjustment_amount, refuse_adjustment, Refusal, ADJUSTMENT_RULE};
pub use after::{after_timer_id, parse_after_timer_id, AFTER};
pub use board_close::{BoardClose, LEADERBOARD_CLOSE};
pub use credit::{Credit, MAX_CREDIT_DEPTH, REFERRALS, REFERRAL_RULE};
pub use draw::{draw_score, would_fire, Best, Candidate};
pub use expiry::{EXPIRY_RULE, POINTS_EXPIRY};
pub use messages::{member_context, notification, OpenedTicket};
pub use outcome::{Firing, LedgerEntry, Name, Outcome, RuleFailure};
pub use timed::{next_silence_deadline, silence_outlook, Outlook, INACTIVE};

use crate::event::Event;
use crate::member::Member;
use crate::rules::RuleSet;
use crate::script::RandomKey;

/// The world a step sees besides the member: the rules, the time, and the points
/// campaigns have awarded so far (their budgets are shared by every member).
pub struct Context<'a> {
    pub rules: &'a RuleSet,
    /// The step's "now": the event's time, or the due time of a timer.
    pub now: DateTime<Utc>,
    /// Points awarded so far by rules scoped to each campaign.
    pub budget_used: &'a BTreeMap<String, i64>,
    /// What has been issued of each reward so far (stock and codes are shared by
    /// every member).
    pub rewards: &'a BTreeMap<String, crate::rewards::RewardRecord>,
    /// The number the next ticket opened gets (`T-<n>`): with `shares`, the first
    /// number granted at or after it.
    pub next_ticket: u64,
    /// In a cluster, what this partition holds of the budgets, stock and ticket
    /// numbers every member shares; `None` in the single process, which holds all.
    pub shares: Option<&'a crate::shares::Shares>,
    /// The installation's secret that `random()`, `random_int` and `chance` draw under.
    pub random_key: RandomKey,
}

impl Context<'_> {
    /// The number of the `k`-th ticket (from 0) the step opens; `None` when this
    /// partition holds no such number yet.
    pub fn ticket_number(&self, k: usize) -> Option<u64> {
        match self.shares {
            None => Some(self.next_ticket + k as u64),
            Some(shares) => shares.ticket_number(self.next_ticket, k),
        }
    }
}

/// What started the step.
pub enum Input<'a> {
    /// A member event (already validated and known not to be a duplicate).
    Event(&'a Event),
    /// The member's inactivity timer fell due at `due` (Unix millis).
    Inactive { member: &'a str, due: i64 },
    /// A delayed trigger fell due at `due` (Unix millis): `rule` (an `after` rule),
    /// armed by the member's event `event_id`.
    After {
        member: &'a str,
        rule: &'a str,
        event_id: &'a str,
        due: i64,
    },
    /// One member's share of a global trigger (`phase` or `schedule`) of `rule`.
    Global { member: &'a str, rule: &'a str },
    /// The member's turn in the pass after the inactivity rules changed: rules now
    /// past their deadline in the member's silence fire, and the timer is re-armed.
    SilenceRulesChanged { member: &'a str },
    /// Another member's step credited this one (`credit`, a referral): run in the same
    /// commit group as the step that made it.
    Credit(&'a Credit),
    /// The member's expiry timer fell due at `due` (Unix millis): lots due expire,
    /// `points_expiring` reminders due go out.
    PointsExpiry { member: &'a str, due: i64 },
    /// The member holds a place of a leaderboard period that closed: the board's close
    /// rules reaching its rank run (see `board_close.rs`).
    LeaderboardClose(&'a BoardClose),
}

impl Input<'_> {
    /// What this input is, uniquely among the steps of an installation: the draws of a
    /// step are keyed by it. `now` tells a global occurrence or a silence pass apart
    /// from the next one.
    pub fn identity(&self, now: DateTime<Utc>) -> String {
        match self {
            Input::Event(event) => format!("event\u{1f}{}", event.id),
            Input::Inactive { member, due } => format!("inactive\u{1f}{member}\u{1f}{due}"),
            // One timer per (member, rule, event): the event id makes it unique.
            Input::After {
                member,
                rule,
                event_id,
                ..
            } => format!("after\u{1f}{member}\u{1f}{rule}\u{1f}{event_id}"),
            Input::Global { member, rule } => format!(
                "global\u{1f}{rule}\u{1f}{}\u{1f}{member}",
                now.timestamp_millis()
            ),
            Input::SilenceRulesChanged { member } => {
                format!("silence\u{1f}{member}\u{1f}{}", now.timestamp_millis())
            }
            Input::Credit(credit) => format!("credit\u{1f}{}", credit.identity),
            Input::PointsExpiry { member, due } => format!("expiry\u{1f}{member}\u{1f}{due}"),
            // One place per member per board period.
            Input::LeaderboardClose(close) => format!(
                "leaderboard\u{1f}{}\u{1f}{}\u{1f}{}",
                close.board,
                close.period,
                close.member()
            ),
        }
    }

    pub fn member_id(&self) -> &str {
        match self {
            // A ticket command reaches the engine with its ticket's member filled in
            // by the runner; every other event has one from validation.
            Input::Event(event) => event.member.as_deref().unwrap_or_default(),
            Input::Inactive { member, .. }
            | Input::After { member, .. }
            | Input::Global { member, .. }
            | Input::SilenceRulesChanged { member }
            | Input::PointsExpiry { member, .. } => member,
            Input::Credit(credit) => &credit.member,
            Input::LeaderboardClose(close) => close.member(),
        }
    }
}

/// Runs one step for one member. `member` is the stored state, `None` for a member
/// Rally has not seen yet (created by this step).
///
/// When the rule set carries an explain [`explain::Tap`] for this member, the step is
/// traced on the way and the trace handed to the tap; the outcome is the same.
pub fn step(ctx: &Context<'_>, member: Option<Member>, input: &Input<'_>) -> Outcome {
    let options = ctx
        .rules
        .explain
        .as_deref()
        .and_then(|tap| tap.wants(input.member_id()));
    let (outcome, trace) = run_step(ctx, member, input, options);
    if let (Some(tap), Some(trace)) = (ctx.rules.explain.as_deref(), trace) {
        tap.push(*trace);
    }
    outcome
}

/// The step, traced when `explain` says how.
fn run_step(
    ctx: &Context<'_>,
    member: Option<Member>,
    input: &Input<'_>,
    explain: Option<explain::Options>,
) -> (Outcome, Option<Box<explain::StepTrace>>) {
    let member = member.unwrap_or_else(|| {
        let mut member = Member::new(input.member_id());
        member.created_at = Some(ctx.now);
        member
    });
    // A redemption is judged on the member as the step finds them, and its verdict is
    // part of the event the step's rules see.
    let judged = redeem::judge(ctx, &member, input);
    let (seen, mut redemption) = match judged {
        Some((event, redemption)) => (Some(event), Some(redemption)),
        None => (None, None),
    };
    let seen_input;
    let input = match &seen {
        Some(event) => {
            seen_input = Input::Event(event);
            &seen_input
        }
        None => input,
    };
    let mut run = run::Run::new(ctx, member, input, explain);
    // Measured on the member as the step found them, with their resetting counters
    // started in the step's period (what `Run::new` does first).
    let scores_before = leaderboards::measure_before(ctx.rules, &run.member, ctx.now);
    run.start_lots();
    if let Some(judged) = &mut redemption {
        run.redeem(judged);
    }
    match input {
        Input::Event(event) => run.on_event(event),
        Input::Inactive { due, .. } => run.on_inactive(*due),
        Input::After { rule, event_id, .. } => run.on_after(rule, event_id),
        Input::Global { rule, .. } => run.on_global(rule),
        Input::SilenceRulesChanged { .. } => run.on_silence_rules_changed(),
        Input::Credit(credit) => run.on_credit(credit),
        Input::PointsExpiry { due, .. } => run.on_points_expiry(*due),
        Input::LeaderboardClose(close) => run.on_leaderboard_close(close),
    }
    let (mut outcome, trace) = run.finish();
    if let Some(judged) = redemption {
        outcome.shorts.extend(judged.shorts);
        outcome.redemptions.push(judged.redemption);
    }
    outcome.leaderboards =
        leaderboards::moves(ctx.rules, scores_before, &mut outcome.member, ctx.now);
    (outcome, trace)
}
