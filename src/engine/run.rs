//! One step in progress: the working member, what it produced so far, and running a
//! rule all-or-nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use smallvec::SmallVec;

use super::cascade::{Queue, Watch};
use super::explain::{Check, Options, Recorder};
use super::outcome::{Firing, LedgerEntry, Name, Outcome, RuleFailure};
use super::snapshot::Snapshot;
use super::{Context, Input};
use crate::event::Event;
use crate::localtime::{self, Period};
use crate::member::Member;
use crate::rules::{LimitPer, Rule, RuleSet};
use crate::script::{Bindings, Expr, RandomStream, ScriptError};

/// How deep a chain of cascades may go (a milestone whose rule crosses another
/// milestone …) before it is treated as a loop.
pub(super) const MAX_CASCADE_DEPTH: u32 = 16;
/// How often one rule may fire within one step before it is treated as a loop.
pub(super) const MAX_FIRINGS_PER_RULE: u32 = 64;

pub(super) struct Run<'a> {
    pub ctx: &'a Context<'a>,
    pub member: Member,
    pub event: Option<&'a Event>,
    pub ledger: Vec<LedgerEntry>,
    pub firings: Vec<Firing>,
    pub failures: Vec<RuleFailure>,
    /// Built lazily (most events run no expression) and rebuilt only when the member
    /// changed since.
    bindings: Option<Bindings>,
    bindings_stale: bool,
    /// What the step runs for: the bindings' draws are keyed by its identity, made
    /// only when an expression first runs (most events run none).
    input: &'a Input<'a>,
    /// The rule evaluating now, whose draws `random()` continues.
    rule: &'a str,
    pub watch: Watch,
    pub queue: Queue,
    /// Firings per rule index in this step, for the loop bound: a few rules fire in
    /// a step, so a short list kept inline, not a map allocated by most steps.
    fired: SmallVec<[(usize, u32); 4]>,
    /// Points awarded per campaign in this step, on top of `Context::budget_used`.
    pub budget_spent: BTreeMap<String, i64>,
    pub messages: Vec<crate::outbox::OutboxRow>,
    pub tickets: Vec<super::OpenedTicket>,
    /// The trace being kept, when the step was asked to explain itself.
    pub trace: Option<Box<Recorder>>,
    /// Delayed-trigger timers armed by this step's event (`after` rules).
    pub after_timers: Vec<(crate::store::keys::TimerKey, Vec<u8>)>,
    /// Credits to other members made so far (see `credit.rs`).
    pub credits: Vec<super::Credit>,
    /// 0, or the depth of the credit this step runs (bounds credits made back).
    pub credit_depth: u32,
    /// What this partition's shares could not cover (`crate::shares`).
    pub shorts: Vec<crate::shares::Short>,
}

/// Why a rule stopped: reported with the rule's id and location.
pub(super) struct Failed {
    pub message: String,
    /// `path:line` when more precise than the rule's own position (a script line).
    pub at: Option<String>,
}

impl Failed {
    pub fn new(message: impl Into<String>) -> Self {
        Failed {
            message: message.into(),
            at: None,
        }
    }

    pub fn script(error: ScriptError, expr: &Expr) -> Self {
        Failed {
            at: Some(error.location(expr)),
            message: error.message,
        }
    }
}

/// The period a rule's `limit` counts in, as `rule_limits` stores it: a calendar
/// period's key is made in place, since most steps only compare it.
enum LimitKey {
    Period(localtime::PeriodKey),
    /// A campaign's run (`per: campaign`).
    Cycle(String),
}

impl LimitKey {
    fn as_str(&self) -> &str {
        match self {
            LimitKey::Period(key) => key.as_str(),
            LimitKey::Cycle(key) => key,
        }
    }
}

impl<'a> Run<'a> {
    pub fn new(
        ctx: &'a Context<'a>,
        mut member: Member,
        input: &'a Input<'a>,
        explain: Option<Options>,
    ) -> Self {
        let event = match input {
            Input::Event(event) => Some(*event),
            Input::LeaderboardClose(close) => Some(&close.event),
            Input::Inactive { .. }
            | Input::After { .. }
            | Input::Global { .. }
            | Input::SilenceRulesChanged { .. }
            | Input::Credit(_)
            | Input::PointsExpiry { .. } => None,
        };
        // Before anything reads a counter: the whole step sees resetting counters as
        // they are in `now`'s period, and a reset is not a fall the watch remembers.
        for counter in member.start_periods(ctx.rules, ctx.now) {
            super::cascade::forget_milestones(ctx.rules, &mut member, counter);
        }
        let watch = Watch::new(ctx.rules, &member);
        let trace =
            explain.map(|options| Box::new(Recorder::new(options, &member, input, ctx.now)));
        Run {
            ctx,
            member,
            event,
            ledger: Vec::new(),
            firings: Vec::new(),
            failures: Vec::new(),
            bindings: None,
            bindings_stale: false,
            input,
            rule: "",
            watch,
            queue: Queue::new(),
            fired: SmallVec::new(),
            budget_spent: BTreeMap::new(),
            messages: Vec::new(),
            tickets: Vec::new(),
            trace,
            after_timers: Vec::new(),
            credits: Vec::new(),
            shorts: Vec::new(),
            credit_depth: match input {
                Input::Credit(credit) => credit.depth,
                _ => 0,
            },
        }
    }

    pub fn rules(&self) -> &'a RuleSet {
        self.ctx.rules
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.ctx.now
    }

    /// The member's zone for local days and hours.
    pub fn zone(&self) -> Tz {
        localtime::member_zone(
            self.member.attr_str("timezone"),
            self.ctx.rules.settings.timezone,
        )
    }

    /// The bindings for the member as it is now.
    pub fn bindings(&mut self) -> &mut Bindings {
        let member = &self.member;
        match &mut self.bindings {
            Some(bindings) => {
                if self.bindings_stale {
                    bindings.set_member(member);
                    self.bindings_stale = false;
                }
            }
            None => {
                let (rules, now) = (self.ctx.rules, self.ctx.now);
                let mut bindings = Bindings::reading(
                    member,
                    self.event,
                    now,
                    || campaign_bindings(rules, now),
                    rules.reads.clone(),
                );
                *bindings.random_mut() =
                    RandomStream::new(self.ctx.random_key, self.input.identity(self.ctx.now));
                self.bindings = Some(bindings);
                self.bindings_stale = false;
            }
        }
        match &mut self.bindings {
            Some(bindings) => {
                bindings.random_mut().enter_rule(self.rule);
                bindings
            }
            None => unreachable!("bindings were just built"),
        }
    }

    /// This step's input identity, which the credits it makes are keyed under. Made
    /// when asked, not for every step: few steps credit anyone.
    pub fn origin(&self) -> String {
        self.input.identity(self.ctx.now)
    }

    /// The member changed: expressions must see the new state.
    pub fn member_changed(&mut self) {
        self.bindings_stale = true;
    }

    /// Runs rule `index` if its limit, phase and condition allow; all or nothing.
    /// Whether it fired.
    pub fn try_rule(&mut self, index: usize, depth: u32) -> bool {
        let rules = self.rules();
        let rule = &rules.rules[index];
        self.rule = &rule.id;
        let fired = self
            .fired
            .iter()
            .find(|(rule, _)| *rule == index)
            .map_or(0, |&(_, times)| times);
        if depth > MAX_CASCADE_DEPTH || fired >= MAX_FIRINGS_PER_RULE {
            self.check(|_| Check::Loop {
                firings: fired,
                depth,
                pass: false,
            });
            self.fail(
                rule,
                Failed::new(format!(
                    "cascade loop: the rule keeps triggering itself through its own effects \
                     ({fired} firings, {depth} cascades deep in one step); stopped"
                )),
            );
            return false;
        }
        if let Some(during) = &rule.during {
            let pass = in_phase(rules, during, self.now());
            self.check(|run| Check::Phase {
                campaign: during.campaign.clone(),
                phase: rules
                    .campaigns
                    .iter()
                    .find(|c| c.id == during.campaign)
                    .and_then(|c| crate::campaign::phase_at(c, run.now()))
                    .map(|p| p.name),
                wanted: during.phases.clone(),
                pass,
            });
            if !pass {
                self.skipped("phase");
                return false;
            }
        }
        let limit_key = match rule.limit {
            Some(limit) => {
                let Some(key) = self.limit_key(rule, limit.per) else {
                    self.check(|_| Check::Limit {
                        times: limit.times,
                        per: limit_per(limit.per).to_string(),
                        period: None,
                        used: 0,
                        left: 0,
                        pass: false,
                    });
                    self.skipped("limit");
                    return false;
                };
                let used = match self.member.book.rule_limits.get(&rule.id) {
                    Some((period, count)) if period == key.as_str() => *count,
                    _ => 0,
                };
                let pass = used < limit.times;
                self.check(|_| Check::Limit {
                    times: limit.times,
                    per: limit_per(limit.per).to_string(),
                    period: Some(key.as_str().to_string()),
                    used,
                    left: limit.times.saturating_sub(used),
                    pass,
                });
                if !pass {
                    self.skipped("limit");
                    return false;
                }
                Some((key, used))
            }
            None => None,
        };
        if let Some(condition) = &rule.condition {
            let value = match condition.native_bool(&self.member, self.event) {
                Some(value) => Ok(value),
                None => rules.sandbox.eval_bool(condition, self.bindings()),
            };
            self.check(|run| Check::If {
                expr: condition.text.trim().to_string(),
                value: value.as_ref().ok().copied(),
                reads: run.reads(condition),
                pass: matches!(value, Ok(true)),
            });
            match value {
                Ok(true) => {}
                Ok(false) => {
                    self.skipped("if");
                    return false;
                }
                Err(e) => {
                    self.fail(rule, Failed::script(e, condition));
                    return false;
                }
            }
        }
        let before = Snapshot::before(rule, &self.member);
        let ledger_len = self.ledger.len();
        // Only the budget of the rule's own campaign can change (`award`): what it
        // stood at is all a failure needs to put back.
        let budget_campaign = rule.during.as_ref().map(|during| &during.campaign);
        let budget_before = budget_campaign.and_then(|id| self.budget_spent.get(id).copied());
        let messages_len = self.messages.len();
        let tickets_len = self.tickets.len();
        let credits_len = self.credits.len();
        let applied =
            self.apply_actions(rule)
                .and_then(|()| match before.grew_past_bounds(&self.member) {
                    Some(problem) => Err(Failed::new(problem)),
                    None => Ok(()),
                });
        if let Err(failed) = applied {
            before.restore(&mut self.member);
            self.ledger.truncate(ledger_len);
            if let Some(id) = budget_campaign {
                match budget_before {
                    Some(spent) => {
                        self.budget_spent.insert(id.clone(), spent);
                    }
                    None => {
                        self.budget_spent.remove(id);
                    }
                }
            }
            self.messages.truncate(messages_len);
            self.tickets.truncate(tickets_len);
            self.credits.truncate(credits_len);
            self.member_changed();
            self.fail(rule, failed);
            return false;
        }
        if let Some((key, used)) = limit_key {
            // Rewritten in place: a rule with a limit fires again and again.
            match self.member.book.rule_limits.get_mut(&rule.id) {
                Some((period, count)) => {
                    if period != key.as_str() {
                        period.clear();
                        period.push_str(key.as_str());
                    }
                    *count = used + 1;
                }
                None => {
                    self.member
                        .book
                        .rule_limits
                        .insert(&rule.id, (key.as_str().into(), used + 1));
                }
            }
        }
        match self.fired.iter_mut().find(|(rule, _)| *rule == index) {
            Some((_, times)) => *times += 1,
            None => self.fired.push((index, 1)),
        }
        self.fired_traced();
        self.firings.push(Firing {
            rule: Name::from(rule.id.as_str()),
            member: Name::from(self.member.id.as_str()),
            trigger: Name::from(rule.trigger.kind()),
            at: self.now(),
            event: self.event.map(|e| Name::from(e.id.as_str())),
            version: Name::from(rules.version.as_str()),
        });
        self.member_changed();
        self.detect(depth + 1, Some(index));
        true
    }

    /// The period a `limit` counts in; `None` when the rule's campaign has no current
    /// run (then the rule cannot fire anyway).
    fn limit_key(&self, rule: &Rule, per: LimitPer) -> Option<LimitKey> {
        let period = match per {
            LimitPer::Day => Period::Day,
            LimitPer::Week => Period::Week,
            LimitPer::Month => Period::Month,
            LimitPer::Ever => Period::Ever,
            LimitPer::Campaign => {
                let id = &rule.during.as_ref()?.campaign;
                let campaign = self.rules().campaigns.iter().find(|c| c.id == *id)?;
                return crate::campaign::cycle_key(campaign, self.now()).map(LimitKey::Cycle);
            }
        };
        let day = localtime::local_day(self.now(), self.zone());
        Some(LimitKey::Period(localtime::PeriodKey::of(period, day)))
    }

    pub fn fail(&mut self, rule: &Rule, failed: Failed) {
        let at = failed
            .at
            .unwrap_or_else(|| format!("{}:{}", rule.at.file, rule.at.line));
        self.failed_traced(&rule.id, &failed.message, &at);
        self.failures.push(RuleFailure {
            rule: rule.id.clone(),
            member: self.member.id.to_string(),
            at,
            error: failed.message,
            event: self.event.map(|e| e.id.clone()),
            when: self.now(),
        });
    }

    /// The step's outcome, and its trace when one was kept.
    /// The trace is boxed: the pair is moved several times on its way out of a step,
    /// and most steps keep none.
    pub fn finish(mut self) -> (Outcome, Option<Box<super::explain::StepTrace>>) {
        let (mut timers_set, mut timers_clear) = self.arm_silence_timer();
        timers_set.append(&mut self.after_timers);
        let (expiry_set, expiry_clear) = self.arm_expiry_timer();
        timers_set.extend(expiry_set);
        timers_clear.extend(expiry_clear);
        let rules = self.ctx.rules;
        let trace = self.trace.take();
        let outcome = Outcome {
            member: self.member,
            ledger: self.ledger,
            firings: self.firings,
            failures: self.failures,
            timers_set,
            timers_clear,
            budget_spent: self.budget_spent,
            messages: self.messages,
            tickets: self.tickets,
            credits: self.credits,
            redemptions: Vec::new(),
            leaderboards: Vec::new(),
            shorts: self.shorts,
        };
        let trace = trace.map(|recorder| Box::new(recorder.finish(rules, &outcome)));
        (outcome, trace)
    }
}

/// A limit's period as written.
fn limit_per(per: LimitPer) -> &'static str {
    match per {
        LimitPer::Day => "day",
        LimitPer::Week => "week",
        LimitPer::Month => "month",
        LimitPer::Ever => "ever",
        LimitPer::Campaign => "campaign",
    }
}

/// Whether a campaign-scoped rule's campaign is in one of its phases at `now`
/// (any phase when the rule names none).
fn in_phase(rules: &RuleSet, during: &crate::rules::During, now: DateTime<Utc>) -> bool {
    let Some(campaign) = rules.campaigns.iter().find(|c| c.id == during.campaign) else {
        return false;
    };
    match crate::campaign::phase_at(campaign, now) {
        Some(phase) => during.phases.is_empty() || during.phases.contains(&phase.name),
        None => false,
    }
}

/// `campaign` in expressions: each campaign's current phase (`()` between runs).
pub(super) fn campaign_bindings(rules: &RuleSet, now: DateTime<Utc>) -> Value {
    let map = rules
        .campaigns
        .iter()
        .map(|c| {
            let phase = crate::campaign::phase_at(c, now)
                .map(|p| Value::String(p.name))
                .unwrap_or(Value::Null);
            (c.id.clone(), serde_json::json!({ "phase": phase }))
        })
        .collect();
    Value::Object(map)
}
