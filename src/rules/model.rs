//! The compiled rule set: what the engine runs. Every reference here is resolved, every
//! expression compiled, every duration and cron parsed — a step never parses anything.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Duration, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;

use crate::cronspec::CronSpec;
use crate::localtime::Period;
use crate::money::Decimal;
use crate::script::{Expr, Sandbox};

/// Where something was written: `path:line:col`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourcePos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A whole, valid rule set. Built by `rules::load`; swapped in whole on reload.
pub struct RuleSet {
    /// A short hash of every file's path and content: recorded with each firing.
    pub version: String,
    /// Files that make up the set, relative to the rules directory.
    pub files: Vec<PathBuf>,
    /// The text of every file read to build the set (rule files, scripts, template
    /// bodies) as read, before `${NAME}` substitution: what the journal records so
    /// the set can be built again (`rally replay`).
    pub sources: Arc<BTreeMap<PathBuf, Vec<u8>>>,
    pub settings: Settings,
    pub tiers: Option<Tiers>,
    pub counters: Vec<CounterDef>,
    pub templates: BTreeMap<String, Template>,
    pub channels: BTreeMap<String, Channel>,
    pub escalations: BTreeMap<String, EscalationPolicy>,
    pub campaigns: Vec<Campaign>,
    /// The rewards catalog, in the order written.
    pub rewards: Vec<crate::rewards::Reward>,
    /// `leaderboards:`, in the order written (file path, then position).
    pub leaderboards: Vec<Leaderboard>,
    /// Enabled rules in run order: priority (higher first), then file path, then position.
    pub rules: Vec<Rule>,
    pub index: RuleIndex,
    /// The Rhai engine every expression and script in this set was compiled for.
    pub sandbox: Arc<Sandbox>,
    /// Every template (and webhook body template), compiled.
    pub messages: Arc<crate::messaging::Templates>,
    /// What the set's expressions and scripts read of their bindings: all a step's
    /// bindings build.
    pub reads: Arc<crate::script::Reads>,
    /// Set only by `rally sim --explain` on its own copy of the rules: traces every
    /// step of one member (see `engine::explain`). `None` everywhere else.
    pub explain: Option<Arc<crate::engine::explain::Tap>>,
}

/// Rules grouped by what can trigger them (indexes into `RuleSet::rules`, in run order),
/// so the cost of an event does not grow with rules that cannot match it. Nothing here
/// is a hash map: whatever a step iterates has one order in every process.
#[derive(Clone, Debug, Default)]
pub struct RuleIndex {
    pub by_event_type: BTreeMap<String, Vec<usize>>,
    /// Every counter some milestone watches, sorted, each once: the engine compares
    /// them with what it last saw after every change to the member.
    pub milestone_counters: Vec<String>,
    /// Milestone rules in run order, each with the position of its counter in
    /// `milestone_counters`. Milestones crossed by one change run in this order,
    /// whichever counters they watch.
    pub milestones: Vec<(usize, usize)>,
    pub tier: Vec<usize>,
    pub inactive: Vec<usize>,
    pub returned: Vec<usize>,
    /// `after` rules by the event types that arm them, in run order.
    pub after_by_event_type: BTreeMap<String, Vec<usize>>,
    pub phase: Vec<usize>,
    pub schedule: Vec<usize>,
    /// `points_expiring` rules in run order.
    pub points_expiring: Vec<usize>,
    /// Leaderboard close rules by board, in run order.
    pub leaderboard_close: BTreeMap<String, Vec<usize>>,
}

pub struct Settings {
    pub timezone: Tz,
    pub activity: Activity,
    pub daily_cap: Option<i64>,
    /// `settings.points.expire`: `None` keeps points for good.
    pub points_expiry: Option<crate::expiry::PointsExpiry>,
    pub messaging: MessagingPolicy,
    pub retention: Retention,
    /// `settings.metrics`: how the community report counts.
    pub metrics: crate::metrics::MetricsSettings,
}

/// `settings.retention`: how long the daemon keeps records before removing them in
/// the background. `None` keeps them for good (the default: removing records is not
/// something an upgrade should start doing on its own) — except event ids, which are
/// what makes a re-sent event a duplicate and are kept for a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retention {
    /// Messages in a final status (`sent`, `failed`, `suppressed`, `capped`), counted
    /// from when they reached it. Messages that may still go out are always kept.
    pub messages: Option<Duration>,
    /// Ledger entries and rule firings, counted from the step that recorded them.
    /// Balances, counters and tiers live on the member and are not affected.
    pub history: Option<Duration>,
    /// Event journal entries, counted from their step. Rule sets armed with their
    /// files are kept (they are few; a replay needs them).
    pub journal: Option<Duration>,
    /// The de-duplication window: the ids of applied events, counted from each
    /// event's `at`; an event older than this before the clock is refused, since it
    /// can no longer be told from a duplicate ([`crate::store::dedup`]).
    pub event_ids: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            messages: None,
            history: None,
            journal: None,
            event_ids: crate::store::dedup::DEFAULT_WINDOW,
        }
    }
}

/// Which event types count as activity (set `last_active`, re-arm inactivity).
#[derive(Clone, Debug, PartialEq)]
pub enum Activity {
    /// Every type except `leave`, `unsubscribe` and `rally.*`.
    Default,
    Only(foldhash::HashSet<String>),
}

impl Activity {
    pub fn includes(&self, event_type: &str) -> bool {
        match self {
            Activity::Default => {
                !matches!(event_type, "leave" | "unsubscribe") && !event_type.starts_with("rally.")
            }
            Activity::Only(types) => types.contains(event_type),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessagingPolicy {
    /// Member-local `(start, end)`; may wrap midnight (`22:00-08:00`).
    pub quiet_hours: Option<(NaiveTime, NaiveTime)>,
    pub max_per_day: Option<u32>,
}

pub struct Tiers {
    pub by: Measure,
    /// Ascending by `from`; the first starts the ladder.
    pub levels: Vec<TierLevel>,
}

/// What a tier ladder or a counter increment is computed from.
pub enum Measure {
    Counter(String),
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TierLevel {
    pub name: String,
    /// Exact, like the counters it is compared with.
    pub from: Decimal,
}

pub struct CounterDef {
    pub id: String,
    pub on: Vec<String>,
    pub add: Amount,
    /// `None` = never resets.
    pub reset: Option<Period>,
    pub at: SourcePos,
}

/// A `leaderboards:` entry: members ranked by what they gained of `by` within each
/// `period` (local to `settings.timezone`), the first `size` shown.
pub struct Leaderboard {
    pub id: String,
    pub by: Measure,
    /// Day, Week or Month; never `Ever` (a board always has periods).
    pub period: Period,
    /// How many ranks a board shows and keeps per period.
    pub size: usize,
    pub at: SourcePos,
}

/// A number as written (exactly: `0.1` is one tenth), or a Rhai expression computing
/// one.
pub enum Amount {
    Fixed(Decimal),
    Expr(Expr),
}

pub struct Template {
    pub id: String,
    pub subject: String,
    pub body: String,
    /// Bodies from `.html`/`.htm` files are auto-escaped when rendered.
    pub html: bool,
    pub at: SourcePos,
}

pub struct Channel {
    pub id: String,
    pub kind: ChannelKind,
    /// How long a failing message on this channel keeps being retried (`retry:`).
    pub retry: Retry,
    pub at: SourcePos,
}

/// A channel's `retry: { for: 24h, max_backoff: 1h }`. The defaults ride out a
/// relay's day-long outage: a message fails only after a whole day of trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Retries stop this long after the first attempt; the message is then `failed`.
    pub for_: Duration,
    /// The wait between two attempts never exceeds this.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            for_: Duration::hours(24),
            max_backoff: Duration::hours(1),
        }
    }
}

pub enum ChannelKind {
    Smtp(SmtpChannel),
    Webhook(WebhookChannel),
    Log,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tls {
    Starttls,
    Tls,
    None,
}

pub struct SmtpChannel {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub timeout: Duration,
}

pub struct WebhookChannel {
    pub url: String,
    /// A template for the JSON body; `None` sends `{"subject", "body", "to", ...}`.
    pub body: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub timeout: Duration,
}

pub struct EscalationPolicy {
    pub id: String,
    pub levels: Vec<EscalationLevel>,
    pub at: SourcePos,
}

pub struct EscalationLevel {
    pub channel: String,
    pub to: String,
    /// Time to acknowledge before climbing; `None` on the last level.
    pub within: Option<Duration>,
    pub template: Option<String>,
}

pub struct Campaign {
    pub id: String,
    pub timezone: Tz,
    /// In the order written; absolute starts are strictly increasing.
    pub phases: Vec<Phase>,
    pub end: Option<NaiveDateTime>,
    pub budget_points: Option<i64>,
    pub at: SourcePos,
}

pub struct Phase {
    pub name: String,
    pub start: PhaseStart,
}

// Built once per rule set and never copied: the size of a cron schedule is no cost.
#[allow(clippy::large_enum_variant)]
pub enum PhaseStart {
    /// A local wall-clock time in the campaign's zone.
    At(NaiveDateTime),
    /// Every occurrence of a cron expression in the campaign's zone.
    Cron(CronSpec),
}

pub struct Rule {
    pub id: String,
    pub description: Option<String>,
    pub priority: i64,
    pub trigger: Trigger,
    pub condition: Option<Expr>,
    pub during: Option<During>,
    pub limit: Option<Limit>,
    pub audience: Option<Audience>,
    pub catch_up: CatchUp,
    /// `draw: { winners: N }` on a global rule: only N drawn members get the actions.
    pub draw: Option<Draw>,
    pub actions: Vec<Action>,
    /// Where the rule starts (its `id` line).
    pub at: SourcePos,
}

// Built once per rule set and never copied: the size of a cron schedule is no cost.
#[allow(clippy::large_enum_variant)]
pub enum Trigger {
    Event(Vec<String>),
    Milestone {
        counter: String,
        threshold: Threshold,
    },
    Inactive(Duration),
    Returned(Duration),
    /// `after: { event: join, wait: 3d }`: once per matching event, `wait` after the
    /// step that applied it (a durable per-member timer; SPEC §2.2).
    After {
        events: Vec<String>,
        wait: Duration,
    },
    Tier(TierChange),
    Phase {
        campaign: String,
        enters: String,
    },
    Schedule(CronSpec),
    /// `points_expiring: 30d`: once per lot of points, that long before it expires
    /// (the member's expiry timer; `settings.points.expire`).
    PointsExpiring(Duration),
    /// `leaderboard: top_posters, closes: true, top: 3`: at the close of each period of
    /// the board, once for each of its first `top` places, in rank order (see
    /// `runner::board_close`).
    LeaderboardClose {
        board: String,
        top: usize,
    },
}

impl Trigger {
    /// The trigger's kind as recorded in firings.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Event(_) => "event",
            Trigger::Milestone { .. } => "milestone",
            Trigger::Inactive(_) => "inactive",
            Trigger::Returned(_) => "returned",
            Trigger::After { .. } => "after",
            Trigger::Tier(_) => "tier",
            Trigger::Phase { .. } => "phase",
            Trigger::Schedule(_) => "schedule",
            Trigger::PointsExpiring(_) => "points_expiring",
            Trigger::LeaderboardClose { .. } => "leaderboard",
        }
    }
}

/// A milestone's `at` or `every`: exact, and greater than zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    At(Decimal),
    Every(Decimal),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TierChange {
    Named(String),
    Up,
    Down,
}

pub struct During {
    pub campaign: String,
    pub phases: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitPer {
    Day,
    Week,
    Month,
    Campaign,
    Ever,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub times: u32,
    pub per: LimitPer,
}

/// Whom a global trigger (`schedule`, `phase`) runs for.
pub struct Audience {
    /// `None` for `all`: every member.
    pub condition: Option<Expr>,
    /// Members who left are skipped unless the rule asks for them
    /// (`audience: { include_left: true }`).
    pub include_left: bool,
}

/// A global rule's draw (`draw: { winners: N }`): of the members the rule would fire
/// for at an occurrence, exactly `winners` (all of them if fewer) are drawn and get
/// the actions; see `runner/draw.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    /// At least 1, at most [`crate::rules::sections::draw::MAX_WINNERS`].
    pub winners: u32,
}

/// What a `schedule` rule does with occurrences missed while Rally was down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CatchUp {
    #[default]
    All,
    Latest,
    Skip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Low,
    Normal,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Normal => "normal",
            Severity::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "low" => Some(Severity::Low),
            "normal" => Some(Severity::Normal),
            "high" => Some(Severity::High),
            _ => None,
        }
    }
}

/// One value of a `set` action.
pub enum SetValue {
    Literal(serde_json::Value),
    Expr(Expr),
}

/// A `send.to` as written: a template (`"{{ member.manager_email }}"`) or a plain
/// address, compiled into the rule set's [`crate::messaging::Templates`] under `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub text: String,
    /// Where the text starts in the rule file; also names the compiled template.
    pub at: SourcePos,
}

pub enum Action {
    Points {
        amount: Amount,
        reason: Option<String>,
        /// `cap: false`: `settings.points.daily_cap` does not apply to this award (a
        /// campaign budget still does). For points an operator promised outright — a
        /// redemption refund, a contest prize — that a busy day must not eat.
        daily_cap: bool,
    },
    Tag(String),
    Untag(String),
    Badge(String),
    Set(Vec<(String, SetValue)>),
    Send {
        template: String,
        channel: String,
        /// Rendered like the template, with the same scope.
        to: Option<Address>,
        /// `kind: transactional`: not marketing (a redemption code, a receipt), so
        /// consent, quiet hours and `max_per_day` do not apply and it counts against
        /// no cap. `false` (`kind: marketing`) is the default.
        transactional: bool,
    },
    Escalate {
        policy: String,
        severity: Severity,
        summary: String,
    },
    Script(Expr),
    /// `credit:`: points, a tag or a badge for another member, run as that member's
    /// own step in the same commit (see `engine::credit`).
    Credit(Credit),
}

/// A `credit` action: whom (an expression, usually `event.data.referrer`) and what.
pub struct Credit {
    /// Evaluates to the credited member's id.
    pub member: Expr,
    /// Points for the credited member (`None`: none), never negative: a rule takes
    /// points from its own member only.
    pub points: Option<Amount>,
    /// The ledger reason on the credited member; the rule id when left out.
    pub reason: Option<String>,
    /// `cap: false`: the credited member's daily cap does not apply.
    pub daily_cap: bool,
    pub tag: Option<String>,
    pub badge: Option<String>,
}
