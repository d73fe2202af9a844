//! Steps started by time rather than by an event: a member's inactivity timer, one
//! member's share of a `phase` or `schedule` trigger, a member's turn in the pass
//! after the inactivity rules changed — and the arming of a member's inactivity timer.
//!
//! Each member has at most one inactivity timer, due no later than their next
//! inactivity deadline (`last_active + DURATION` of a rule not yet fired in this
//! silence). Activity moves deadlines later and leaves the timer alone, so an event
//! costs no timer writes; the timer may then pop early, fire nothing and re-arm for
//! the deadline now ahead. Only a timer that would be late (a member back from a
//! silence some rules already fired in, a rule added or shortened by a reload) is
//! moved earlier.
//!
//! Which rules fired in a silence is kept per rule (`silence_rules`): a rule fires at
//! most once per silence, whatever a reload does to its duration, and a rule added
//! while a member is silent past its deadline still reaches them, once.

use super::explain::{Check, Why};
use super::run::{Failed, Run};
use crate::member::Member;
use crate::rules::{RuleSet, Trigger};
use crate::store::keys::TimerKey;
use std::borrow::Cow;

/// The timer kind of inactivity deadlines in the timer index; the timer's id is the
/// member id.
pub const INACTIVE: &str = "inactive";

/// Where a member stands with one inactivity rule (see [`silence_outlook`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outlook {
    /// Not silent in a way inactivity rules watch (never active, or left).
    NotSilent,
    /// Fired in the current silence.
    Fired,
    /// Silent past the rule's deadline and not reached yet: the next step for the
    /// member fires it.
    Due,
    /// Silent, with the deadline still ahead.
    Ahead,
}

/// The member's current silence: when it began (`last_active`, Unix millis) and the
/// inactivity rules that fired in it (borrowed from the member: every step asks for
/// the next deadline, and only firing changes the list).
struct Silence<'m> {
    began: i64,
    fired: Cow<'m, [String]>,
}

/// `None` when the member is not silent in a way inactivity rules watch.
fn silence<'m>(rules: &RuleSet, member: &'m Member) -> Option<Silence<'m>> {
    if member.left {
        return None;
    }
    let began = member.last_active?.timestamp_millis();
    let book = &member.book;
    let fired = match (&book.silence_rules, book.silence_fired) {
        (Some((fired_began, ids)), _) if *fired_began == began => Cow::Borrowed(&ids[..]),
        // Written before rules were kept one by one: every rule whose deadline was
        // at or before `through` had fired.
        (_, Some((fired_began, through))) if fired_began == began => Cow::Owned(
            deadlines(rules, began)
                .filter(|&(deadline, _)| deadline <= through)
                .map(|(_, index)| rules.rules[index].id.clone())
                .collect(),
        ),
        _ => Cow::Borrowed(&[][..]),
    };
    Some(Silence { began, fired })
}

/// Every inactivity rule's deadline (Unix millis) in a silence that began at
/// `began`, with the rule's index.
fn deadlines(rules: &RuleSet, began: i64) -> impl Iterator<Item = (i64, usize)> + '_ {
    rules.index.inactive.iter().filter_map(move |&index| {
        let Trigger::Inactive(silence) = rules.rules[index].trigger else {
            return None;
        };
        Some((began.saturating_add(silence.num_milliseconds()), index))
    })
}

/// Where `member` stands at `now` (Unix millis) with each inactivity rule, by rule
/// index: what a pass after a reload counts to say whom a new rule will reach.
pub fn silence_outlook(rules: &RuleSet, member: &Member, now: i64) -> Vec<(usize, Outlook)> {
    let Some(silence) = silence(rules, member) else {
        return rules
            .index
            .inactive
            .iter()
            .map(|&index| (index, Outlook::NotSilent))
            .collect();
    };
    deadlines(rules, silence.began)
        .map(|(deadline, index)| {
            let outlook = if silence.fired.contains(&rules.rules[index].id) {
                Outlook::Fired
            } else if deadline <= now {
                Outlook::Due
            } else {
                Outlook::Ahead
            };
            (index, outlook)
        })
        .collect()
}

/// The member's next inactivity deadline (Unix millis): the earliest of the rules
/// that have not fired in the current silence. What the member's timer is armed for.
pub fn next_silence_deadline(rules: &RuleSet, member: &Member) -> Option<i64> {
    let silence = silence(rules, member)?;
    deadlines(rules, silence.began)
        .filter(|&(_, index)| !silence.fired.contains(&rules.rules[index].id))
        .map(|(deadline, _)| deadline)
        .min()
}

impl Run<'_> {
    /// The member's inactivity timer fell due at `due`. Fires, in deadline order, every
    /// inactivity rule whose deadline in the current silence has passed by `due` and
    /// that has not fired in it — nothing if activity moved the deadlines on. A timer
    /// that is not the armed one (superseded, or disarmed by `leave`) does nothing.
    pub fn on_inactive(&mut self, due: i64) {
        if self.member.book.silence_timer != Some(due) {
            self.note(|run| match run.member.book.silence_timer {
                Some(armed) => format!(
                    "this timer was superseded (the member's timer is armed for {}): nothing runs",
                    millis(armed)
                ),
                None => {
                    "this timer was disarmed (the member left, or nothing is due): nothing runs"
                        .to_string()
                }
            });
            return;
        }
        self.member.book.silence_timer = None;
        self.fire_silence_rules(due);
    }

    /// The inactivity rules changed (a reload, or a restart on edited files): every
    /// rule whose deadline in the member's current silence has passed and that has not
    /// fired in it fires now, once; the step's end re-arms the timer for the rest.
    pub fn on_silence_rules_changed(&mut self) {
        let now = self.now().timestamp_millis();
        self.fire_silence_rules(now);
    }

    /// Fires, in deadline order, the inactivity rules due by `by` (Unix millis) that
    /// have not fired in the current silence, and records them as fired.
    fn fire_silence_rules(&mut self, by: i64) {
        let rules = self.rules();
        let Some(Silence { began, fired }) = silence(rules, &self.member) else {
            self.note(|_| {
                "the member is not silent in a way inactivity rules watch (never active, or left)"
                    .to_string()
            });
            return;
        };
        let mut due_rules: Vec<(i64, usize)> = deadlines(rules, began)
            .filter(|&(deadline, index)| deadline <= by && !fired.contains(&rules.rules[index].id))
            .collect();
        due_rules.sort();
        let mut fired = fired.into_owned();
        fired.extend(
            due_rules
                .iter()
                .map(|&(_, index)| rules.rules[index].id.clone()),
        );
        self.member.book.silence_fired = None;
        self.member.book.silence_rules = Some((began, fired));
        if due_rules.is_empty() {
            self.note(|_| {
                format!(
                    "silent since {}: no inactivity rule is due by {} that has not fired in this silence",
                    millis(began),
                    millis(by)
                )
            });
            return;
        }
        self.place_on_ladder();
        for (deadline, index) in due_rules {
            debug_assert!(matches!(rules.rules[index].trigger, Trigger::Inactive(_)));
            self.consider(index, |_| Why::Inactive {
                after: match rules.rules[index].trigger {
                    Trigger::Inactive(d) => crate::duration::format(d),
                    _ => String::new(),
                },
                deadline: chrono::DateTime::from_timestamp_millis(deadline).unwrap_or_default(),
            });
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
            self.note(|_| format!("no phase or schedule rule {rule_id:?} in the current rules"));
            return;
        };
        let rule = &rules.rules[index];
        self.consider(index, |_| match &rule.trigger {
            Trigger::Phase { campaign, enters } => Why::Phase {
                campaign: campaign.clone(),
                enters: enters.clone(),
            },
            _ => Why::Schedule,
        });
        let audience = rule.audience.as_ref();
        if self.member.left && !audience.is_some_and(|a| a.include_left) {
            self.check(|_| Check::Audience {
                expr: None,
                value: None,
                reads: Vec::new(),
                left: true,
                pass: false,
            });
            self.skipped("audience");
            return;
        }
        if let Some(expr) = audience.and_then(|a| a.condition.as_ref()) {
            // A phase or schedule runs this for every member at once: most audiences
            // (`member.points > 0`) are decided without building Rhai's bindings.
            let value = match expr.native_bool(&self.member, self.event) {
                Some(value) => Ok(value),
                None => rules.sandbox.clone().eval_bool(expr, self.bindings()),
            };
            self.check(|run| Check::Audience {
                expr: Some(expr.text.trim().to_string()),
                value: value.as_ref().ok().copied(),
                reads: run.reads(expr),
                left: false,
                pass: matches!(value, Ok(true)),
            });
            match value {
                Ok(true) => {}
                Ok(false) => {
                    self.skipped("audience");
                    return;
                }
                Err(e) => {
                    self.fail(rule, Failed::script(e, expr));
                    return;
                }
            }
        } else {
            self.check(|_| Check::Audience {
                expr: None,
                value: None,
                reads: Vec::new(),
                left: false,
                pass: true,
            });
        }
        self.place_on_ladder();
        self.try_rule(index, 0);
        self.drain();
    }

    /// Arms, moves or disarms the member's inactivity timer so it is due no later than
    /// the next deadline; leaves an earlier one alone (see the module comment).
    /// Returns the timer writes: what to set and what to clear.
    pub fn arm_silence_timer(&mut self) -> (Vec<(TimerKey, Vec<u8>)>, Vec<TimerKey>) {
        let next = next_silence_deadline(self.rules(), &self.member);
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

/// Unix millis as an RFC 3339 time, for the trace's notes.
fn millis(at: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(crate::member::rfc3339)
        .unwrap_or_else(|| at.to_string())
}
