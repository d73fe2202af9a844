//! Steps started by time rather than by an event: an inactivity deadline, one
//! member's share of a `phase` or `schedule` trigger — and the re-arming of a member's
//! inactivity timers after activity.

use serde_json::json;

use super::run::{Failed, Run};
use crate::rules::{Audience, Trigger};
use crate::store::keys::TimerKey;

/// The timer kind of inactivity deadlines in the timer index.
pub const INACTIVE: &str = "inactive";

/// The timer id of `rule`'s inactivity deadline for `member`. Member ids hold no
/// control characters, so a newline separates the two unambiguously.
pub fn inactive_timer_id(member: &str, rule: &str) -> String {
    format!("{member}\n{rule}")
}

impl Run<'_> {
    /// An inactivity deadline fell due. It fires only if it is still the armed one
    /// (activity since then re-armed it later; `leave` disarmed it).
    pub fn on_inactive(&mut self, rule_id: &str, due: i64) {
        if self.member.book.armed.get(rule_id) != Some(&due) {
            return;
        }
        self.member.book.armed.remove(rule_id);
        if self.member.left {
            return;
        }
        let rules = self.rules();
        let Some(&index) = rules
            .index
            .inactive
            .iter()
            .find(|&&i| rules.rules[i].id == rule_id)
        else {
            return;
        };
        self.place_on_ladder();
        self.try_rule(index, 0);
        self.drain();
    }

    /// One member's turn of a global trigger: runs the rule if the member is in its
    /// audience.
    pub fn on_global(&mut self, rule_id: &str) {
        let rules = self.rules();
        let Some(index) = rules.rules.iter().position(|r| {
            r.id == rule_id && matches!(r.trigger, Trigger::Phase { .. } | Trigger::Schedule(_))
        }) else {
            return;
        };
        let rule = &rules.rules[index];
        if let Some(Audience::Expr(expr)) = &rule.audience {
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

    /// When activity (or `leave`) changed, disarms the member's inactivity timers and
    /// arms one per inactivity rule at `last_active + DURATION`.
    pub fn rearm(&mut self) -> (Vec<(TimerKey, Vec<u8>)>, Vec<TimerKey>) {
        let changed = self.member.last_active != self.original_last_active
            || self.member.left != self.original_left;
        if !changed {
            return (Vec::new(), Vec::new());
        }
        let member_id = self.member.id.clone();
        let clear = std::mem::take(&mut self.member.book.armed)
            .into_iter()
            .map(|(rule, due)| TimerKey::new(due, INACTIVE, inactive_timer_id(&member_id, &rule)))
            .collect();
        let mut set = Vec::new();
        if let (false, Some(last)) = (self.member.left, self.member.last_active) {
            let rules = self.rules();
            for &index in &rules.index.inactive {
                let rule = &rules.rules[index];
                let Trigger::Inactive(silence) = rule.trigger else {
                    continue;
                };
                let due = (last + silence).timestamp_millis();
                self.member.book.armed.insert(rule.id.clone(), due);
                let payload = json!({ "member": member_id, "rule": rule.id }).to_string();
                set.push((
                    TimerKey::new(due, INACTIVE, inactive_timer_id(&member_id, &rule.id)),
                    payload.into_bytes(),
                ));
            }
        }
        (set, clear)
    }
}
