//! `rally explain` (issue 13 item 6): for one step of one member, every rule that was
//! considered and what decided it.
//!
//! The trace is opt-in and recorded by the step itself as it decides (see `record`),
//! so it cannot disagree with what the step did: there is no second implementation of
//! the rules to drift from the first. When no trace is asked for, the step pays one
//! `Option` test at each decision and allocates nothing.
//!
//! Three ways in:
//! - [`explain_step`]: a step with a full [`Context`], returning the outcome and its
//!   trace (what a caller with the runner's view of the world uses);
//! - [`replay_step`]: a step from a member's state and an input alone — what the
//!   data-directory and HTTP forms use to re-run a member's journal. What such a
//!   replay cannot know (other members' awards against a campaign budget, the ticket
//!   counter) is stated in the trace's `caveats`;
//! - a [`Tap`] installed on a rule set (`RuleSet::explain`): every step the runner
//!   takes for the tapped member is traced on the way and collected, which is how
//!   `rally sim --explain` explains a whole simulation without the runner knowing.
//!
//! The JSON form (serde, below) is a documented schema: docs/explain.md.

mod record;
pub mod render;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::outcome::{utc, Outcome, RuleFailure};
use super::{Context, Input};
use crate::member::Member;
use crate::rules::RuleSet;

pub(super) use record::{describe_threshold, Recorder};

/// The version of the JSON schema below; bumped when a field changes meaning.
pub const SCHEMA: u32 = 1;

/// What one step considered and decided, for one member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTrace {
    pub member: String,
    /// The step's time ("now" for every rule of it).
    #[serde(with = "utc")]
    pub at: DateTime<Utc>,
    pub input: InputView,
    /// Points and tier before and after the step.
    pub before: Glance,
    pub after: Glance,
    /// What Rally did itself before any rule ran (counters, streaks, activity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builtin: Vec<String>,
    /// Every rule considered, in the order considered (a rule fired twice by two
    /// milestone marks appears twice).
    pub rules: Vec<RuleTrace>,
    pub not_triggered: NotTriggered,
    /// Step-level remarks: a timer that was superseded, a member outside a global
    /// rule's reach, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Failures of no rule considered here: a custom counter's expression, the tier
    /// measure, a profile merge over the size bounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RuleFailure>,
    /// What this trace could not reconstruct exactly (see [`replay_step`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caveats: Vec<String>,
}

/// What started the step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputView {
    Event {
        id: String,
        #[serde(rename = "type")]
        event_type: String,
        /// The event's own `at` (the step may run later: a late event).
        #[serde(with = "utc")]
        event_at: DateTime<Utc>,
    },
    /// The member's inactivity timer, armed for `due`.
    Inactive {
        #[serde(with = "utc")]
        due: DateTime<Utc>,
    },
    /// A delayed trigger (`after` rule) armed by the member's event `event`.
    After {
        rule: String,
        event: String,
        #[serde(with = "utc")]
        due: DateTime<Utc>,
    },
    /// The member's share of a `phase` or `schedule` rule.
    Global { rule: String },
    /// The pass after the inactivity rules changed.
    SilenceRulesChanged,
    /// Another member's step credited this one.
    Credit { from: String, rule: String },
    /// The member's expiry timer (`settings.points.expire`), armed for `due`.
    PointsExpiry {
        #[serde(with = "utc")]
        due: DateTime<Utc>,
    },
    /// The member's place in a leaderboard period that closed.
    LeaderboardClose {
        board: String,
        period: String,
        rank: usize,
        score: String,
    },
}

/// A member's points and tier at one instant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Glance {
    pub points: i64,
    pub tier: Option<String>,
}

/// Rules this step did not consider at all: their trigger is not this input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NotTriggered {
    pub count: usize,
    /// Each of them, only when all rules were asked for (`--explain-all`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Untriggered>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Untriggered {
    pub rule: String,
    pub at: String,
    /// The rule's trigger as written, e.g. `event: purchase`, `milestone: checkin_streak at 7`.
    pub trigger: String,
}

/// One rule considered once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleTrace {
    pub rule: String,
    /// `file:line` of the rule.
    pub at: String,
    pub why: Why,
    /// The checks made, in order; the first that did not pass decided.
    pub checks: Vec<Check>,
    /// What its actions did, in order (kept for a rule that then failed: see `decision`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
    pub decision: Decision,
}

/// Why a rule was considered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Why {
    /// The event's type is one of the rule's.
    Event {
        #[serde(rename = "type")]
        event_type: String,
    },
    /// A counter the milestone watches rose. `mark` is the mark this consideration
    /// pays (1 for `at`, the multiple for `every`); none when no mark was reached.
    Milestone {
        counter: String,
        from: String,
        to: String,
        threshold: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mark: Option<u64>,
        /// The rule whose effects raised the counter; none for the event itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
    /// The member's tier changed.
    Tier {
        to: String,
        up: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
    /// The member's silence reached the rule's duration at `deadline`.
    Inactive {
        after: String,
        #[serde(with = "utc")]
        deadline: DateTime<Utc>,
    },
    /// The member came back after a silence at least this long.
    Returned { after: String },
    /// `wait` passed since the member's event `event`.
    After { wait: String, event: String },
    /// The campaign entered the phase.
    Phase { campaign: String, enters: String },
    /// An occurrence of the rule's schedule.
    Schedule,
    /// A lot of `amount` points expires at `due`, within the rule's `before`.
    PointsExpiring {
        before: String,
        amount: i64,
        #[serde(with = "utc")]
        due: DateTime<Utc>,
    },
    /// The board's period closed with the member at `rank`, within the rule's `top`.
    LeaderboardClose {
        board: String,
        period: String,
        rank: usize,
    },
}

/// One decisive check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// `during:` the campaign's phase now (none between runs) against the wanted ones
    /// (empty: any phase).
    Phase {
        campaign: String,
        phase: Option<String>,
        wanted: Vec<String>,
        pass: bool,
    },
    /// `limit:` the period counted in (none when the campaign has no current run),
    /// firings used in it and left.
    Limit {
        times: u32,
        per: String,
        period: Option<String>,
        used: u32,
        left: u32,
        pass: bool,
    },
    /// `if:` the expression, its value (none when it failed) and what it read.
    If {
        expr: String,
        value: Option<bool>,
        reads: Vec<Read>,
        pass: bool,
    },
    /// A global rule's audience: members who left, then the audience expression.
    Audience {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expr: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<bool>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reads: Vec<Read>,
        /// The member left and the audience does not include those who did.
        left: bool,
        pass: bool,
    },
    /// A milestone's counter rose without reaching a mark not yet paid: `reached`
    /// when it was past the mark already (an `at` mark pays once; an `every` mark
    /// needs the next multiple), false when it is still below it.
    Threshold { reached: bool, pass: bool },
    /// The bound on cascades and firings per step (a loop).
    Loop {
        firings: u32,
        depth: u32,
        pass: bool,
    },
}

impl Check {
    pub fn passed(&self) -> bool {
        match self {
            Check::Phase { pass, .. }
            | Check::Limit { pass, .. }
            | Check::If { pass, .. }
            | Check::Audience { pass, .. }
            | Check::Threshold { pass, .. }
            | Check::Loop { pass, .. } => *pass,
        }
    }
}

/// A value an expression read, as it was when the expression ran (`null` for what
/// is missing; none when the path runs through something that is not a map).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Read {
    pub path: String,
    pub value: Option<serde_json::Value>,
}

/// What one action did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// Points asked for and awarded (less when a cap clipped them), with the cap's
    /// state: `daily_cap` or `budget:<campaign>`.
    Points {
        asked: i64,
        awarded: i64,
        balance: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clipped_by: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        caps: Vec<CapState>,
        /// The expression that computed `asked`, when it was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Computed>,
    },
    /// A message queued, and its fate under the messaging policy.
    Message {
        template: String,
        channel: String,
        to: String,
        /// `pending` (goes out now), `deferred`, `capped`, `suppressed`, `failed`.
        status: String,
        #[serde(with = "utc")]
        due: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Ticket {
        id: String,
        policy: String,
        severity: String,
    },
    Tag {
        name: String,
    },
    Untag {
        name: String,
    },
    Badge {
        name: String,
    },
    Set {
        key: String,
        value: serde_json::Value,
    },
}

/// A value computed by an expression, with the values the expression read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Computed {
    pub expr: String,
    pub reads: Vec<Read>,
}

/// A cap an award was measured against: its size, what was used before the award,
/// and the room left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapState {
    /// `daily_cap` (member-local day `period`) or `budget:<campaign>`.
    pub cap: String,
    pub limit: i64,
    pub used: i64,
    pub room: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

/// What became of the rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Decision {
    /// All its actions applied.
    Fired,
    /// A check did not pass (`by` names it: `phase`, `limit`, `if`, `audience`,
    /// `threshold`); nothing applied.
    Skipped { by: String },
    /// Its condition, an action or the loop bound failed at `at`; nothing applied.
    Failed { error: String, at: String },
    /// Not decided (never seen in a finished trace).
    Pending,
}

/// Options of a trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// List every rule not triggered, not only their number.
    pub all: bool,
}

/// Runs one step with a trace: the same outcome [`super::step`] returns, plus what
/// decided it.
pub fn explain_step(
    ctx: &Context<'_>,
    member: Option<Member>,
    input: &Input<'_>,
    options: Options,
) -> (Outcome, StepTrace) {
    let (outcome, trace) = super::run_step(ctx, member, input, Some(options));
    (
        outcome,
        trace.map_or_else(|| empty_trace(ctx, input), |trace| *trace),
    )
}

/// Re-runs one step of a member from the member's state before it (`None` for a
/// member the step created), the input and its time, as the data-directory and HTTP
/// forms do from a member's journal. Campaign budgets are taken as untouched and the
/// ticket counter as 1; where that could matter the trace says so in `caveats`.
pub fn replay_step(
    rules: &RuleSet,
    member: Option<Member>,
    input: &Input<'_>,
    now: DateTime<Utc>,
    options: Options,
) -> (Outcome, StepTrace) {
    let budget_used = BTreeMap::new();
    let ctx = Context {
        rules,
        now,
        budget_used: &budget_used,
        rewards: &Default::default(),
        next_ticket: 1,
        shares: None,
        random_key: Default::default(),
    };
    let (outcome, mut trace) = explain_step(&ctx, member, input, options);
    for campaign in outcome.budget_spent.keys() {
        let budget = rules
            .campaigns
            .iter()
            .find(|c| c.id == *campaign)
            .and_then(|c| c.budget_points);
        if let Some(budget) = budget {
            trace.caveats.push(format!(
                "campaign {campaign} has a budget of {budget} points: what other members \
                 were awarded against it before this step is not part of this member's \
                 journal, so this replay assumed none; the real step may have been clipped \
                 by the budget where this one was not"
            ));
        }
    }
    if !outcome.tickets.is_empty() {
        trace
            .caveats
            .push("ticket numbers in this replay are not the ones the real step gave".to_string());
    }
    if !outcome.redemptions.is_empty() {
        trace.caveats.push(
            "what other members redeemed before this step is not part of this member's \
             journal, so this replay took every reward's stock and codes as untouched; the \
             real redemption's verdict and code are the ones recorded"
                .to_string(),
        );
    }
    (outcome, trace)
}

fn empty_trace(ctx: &Context<'_>, input: &Input<'_>) -> StepTrace {
    StepTrace {
        member: input.member_id().to_string(),
        at: ctx.now,
        input: InputView::of(input, ctx.now),
        before: Glance::default(),
        after: Glance::default(),
        builtin: Vec::new(),
        rules: Vec::new(),
        not_triggered: NotTriggered::default(),
        notes: Vec::new(),
        errors: Vec::new(),
        caveats: Vec::new(),
    }
}

impl InputView {
    pub(super) fn of(input: &Input<'_>, now: DateTime<Utc>) -> Self {
        match input {
            Input::Event(event) => InputView::Event {
                id: event.id.clone(),
                event_type: event.kind.clone(),
                event_at: event.at.map_or(now, |at| at.with_timezone(&Utc)),
            },
            Input::Inactive { due, .. } => InputView::Inactive {
                due: DateTime::from_timestamp_millis(*due).unwrap_or(now),
            },
            Input::After {
                rule,
                event_id,
                due,
                ..
            } => InputView::After {
                rule: rule.to_string(),
                event: event_id.to_string(),
                due: DateTime::from_timestamp_millis(*due).unwrap_or(now),
            },
            Input::Global { rule, .. } => InputView::Global {
                rule: rule.to_string(),
            },
            Input::SilenceRulesChanged { .. } => InputView::SilenceRulesChanged,
            Input::Credit(credit) => InputView::Credit {
                from: credit.from.clone(),
                rule: credit.rule.clone(),
            },
            Input::PointsExpiry { due, .. } => InputView::PointsExpiry {
                due: DateTime::from_timestamp_millis(*due).unwrap_or(now),
            },
            Input::LeaderboardClose(close) => InputView::LeaderboardClose {
                board: close.board.clone(),
                period: close.period.clone(),
                rank: close.rank,
                score: close.score(),
            },
        }
    }
}

/// Collects the traces of every step the runner takes for one member: installed on a
/// rule set (`RuleSet::explain`) by `rally sim --explain`, never by the daemon. The
/// lock is only ever taken by steps of a tapped rule set.
#[derive(Debug)]
pub struct Tap {
    /// `None`: every member (what tests use to trace every step of a run).
    member: Option<String>,
    options: Options,
    steps: Mutex<Vec<StepTrace>>,
}

impl Tap {
    pub fn new(member: impl Into<String>, options: Options) -> Self {
        Tap {
            member: Some(member.into()),
            options,
            steps: Mutex::new(Vec::new()),
        }
    }

    /// A tap that traces the steps of every member.
    pub fn every_member(options: Options) -> Self {
        Tap {
            member: None,
            options,
            steps: Mutex::new(Vec::new()),
        }
    }

    /// The options of the traces, when a step for `member` should be traced.
    pub(super) fn wants(&self, member: &str) -> Option<Options> {
        match &self.member {
            Some(tapped) if tapped != member => None,
            _ => Some(self.options),
        }
    }

    pub(super) fn push(&self, trace: StepTrace) {
        // A poisoned lock only means another step panicked mid-push: the traces
        // already collected are still whole.
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        steps.push(trace);
    }

    /// The traces collected so far, in step order; the tap starts afresh.
    pub fn take(&self) -> Vec<StepTrace> {
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *steps)
    }
}

/// The JSON document of a member's explained steps (`--explain-json`, and what the
/// HTTP form returns): `{ "schema": 1, "member": .., "steps": [..] }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub schema: u32,
    pub member: String,
    pub steps: Vec<StepTrace>,
}

impl Explanation {
    pub fn new(member: impl Into<String>, steps: Vec<StepTrace>) -> Self {
        Explanation {
            schema: SCHEMA,
            member: member.into(),
            steps,
        }
    }
}
