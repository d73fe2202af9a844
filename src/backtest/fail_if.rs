//! `--fail-if` thresholds: `METRIC OP VALUE`, for CI to fail a rule change that moves
//! a figure too far. docs/backtest.md lists the metrics ([`metric_names`]).
//!
//! - `OP` is `>`, `>=`, `<` or `<=`.
//! - A signed value compares the change from A to B: `points_awarded>+500` (B − A),
//!   `liability>+5%` (relative to A; from 0 any rise is more than any percentage).
//! - An unsigned value compares B itself (`errors>0`) or, for the counts of
//!   differences (`members_changed_tier`, `rules_removed`, ...), the count
//!   (`members_changed_tier>100`) or its share in percent (`members_changed_tier>5%`
//!   of the members in both runs; `rules_changed>50%` of the rules active in either).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;
use thiserror::Error;

use super::diff::{Change, Difference, RuleChange};

/// Message statuses, each a metric `messages_<status>` (SPEC §2.6).
const STATUSES: [&str; 7] = [
    "sent",
    "deferred",
    "pending",
    "failed",
    "capped",
    "suppressed",
    "held",
];

/// A run-wide figure, in A and in B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Figure {
    Members,
    Firings,
    PointsAwarded,
    PointsDeducted,
    Liability,
    Messages,
    MessagesWith(&'static str),
    TicketsOpened,
    Errors,
}

/// A count of differences between A and B, out of how many could differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Count {
    MembersChanged,
    MembersChangedTier,
    MembersChangedBadges,
    MembersChangedTags,
    MembersChangedPoints,
    RulesAdded,
    RulesRemoved,
    RulesChanged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    Figure(Figure),
    Count(Count),
}

const FIGURES: [(&str, Figure); 8] = [
    ("members", Figure::Members),
    ("firings", Figure::Firings),
    ("points_awarded", Figure::PointsAwarded),
    ("points_deducted", Figure::PointsDeducted),
    ("liability", Figure::Liability),
    ("messages", Figure::Messages),
    ("tickets_opened", Figure::TicketsOpened),
    ("errors", Figure::Errors),
];

const COUNTS: [(&str, Count); 8] = [
    ("members_changed", Count::MembersChanged),
    ("members_changed_tier", Count::MembersChangedTier),
    ("members_changed_badges", Count::MembersChangedBadges),
    ("members_changed_tags", Count::MembersChangedTags),
    ("members_changed_points", Count::MembersChangedPoints),
    ("rules_added", Count::RulesAdded),
    ("rules_removed", Count::RulesRemoved),
    ("rules_changed", Count::RulesChanged),
];

/// Every metric name, in the order docs/backtest.md lists them, for error messages.
pub fn metric_names() -> Vec<String> {
    let figures = FIGURES.iter().map(|(name, _)| name.to_string());
    let statuses = STATUSES.iter().map(|s| format!("messages_{s}"));
    let counts = COUNTS.iter().map(|(name, _)| name.to_string());
    figures.chain(statuses).chain(counts).collect()
}

fn metric(name: &str) -> Option<Metric> {
    if let Some((_, f)) = FIGURES.iter().find(|(n, _)| *n == name) {
        return Some(Metric::Figure(*f));
    }
    if let Some((_, c)) = COUNTS.iter().find(|(n, _)| *n == name) {
        return Some(Metric::Count(*c));
    }
    let status = name.strip_prefix("messages_")?;
    let status = STATUSES.iter().find(|s| **s == status)?;
    Some(Metric::Figure(Figure::MessagesWith(status)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Above,
    AtLeast,
    Below,
    AtMost,
}

impl Op {
    fn holds(self, value: Decimal, bound: Decimal) -> bool {
        match self {
            Op::Above => value > bound,
            Op::AtLeast => value >= bound,
            Op::Below => value < bound,
            Op::AtMost => value <= bound,
        }
    }

    /// A change from 0 has no percentage: a rise is above every bound, a fall below.
    fn holds_unbounded(self, rise: bool) -> bool {
        matches!(
            (self, rise),
            (Op::Above | Op::AtLeast, true) | (Op::Below | Op::AtMost, false)
        )
    }
}

/// What a threshold compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compared {
    /// B − A.
    Delta,
    /// (B − A) / A, in percent.
    Relative,
    /// B itself, or the count of differences.
    Value,
    /// The count of differences as a share, in percent.
    Share,
}

/// One parsed `--fail-if` expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    text: String,
    metric: Metric,
    name: String,
    op: Op,
    compared: Compared,
    bound: Decimal,
}

/// A `--fail-if` expression that does not parse. `column` counts characters from 1.
#[derive(Clone, Debug, Error, PartialEq)]
#[error("--fail-if {text:?}: column {column}: {problem}")]
pub struct ThresholdError {
    pub text: String,
    pub column: usize,
    pub problem: String,
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Threshold, ThresholdError> {
        let error = |at: usize, problem: String| ThresholdError {
            text: text.to_string(),
            column: text[..at].chars().count() + 1,
            problem,
        };
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let name = &text[..name_end];
        if name.is_empty() {
            return Err(error(
                0,
                format!(
                    "expected a metric name, one of: {}",
                    metric_names().join(", ")
                ),
            ));
        }
        let metric = metric(name).ok_or_else(|| {
            let near = metric_names()
                .into_iter()
                .map(|m| (strsim::jaro_winkler(name, &m), m))
                .filter(|(score, _)| *score > 0.85)
                .max_by(|x, y| x.0.total_cmp(&y.0));
            let hint = match near {
                Some((_, m)) => format!(" (did you mean {m:?}?)"),
                None => String::new(),
            };
            error(
                0,
                format!(
                    "no metric {name:?}{hint}; the metrics are: {}",
                    metric_names().join(", ")
                ),
            )
        })?;
        let rest = &text[name_end..];
        let (op, op_len) = [
            (">=", Op::AtLeast),
            ("<=", Op::AtMost),
            (">", Op::Above),
            ("<", Op::Below),
        ]
        .into_iter()
        .find(|(sym, _)| rest.starts_with(sym))
        .map(|(sym, op)| (op, sym.len()))
        .ok_or_else(|| error(name_end, "expected >, >=, < or <= after the metric".into()))?;
        let value_at = name_end + op_len;
        let mut value = &text[value_at..];
        let signed = value.starts_with(['+', '-']);
        let percent = value.ends_with('%');
        if percent {
            value = &value[..value.len() - 1];
        }
        let bound = Decimal::from_str_exact(value).map_err(|_| {
            error(
                value_at,
                format!(
                    "{:?} is not a number: write 500, +500, -500, +10% or 10%",
                    &text[value_at..]
                ),
            )
        })?;
        let compared = match (metric, signed, percent) {
            (Metric::Figure(_), true, false) => Compared::Delta,
            (Metric::Figure(_), true, true) => Compared::Relative,
            (Metric::Figure(_), false, false) => Compared::Value,
            (Metric::Figure(_), false, true) => {
                return Err(error(
                    value_at,
                    format!("a change of {name} in percent is signed: +{value}% for a rise, -{value}% for a fall"),
                ))
            }
            (Metric::Count(_), true, _) => {
                return Err(error(
                    value_at,
                    format!("{name} counts differences already: compare it with a plain number (>{}) or a share (>{}%)", value.trim_start_matches(['+', '-']), value.trim_start_matches(['+', '-'])),
                ))
            }
            (Metric::Count(_), false, false) => Compared::Value,
            (Metric::Count(_), false, true) => Compared::Share,
        };
        Ok(Threshold {
            text: text.to_string(),
            metric,
            name: name.to_string(),
            op,
            compared,
            bound,
        })
    }
}

/// A threshold judged against a difference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The expression as given.
    pub expr: String,
    pub tripped: bool,
    /// What was compared, in words: `points_awarded 100 → 200 (+100, +100%)`.
    pub detail: String,
}

fn figure(diff: &Difference, figure: Figure) -> Change {
    let t = &diff.totals;
    match figure {
        Figure::Members => t.members,
        Figure::Firings => t.firings,
        Figure::PointsAwarded => t.points_awarded,
        Figure::PointsDeducted => t.points_deducted,
        Figure::Liability => t.liability,
        Figure::Messages => t.messages,
        Figure::MessagesWith(status) => t
            .messages_by_status
            .get(status)
            .copied()
            .unwrap_or_default(),
        Figure::TicketsOpened => t.tickets_opened,
        Figure::Errors => t.errors,
    }
}

/// The count of differences and how many could have differed.
fn count(diff: &Difference, count: Count) -> (u64, u64) {
    let m = &diff.members;
    let rules = diff.rules.len() as u64;
    let of_rules = |change| (diff.rules_with(change) as u64, rules);
    match count {
        Count::MembersChanged => (m.changed, m.compared),
        Count::MembersChangedTier => (m.tier.count, m.compared),
        Count::MembersChangedBadges => (m.badges.count, m.compared),
        Count::MembersChangedTags => (m.tags.count, m.compared),
        Count::MembersChangedPoints => (m.points.count, m.compared),
        Count::RulesAdded => of_rules(RuleChange::Added),
        Count::RulesRemoved => of_rules(RuleChange::Removed),
        Count::RulesChanged => of_rules(RuleChange::Changed),
    }
}

struct Signed(Decimal);

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let d = self.0.normalize();
        if d.is_sign_positive() {
            write!(f, "+{d}")
        } else {
            write!(f, "{d}")
        }
    }
}

impl Threshold {
    pub fn judge(&self, diff: &Difference) -> Verdict {
        let (tripped, detail) = match self.metric {
            Metric::Figure(f) => {
                let change = figure(diff, f);
                let tripped = match self.compared {
                    Compared::Delta => self.op.holds(change.delta(), self.bound),
                    Compared::Relative => match change.pct() {
                        Some(pct) => self.op.holds(pct, self.bound),
                        None if change.delta().is_zero() => {
                            self.op.holds(Decimal::ZERO, self.bound)
                        }
                        None => self.op.holds_unbounded(change.delta().is_sign_positive()),
                    },
                    Compared::Value | Compared::Share => self.op.holds(change.b, self.bound),
                };
                let pct = match change.pct() {
                    Some(p) => format!(", {}%", Signed(p.round_dp(2))),
                    None => String::new(),
                };
                let detail = format!(
                    "{} {} → {} ({}{pct})",
                    self.name,
                    change.a.normalize(),
                    change.b.normalize(),
                    Signed(change.delta())
                );
                (tripped, detail)
            }
            Metric::Count(c) => {
                let (n, of) = count(diff, c);
                let share = if of == 0 {
                    Decimal::ZERO
                } else {
                    Decimal::from(n) * Decimal::ONE_HUNDRED / Decimal::from(of)
                };
                let tripped = match self.compared {
                    Compared::Share => self.op.holds(share, self.bound),
                    _ => self.op.holds(Decimal::from(n), self.bound),
                };
                let detail = format!(
                    "{} {n} of {of} ({}%)",
                    self.name,
                    share.round_dp(2).normalize()
                );
                (tripped, detail)
            }
        };
        Verdict {
            expr: self.text.clone(),
            tripped,
            detail,
        }
    }
}
