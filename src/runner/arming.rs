//! Arming campaigns, `schedule` rules and leaderboard closes (`board_close.rs`: a
//! board with close rules has one timer, its next close) from their **current**
//! definition: at the
//! first start, at every restart and after every reload. Each campaign has at most one
//! phase timer (its next transition) and each schedule rule one occurrence timer,
//! noted under `armed.<kind>.<id>` in meta with its due time so it can be found again.
//!
//! Arming counts from the step clock — the last time Rally kept — so what fell due
//! while Rally was down still fires (catch-up), and an edit takes effect from the
//! moment it is loaded:
//! - a timer armed under an old definition is replaced by the current one's (an
//!   inserted phase, a moved one, a cron changed from monthly to daily);
//! - the timers of campaigns and schedule rules that are gone are removed;
//! - a phase the campaign already entered is not entered again because an edit moved
//!   its start later; a recurring phase still recurs;
//! - a campaign that, by its new definition, is in a phase it never entered (a phase
//!   inserted before now) enters it at the reload, once, with its `phase` rules;
//! - when the inactivity rules changed, a pass over every member starts
//!   (`fanout.rs`): members already silent past a new deadline get the rule, once,
//!   and every member's inactivity timer follows the new durations.
//!
//! The writes join the open group: the caller commits, and a failed commit loses the
//! arming with the rest of the group (the next start or reload arms again).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::timers::{millis, ARMED_META, PHASE, SCHEDULE};
use super::{campaign_meta, Runner, TransitionRecord};
use crate::campaign::{self, Transition};
use crate::rules::{Campaign, Trigger};
use crate::store::keys::TimerKey;
use crate::store::{StepWrite, StoreError};

impl Runner {
    /// Arms every campaign and schedule rule from the rules now loaded, counting from
    /// the step clock, or from `now` when the clock has not started (a fresh store),
    /// which then starts there.
    pub fn arm(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        // A fresh store starts keeping time here: the clock is stored with this
        // arming, so a restart before any step still catches up from it.
        let fresh = self.clock.now().is_none();
        let from = match self.clock.now() {
            Some(clock) => clock,
            None => self.clock.advance(now),
        };
        let rules = self.rules.clone();
        let mut write = StepWrite::default();
        let mut wanted = Vec::new();
        for campaign in &rules.campaigns {
            let name = armed_name(PHASE, &campaign.id);
            self.enter_current_phase(campaign, from, &mut write);
            let next = self.next_entry(campaign, from);
            let timer = next.map(|next| {
                let payload = json!({ "phase": next.phase }).to_string().into_bytes();
                (millis(next.at), payload)
            });
            self.rearm(&mut write, PHASE, &campaign.id, timer)?;
            wanted.push(name);
        }
        for rule in &rules.rules {
            let Trigger::Schedule(cron) = &rule.trigger else {
                continue;
            };
            let next = cron.next_after(from, rules.settings.timezone);
            let timer = next.map(|next| (millis(next), Vec::new()));
            self.rearm(&mut write, SCHEDULE, &rule.id, timer)?;
            wanted.push(armed_name(SCHEDULE, &rule.id));
        }
        self.arm_board_closes(from, &mut write, &mut wanted)?;
        for (name, due) in self.armed_all()? {
            if wanted.contains(&name) {
                continue;
            }
            // A campaign or schedule rule that is gone: its timer goes with it.
            if let Some((kind, id)) = name[ARMED_META.len()..].split_once('.') {
                write
                    .timers_clear
                    .push(TimerKey::new(due, kind, id.to_string()));
            }
            write.meta_remove.push(name);
        }
        self.start_silence_pass(from, fresh, &mut write)?;
        if self.random_key_unsaved {
            write.meta_put.push((
                super::RANDOM_KEY_META.to_string(),
                self.random_key.to_hex().into_bytes(),
            ));
            self.random_key_unsaved = false;
        }
        self.journal_arm(&mut write, from);
        if !(write.timers_set.is_empty()
            && write.journal.is_empty()
            && write.timers_clear.is_empty()
            && write.meta_put.is_empty()
            && write.meta_remove.is_empty())
        {
            self.open.push(write);
        }
        Ok(())
    }

    /// The next transition to arm for `campaign` after `from`, skipping the entry of
    /// the phase it is already in when an edit moved that phase's start later (the
    /// entry recorded is then no start of the phase any more).
    fn next_entry(&self, campaign: &Campaign, from: DateTime<Utc>) -> Option<Transition> {
        let next = campaign::next_transition_after(campaign, from)?;
        let Some(entered) = self
            .campaigns
            .get(&campaign.id)
            .and_then(|record| record.transitions.last())
        else {
            return Some(next);
        };
        let again = next.phase.is_some() && next.phase == entered.phase;
        let still_a_start = campaign::phase_at(campaign, entered.at)
            .is_some_and(|p| Some(&p.name) == entered.phase.as_ref() && p.since == entered.at);
        if again && !still_a_start {
            return campaign::next_transition_after(campaign, next.at);
        }
        Some(next)
    }

    /// A campaign that had entered a phase and whose new definition puts it, at
    /// `from`, in a phase that started after that entry (an inserted phase) enters the
    /// new phase now: it is recorded and its `phase` rules run, once.
    fn enter_current_phase(
        &mut self,
        campaign: &Campaign,
        from: DateTime<Utc>,
        write: &mut StepWrite,
    ) {
        let Some(entered) = self
            .campaigns
            .get(&campaign.id)
            .and_then(|record| record.transitions.last())
            .cloned()
        else {
            // Never started: it keeps time from now on, like a new campaign.
            return;
        };
        let Some(current) = campaign::phase_at(campaign, from) else {
            return;
        };
        if Some(&current.name) == entered.phase.as_ref() || current.since <= entered.at {
            return;
        }
        let rules = self.rules.clone();
        let record = self.campaigns.entry(campaign.id.clone()).or_default();
        record.transitions.push(TransitionRecord {
            phase: Some(current.name.clone()),
            at: from,
        });
        write.meta_put.push(campaign_meta(&campaign.id, record));
        for &index in &rules.index.phase {
            let rule = &rules.rules[index];
            if let Trigger::Phase {
                campaign: id,
                enters,
            } = &rule.trigger
            {
                if *id == campaign.id && *enters == current.name {
                    let job = self.new_job(&rule.id, from);
                    write.meta_put.push(job.meta());
                }
            }
        }
    }

    /// Replaces what `kind`/`id` is armed with by `timer` (due millis, payload), or
    /// disarms it for `None`.
    pub(super) fn rearm(
        &self,
        write: &mut StepWrite,
        kind: &str,
        id: &str,
        timer: Option<(i64, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let name = armed_name(kind, id);
        let armed = self.armed(&name)?;
        if let Some(due) = armed.filter(|due| timer.as_ref().is_none_or(|(want, _)| want != due)) {
            write
                .timers_clear
                .push(TimerKey::new(due, kind, id.to_string()));
        }
        match timer {
            // Set again even when due at the same time: the phase it enters may differ.
            Some((due, payload)) => {
                write
                    .timers_set
                    .push((TimerKey::new(due, kind, id.to_string()), payload));
                if armed != Some(due) {
                    write.meta_put.push((name, due.to_string().into_bytes()));
                }
            }
            None if armed.is_some() => write.meta_remove.push(name),
            None => {}
        }
        Ok(())
    }

    /// What `name` is armed with as the next commit will leave it: the open group's
    /// latest change to it, or else the store's.
    fn armed(&self, name: &str) -> Result<Option<i64>, StoreError> {
        for write in self.open.writes().iter().rev() {
            if write.meta_remove.iter().any(|n| n == name) {
                return Ok(None);
            }
            if let Some((_, value)) = write.meta_put.iter().rev().find(|(n, _)| n == name) {
                return Ok(parse_due(value));
            }
        }
        Ok(self.store.meta_get(name)?.as_deref().and_then(parse_due))
    }

    /// Every armed name with its due time, as the next commit will leave them.
    fn armed_all(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut names: Vec<String> = self
            .store
            .meta_scan(ARMED_META)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for write in self.open.writes() {
            for (name, _) in &write.meta_put {
                if name.starts_with(ARMED_META) && !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        let mut armed = Vec::new();
        for name in names {
            if let Some(due) = self.armed(&name)? {
                armed.push((name, due));
            }
        }
        Ok(armed)
    }
}

pub(super) fn armed_name(kind: &str, id: &str) -> String {
    format!("{ARMED_META}{kind}.{id}")
}

fn parse_due(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}
