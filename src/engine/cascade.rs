//! Cascades: milestones crossed and tier changes, detected after every change to the
//! member and run in the order they happened.

use super::run::{Failed, Run};
use crate::member::Member;
use crate::rules::{Measure, RuleSet, Threshold, TierChange};

/// Something a change to the member caused, waiting for its rules to run.
pub(super) enum Cascade {
    /// Watched counters that rose in one change. Their milestone rules run together,
    /// in rule order, not counter by counter: which rule meets the daily cap or the
    /// campaign budget first must not depend on the counters' names.
    Milestones {
        rose: Vec<Rise>,
        depth: u32,
    },
    Tier {
        to: String,
        up: bool,
        depth: u32,
    },
}

/// One watched counter rising: its position in `RuleIndex::milestone_counters`.
pub(super) struct Rise {
    slot: usize,
    from: f64,
    to: f64,
}

/// The last seen values of every counter a milestone watches, in the order of
/// `RuleIndex::milestone_counters` (a vector, not a map by name: it is compared after
/// every change to the member).
pub(super) struct Watch {
    values: Vec<f64>,
}

impl Watch {
    pub fn new(rules: &RuleSet, member: &Member) -> Self {
        let values = rules
            .index
            .milestone_counters
            .iter()
            .map(|name| member.counter(name))
            .collect();
        Watch { values }
    }
}

fn level_for(levels: &[crate::rules::TierLevel], value: f64) -> Option<&str> {
    levels
        .iter()
        .rev()
        .find(|level| value >= level.from)
        .or(levels.first())
        .map(|level| level.name.as_str())
}

impl Run<'_> {
    /// Compares the member with what was last seen and queues what changed.
    pub fn detect(&mut self, depth: u32) {
        let rules = self.rules();
        let mut rose = Vec::new();
        for (slot, name) in rules.index.milestone_counters.iter().enumerate() {
            let now = self.member.counter(name);
            let Some(before) = self.watch.values.get_mut(slot) else {
                continue;
            };
            let from = std::mem::replace(before, now);
            if now > from {
                rose.push(Rise {
                    slot,
                    from,
                    to: now,
                });
            }
        }
        if !rose.is_empty() {
            self.queue.push_back(Cascade::Milestones { rose, depth });
        }
        self.detect_tier(depth);
    }

    /// Sets the last seen value of a watched counter (no-op for one no milestone
    /// watches).
    pub(super) fn watch_set(&mut self, name: &str, value: f64) {
        let watched = self
            .rules()
            .index
            .milestone_counters
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok();
        if let Some(seen) = watched.and_then(|slot| self.watch.values.get_mut(slot)) {
            *seen = value;
        }
    }

    fn detect_tier(&mut self, depth: u32) {
        let Some(tiers) = &self.rules().tiers else {
            return;
        };
        let Some(value) = self.tier_value() else {
            return;
        };
        let Some(new_tier) = level_for(&tiers.levels, value) else {
            return;
        };
        let old = self.member.tier.clone();
        if old.as_deref() == Some(new_tier) {
            return;
        }
        if old.is_none() {
            // Joining the ladder at the bottom is where a member starts, not a change.
            self.member.tier = Some(new_tier.to_string());
            self.member_changed();
            return;
        }
        let rank =
            |name: Option<&str>| name.and_then(|n| tiers.levels.iter().position(|l| l.name == n));
        let up = match (rank(old.as_deref()), rank(Some(new_tier))) {
            (Some(a), Some(b)) => b > a,
            _ => true,
        };
        self.member.tier = Some(new_tier.to_string());
        self.member_changed();
        self.queue.push_back(Cascade::Tier {
            to: new_tier.to_string(),
            up,
            depth,
        });
    }

    /// Places a member who has no tier yet on the ladder, before the step changes
    /// anything, so a first event that lifts them is a real tier change.
    pub fn place_on_ladder(&mut self) {
        if self.member.tier.is_none() {
            self.detect_tier(0);
        }
    }

    /// The value the tier ladder is measured on; `None` (reported) if its expression fails.
    fn tier_value(&mut self) -> Option<f64> {
        let tiers = self.rules().tiers.as_ref()?;
        match &tiers.by {
            Measure::Counter(name) => Some(self.member.counter(name)),
            Measure::Expr(expr) => {
                let sandbox = self.rules().sandbox.clone();
                match sandbox.eval_number(expr, self.bindings()) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        let failed = Failed::script(e, expr);
                        self.failures.push(crate::engine::RuleFailure {
                            rule: "tiers".into(),
                            member: self.member.id.clone(),
                            at: failed.at.unwrap_or_default(),
                            error: format!("tier measure failed: {}", failed.message),
                            event: self.event.map(|e| e.id.clone()),
                            when: self.now(),
                        });
                        None
                    }
                }
            }
        }
    }

    /// Runs queued cascades until none are left.
    pub fn drain(&mut self) {
        while let Some(cascade) = self.queue.pop_front() {
            let rules = self.rules();
            match cascade {
                Cascade::Milestones { rose, depth } => {
                    for &(index, slot) in &rules.index.milestones {
                        let Some(rise) = rose.iter().find(|rise| rise.slot == slot) else {
                            continue;
                        };
                        let crate::rules::Trigger::Milestone { threshold, .. } =
                            rules.rules[index].trigger
                        else {
                            continue;
                        };
                        for _ in 0..crossings(threshold, rise.from, rise.to) {
                            self.try_rule(index, depth);
                        }
                    }
                }
                Cascade::Tier { to, up, depth, .. } => {
                    for &index in &rules.index.tier {
                        let crate::rules::Trigger::Tier(change) = &rules.rules[index].trigger
                        else {
                            continue;
                        };
                        let matches = match change {
                            TierChange::Named(name) => *name == to,
                            TierChange::Up => up,
                            TierChange::Down => !up,
                        };
                        if matches {
                            self.try_rule(index, depth);
                        }
                    }
                }
            }
        }
    }
}

/// How many times a milestone fires for a counter going from `from` to `to`: `at: N`
/// once when it reaches N, `every: N` once per multiple of N crossed. Bounded so a
/// huge jump cannot turn into millions of firings (the per-rule loop bound applies).
pub(super) fn crossings(threshold: Threshold, from: f64, to: f64) -> u32 {
    if to <= from {
        return 0;
    }
    match threshold {
        Threshold::At(n) => u32::from(from < n && to >= n),
        Threshold::Every(n) if n > 0.0 => {
            let crossed = (to / n).floor() - (from / n).floor();
            crossed.clamp(0.0, 1_000.0) as u32
        }
        Threshold::Every(_) => 0,
    }
}
