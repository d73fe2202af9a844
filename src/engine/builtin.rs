//! What Rally itself does with an event before any rule runs (SPEC §1): profile
//! fields, check-in streaks in the member's local day, spend, `events.<type>`,
//! activity, and custom counters.

use serde_json::Value;

use super::explain::Why;
use super::run::{Failed, Run};
use crate::event::Event;
use crate::localtime;
use crate::money::{self, Decimal};
use crate::rules::Amount;

/// Profile fields a `join` event carries into the member's attributes.
const JOIN_FIELDS: [&str; 4] = ["name", "email", "timezone", "locale"];

impl Run<'_> {
    pub fn on_event(&mut self, event: &Event) {
        self.place_on_ladder();
        let before = self.tracing().then(|| self.member.clone());
        let first_join = self.member.joined_at.is_none();
        let returned = self.builtin_effects(event);
        self.refer(event, first_join);
        self.count_custom(event);
        if let Some(before) = before {
            self.trace_builtin(&before);
        }
        self.member_changed();
        self.detect(1, None);
        let rules = self.rules();
        if let Some(indexes) = rules.index.by_event_type.get(&event.kind) {
            for &index in indexes {
                self.consider(index, |_| Why::Event {
                    event_type: event.kind.clone(),
                });
                self.try_rule(index, 0);
            }
        }
        for index in returned {
            self.consider(index, |run| Why::Returned {
                after: match run.rules().rules[index].trigger {
                    crate::rules::Trigger::Returned(min) => crate::duration::format(min),
                    _ => String::new(),
                },
            });
            self.try_rule(index, 0);
        }
        self.drain();
        self.arm_after_timers(event);
    }

    /// What the built-in effects and custom counters changed, for the trace: every
    /// counter that moved, the streak day and the silence that activity ended.
    fn trace_builtin(&mut self, before: &crate::member::Member) {
        let after = &self.member;
        let mut notes = Vec::new();
        let names: std::collections::BTreeSet<&str> = before
            .counters
            .keys()
            .chain(after.counters.keys())
            .collect();
        for name in names {
            let (from, to) = (before.counter(name), after.counter(name));
            if from != to {
                notes.push(format!(
                    "counter {name}: {} → {}",
                    from.normalize(),
                    to.normalize()
                ));
            }
        }
        if let (Some(last), Some(now)) = (before.last_active, after.last_active) {
            if now > last {
                notes.push(format!(
                    "active again after {} of silence (last active {})",
                    crate::duration::format(now - last),
                    crate::member::rfc3339(last)
                ));
            }
        }
        if before.left && !after.left {
            notes.push("back: the member had left".to_string());
        }
        if after.left && !before.left {
            notes.push("left the community".to_string());
        }
        if after.unsubscribed && !before.unsubscribed {
            notes.push("unsubscribed from marketing".to_string());
        }
        for note in notes {
            self.builtin_note(|_| note);
        }
    }

    /// Applies the built-in effects; returns the `returned` rules this activity
    /// triggers, to run after the event's own rules.
    ///
    /// `joined_at` is when the member joined (`event.at`); everything that keeps time —
    /// streak days, `last_active`, silences — runs on the step's `now` (SPEC §2.7), so
    /// a late event cannot reopen a day or a silence that is over.
    fn builtin_effects(&mut self, event: &Event) -> Vec<usize> {
        // A ticket command acts on a ticket (SPEC §1): it is no event of the member's,
        // so it counts nowhere and is no activity; only the rules and custom counters
        // that name it run, for the ticket's member.
        if crate::event::is_ticket_command(&event.kind) {
            return Vec::new();
        }
        let at = event.at_utc();
        let now = self.now();
        if event.kind == crate::event::POINTS_ADJUSTMENT {
            self.adjust(event);
            return self.count_and_activity(event, now);
        }
        if matches!(event.kind.as_str(), "join" | "profile") {
            self.merge_profile(event, at);
            return self.count_and_activity(event, now);
        }
        let member = &mut self.member;
        match event.kind.as_str() {
            "checkin" => self.checkin(now),
            "purchase" => {
                // Validated with the event (`event::check_well_known`).
                let amount = event
                    .data
                    .get("amount")
                    .and_then(|v| money::amount(v).ok())
                    .unwrap_or_default();
                member.add_to_counter("spend_total", amount);
                member.add_to_counter("purchases", Decimal::ONE);
            }
            "leave" => member.left = true,
            "unsubscribe" => member.unsubscribed = true,
            _ => {}
        }
        self.count_and_activity(event, now)
    }

    /// `events.<type>`, and activity for the kinds that count as such.
    fn count_and_activity(
        &mut self,
        event: &Event,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<usize> {
        // Written by hand: the formatter costs more than the rest of this on every
        // event.
        let mut counter = String::with_capacity("events.".len() + event.kind.len());
        counter.push_str("events.");
        counter.push_str(&event.kind);
        self.member.add_to_counter(&counter, Decimal::ONE);
        if self.rules().settings.activity.includes(&event.kind) {
            return self.activity(now);
        }
        Vec::new()
    }

    /// A `join` or `profile` event's fields merged into the member — unless that would
    /// take the member over a size bound (`member::MAX_ATTRS_BYTES` …): then nothing of
    /// the merge is applied and it is reported under the rule id `(profile)` or
    /// `(join)` (ids of real rules cannot hold parentheses); the rest of the event
    /// still counts.
    fn merge_profile(&mut self, event: &Event, at: chrono::DateTime<chrono::Utc>) {
        let before = self.member.clone();
        let size_before = before.size();
        let member = &mut self.member;
        match event.kind.as_str() {
            "join" => {
                if member.joined_at.is_none() {
                    member.joined_at = Some(at);
                }
                for field in JOIN_FIELDS {
                    if let Some(value) = event.data.get(field) {
                        member.attrs.insert(field.to_string(), value.clone());
                    }
                }
                if let Some(Value::Array(tags)) = event.data.get("tags") {
                    member
                        .tags
                        .extend(tags.iter().filter_map(Value::as_str).map(str::to_string));
                }
            }
            "profile" => {
                // A merge: `null` removes an attribute, anything else sets it.
                for (key, value) in &event.data {
                    if value.is_null() {
                        member.attrs.remove(key);
                    } else {
                        member.attrs.insert(key.clone(), value.clone());
                    }
                }
            }
            _ => {}
        }
        if let Some(problem) = self.member.size().grew_past_bounds(&size_before) {
            self.member = before;
            self.failures.push(super::outcome::RuleFailure {
                rule: format!("({})", event.kind),
                member: self.member.id.to_string(),
                at: format!("event {}", event.id),
                error: format!("{} data not merged: {problem}", event.kind),
                event: Some(event.id.clone()),
                when: self.now(),
            });
        }
    }

    /// A check-in extends the streak when it is on the local day after the last one,
    /// restarts it after a gap, and changes nothing on the same day.
    fn checkin(&mut self, at: chrono::DateTime<chrono::Utc>) {
        let day = localtime::local_day(at, self.zone());
        let member = &mut self.member;
        let streak = member.counter("checkin_streak");
        let (new_streak, broken) = match member.book.last_checkin_day {
            Some(last) if day <= last => return,
            Some(last) if last.succ_opt() == Some(day) => (streak + Decimal::ONE, false),
            Some(_) => (Decimal::ONE, true),
            None => (Decimal::ONE, false),
        };
        member.book.last_checkin_day = Some(day);
        member.counters.insert("checkin_streak", new_streak);
        if new_streak > member.counter("checkin_best") {
            member.counters.insert("checkin_best", new_streak);
        }
        if broken {
            // A broken streak is a new streak: its milestones pay again.
            self.restart_streak();
        }
    }

    /// Activity moves `last_active` forward (never back) and brings back a member who
    /// left. Returns the `returned` rules whose silence this activity ends.
    fn activity(&mut self, at: chrono::DateTime<chrono::Utc>) -> Vec<usize> {
        let rules = self.rules();
        let member = &mut self.member;
        member.left = false;
        let previous = member.last_active;
        if previous.is_none_or(|last| at > last) {
            member.last_active = Some(at);
        }
        let Some(silence) = previous.map(|last| at - last) else {
            return Vec::new();
        };
        rules
            .index
            .returned
            .iter()
            .copied()
            .filter(|&index| match rules.rules[index].trigger {
                crate::rules::Trigger::Returned(min) => silence >= min,
                _ => false,
            })
            .collect()
    }

    fn count_custom(&mut self, event: &Event) {
        let rules = self.rules();
        for counter in &rules.counters {
            if !counter.on.contains(&event.kind) {
                continue;
            }
            let amount = match &counter.add {
                Amount::Fixed(n) => *n,
                Amount::Expr(expr) => {
                    let sandbox = rules.sandbox.clone();
                    match sandbox.eval_number(expr, self.bindings()) {
                        Ok(n) => n,
                        Err(e) => {
                            let failed = Failed::script(e, expr);
                            self.failures.push(super::RuleFailure {
                                rule: format!("counter:{}", counter.id),
                                member: self.member.id.to_string(),
                                at: failed.at.unwrap_or_default(),
                                error: failed.message,
                                event: Some(event.id.clone()),
                                when: self.now(),
                            });
                            continue;
                        }
                    }
                }
            };
            self.member.add_to_counter(&counter.id, amount);
            self.member_changed();
        }
    }
}
