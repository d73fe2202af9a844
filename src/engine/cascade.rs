//! Cascades: milestones crossed and tier changes, detected after every change to the
//! member and run in the order they happened.

use super::explain::{describe_threshold, Check, Why};
use super::run::{Failed, Run};
use crate::member::Member;
use crate::money::Decimal;
use crate::rules::{Measure, RuleSet, Threshold, TierChange};
use rust_decimal::prelude::ToPrimitive;
use smallvec::SmallVec;

/// Something a change to the member caused, waiting for its rules to run.
pub(super) enum Cascade {
    /// Watched counters that rose in one change. Their milestone rules run together,
    /// in rule order, not counter by counter: which rule meets the daily cap or the
    /// campaign budget first must not depend on the counters' names.
    Milestones {
        rose: Rises,
        depth: u32,
        /// The rule whose effects caused it; `None` for the event's own effects.
        cause: Option<usize>,
    },
    Tier {
        to: String,
        up: bool,
        depth: u32,
        cause: Option<usize>,
    },
}

/// Cascades waiting to run, in the order they were caused: rarely more than one or
/// two in a step, so kept inline.
pub(super) type Queue = SmallVec<[Cascade; 2]>;

/// The watched counters that rose in one change: one or two at a time, kept inline
/// (most events raise one, and a vector was an allocation for each).
pub(super) type Rises = SmallVec<[Rise; 2]>;

/// One watched counter rising: its position in `RuleIndex::milestone_counters`.
pub(super) struct Rise {
    slot: usize,
    from: Decimal,
    to: Decimal,
}

/// The last seen values of every counter a milestone watches, in the order of
/// `RuleIndex::milestone_counters` (a vector, not a map by name: it is compared after
/// every change to the member).
pub(super) struct Watch {
    values: SmallVec<[Decimal; 8]>,
}

impl Watch {
    pub fn new(rules: &RuleSet, member: &Member) -> Self {
        let values = member
            .sorted_counters(&rules.index.milestone_counters)
            .collect();
        Watch { values }
    }
}

fn level_for(levels: &[crate::rules::TierLevel], value: Decimal) -> Option<&str> {
    levels
        .iter()
        .rev()
        .find(|level| crate::money::compare(value, level.from).is_ge())
        .or(levels.first())
        .map(|level| level.name.as_str())
}

impl Run<'_> {
    /// Compares the member with what was last seen and queues what changed, as caused
    /// by rule `cause` (`None`: the event's own effects).
    pub fn detect(&mut self, depth: u32, cause: Option<usize>) {
        let rules = self.rules();
        let mut rose = Rises::new();
        let counters = self.member.sorted_counters(&rules.index.milestone_counters);
        for ((slot, now), before) in counters.enumerate().zip(&mut self.watch.values) {
            let from = std::mem::replace(before, now);
            // Most changes leave most counters as they were: alike bits cannot rise.
            if !crate::money::same_bits(now, from) && crate::money::compare(now, from).is_gt() {
                rose.push(Rise {
                    slot,
                    from,
                    to: now,
                });
            }
        }
        if !rose.is_empty() {
            self.queue.push(Cascade::Milestones { rose, depth, cause });
        }
        self.detect_tier(depth, cause);
    }

    /// Sets the last seen value of a watched counter (no-op for one no milestone
    /// watches).
    pub(super) fn watch_set(&mut self, name: &str, value: Decimal) {
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

    fn detect_tier(&mut self, depth: u32, cause: Option<usize>) {
        let Some(tiers) = &self.rules().tiers else {
            return;
        };
        let Some(value) = self.tier_value() else {
            return;
        };
        let Some(new_tier) = level_for(&tiers.levels, value) else {
            return;
        };
        if self.member.tier.as_deref() == Some(new_tier) {
            return;
        }
        let old = self.member.tier.take();
        if old.is_none() {
            // Joining the ladder at the bottom is where a member starts, not a change.
            self.member.tier = Some(new_tier.into());
            self.member_changed();
            return;
        }
        let rank =
            |name: Option<&str>| name.and_then(|n| tiers.levels.iter().position(|l| l.name == n));
        let up = match (rank(old.as_deref()), rank(Some(new_tier))) {
            (Some(a), Some(b)) => b > a,
            _ => true,
        };
        self.member.tier = Some(new_tier.into());
        self.member_changed();
        self.queue.push(Cascade::Tier {
            to: new_tier.to_string(),
            up,
            depth,
            cause,
        });
    }

    /// Places a member who has no tier yet on the ladder, before the step changes
    /// anything, so a first event that lifts them is a real tier change.
    pub fn place_on_ladder(&mut self) {
        if self.member.tier.is_none() {
            self.detect_tier(0, None);
        }
    }

    /// The value the tier ladder is measured on; `None` (reported) if its expression fails.
    fn tier_value(&mut self) -> Option<Decimal> {
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
                            member: self.member.id.to_string(),
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

    /// Runs queued cascades until none are left, in the order they were queued: what
    /// the queued ones cause is queued behind them, so running the queue as it stands,
    /// then what that queued, keeps the order of a first-in, first-out queue.
    pub fn drain(&mut self) {
        loop {
            let queued = std::mem::take(&mut self.queue);
            if queued.is_empty() {
                return;
            }
            for cascade in queued {
                self.run_cascade(cascade);
            }
        }
    }

    fn run_cascade(&mut self, cascade: Cascade) {
        let rules = self.rules();
        match cascade {
            Cascade::Milestones { rose, depth, cause } => {
                for &(index, slot) in &rules.index.milestones {
                    let Some(rise) = rose.iter().find(|rise| rise.slot == slot) else {
                        continue;
                    };
                    let crate::rules::Trigger::Milestone { threshold, .. } =
                        rules.rules[index].trigger
                    else {
                        continue;
                    };
                    self.run_milestone(index, threshold, rise, depth, cause);
                }
            }
            Cascade::Tier {
                to,
                up,
                depth,
                cause,
            } => {
                for &index in &rules.index.tier {
                    let crate::rules::Trigger::Tier(change) = &rules.rules[index].trigger else {
                        continue;
                    };
                    let matches = match change {
                        TierChange::Named(name) => *name == to,
                        TierChange::Up => up,
                        TierChange::Down => !up,
                    };
                    if matches {
                        self.consider(index, |run| Why::Tier {
                            to: to.clone(),
                            up,
                            cause: cause.map(|i| run.rules().rules[i].id.clone()),
                        });
                        self.try_rule(index, depth);
                    }
                }
            }
        }
    }
}

impl Run<'_> {
    /// Runs milestone rule `index` once for each mark the rise reaches that it has not
    /// paid for yet, and records each mark it fires for.
    fn run_milestone(
        &mut self,
        index: usize,
        threshold: Threshold,
        rise: &Rise,
        depth: u32,
        cause: Option<usize>,
    ) {
        let id = &self.rules().rules[index].id;
        let paid = self.member.book.milestones.get(id).copied().unwrap_or(0);
        let marks = marks(threshold, rise.from, rise.to, paid);
        let why = |run: &Self, mark: Option<u64>| Why::Milestone {
            counter: run
                .rules()
                .index
                .milestone_counters
                .get(rise.slot)
                .cloned()
                .unwrap_or_default(),
            from: rise.from.normalize().to_string(),
            to: rise.to.normalize().to_string(),
            threshold: describe_threshold(threshold),
            mark,
            cause: cause.map(|i| run.rules().rules[i].id.clone()),
        };
        if marks.is_empty() && self.tracing() {
            // The counter it watches rose, short of a mark not yet paid.
            self.consider(index, |run| why(run, None));
            // At or past the mark: it was paid before (or the counter passed it before
            // this rise); below it: not reached yet.
            let reached = match threshold {
                Threshold::At(n) | Threshold::Every(n) => rise.to >= n,
            };
            self.check(|_| Check::Threshold {
                reached,
                pass: false,
            });
            self.skipped("threshold");
        }
        for mark in marks {
            self.consider(index, |run| why(run, Some(mark)));
            if self.try_rule(index, depth) {
                self.member.book.milestones.insert(id, mark);
            }
        }
    }

    /// A broken check-in streak: the new streak's milestones may pay again, and the
    /// restart is not a fall the watch should remember.
    pub(super) fn restart_streak(&mut self) {
        forget_milestones(self.rules(), &mut self.member, "checkin_streak");
        self.watch_set("checkin_streak", Decimal::ZERO);
    }
}

/// A counter started again (a new period, a broken streak): its milestone rules may
/// pay again.
pub(super) fn forget_milestones(rules: &RuleSet, member: &mut Member, counter: &str) {
    for &(index, _) in &rules.index.milestones {
        let rule = &rules.rules[index];
        if matches!(&rule.trigger, crate::rules::Trigger::Milestone { counter: c, .. } if c == counter)
        {
            member.book.milestones.remove(&rule.id);
        }
    }
}

/// The marks a counter rising from `from` to `to` reaches that a milestone has not
/// paid for (`paid`, see `Bookkeeping::milestones`): `at: N` mark 1 when it reaches N
/// for the first time; `every: N` each multiple of N above both `from` and the highest
/// multiple paid — a high-water mark, so falling and rising again pays nothing twice.
/// Bounded so a huge jump cannot turn into millions of firings (the per-rule loop
/// bound applies).
pub(super) fn marks(
    threshold: Threshold,
    from: Decimal,
    to: Decimal,
    paid: u64,
) -> std::ops::Range<u64> {
    const NONE: std::ops::Range<u64> = 0..0;
    if to <= from {
        return NONE;
    }
    match threshold {
        Threshold::At(n) if from < n && to >= n && paid == 0 => 1..2,
        Threshold::At(_) => NONE,
        Threshold::Every(n) if n > Decimal::ZERO => {
            // Exact: a counter of 1.0 is ten multiples of 0.1, not nine.
            let multiple = |v: Decimal| {
                v.checked_div(n)
                    .and_then(|q| q.floor().max(Decimal::ZERO).to_u64())
                    .unwrap_or(u64::MAX)
            };
            let first = multiple(from).max(paid).saturating_add(1);
            let end = multiple(to)
                .saturating_add(1)
                .min(first.saturating_add(1_000));
            first..end.max(first)
        }
        Threshold::Every(_) => NONE,
    }
}
