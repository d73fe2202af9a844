//! A global rule's draw as a durable job (`draw: { winners: N }`): a scan over every
//! member that keeps the best `N` eligible ones, then a run of the rule's actions for
//! the winners, then the draw's record.
//!
//! Like every fan-out job, each batch commits with the job's state: during the scan,
//! the cursor, the count of eligible members and the best candidates so far; during
//! the awards, how many winners were awarded. A crash resumes from the last batch
//! committed, so it never draws another set and never awards a winner twice. The
//! winners are fixed before anybody is awarded: a winner's award cannot change who
//! else is eligible.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::fanout::{job_name, FanoutJob, Pace, Work, FANOUT_BATCH, NEXT_JOB_META};
use super::gather::{draw_key, Gathered};
use super::Runner;
use crate::engine::{draw_score, would_fire, Best, Candidate, Input};
use crate::store::{StepWrite, Store, StoreError};

/// Meta names: `draw.<occurrence millis, 20 digits>.<rule>` holds a [`DrawRecord`],
/// so a scan of the prefix lists draws by time.
pub const DRAW_META: &str = "draw.";

/// A draw under way: where its job is, in its job record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrawJob {
    pub rule: String,
    /// Members the rule would fire for, scanned so far.
    pub eligible: u64,
    /// The best candidates so far; once the scan is over, the winners in draw order.
    pub best: Best,
    /// `None` while scanning; then how many winners were awarded.
    pub awarded: Option<usize>,
}

/// A finished draw, as `sim`, `GET /v1/draws` and a replay see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrawRecord {
    pub rule: String,
    #[serde(with = "crate::engine::outcome::utc")]
    pub occurrence: DateTime<Utc>,
    /// The rule's `winners`.
    pub wanted: u32,
    /// Members the rule would have fired for at the occurrence.
    pub eligible: u64,
    /// Member ids, in draw order (lowest score first): the order they were awarded in.
    pub winners: Vec<String>,
}

impl DrawJob {
    pub fn new(rule: &str, winners: u32) -> DrawJob {
        DrawJob {
            rule: rule.to_string(),
            eligible: 0,
            best: Best::new(winners as usize),
            awarded: None,
        }
    }
}

fn record_name(record: &DrawRecord) -> String {
    let millis = record.occurrence.timestamp_millis();
    format!("{DRAW_META}{millis:020}.{}", record.rule)
}

/// Every finished draw, by occurrence (then rule).
pub fn stored_draws(store: &Store) -> Result<Vec<DrawRecord>, StoreError> {
    store
        .meta_scan(DRAW_META)?
        .into_iter()
        .map(|(name, bytes)| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e))
        })
        .collect()
}

impl Runner {
    /// One batch of the draw job `seq` (taken off the queue by `fanout_batch`): a
    /// batch of the scan, or of the awards. Returns the steps that changed something.
    pub(super) fn draw_batch(
        &mut self,
        seq: u64,
        occurrence: DateTime<Utc>,
        mut cursor: Option<String>,
        mut draw: DrawJob,
    ) -> Result<usize, StoreError> {
        let mut steps = 0;
        let mut finished = None;
        let mut scanned = false;
        match draw.awarded {
            None => {
                let batch = self.store.members_after(cursor.as_deref(), FANOUT_BATCH)?;
                scanned = batch.len() < FANOUT_BATCH;
                let now = self.clock.advance(occurrence);
                let ctx = self.context(now);
                for member in batch {
                    cursor = Some(member.id.to_string());
                    // Members who did not exist at the occurrence are not its audience.
                    if member.created_at.is_some_and(|c| c > occurrence) {
                        continue;
                    }
                    let id = member.id.clone();
                    if would_fire(&ctx, member, &draw.rule) {
                        draw.eligible += 1;
                        let score = draw_score(self.random_key, &draw.rule, occurrence, &id);
                        draw.best.offer(Candidate {
                            score,
                            member: id.to_string(),
                        });
                    }
                }
            }
            Some(from) => {
                let to = draw.best.kept.len().min(from + FANOUT_BATCH);
                let winners: Vec<String> = draw.best.kept[from..to]
                    .iter()
                    .map(|c| c.member.clone())
                    .collect();
                draw.awarded = Some(to);
                for id in winners {
                    // A winner erased since the scan gets nothing.
                    let Some(member) = self.take_member(&id)? else {
                        continue;
                    };
                    let input = Input::Global {
                        member: &id,
                        rule: &draw.rule,
                    };
                    let outcome = self.step(Some(member), &input, occurrence);
                    self.absorb(outcome, StepWrite::default());
                    steps += 1;
                }
                if to == draw.best.kept.len() {
                    finished = Some(DrawRecord {
                        rule: draw.rule.clone(),
                        occurrence,
                        wanted: draw.best.wanted as u32,
                        eligible: draw.eligible,
                        winners: draw.best.kept.iter().map(|c| c.member.clone()).collect(),
                    });
                }
            }
        }
        // The scan is over: the winners are the best of this store's members — or, in a
        // cluster partition, of every partition's (`gather.rs`), once that is known.
        let mut waiting_for = None;
        if scanned {
            let key = draw_key(&draw.rule, occurrence);
            let part = Gathered::Draw {
                eligible: draw.eligible,
                best: draw.best.clone(),
            };
            match self.gather(&key, part)? {
                Some(Gathered::Draw { eligible, best }) => {
                    draw.eligible = eligible;
                    draw.best = best;
                    draw.awarded = Some(0);
                }
                Some(Gathered::Close { .. }) => draw.awarded = Some(0),
                None => waiting_for = Some(key),
            }
        }
        let mut bookkeeping = StepWrite::default();
        if self.pace == Pace::Interleaved {
            // As for any fan-out batch: the journal says where it fell among events.
            let at = self.clock.now().unwrap_or(occurrence);
            self.record(&mut bookkeeping, super::Entry::Batch { at, job: seq });
        }
        let job = FanoutJob {
            seq,
            work: Work::Draw { draw },
            occurrence,
            cursor,
            waiting_for: None,
        };
        match &finished {
            Some(record) => {
                tracing::info!(
                    rule = %record.rule,
                    eligible = record.eligible,
                    winners = record.winners.len(),
                    "draw finished"
                );
                bookkeeping.meta_remove.push(job_name(seq));
                bookkeeping.meta_put.push((
                    record_name(record),
                    serde_json::to_vec(record).unwrap_or_default(),
                ));
            }
            None => match waiting_for {
                Some(key) => self.park(job, key, &mut bookkeeping),
                None => {
                    bookkeeping.meta_put.push(job.meta());
                    self.jobs.push_front(job);
                }
            },
        }
        bookkeeping
            .meta_put
            .push((NEXT_JOB_META.into(), self.next_job.to_string().into_bytes()));
        self.open.push(bookkeeping);
        self.commit()?;
        Ok(steps)
    }
}
