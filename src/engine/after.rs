//! Delayed triggers (`after: { event: join, wait: 3d }`): an event of a matching type
//! arms one durable timer per rule, due `wait` after the step that applied the event
//! (the step's `now`, SPEC §2.7), so replaying the same events at the same step times
//! arms the same timers. When it pops, that one rule runs — its `if`, limit and phase
//! evaluated then — unless the member has left or the rule is gone.
//!
//! An event is applied once (duplicates are dropped before the engine), so a rule
//! fires at most once per matching event.

use super::explain::Why;
use super::run::Run;
use crate::event::Event;
use crate::rules::Trigger;
use crate::store::keys::TimerKey;

/// The timer kind of delayed triggers in the timer index.
pub const AFTER: &str = "after";

/// Separates the parts of an `after` timer's id. Member and event ids cannot hold
/// control characters and rule ids are `[a-z0-9_-]+`, so the id splits back exactly.
const SEP: char = '\u{1f}';

/// The id of the timer that `event_id` of `member` armed for `rule`.
pub fn after_timer_id(member: &str, rule: &str, event_id: &str) -> String {
    format!("{member}{SEP}{rule}{SEP}{event_id}")
}

/// `(member, rule, event id)` of an `after` timer's id; `None` for an id not made by
/// [`after_timer_id`].
pub fn parse_after_timer_id(id: &str) -> Option<(&str, &str, &str)> {
    let mut parts = id.splitn(3, SEP);
    let member = parts.next()?;
    let rule = parts.next()?;
    let event = parts.next()?;
    Some((member, rule, event))
}

impl Run<'_> {
    /// Arms a timer for every `after` rule the event's type matches, due `wait` after
    /// now. A member who left (this event included) gets none.
    pub fn arm_after_timers(&mut self, event: &Event) {
        let rules = self.rules();
        let Some(indexes) = rules.index.after_by_event_type.get(&event.kind) else {
            return;
        };
        if self.member.left {
            self.note(|_| {
                "the member left: no delayed trigger is armed for this event".to_string()
            });
            return;
        }
        let now = self.now();
        for &index in indexes {
            let rule = &rules.rules[index];
            let Trigger::After { wait, .. } = rule.trigger else {
                continue;
            };
            // `wait` is bounded (ten years): the sum stays a valid time.
            let due = (now + wait).timestamp_millis();
            let id = after_timer_id(&self.member.id, &rule.id, &event.id);
            self.note(|_| {
                format!(
                    "delayed trigger {} armed for {}",
                    rule.id,
                    chrono::DateTime::from_timestamp_millis(due)
                        .map(crate::member::rfc3339)
                        .unwrap_or_default()
                )
            });
            self.after_timers
                .push((TimerKey::new(due, AFTER, id), Vec::new()));
        }
    }

    /// A delayed trigger fell due: runs `rule_id` for the member if it is still an
    /// `after` rule and the member has not left.
    pub fn on_after(&mut self, rule_id: &str, event_id: &str) {
        let rules = self.rules();
        let Some(index) = rules
            .rules
            .iter()
            .position(|r| r.id == rule_id && matches!(r.trigger, Trigger::After { .. }))
        else {
            self.note(|_| format!("no after rule {rule_id:?} in the current rules: nothing runs"));
            return;
        };
        self.consider(index, |run| Why::After {
            wait: match run.rules().rules[index].trigger {
                Trigger::After { wait, .. } => crate::duration::format(wait),
                _ => String::new(),
            },
            event: event_id.to_string(),
        });
        if self.member.left {
            self.skipped("the member left");
            return;
        }
        self.place_on_ladder();
        self.try_rule(index, 0);
        self.drain();
    }
}
