//! Recording a trace from inside the step. Every hook starts by asking whether a trace
//! is being kept and returns at once when not; what it records is built by a closure
//! that only runs when one is, so an untraced step formats and allocates nothing here.

use std::collections::BTreeSet;

use super::{
    Check, Computed, Decision, Effect, Glance, InputView, NotTriggered, Options, Read, RuleTrace,
    StepTrace, Untriggered, Why,
};
use crate::engine::outcome::Outcome;
use crate::engine::run::Run;
use crate::engine::Input;
use crate::member::Member;
use crate::rules::{RuleSet, Threshold, TierChange, Trigger};
use crate::script::Expr;

/// A trace under construction.
pub(in crate::engine) struct Recorder {
    options: Options,
    trace: StepTrace,
}

impl Recorder {
    pub fn new(
        options: Options,
        member: &Member,
        input: &Input<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Recorder {
            options,
            trace: StepTrace {
                member: member.id.to_string(),
                at: now,
                input: InputView::of(input, now),
                before: glance(member),
                after: Glance::default(),
                builtin: Vec::new(),
                rules: Vec::new(),
                not_triggered: NotTriggered::default(),
                notes: Vec::new(),
                errors: Vec::new(),
                caveats: Vec::new(),
            },
        }
    }

    /// The finished trace of a step whose outcome is `outcome`.
    pub fn finish(self, rules: &RuleSet, outcome: &Outcome) -> StepTrace {
        let Recorder { options, mut trace } = self;
        trace.after = glance(&outcome.member);
        let considered: BTreeSet<&str> = trace.rules.iter().map(|r| r.rule.as_str()).collect();
        let mut not_triggered = NotTriggered::default();
        for rule in &rules.rules {
            if considered.contains(rule.id.as_str()) {
                continue;
            }
            not_triggered.count += 1;
            if options.all {
                not_triggered.rules.push(Untriggered {
                    rule: rule.id.clone(),
                    at: format!("{}:{}", rule.at.file, rule.at.line),
                    trigger: describe_trigger(&rule.trigger),
                });
            }
        }
        trace.errors = outcome
            .failures
            .iter()
            .filter(|f| !considered.contains(f.rule.as_str()))
            .cloned()
            .collect();
        trace.not_triggered = not_triggered;
        trace
    }

    fn current(&mut self) -> Option<&mut RuleTrace> {
        self.trace.rules.last_mut()
    }
}

fn glance(member: &Member) -> Glance {
    Glance {
        points: member.points,
        tier: member.tier.as_deref().map(String::from),
    }
}

/// A rule's trigger as written in its file.
pub fn describe_trigger(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Event(types) => format!("event: {}", types.join(", ")),
        Trigger::Milestone { counter, threshold } => {
            format!("milestone: {counter} {}", describe_threshold(*threshold))
        }
        Trigger::Inactive(d) => format!("inactive: {}", crate::duration::format(*d)),
        Trigger::Returned(d) => format!("returned: {}", crate::duration::format(*d)),
        Trigger::After { events, wait } => format!(
            "after: {} + {}",
            events.join(", "),
            crate::duration::format(*wait)
        ),
        Trigger::Tier(TierChange::Named(name)) => format!("tier: {name}"),
        Trigger::Tier(TierChange::Up) => "tier: up".to_string(),
        Trigger::Tier(TierChange::Down) => "tier: down".to_string(),
        Trigger::Phase { campaign, enters } => format!("phase: {campaign} enters {enters}"),
        Trigger::Schedule(spec) => format!("schedule: {}", spec.text),
        Trigger::PointsExpiring(d) => {
            format!("points_expiring: {}", crate::duration::format(*d))
        }
        Trigger::LeaderboardClose { board, top } => {
            format!("leaderboard: {board} closes, top {top}")
        }
    }
}

pub fn describe_threshold(threshold: Threshold) -> String {
    match threshold {
        Threshold::At(n) => format!("at {n}"),
        Threshold::Every(n) => format!("every {n}"),
    }
}

impl Run<'_> {
    /// Whether this step keeps a trace.
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Rule `index` is about to be considered, for the reason `why` builds.
    pub fn consider(&mut self, index: usize, why: impl FnOnce(&Self) -> Why) {
        if self.trace.is_none() {
            return;
        }
        let why = why(self);
        let rule = &self.rules().rules[index];
        let entry = RuleTrace {
            rule: rule.id.clone(),
            at: format!("{}:{}", rule.at.file, rule.at.line),
            why,
            checks: Vec::new(),
            effects: Vec::new(),
            decision: Decision::Pending,
        };
        if let Some(recorder) = self.trace.as_mut() {
            recorder.trace.rules.push(entry);
        }
    }

    /// A check of the rule being considered.
    pub fn check(&mut self, check: impl FnOnce(&mut Self) -> Check) {
        if self.trace.is_none() {
            return;
        }
        let check = check(self);
        if let Some(current) = self.trace.as_mut().and_then(|r| r.current()) {
            current.checks.push(check);
        }
    }

    /// An `if` or audience expression that evaluated to `value` (none: it failed),
    /// with the values of everything it read.
    pub fn reads(&mut self, expr: &Expr) -> Vec<Read> {
        let sandbox = self.rules().sandbox.clone();
        let bindings = self.bindings();
        expr.binding_paths()
            .into_iter()
            .map(|path| {
                let value = sandbox.read_path(bindings, &path);
                Read { path, value }
            })
            .collect()
    }

    /// What an action of the rule being considered did.
    pub fn effect(&mut self, effect: impl FnOnce(&Self) -> Effect) {
        if self.trace.is_none() {
            return;
        }
        let effect = effect(self);
        if let Some(current) = self.trace.as_mut().and_then(|r| r.current()) {
            current.effects.push(effect);
        }
    }

    /// The points just awarded were computed by the expression `text`, which read
    /// `reads`.
    pub fn points_computed(&mut self, text: String, reads: Vec<Read>) {
        let Some(current) = self.trace.as_mut().and_then(|r| r.current()) else {
            return;
        };
        if let Some(Effect::Points { from, .. }) = current.effects.last_mut() {
            *from = Some(Computed { expr: text, reads });
        }
    }

    /// The rule being considered was skipped by the check named `by`.
    pub fn skipped(&mut self, by: &'static str) {
        self.decide(|| Decision::Skipped { by: by.to_string() });
    }

    /// The rule being considered fired.
    pub fn fired_traced(&mut self) {
        self.decide(|| Decision::Fired);
    }

    /// The rule being considered failed at `at` with `error`.
    pub fn failed_traced(&mut self, rule: &str, error: &str, at: &str) {
        let Some(current) = self.trace.as_mut().and_then(|r| r.current()) else {
            return;
        };
        if current.rule == rule && current.decision == Decision::Pending {
            current.decision = Decision::Failed {
                error: error.to_string(),
                at: at.to_string(),
            };
        }
    }

    fn decide(&mut self, decision: impl FnOnce() -> Decision) {
        if let Some(current) = self.trace.as_mut().and_then(|r| r.current()) {
            if current.decision == Decision::Pending {
                current.decision = decision();
            }
        }
    }

    /// A step-level remark.
    pub fn note(&mut self, note: impl FnOnce(&Self) -> String) {
        if self.trace.is_none() {
            return;
        }
        let note = note(self);
        if let Some(recorder) = self.trace.as_mut() {
            recorder.trace.notes.push(note);
        }
    }

    /// Something Rally did itself before the rules ran.
    pub fn builtin_note(&mut self, note: impl FnOnce(&Self) -> String) {
        if self.trace.is_none() {
            return;
        }
        let note = note(self);
        if let Some(recorder) = self.trace.as_mut() {
            recorder.trace.builtin.push(note);
        }
    }
}
