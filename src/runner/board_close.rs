//! The close of a leaderboard period as a durable job: a global timer per board with
//! close rules (`trigger: { leaderboard: ID, closes: true }`), due at the start of the
//! board's next period, whose pop starts a job that runs a step for each of the closed
//! period's first `top` places, in rank order.
//!
//! Exactly once, across crashes: the job is written in the transaction that removes
//! its timer and arms the next close; its first batch reads the places from the
//! ranking index and keeps them in the job (the winners are fixed before anybody is
//! awarded, whatever arrives meanwhile); each batch commits the members' changes with
//! how many places were awarded, so a crash resumes after the last batch committed.
//!
//! A close missed while Rally was down runs at the next start: its timer is still in
//! the store, due in the past (like a schedule's catch-up: every close runs).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::arming::armed_name;
use super::fanout::{job_name, FanoutJob, Pace, Work, FANOUT_BATCH, NEXT_JOB_META};
use super::gather::{close_key, Gathered};
use super::timers::millis;
use super::Runner;
use crate::engine::{BoardClose, Input};
use crate::leaderboard::close::{closed_period, next_close};
use crate::leaderboard::Standing;
use crate::money::Decimal;
use crate::rules::{RuleSet, Trigger};
use crate::store::keys::TimerKey;
use crate::store::{StepWrite, StoreError};

/// Timer kind of a board's next close; its id is the board's.
pub const BOARD_CLOSE: &str = "leaderboard";

/// A close under way: where its job is, in its job record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloseJob {
    pub board: String,
    /// The period that closed (`2026-W48`).
    pub period: String,
    /// How many places the board's close rules reach (the largest `top`).
    pub top: usize,
    /// `None` until the first batch read them; then the places, best first.
    pub places: Option<Vec<ClosedPlace>>,
    /// How many places were awarded so far.
    pub awarded: usize,
}

/// One place of the closed period, as read when the close began.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosedPlace {
    pub member: String,
    #[serde(with = "crate::leaderboard::decimal_text")]
    pub score: Decimal,
    /// When the member reached the score (Unix millis): orders equal scores when the
    /// places of many cluster partitions are merged (jobs stored before it read 0).
    #[serde(default)]
    pub reached: i64,
}

impl From<Standing> for ClosedPlace {
    fn from(standing: Standing) -> ClosedPlace {
        ClosedPlace {
            member: standing.member,
            score: standing.score,
            reached: standing.reached,
        }
    }
}

impl CloseJob {
    /// This close as the job `seq` of `occurrence`, ready to run.
    fn job(self, seq: u64, occurrence: DateTime<Utc>) -> FanoutJob {
        FanoutJob {
            seq,
            work: Work::BoardClose { close: self },
            occurrence,
            cursor: None,
            waiting_for: None,
        }
    }
}

/// How many places the close rules of `board` reach, if it has any.
fn close_top(rules: &RuleSet, board: &str) -> Option<usize> {
    let indices = rules.index.leaderboard_close.get(board)?;
    indices
        .iter()
        .filter_map(|&i| match rules.rules[i].trigger {
            Trigger::LeaderboardClose { top, .. } => Some(top),
            _ => None,
        })
        .max()
}

impl Runner {
    /// Arms the next close of every board with close rules, counting from `from`
    /// (see `arming.rs`); notes the armed names in `wanted`.
    pub(super) fn arm_board_closes(
        &self,
        from: DateTime<Utc>,
        write: &mut StepWrite,
        wanted: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let rules = self.rules.clone();
        for board in &rules.leaderboards {
            if close_top(&rules, &board.id).is_none() {
                continue;
            }
            let next = next_close(board.period, from, rules.settings.timezone);
            let timer = next.map(|next| (millis(next), Vec::new()));
            self.rearm(write, BOARD_CLOSE, &board.id, timer)?;
            wanted.push(armed_name(BOARD_CLOSE, &board.id));
        }
        Ok(())
    }

    /// A board's close fell due: the job for the closed period, and the next close,
    /// in the transaction that removes the timer.
    pub(super) fn pop_board_close(
        &mut self,
        key: TimerKey,
        due: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let rules = self.rules.clone();
        let armed = armed_name(BOARD_CLOSE, &key.id);
        let mut write = StepWrite {
            timers_clear: vec![key.clone()],
            ..StepWrite::default()
        };
        let board = rules.leaderboards.iter().find(|b| b.id == key.id);
        let (Some(board), Some(top)) = (board, close_top(&rules, &key.id)) else {
            // The board or its close rules are gone (a reload disarms them too).
            write.meta_remove.push(armed);
            self.open.push(write);
            return Ok(());
        };
        let zone = rules.settings.timezone;
        let job = self.push_job(
            Work::BoardClose {
                close: CloseJob {
                    board: board.id.clone(),
                    period: closed_period(board.period, due, zone),
                    top,
                    places: None,
                    awarded: 0,
                },
            },
            due,
        );
        write.meta_put.push(job.meta());
        write
            .meta_put
            .push((NEXT_JOB_META.into(), self.next_job.to_string().into_bytes()));
        match next_close(board.period, due, zone) {
            Some(next) => {
                let next = millis(next);
                write
                    .timers_set
                    .push((TimerKey::new(next, BOARD_CLOSE, key.id.clone()), Vec::new()));
                write.meta_put.push((armed, next.to_string().into_bytes()));
            }
            None => write.meta_remove.push(armed),
        }
        self.open.push(write);
        Ok(())
    }

    /// One batch of the close job `seq`: up to a fan-out batch of places awarded, in
    /// rank order. Returns the steps run.
    pub(super) fn close_batch(
        &mut self,
        seq: u64,
        occurrence: DateTime<Utc>,
        mut close: CloseJob,
    ) -> Result<usize, StoreError> {
        let places = match close.places.take() {
            Some(places) => places,
            None => {
                let ours = self
                    .store
                    .leaderboard_top(&close.board, &close.period, close.top)?
                    .into_iter()
                    .map(ClosedPlace::from)
                    .collect();
                // The places are this store's — or, in a cluster partition, those of
                // every partition (`gather.rs`), once they are known.
                let key = close_key(&close.board, &close.period);
                let part = Gathered::Close {
                    top: close.top,
                    places: ours,
                };
                match self.gather(&key, part)? {
                    Some(Gathered::Close { places, .. }) => places,
                    Some(Gathered::Draw { .. }) => Vec::new(),
                    None => {
                        let mut write = StepWrite::default();
                        self.park(close.job(seq, occurrence), key, &mut write);
                        self.open.push(write);
                        self.commit()?;
                        return Ok(0);
                    }
                }
            }
        };
        let from = close.awarded.min(places.len());
        let to = places.len().min(from + FANOUT_BATCH);
        let mut steps = 0;
        for (i, place) in places.iter().enumerate().take(to).skip(from) {
            // A winner erased since the period closed gets nothing.
            let Some(member) = self.take_member(&place.member)? else {
                continue;
            };
            let standing = Standing {
                rank: i + 1,
                member: place.member.clone(),
                score: place.score,
                reached: place.reached,
            };
            let input = BoardClose::new(&close.board, &close.period, &standing, occurrence);
            let outcome = self.step(Some(member), &Input::LeaderboardClose(&input), occurrence);
            self.absorb(outcome, StepWrite::default());
            steps += 1;
        }
        close.awarded = to;
        let done = to == places.len();
        close.places = Some(places);
        let mut bookkeeping = StepWrite::default();
        if self.pace == Pace::Interleaved {
            // As for any fan-out batch: the journal says where it fell among events.
            let at = self.clock.now().unwrap_or(occurrence);
            self.record(&mut bookkeeping, super::Entry::Batch { at, job: seq });
        }
        if done {
            tracing::info!(
                board = %close.board,
                period = %close.period,
                places = close.awarded,
                "leaderboard closed"
            );
            bookkeeping.meta_remove.push(job_name(seq));
        } else {
            let job = close.job(seq, occurrence);
            bookkeeping.meta_put.push(job.meta());
            self.jobs.push_front(job);
        }
        bookkeeping
            .meta_put
            .push((NEXT_JOB_META.into(), self.next_job.to_string().into_bytes()));
        self.open.push(bookkeeping);
        self.commit()?;
        Ok(steps)
    }
}
