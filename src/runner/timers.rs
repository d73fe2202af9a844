//! Time-driven steps: popping due timers from the store's timer index (inactivity
//! deadlines, delayed triggers, campaign phase changes, schedule occurrences).
//!
//! Every timer pop is a step committed with the timer's removal, so a crash never
//! fires a timer twice or loses it. A global trigger becomes a fan-out job
//! (`fanout.rs`) written in the same transaction as its timer's removal.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::fanout::Pace;
use super::{campaign_meta, Runner, TransitionRecord};
use crate::engine::Input;
use crate::rules::{CatchUp, Trigger};
use crate::store::keys::TimerKey;
use crate::store::{Row, StepWrite, StoreError};

/// Timer kinds in the index.
pub const PHASE: &str = "phase";
pub const SCHEDULE: &str = "schedule";
use crate::engine::{parse_after_timer_id, AFTER, INACTIVE, POINTS_EXPIRY};

/// Timers popped per group.
const TIMER_BATCH: usize = 128;

pub(super) const ARMED_META: &str = "armed.";

pub(super) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl Runner {
    /// When something next falls due (or earlier: a caller woken early finds nothing
    /// due and asks again); `now`-or-earlier while a fan-out is unfinished.
    pub fn next_due(&mut self) -> Result<Option<DateTime<Utc>>, StoreError> {
        if let Some(job) = self.jobs.front() {
            return Ok(Some(job.occurrence));
        }
        if self.open.popped().is_some() {
            // Popped timers are still in the store until the group commits.
            return Ok(Some(DateTime::<Utc>::UNIX_EPOCH));
        }
        // The floor may be early (a popped timer leaves it behind): waking early only
        // means finding nothing due, which corrects it.
        let next = match self.committed.due_floor() {
            Some(floor) => floor,
            None => {
                let next = self.store.next_timer()?.map_or(i64::MAX, |key| key.due);
                self.committed.found_next_timer(next);
                next
            }
        };
        Ok((next != i64::MAX).then(|| from_millis(next)))
    }

    /// Time reads `now`: runs everything due at or before it — timers in due order,
    /// each step at its own due time (or the clock, if that is later), and, at
    /// [`Pace::ToEnd`], every fan-out job to its end — and moves the step clock to
    /// `now`. Returns how many steps ran. At [`Pace::Interleaved`] fan-out jobs wait
    /// for [`Runner::run_background`].
    ///
    /// Timer steps join the open group like event steps (the caller commits), so time
    /// passing does not break groups apart. Timers popped but not yet committed are
    /// remembered and skipped; the group is committed first only when it armed a timer
    /// that is already due (the store cannot show it before) or before a fan-out batch
    /// (which reads members from the store).
    pub fn run_due(&mut self, reading: DateTime<Utc>) -> Result<usize, StoreError> {
        // A reading behind the clock (a system clock set back) is the clock's time:
        // what was due by then has to run before the next step all the same.
        let now = self.clock.now().map_or(reading, |clock| clock.max(reading));
        let steps = self.run_due_steps(now)?;
        self.clock.advance(now);
        Ok(steps)
    }

    /// What the daemon's writer runs between groups: what is due, as [`run_due`]
    /// does, then one batch of the oldest fan-out job (at [`Pace::Interleaved`]), so a
    /// fan-out over many members takes turns with events.
    ///
    /// [`run_due`]: Runner::run_due
    pub fn run_background(&mut self, reading: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut steps = self.run_due(reading)?;
        if self.pace == Pace::Interleaved && self.fanout_pending() {
            self.commit()?;
            // A batch that changed nobody still committed its cursor, which the
            // caller must make durable: it counts as a step.
            steps += self.fanout_batch()?.max(1);
        }
        Ok(steps)
    }

    fn run_due_steps(&mut self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let to_end = self.pace == Pace::ToEnd;
        // The common case — nothing due — must not touch the open group.
        let fanout_now = to_end && self.fanout_pending();
        if !fanout_now && !self.maybe_due(now) {
            return Ok(0);
        }
        let mut steps = 0;
        loop {
            if to_end && self.fanout_pending() {
                self.commit()?;
                steps += self.fanout_batch()?;
                continue;
            }
            if self.group_arms_due_timer(now) {
                self.commit()?;
            }
            let (due, next) = self.unpopped_due(millis(now), TIMER_BATCH)?;
            let mut all_run = next.is_some();
            for (key, payload) in due {
                // A step of this batch armed a timer due before this one (an
                // inactivity deadline re-armed by its pop, a lot's expiry): it runs
                // first, so fetch again — the top of the loop commits it.
                if self.group_arms_timer_before(key.due) {
                    all_run = false;
                    break;
                }
                steps += 1;
                // Marked popped only once its step is in the group: a timer whose
                // pop failed (its member could not be read) must be found by the
                // next scan, not skipped until a commit.
                let before = self.open.pop(key.clone());
                if let Err(e) = self.pop(key, &payload) {
                    self.open.unpop(before);
                    return Err(e);
                }
                if to_end && self.fanout_pending() {
                    // A global trigger fell due: run it over every member before any
                    // later timer, so things happen in time order.
                    all_run = false;
                    break;
                }
            }
            // Everything in the store due by `now` ran, and nothing else is due
            // before `next`: the next arrivals need not scan again until then (a
            // timer the group armed is the group's to tell, and lowers the floor
            // when it commits).
            if let (true, Some(next)) = (all_run, next) {
                if !self.group_arms_due_timer(now) {
                    self.committed.found_next_timer(next);
                    break;
                }
            }
            if self.open.len() >= TIMER_BATCH {
                self.commit()?;
            }
        }
        Ok(steps)
    }

    /// Whether the open group armed a timer due at `now` (not visible in the store yet).
    fn group_arms_due_timer(&self, now: DateTime<Utc>) -> bool {
        let limit = millis(now);
        self.open.earliest_armed().is_some_and(|due| due <= limit)
    }

    /// Whether the open group armed a timer due before `due` (Unix millis).
    fn group_arms_timer_before(&self, due: i64) -> bool {
        self.open.earliest_armed().is_some_and(|armed| armed < due)
    }

    /// Whether a timer may be due at `now`, committed or in the open group: false only
    /// when the store's next timer is known to be later (no scan for that).
    fn maybe_due(&self, now: DateTime<Utc>) -> bool {
        if self.group_arms_due_timer(now) {
            return true;
        }
        let limit = millis(now);
        self.committed
            .due_floor()
            .is_none_or(|floor| floor <= limit)
    }

    /// Up to `max` timers due at `up_to` (Unix millis) that the open group has not
    /// popped yet, and when fewer were due, when the next one after them falls due
    /// (see [`crate::store::Store::timers_due_and_next`]).
    fn unpopped_due(
        &self,
        up_to: i64,
        max: usize,
    ) -> Result<(Vec<Row<TimerKey>>, Option<i64>), StoreError> {
        self.store
            .timers_due_and_next(self.open.popped(), up_to, max)
    }

    fn pop(&mut self, key: TimerKey, payload: &[u8]) -> Result<(), StoreError> {
        let due = from_millis(key.due);
        // Time reaches the timer before it runs (a no-op for one due in the past).
        self.clock.advance(due);
        match key.kind.as_str() {
            INACTIVE => self.pop_member_timer(key, due, |key| Input::Inactive {
                member: &key.id,
                due: key.due,
            }),
            POINTS_EXPIRY => self.pop_member_timer(key, due, |key| Input::PointsExpiry {
                member: &key.id,
                due: key.due,
            }),
            AFTER => self.pop_after(key, due),
            PHASE => self.pop_phase(key, payload, due),
            SCHEDULE => self.pop_schedule(key, due),
            super::board_close::BOARD_CLOSE => self.pop_board_close(key, due),
            super::tickets::SLA => self.pop_sla(key, due),
            _ => {
                // A kind this build does not know: drop it rather than spin on it.
                tracing::warn!(kind = %key.kind, id = %key.id, "dropping a timer of unknown kind");
                self.open.push(StepWrite {
                    timers_clear: vec![key],
                    ..StepWrite::default()
                });
                Ok(())
            }
        }
    }

    /// A member's own timer (inactivity, points expiry): the member's step for the
    /// input `input` makes of the key, committed with the timer's removal. A member
    /// no longer in the store only removes the timer.
    fn pop_member_timer(
        &mut self,
        key: TimerKey,
        due: DateTime<Utc>,
        input: fn(&TimerKey) -> Input<'_>,
    ) -> Result<(), StoreError> {
        let write = StepWrite {
            timers_clear: vec![key.clone()],
            ..StepWrite::default()
        };
        match self.take_member(&key.id)? {
            Some(member) => {
                let outcome = self.step(Some(member), &input(&key), due);
                self.absorb(outcome, write);
            }
            None => self.open.push(write),
        }
        Ok(())
    }

    /// A delayed trigger (`after` rule): the member's step running that one rule,
    /// committed with the timer's removal. A member not in the store, or an id this
    /// build cannot read, only removes the timer.
    fn pop_after(&mut self, key: TimerKey, due: DateTime<Utc>) -> Result<(), StoreError> {
        let write = StepWrite {
            timers_clear: vec![key.clone()],
            ..StepWrite::default()
        };
        let Some((member_id, rule, event_id)) = parse_after_timer_id(&key.id) else {
            tracing::warn!(id = %key.id, "dropping an after timer with an unreadable id");
            self.open.push(write);
            return Ok(());
        };
        match self.take_member(member_id)? {
            Some(member) => {
                let input = Input::After {
                    member: member_id,
                    rule,
                    event_id,
                    due: key.due,
                };
                let outcome = self.step(Some(member), &input, due);
                self.absorb(outcome, write);
            }
            None => self.open.push(write),
        }
        Ok(())
    }

    fn pop_phase(
        &mut self,
        key: TimerKey,
        payload: &[u8],
        due: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let rules = self.rules.clone();
        let campaign_id = key.id.clone();
        let armed = format!("{ARMED_META}{PHASE}.{campaign_id}");
        let mut write = StepWrite {
            timers_clear: vec![key],
            ..StepWrite::default()
        };
        let Some(campaign) = rules.campaigns.iter().find(|c| c.id == campaign_id) else {
            write.meta_remove.push(armed);
            self.open.push(write);
            return Ok(());
        };
        let phase: Option<String> = serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("phase").and_then(|p| p.as_str()).map(str::to_string));
        let record = self.campaigns.entry(campaign_id.to_string()).or_default();
        record.transitions.push(TransitionRecord {
            phase: phase.clone(),
            at: due,
        });
        write.meta_put.push(campaign_meta(&campaign_id, record));
        if let Some(entered) = &phase {
            for &index in &rules.index.phase {
                let rule = &rules.rules[index];
                if let Trigger::Phase { campaign, enters } = &rule.trigger {
                    if *campaign == campaign_id && enters == entered {
                        let job = self.new_job(&rule.id, due);
                        write.meta_put.push(job.meta());
                    }
                }
            }
        }
        match crate::campaign::next_transition_after(campaign, due) {
            Some(next) => {
                let key = TimerKey::new(millis(next.at), PHASE, campaign_id);
                let payload = json!({ "phase": next.phase }).to_string().into_bytes();
                write.timers_set.push((key, payload));
                write
                    .meta_put
                    .push((armed, millis(next.at).to_string().into_bytes()));
            }
            None => write.meta_remove.push(armed),
        }
        self.open.push(write);
        Ok(())
    }

    fn pop_schedule(&mut self, key: TimerKey, due: DateTime<Utc>) -> Result<(), StoreError> {
        let rules = self.rules.clone();
        let rule_id = key.id.clone();
        let armed = format!("{ARMED_META}{SCHEDULE}.{rule_id}");
        let mut write = StepWrite {
            timers_clear: vec![key],
            ..StepWrite::default()
        };
        let rule = rules.rules.iter().find(|r| r.id == rule_id);
        let Some((rule, cron)) = rule.and_then(|r| match &r.trigger {
            Trigger::Schedule(cron) => Some((r, cron)),
            _ => None,
        }) else {
            write.meta_remove.push(armed);
            self.open.push(write);
            return Ok(());
        };
        let next = cron.next_after(due, rules.settings.timezone);
        let missed = self.started_at.is_some_and(|start| due < start);
        let run = match (missed, rule.catch_up) {
            (false, _) | (true, CatchUp::All) => true,
            // Only the last occurrence before the restart runs.
            (true, CatchUp::Latest) => {
                next.is_none_or(|n| self.started_at.is_some_and(|start| n >= start))
            }
            (true, CatchUp::Skip) => false,
        };
        if run {
            let job = self.new_job(&rule_id, due);
            write.meta_put.push(job.meta());
        }
        match next {
            Some(next) => {
                let key = TimerKey::new(millis(next), SCHEDULE, rule_id);
                write.timers_set.push((key, Vec::new()));
                write
                    .meta_put
                    .push((armed, millis(next).to_string().into_bytes()));
            }
            None => write.meta_remove.push(armed),
        }
        self.open.push(write);
        Ok(())
    }
}
