//! Work run over every member in batches: a global trigger's occurrence (a `phase`
//! or `schedule` rule), and the pass after the inactivity rules changed.
//!
//! A job is written in the same transaction as what started it (a timer's removal, a
//! reload's arming); each batch of members commits with the job's cursor, so a crash
//! in the middle resumes after the last committed member and no member is run twice.
//!
//! The daemon interleaves batches with events ([`Pace::Interleaved`]): a fan-out over
//! a million members must not hold ingestion back until it is done. `sim` and
//! `import` run a job to its end before the next arrival ([`Pace::ToEnd`]), so their
//! results do not depend on how fast anything ran.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Runner;
use crate::engine::{Input, Outlook};
use crate::store::{StepWrite, Store, StoreError};

/// Members per fan-out transaction: big enough to amortise a commit, small enough
/// that a huge audience never holds one giant transaction.
pub(super) const FANOUT_BATCH: usize = 128;

const JOB_META: &str = "job.";
pub(super) const NEXT_JOB_META: &str = "jobs.next";
/// Meta name of the inactivity rules (`id=duration`) the last silence pass ran for.
const SILENCE_RULES_META: &str = "silence.rules";
/// Meta name of the last finished silence pass: a [`SilencePass`] as JSON.
const SILENCE_PASS_META: &str = "silence.pass";

/// How fan-out batches share the writer with arrivals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pace {
    /// Every job runs to its end before the next arrival (`sim`, `import`): what a
    /// member sees does not depend on timing.
    #[default]
    ToEnd,
    /// Arrivals do not wait for jobs; the writer runs a batch between groups (the
    /// daemon).
    Interleaved,
}

/// A job over every member, `cursor` = the last member id done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FanoutJob {
    pub seq: u64,
    #[serde(flatten)]
    pub work: Work,
    /// When it started: a global trigger's occurrence, or the silence pass's reload.
    #[serde(with = "crate::engine::outcome::utc")]
    pub occurrence: DateTime<Utc>,
    pub cursor: Option<String>,
    /// In a cluster partition, a draw or close parked until the result over every
    /// partition arrives (`gather.rs`): that result's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

/// What a job does for each member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Work {
    /// Runs the global trigger of `rule` (jobs stored before passes existed have
    /// only this field).
    Rule { rule: String },
    /// The pass after the inactivity rules changed.
    Silence { silence: SilencePass },
    /// The draw of a rule with `draw: { winners: N }` (see `draw.rs`).
    Draw { draw: super::draw::DrawJob },
    /// The close of a leaderboard period (see `board_close.rs`).
    BoardClose { close: super::board_close::CloseJob },
}

/// The pass after the inactivity rules changed: every member's inactivity rules past
/// their deadline fire and their timer is re-armed, and how many members each new or
/// changed rule reaches is counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SilencePass {
    /// Per new or changed inactivity rule.
    pub reach: BTreeMap<String, Reach>,
    /// Members looked at so far.
    pub members: u64,
    /// Set once every member was looked at.
    #[serde(default)]
    pub done: bool,
}

/// Whom one new or changed inactivity rule reaches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reach {
    /// Members silent past the rule's deadline: it fired for them in the pass.
    pub fired_now: u64,
    /// Members silent with the deadline still ahead: it fires when they reach it.
    pub waiting: u64,
}

impl FanoutJob {
    pub(super) fn meta(&self) -> (String, Vec<u8>) {
        (
            job_name(self.seq),
            serde_json::to_vec(self).unwrap_or_default(),
        )
    }
}

pub(super) fn job_name(seq: u64) -> String {
    // Zero-padded so meta's byte order is the jobs' order.
    format!("{JOB_META}{seq:020}")
}

/// The jobs stored, in order: those that can run, those parked (`gather.rs`), and the
/// next job's number.
pub(super) fn load_jobs(
    store: &Store,
) -> Result<(VecDeque<FanoutJob>, Vec<FanoutJob>, u64), StoreError> {
    let mut jobs = VecDeque::new();
    let mut parked = Vec::new();
    for (name, bytes) in store.meta_scan(JOB_META)? {
        let job: FanoutJob = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e))?;
        match job.waiting_for {
            Some(_) => parked.push(job),
            None => jobs.push_back(job),
        }
    }
    let next = match store.meta_get(NEXT_JOB_META)? {
        Some(bytes) => String::from_utf8_lossy(&bytes).parse().unwrap_or(0),
        None => 0,
    };
    let last = jobs.iter().chain(&parked).map(|j| j.seq + 1).max();
    let next = next.max(last.unwrap_or(0));
    Ok((jobs, parked, next))
}

/// The silence pass under way, if any, and the last one finished, as stored (what
/// `GET /v1/rules` shows).
pub fn stored_silence_passes(
    store: &Store,
) -> Result<(Option<SilencePass>, Option<SilencePass>), StoreError> {
    let (jobs, _, _) = load_jobs(store)?;
    let running = jobs.into_iter().find_map(|job| match job.work {
        Work::Silence { silence } => Some(silence),
        Work::Rule { .. } | Work::Draw { .. } | Work::BoardClose { .. } => None,
    });
    let last = match store.meta_get(SILENCE_PASS_META)? {
        Some(bytes) => Some(
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::corrupt("meta", SILENCE_PASS_META.as_bytes(), e))?,
        ),
        None => None,
    };
    Ok((running, last))
}

/// The inactivity rules as a pass compares them: `id=duration in millis`, by id.
fn silence_rules(rules: &crate::rules::RuleSet) -> Vec<String> {
    let mut ids: Vec<String> = rules
        .index
        .inactive
        .iter()
        .filter_map(|&index| match rules.rules[index].trigger {
            crate::rules::Trigger::Inactive(silence) => Some(format!(
                "{}={}",
                rules.rules[index].id,
                silence.num_milliseconds()
            )),
            _ => None,
        })
        .collect();
    ids.sort();
    ids
}

impl Runner {
    /// How fan-out batches share time with arrivals from now on.
    pub fn set_pace(&mut self, pace: Pace) {
        self.pace = pace;
    }

    /// The sequence number of the job whose batch runs next.
    pub fn next_fanout_job(&self) -> Option<u64> {
        self.jobs.front().map(|job| job.seq)
    }

    /// Whether a job is unfinished.
    pub(super) fn fanout_pending(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// The unfinished silence pass, if any (a reload waits for it to say whom its
    /// rules reach).
    pub fn silence_pass(&self) -> Option<(u64, &SilencePass)> {
        self.jobs.iter().find_map(|job| match &job.work {
            Work::Silence { silence } => Some((job.seq, silence)),
            Work::Rule { .. } | Work::Draw { .. } | Work::BoardClose { .. } => None,
        })
    }

    pub(super) fn new_job(&mut self, rule: &str, occurrence: DateTime<Utc>) -> FanoutJob {
        let draw = self.rules.rules.iter().find(|r| r.id == rule);
        let work = match draw.and_then(|r| r.draw) {
            Some(draw) => Work::Draw {
                draw: super::draw::DrawJob::new(rule, draw.winners),
            },
            None => Work::Rule {
                rule: rule.to_string(),
            },
        };
        self.push_job(work, occurrence)
    }

    pub(super) fn push_job(&mut self, work: Work, occurrence: DateTime<Utc>) -> FanoutJob {
        let job = FanoutJob {
            seq: self.next_job,
            work,
            occurrence,
            cursor: None,
            waiting_for: None,
        };
        self.next_job += 1;
        self.jobs.push_back(job.clone());
        job
    }

    /// Starts a silence pass at `now` when the inactivity rules differ from those the
    /// last pass ran for (added, removed, a duration changed) — at a reload, or at a
    /// start on edited files. An unfinished pass is replaced: the new one visits every
    /// member again, under the rules now loaded. A `fresh` store (its clock starts
    /// now) has no member to visit: it only notes the rules.
    pub(super) fn start_silence_pass(
        &mut self,
        now: DateTime<Utc>,
        fresh: bool,
        write: &mut StepWrite,
    ) -> Result<(), StoreError> {
        let current = silence_rules(&self.rules);
        if fresh {
            write.meta_put.push((
                SILENCE_RULES_META.to_string(),
                serde_json::to_vec(&current).unwrap_or_default(),
            ));
            return Ok(());
        }
        let stored: Option<Vec<String>> = match self.store.meta_get(SILENCE_RULES_META)? {
            Some(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| StoreError::corrupt("meta", SILENCE_RULES_META.as_bytes(), e))?,
            ),
            None => None,
        };
        if stored.as_ref() == Some(&current) {
            return Ok(());
        }
        let before = stored.unwrap_or_default();
        let reach = current
            .iter()
            .filter(|rule| !before.contains(rule))
            .filter_map(|rule| rule.split_once('='))
            .map(|(id, _)| (id.to_string(), Reach::default()))
            .collect();
        let replaced: Vec<u64> = self
            .jobs
            .iter()
            .filter(|job| matches!(job.work, Work::Silence { .. }))
            .map(|job| job.seq)
            .collect();
        self.jobs.retain(|job| !replaced.contains(&job.seq));
        write.meta_remove.extend(replaced.into_iter().map(job_name));
        let job = self.push_job(
            Work::Silence {
                silence: SilencePass {
                    reach,
                    ..SilencePass::default()
                },
            },
            now,
        );
        write.meta_put.push(job.meta());
        write.meta_put.push((
            SILENCE_RULES_META.to_string(),
            serde_json::to_vec(&current).unwrap_or_default(),
        ));
        write
            .meta_put
            .push((NEXT_JOB_META.into(), self.next_job.to_string().into_bytes()));
        Ok(())
    }

    /// Runs the oldest job over its next batch of members, committing the members'
    /// changes and the job's cursor together. Returns the steps that changed something.
    pub(super) fn fanout_batch(&mut self) -> Result<usize, StoreError> {
        let Some(mut job) = self.jobs.pop_front() else {
            return Ok(0);
        };
        if let Work::Draw { draw } = job.work {
            return self.draw_batch(job.seq, job.occurrence, job.cursor, draw);
        }
        if let Work::BoardClose { close } = job.work {
            return self.close_batch(job.seq, job.occurrence, close);
        }
        let batch = self
            .store
            .members_after(job.cursor.as_deref(), FANOUT_BATCH)?;
        let done = batch.len() < FANOUT_BATCH;
        let mut steps = 0;
        for member in batch {
            job.cursor = Some(member.id.to_string());
            // Members who did not exist at the occurrence are not its audience.
            if member
                .created_at
                .is_some_and(|created| created > job.occurrence)
            {
                continue;
            }
            let id = member.id.clone();
            let changed = match &mut job.work {
                Work::Rule { rule } => {
                    let input = Input::Global {
                        member: &id,
                        rule: rule.as_str(),
                    };
                    let outcome = self.step(Some(member), &input, job.occurrence);
                    let changed = !(outcome.firings.is_empty() && outcome.failures.is_empty());
                    changed.then_some(outcome)
                }
                Work::Silence { silence } => {
                    let input = Input::SilenceRulesChanged { member: &id };
                    let outcome = self.step(Some(member), &input, job.occurrence);
                    silence.count(&self.rules, &outcome, self.clock.now());
                    let changed = !(outcome.firings.is_empty()
                        && outcome.failures.is_empty()
                        && outcome.timers_set.is_empty()
                        && outcome.timers_clear.is_empty());
                    changed.then_some(outcome)
                }
                // Taken to `draw_batch` and `close_batch` above.
                Work::Draw { .. } | Work::BoardClose { .. } => None,
            };
            if let Some(outcome) = changed {
                self.absorb(outcome, StepWrite::default());
                steps += 1;
            }
        }
        let mut bookkeeping = StepWrite::default();
        if self.pace == Pace::Interleaved {
            // Where the batch fell among events is not fixed by their times: the
            // journal says, so a replay runs it at the same place.
            let at = self.clock.now().unwrap_or(job.occurrence);
            self.record(&mut bookkeeping, super::Entry::Batch { at, job: job.seq });
        }
        let mut finished = None;
        if done {
            bookkeeping.meta_remove.push(job_name(job.seq));
            if let Work::Silence { silence } = &mut job.work {
                silence.done = true;
                tracing::info!(
                    members = silence.members,
                    reach = %serde_json::to_string(&silence.reach).unwrap_or_default(),
                    "inactivity rules changed: every member looked at"
                );
                bookkeeping.meta_put.push((
                    SILENCE_PASS_META.to_string(),
                    serde_json::to_vec(silence).unwrap_or_default(),
                ));
                finished = Some((job.seq, silence.clone()));
            }
        } else {
            bookkeeping.meta_put.push(job.meta());
        }
        bookkeeping
            .meta_put
            .push((NEXT_JOB_META.into(), self.next_job.to_string().into_bytes()));
        self.open.push(bookkeeping);
        if !done {
            self.jobs.push_front(job);
        }
        self.commit()?;
        // Reported only once stored: a failed commit resumes the pass from the store.
        self.finished_passes.extend(finished);
        Ok(steps)
    }

    /// Silence passes finished since the last call, by job seq.
    pub fn take_finished_passes(&mut self) -> Vec<(u64, SilencePass)> {
        std::mem::take(&mut self.finished_passes)
    }
}

impl SilencePass {
    /// Counts one member's step of the pass: whom each new or changed rule reached.
    fn count(
        &mut self,
        rules: &crate::rules::RuleSet,
        outcome: &crate::engine::Outcome,
        now: Option<DateTime<Utc>>,
    ) {
        self.members += 1;
        if self.reach.is_empty() {
            return;
        }
        for firing in &outcome.firings {
            if let Some(reach) = self.reach.get_mut(firing.rule.as_str()) {
                reach.fired_now += 1;
            }
        }
        let now = now.map_or(i64::MIN, |t| t.timestamp_millis());
        for (index, outlook) in crate::engine::silence_outlook(rules, &outcome.member, now) {
            if outlook != Outlook::Ahead {
                continue;
            }
            if let Some(reach) = self.reach.get_mut(&rules.rules[index].id) {
                reach.waiting += 1;
            }
        }
    }
}
