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

use super::actions::whole_points;
use super::explain::Effect;
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
    pub(super) fn credit(
        &mut self,
        rule: &Rule,
        spec: &crate::rules::Credit,
    ) -> Result<(), Failed> {
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
            from: self.member.id.to_string(),
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
            from: self.member.id.to_string(),
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
        let origin = self.origin();
        credit.identity = format!("{origin}\u{1f}{}", self.credits.len());
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
                        entry.event = credit.event.as_deref().map(super::Name::from);
                    }
                }
                None => self
                    .note(|_| format!("no rule {:?} in the current rules: no points", credit.rule)),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::engine::{step, Context, Input, Outcome};
    use crate::event::{self, AtPolicy};
    use crate::member::Member;
    use crate::rules::{self, RuleSet};

    const RULES: &str = r#"
rules:
  - id: referral-bonus
    trigger: { event: join }
    if: '"referrer" in event.data'
    actions:
      - credit: { member: "event.data.referrer", points: 50, reason: referral, tag: referrer }
      - credit: { member: "event.data.second", badge: helper, cap: false }
  - id: ambassador
    trigger: { milestone: referrals, at: 1 }
    actions:
      - credit: { member: "member.buddy", points: 5 }
"#;

    fn rule_set() -> RuleSet {
        match rules::from_sources(&[("rules.yaml", RULES)], &|_| None) {
            Ok(set) => set,
            Err(errors) => panic!("{errors:?}"),
        }
    }

    fn at() -> DateTime<Utc> {
        "2026-06-01T09:00:00Z".parse().unwrap()
    }

    fn run(rules: &RuleSet, member: Option<Member>, input: &Input<'_>) -> Outcome {
        let budget = BTreeMap::new();
        let rewards = BTreeMap::new();
        let ctx = Context {
            rules,
            now: at(),
            budget_used: &budget,
            rewards: &rewards,
            next_ticket: 1,
            shares: None,
            random_key: crate::script::RandomKey::default(),
        };
        step(&ctx, member, input)
    }

    fn join(data: &str) -> crate::event::Event {
        let line = format!(
            r#"{{"id":"j-1","type":"join","member":"m-new","at":"2026-06-01T09:00:00Z","data":{data}}}"#
        );
        event::parse_line(&line, AtPolicy::Required).unwrap()
    }

    fn credit_to(member: &str, depth: u32) -> Credit {
        Credit {
            member: member.to_string(),
            from: "m-new".to_string(),
            rule: "referral-bonus".to_string(),
            points: 50,
            reason: Some("referral".to_string()),
            daily_cap: true,
            tag: None,
            badge: None,
            referral: true,
            depth,
            event: Some("j-1".to_string()),
            at: at(),
            identity: "event\u{1f}j-1\u{1f}0".to_string(),
        }
    }

    #[test]
    fn a_step_records_its_credits_in_order_and_changes_no_other_member() {
        let rules = rule_set();
        let event = join(r#"{"referrer":"m-ada","second":"m-bo"}"#);
        let outcome = run(&rules, None, &Input::Event(&event));
        let credited: Vec<(&str, &str, i64, bool)> = outcome
            .credits
            .iter()
            .map(|c| (c.member.as_str(), c.rule.as_str(), c.points, c.referral))
            .collect();
        // The built-in referral first (before any rule), then the actions in order.
        assert_eq!(
            credited,
            [
                ("m-ada", REFERRAL_RULE, 0, true),
                ("m-ada", "referral-bonus", 50, false),
                ("m-bo", "referral-bonus", 0, false),
            ]
        );
        assert_eq!(outcome.credits[1].tag.as_deref(), Some("referrer"));
        assert!(!outcome.credits[2].daily_cap);
        assert!(outcome.credits.iter().all(|c| c.depth == 1));
        let identities: std::collections::BTreeSet<_> =
            outcome.credits.iter().map(|c| &c.identity).collect();
        assert_eq!(identities.len(), 3, "each credit keys its own draws");
        assert_eq!(outcome.member.points, 0);
        assert!(outcome.ledger.is_empty());
    }

    #[test]
    fn a_rule_whose_credit_fails_records_no_credit_at_all() {
        let rules = rule_set();
        // `second` is missing: the second credit fails, so the first is withdrawn.
        let event = join(r#"{"referrer":"m-ada"}"#);
        let outcome = run(&rules, None, &Input::Event(&event));
        assert_eq!(outcome.credits.len(), 1, "only the built-in referral");
        assert!(outcome.credits[0].referral);
        assert_eq!(outcome.failures.len(), 1);
        assert!(
            outcome.failures[0].error.contains("must give a member id"),
            "{:?}",
            outcome.failures
        );
    }

    #[test]
    fn the_credited_step_awards_counts_the_referral_and_runs_its_milestones() {
        let rules = rule_set();
        let mut ada = Member::new("m-ada");
        ada.attrs.insert("buddy".into(), "m-new".into());
        let credit = credit_to("m-ada", 1);
        let outcome = run(&rules, Some(ada), &Input::Credit(&credit));
        assert_eq!(outcome.member.points, 50);
        assert_eq!(outcome.member.counter(REFERRALS), Decimal::ONE);
        assert_eq!(outcome.ledger.len(), 1);
        assert_eq!(outcome.ledger[0].from.as_deref(), Some("m-new"));
        assert_eq!(outcome.ledger[0].reason, "referral");
        assert_eq!(outcome.ledger[0].event.as_deref(), Some("j-1"));
        // The milestone's rule credits back: the one bounce allowed.
        assert_eq!(outcome.firings.len(), 1);
        assert_eq!(outcome.credits.len(), 1);
        assert_eq!(outcome.credits[0].member, "m-new");
        assert_eq!(outcome.credits[0].depth, 2);
    }

    #[test]
    fn a_credit_from_a_step_credited_back_is_refused() {
        let rules = rule_set();
        let mut ada = Member::new("m-ada");
        ada.attrs.insert("buddy".into(), "m-new".into());
        let credit = credit_to("m-ada", MAX_CREDIT_DEPTH);
        let outcome = run(&rules, Some(ada), &Input::Credit(&credit));
        assert_eq!(outcome.member.points, 50, "the credit itself still lands");
        assert!(outcome.credits.is_empty());
        assert!(outcome.firings.is_empty());
        assert_eq!(outcome.failures.len(), 1);
        assert_eq!(outcome.failures[0].rule, "ambassador");
        assert!(outcome.failures[0].error.contains("bounce back only once"));
    }

    #[test]
    fn an_id_must_be_a_usable_member_id_other_than_ones_own() {
        let own = "m-1";
        assert_eq!(credited_id(&"m-2".into(), own).ok().as_deref(), Some("m-2"));
        assert_eq!(credited_id(&42.into(), own).ok().as_deref(), Some("42"));
        for bad in [
            Value::Null,
            "".into(),
            "  ".into(),
            "m-1".into(),
            "a\u{7}b".into(),
            "x".repeat(129).into(),
            serde_json::json!(["m-2"]),
        ] {
            assert!(credited_id(&bad, own).is_err(), "{bad}");
        }
    }
}
