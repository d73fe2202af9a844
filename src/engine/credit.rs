//! Effects on another member: a `credit` action, and the built-in `referrals`
//! counter (a first `join` with `data.referrer`).
//!
//! The step stays per member: a credit is only *recorded* in the outcome
//! ([`Outcome::credits`](super::Outcome)). The runner then runs the credited member's
//! own step with [`Input::Credit`](super::Input) in the same commit group, so both
//! members change or neither does. That step applies the points, tag and badge, counts
//! the referral, and runs the credited member's milestones and tier changes — whose
//! rules may credit again.
//!
//! Invariants:
//! - A credit may bounce back once: the originating step is depth 0, the credited
//!   member's step depth 1, a credit made there runs at depth 2, and a rule that
//!   would credit from depth 2 fails (all or nothing, reported like any rule failure).
//!   So no chain of rules crediting each other can run away.
//! - Credits run in the order they were made (action order, rule order), depth first.
//! - Self-credit and ids that are empty, too long or hold control characters fail
//!   the rule; an id Rally has not seen creates that member, as an event would.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::explain::Effect;
use super::actions::whole_points;
use super::run::{Failed, Run};
use crate::event::Event;
use crate::money::Decimal;
use crate::rules::{Amount, Rule};

/// How deep a chain of credits may go: the credited member (1), and one credit back
/// from there (2).
pub const MAX_CREDIT_DEPTH: u32 = 2;
/// The built-in counter of members who joined naming this one as `data.referrer`.
pub const REFERRALS: &str = "referrals";
/// The rule id a built-in referral is recorded under (real rule ids cannot hold
/// parentheses).
pub const REFERRAL_RULE: &str = "(referral)";
/// Member ids are at most this long (as events require).
const MAX_MEMBER_ID: usize = 128;

/// Something one member's step gives another, for the runner to run as the credited
/// member's step.
#[derive(Clone, Debug, PartialEq)]
pub struct Credit {
    /// Who is credited.
    pub member: String,
    /// Whose step made the credit.
    pub from: String,
    /// The rule that made it, or [`REFERRAL_RULE`].
    pub rule: String,
    /// Points asked for (0: none).
    pub points: i64,
    pub reason: Option<String>,
    /// Whether the credited member's daily cap applies (`cap: false` turns it off).
    pub daily_cap: bool,
    pub tag: Option<String>,
    pub badge: Option<String>,
    /// Counts one on the credited member's `referrals`.
    pub referral: bool,
    /// 1 for a credit made by an event's (or timer's) step, 2 for one made back.
    pub depth: u32,
    /// The event that started the chain, if an event did.
    pub event: Option<String>,
    /// The crediting step's time: the credited step runs at it.
    pub at: DateTime<Utc>,
    /// Unique among the installation's steps: the crediting step's identity and the
    /// credit's place in it. The credited step's draws are keyed by it.
    pub identity: String,
}

impl Run<'_> {
    /// A `credit` action: evaluated now, against this member; applied by the runner.
    pub(super) fn credit(&mut self, rule: &Rule, spec: &crate::rules::Credit) -> Result<(), Failed> {
        let sandbox = self.rules().sandbox.clone();
        let value = sandbox
            .eval_value(&spec.member, self.bindings())
            .map_err(|e| Failed::script(e, &spec.member))?;
        let member = credited_id(&value, &self.member.id)?;
        if self.credit_depth + 1 > MAX_CREDIT_DEPTH {
            return Err(Failed::new(format!(
                "credit to {member:?} refused: this step was itself credited by a credit \
                 made back, and a credit may bounce back only once"
            )));
        }
        let points = match &spec.points {
            None => 0,
            Some(Amount::Fixed(n)) => whole_points(*n)?,
            Some(Amount::Expr(expr)) => {
                let n = sandbox
                    .eval_number(expr, self.bindings())
                    .map_err(|e| Failed::script(e, expr))?;
                whole_points(n)?
            }
        };
        if points < 0 {
            return Err(Failed::new(format!(
                "credit to {member:?} of {points} points refused: a credit cannot take points \
                 from another member"
            )));
        }
        self.push_credit(Credit {
            member,
            from: self.member.id.clone(),
            rule: rule.id.clone(),
            points,
            reason: spec.reason.clone(),
            daily_cap: spec.daily_cap,
            tag: spec.tag.clone(),
            badge: spec.badge.clone(),
            referral: false,
            depth: self.credit_depth + 1,
            event: self.event.map(|e| e.id.clone()),
            at: self.now(),
            identity: String::new(),
        });
        Ok(())
    }

    /// The built-in referral: a member's first `join` naming another member as
    /// `data.referrer` counts one on that member's `referrals`. A referrer that is no
    /// usable id (or the member themself) is ignored, as any unknown data is.
    pub(super) fn refer(&mut self, event: &Event, first_join: bool) {
        if !first_join || event.kind != "join" {
            return;
        }
        let Some(value) = event.data.get("referrer") else {
            return;
        };
        let Ok(member) = credited_id(value, &self.member.id) else {
            return;
        };
        self.push_credit(Credit {
            member,
            from: self.member.id.clone(),
            rule: REFERRAL_RULE.to_string(),
            points: 0,
            reason: None,
            daily_cap: true,
            tag: None,
            badge: None,
            referral: true,
            depth: 1,
            event: Some(event.id.clone()),
            at: self.now(),
            identity: String::new(),
        });
    }

    fn push_credit(&mut self, mut credit: Credit) {
        credit.identity = format!("{}\u{1f}{}", self.origin, self.credits.len());
        self.credits.push(credit);
    }

    /// The credited member's step: the referral counted, the points, tag and badge
    /// given, then the milestones and tier changes they caused, as after an event.
    pub(super) fn on_credit(&mut self, credit: &Credit) {
        self.place_on_ladder();
        if credit.referral {
            self.member.add_to_counter(REFERRALS, Decimal::ONE);
        }
        if credit.points > 0 {
            let rules = self.rules();
            // The crediting rule, for its campaign budget: the same rule set runs both
            // steps, so it is there.
            match rules.rules.iter().find(|r| r.id == credit.rule) {
                Some(rule) => {
                    let ledger_len = self.ledger.len();
                    if let Err(failed) = self.award(
                        rule,
                        credit.points,
                        credit.reason.as_deref(),
                        credit.daily_cap,
                    ) {
                        self.fail(rule, failed);
                    }
                    for entry in &mut self.ledger[ledger_len..] {
                        entry.from = Some(credit.from.clone());
                        entry.event.clone_from(&credit.event);
                    }
                }
                None => self.note(|_| {
                    format!("no rule {:?} in the current rules: no points", credit.rule)
                }),
            }
        }
        if let Some(name) = &credit.tag {
            self.member.tags.insert(name.clone());
            self.effect(|_| Effect::Tag { name: name.clone() });
        }
        if let Some(name) = &credit.badge {
            if !self.member.badges.iter().any(|b| b == name) {
                self.member.badges.push(name.clone());
            }
            self.effect(|_| Effect::Badge { name: name.clone() });
        }
        self.member_changed();
        self.detect(1, None);
        self.drain();
    }
}

/// The credited member's id, as an expression computed it: a non-empty string (a
/// number is taken as its digits), not the crediting member's own.
fn credited_id(value: &Value, own: &str) -> Result<String, Failed> {
    let id = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(Failed::new(format!(
                "credit: \"member\" must give a member id, found {}",
                kind(other)
            )))
        }
    };
    if id.trim().is_empty() {
        return Err(Failed::new(
            "credit: \"member\" gave an empty member id; nothing credited",
        ));
    }
    if id.chars().count() > MAX_MEMBER_ID || id.chars().any(char::is_control) {
        return Err(Failed::new(format!(
            "credit: {id:?} is not a member id (at most {MAX_MEMBER_ID} characters, no control characters)"
        )));
    }
    if id == own {
        return Err(Failed::new(format!(
            "credit: a member cannot credit themself ({id:?})"
        )));
    }
    Ok(id)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (is the field there?)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}
