//! Steps started by time rather than by an event: a member's inactivity timer, one
//! member's share of a `phase` or `schedule` trigger — and the arming of a member's
//! inactivity timer.
//!
//! Each member has at most one inactivity timer, due no later than their next
//! inactivity deadline (`last_active + DURATION` of a rule not yet fired in this
//! silence). Activity moves deadlines later and leaves the timer alone, so an event
//! costs no timer writes; the timer may then pop early, fire nothing and re-arm for
//! the deadline now ahead. Only a timer that would be late (a member back from a
//! silence some rules already fired in) is moved earlier.

use super::run::{Failed, Run};
use crate::rules::Trigger;
use crate::store::keys::TimerKey;

/// The timer kind of inactivity deadlines in the timer index; the timer's id is the
/// member id.
pub const INACTIVE: &str = "inactive";

impl<'a> Run<'a> {
    /// The member's inactivity timer fell due at `due`. Fires, in deadline order, every
    /// inactivity rule whose deadline in the current silence passed since the last time
    /// rules fired in it — nothing if activity moved the deadlines on. A timer that is
    /// not the armed one (superseded, or disarmed by `leave`) does nothing.
    pub fn on_inactive(&mut self, due: i64) {
        if self.member.book.silence_timer != Some(due) {
            return;
        }
        self.member.book.silence_timer = None;
        let Some((silence_began, through)) = self.silence() else {
            return;
        };
        let rules = self.rules();
        let mut due_rules: Vec<(i64, usize)> = self
            .deadlines(silence_began)
            .filter(|&(deadline, _)| deadline > through && deadline <= due)
            .collect();
        due_rules.sort();
        self.member.book.silence_fired = Some((silence_began, due.max(through)));
        if due_rules.is_empty() {
            return;
        }
        self.place_on_ladder();
        for (_, index) in due_rules {
            debug_assert!(matches!(rules.rules[index].trigger, Trigger::Inactive(_)));
            self.try_rule(index, 0);
        }
        self.drain();
    }

    /// One member's turn of a global trigger: runs the rule if the member is in its
    /// audience. A member who left is not, unless the audience includes them.
    pub fn on_global(&mut self, rule_id: &str) {
        let rules = self.rules();
        let Some(index) = rules.rules.iter().position(|r| {
            r.id == rule_id && matches!(r.trigger, Trigger::Phase { .. } | Trigger::Schedule(_))
        }) else {
            return;
        };
        let rule = &rules.rules[index];
        let audience = rule.audience.as_ref();
        if self.member.left && !audience.is_some_and(|a| a.include_left) {
            return;
        }
        if let Some(expr) = audience.and_then(|a| a.condition.as_ref()) {
            let sandbox = rules.sandbox.clone();
            match sandbox.eval_bool(expr, self.bindings()) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    self.fail(rule, Failed::script(e, expr));
                    return;
                }
            }
        }
        self.place_on_ladder();
        self.try_rule(index, 0);
        self.drain();
    }

    /// The current silence: when it began (`last_active`, Unix millis) and the
    /// deadline through which its rules have fired. `None` when the member is not
    /// silent in a way inactivity rules watch (never active, or left).
    fn silence(&self) -> Option<(i64, i64)> {
        if self.member.left {
            return None;
        }
        let began = self.member.last_active?.timestamp_millis();
        let through = match self.member.book.silence_fired {
            Some((fired_began, through)) if fired_began == began => through,
            _ => began,
        };
        Some((began, through))
    }

    /// Every inactivity rule's deadline (Unix millis) in a silence that began at
    /// `began`, with the rule's index.
    fn deadlines(&self, began: i64) -> impl Iterator<Item = (i64, usize)> + 'a {
        let rules = self.rules();
        rules.index.inactive.iter().filter_map(move |&index| {
            let Trigger::Inactive(silence) = rules.rules[index].trigger else {
                return None;
            };
            Some((began.saturating_add(silence.num_milliseconds()), index))
        })
    }

    /// Arms, moves or disarms the member's inactivity timer so it is due no later than
    /// the next deadline; leaves an earlier one alone (see the module comment).
    /// Returns the timer writes: what to set and what to clear.
    pub fn arm_silence_timer(&mut self) -> (Vec<(TimerKey, Vec<u8>)>, Vec<TimerKey>) {
        let next = self.silence().and_then(|(began, through)| {
            self.deadlines(began)
                .map(|(deadline, _)| deadline)
                .filter(|&deadline| deadline > through)
                .min()
        });
        let armed = self.member.book.silence_timer;
        let wanted = match (armed, next) {
            (Some(armed), Some(next)) if armed <= next => return (Vec::new(), Vec::new()),
            (_, wanted) => wanted,
        };
        if armed == wanted {
            return (Vec::new(), Vec::new());
        }
        let id = &self.member.id;
        let clear = armed
            .map(|due| TimerKey::new(due, INACTIVE, id.clone()))
            .into_iter()
            .collect();
        let set = wanted
            .map(|due| (TimerKey::new(due, INACTIVE, id.clone()), Vec::new()))
            .into_iter()
            .collect();
        self.member.book.silence_timer = wanted;
        (set, clear)
    }
}
