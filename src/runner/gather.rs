//! In a cluster, what a draw or a leaderboard close decides over every member: each
//! partition's runner contributes its part — the best candidates among its members,
//! the first places among its members — and parks the job until the result merged over
//! every partition reaches its stream as a message (docs/cluster.md, "Draws and
//! leaderboard closes"). Where that message falls in the stream fixes when the job
//! goes on, so a replay of the partition goes on at the same point; each partition
//! then awards the winners that are its own members.
//!
//! Invariants:
//! - a job parks at most once, and a result is applied at most once (`gathered.<key>`
//!   records it): a message published twice changes nothing the second time;
//! - a result applied before its job parks (the partition was behind) is found when
//!   it parks, so the job goes on at once.

use serde::{Deserialize, Serialize};

use super::board_close::ClosedPlace;
use super::fanout::{FanoutJob, Work};
use super::Runner;
use crate::engine::Best;
use crate::store::{StepWrite, StoreError};

/// Meta names: `gathered.<key>` holds a result applied from the stream.
pub const GATHERED_META: &str = "gathered.";

/// A partition's part of a result gathered over every partition, or that result: the
/// same shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Gathered {
    /// A draw: the members eligible, and the best candidates (`best.wanted` of them).
    Draw { eligible: u64, best: Best },
    /// A leaderboard close: the first `top` places, best first.
    Close {
        top: usize,
        places: Vec<ClosedPlace>,
    },
}

impl Gathered {
    /// The result over every partition's part (parts of another kind are left out):
    /// the best candidates of all, the first places of all — each partition's part
    /// holds its own best, so the best of all are among them.
    pub fn merge(parts: &[Gathered]) -> Option<Gathered> {
        match parts.first()? {
            Gathered::Draw { best, .. } => {
                let mut all = Best::new(best.wanted);
                let mut eligible = 0;
                for part in parts {
                    if let Gathered::Draw { eligible: n, best } = part {
                        eligible += n;
                        for candidate in &best.kept {
                            all.offer(candidate.clone());
                        }
                    }
                }
                Some(Gathered::Draw {
                    eligible,
                    best: all,
                })
            }
            Gathered::Close { top, .. } => {
                let mut places: Vec<ClosedPlace> = parts
                    .iter()
                    .filter_map(|part| match part {
                        Gathered::Close { places, .. } => Some(places.iter().cloned()),
                        Gathered::Draw { .. } => None,
                    })
                    .flatten()
                    .collect();
                // The board's own order: higher score, then who reached it first, then
                // the smaller member id (`crate::leaderboard`).
                places.sort_by(|a, b| {
                    b.score
                        .cmp(&a.score)
                        .then(a.reached.cmp(&b.reached))
                        .then_with(|| a.member.cmp(&b.member))
                });
                places.truncate(*top);
                Some(Gathered::Close { top: *top, places })
            }
        }
    }
}

/// Where a partition's parts go (the cluster's key-value bucket).
pub trait Gatherer: Send {
    /// Offers this partition's `part` of the result `key`. The merged result comes back
    /// later, as a message of the partition's stream.
    fn contribute(&mut self, key: &str, part: &Gathered) -> Result<(), String>;
}

/// The key of a draw's result: the rule and its occurrence.
pub fn draw_key(rule: &str, occurrence: chrono::DateTime<chrono::Utc>) -> String {
    format!("draw.{rule}.{}", occurrence.timestamp_millis())
}

/// The key of a leaderboard close's result: the board and the period that closed.
pub fn close_key(board: &str, period: &str) -> String {
    format!("close.{board}.{period}")
}

impl Runner {
    /// Makes this runner a cluster partition's: its draws and leaderboard closes
    /// contribute their part to `gatherer` and wait for the result over every
    /// partition ([`Runner::gathered`]).
    pub fn gather_with(&mut self, gatherer: Box<dyn Gatherer>) {
        self.gatherer = Some(gatherer);
    }

    /// The keys of the results parked jobs wait for.
    pub fn awaited(&self) -> Vec<String> {
        self.parked
            .iter()
            .filter_map(|job| job.waiting_for.clone())
            .collect()
    }

    /// The result `key` over every partition, from the stream: recorded, and the job
    /// parked for it (if any) goes on with it — at the next run of what is due.
    pub fn gathered(&mut self, key: &str, result: Gathered) -> Result<(), StoreError> {
        let name = format!("{GATHERED_META}{key}");
        let in_group = self
            .open
            .writes()
            .iter()
            .any(|write| write.meta_put.iter().any(|(put, _)| *put == name));
        if in_group || self.store.meta_get(&name)?.is_some() {
            return Ok(());
        }
        let mut write = StepWrite {
            meta_put: vec![(name, serde_json::to_vec(&result).unwrap_or_default())],
            ..StepWrite::default()
        };
        let parked = self
            .parked
            .iter()
            .position(|job| job.waiting_for.as_deref() == Some(key));
        if let Some(at) = parked {
            let mut job = self.parked.remove(at);
            job.waiting_for = None;
            take_result(&mut job, result);
            write.meta_put.push(job.meta());
            self.jobs.push_back(job);
        }
        self.open.push(write);
        Ok(())
    }

    /// At the end of a draw's scan or the start of a close, in a cluster partition:
    /// offers `part` and says whether the result is already here (applied from the
    /// stream before the job got this far). `None`: the job must park. Outside a
    /// cluster, the part is the result.
    pub(super) fn gather(
        &mut self,
        key: &str,
        part: Gathered,
    ) -> Result<Option<Gathered>, StoreError> {
        let Some(gatherer) = &mut self.gatherer else {
            return Ok(Some(part));
        };
        if let Err(why) = gatherer.contribute(key, &part) {
            // Not committed: the next owner offers it again.
            self.open.break_with(why);
            return Ok(None);
        }
        let name = format!("{GATHERED_META}{key}");
        Ok(match self.store.meta_get(&name)? {
            Some(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e))?,
            ),
            None => None,
        })
    }

    /// Sets `job` aside until the result `key` arrives; it is stored as it is.
    pub(super) fn park(&mut self, mut job: FanoutJob, key: String, write: &mut StepWrite) {
        job.waiting_for = Some(key);
        write.meta_put.push(job.meta());
        self.parked.push(job);
    }
}

/// Puts a gathered result into the job that waited for it.
fn take_result(job: &mut FanoutJob, result: Gathered) {
    match (&mut job.work, result) {
        (Work::Draw { draw }, Gathered::Draw { eligible, best }) => {
            draw.eligible = eligible;
            draw.best = best;
            draw.awarded = Some(0);
        }
        (Work::BoardClose { close }, Gathered::Close { places, .. }) => {
            close.places = Some(places);
        }
        // A result of another kind for this key: nothing to take (cannot happen, the
        // key names the kind).
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Candidate;
    use crate::money::Decimal;

    fn place(member: &str, score: i64, reached: i64) -> ClosedPlace {
        ClosedPlace {
            member: member.into(),
            score: Decimal::from(score),
            reached,
        }
    }

    #[test]
    fn places_merge_in_the_boards_order_and_are_cut_at_the_top() {
        let parts = [
            Gathered::Close {
                top: 3,
                places: vec![place("a", 9, 5), place("b", 4, 1)],
            },
            Gathered::Close {
                top: 3,
                places: vec![place("c", 9, 2), place("d", 4, 1), place("e", 1, 0)],
            },
        ];
        let Some(Gathered::Close { places, .. }) = Gathered::merge(&parts) else {
            panic!("not a close");
        };
        let order: Vec<&str> = places.iter().map(|p| p.member.as_str()).collect();
        // 9 reached at 2 before 9 at 5; the two 4s at the same millisecond by id.
        assert_eq!(order, ["c", "a", "b"]);
    }

    #[test]
    fn draws_merge_their_best_and_add_up_the_eligible() {
        let best = |scores: &[(u64, &str)]| {
            let mut best = Best::new(2);
            for (score, member) in scores {
                best.offer(Candidate {
                    score: *score,
                    member: member.to_string(),
                });
            }
            best
        };
        let parts = [
            Gathered::Draw {
                eligible: 10,
                best: best(&[(7, "a"), (30, "b")]),
            },
            Gathered::Draw {
                eligible: 5,
                best: best(&[(3, "c"), (40, "d")]),
            },
        ];
        let Some(Gathered::Draw { eligible, best }) = Gathered::merge(&parts) else {
            panic!("not a draw");
        };
        assert_eq!(eligible, 15);
        let winners: Vec<&str> = best.kept.iter().map(|c| c.member.as_str()).collect();
        assert_eq!(winners, ["c", "a"]);
        assert_eq!(Gathered::merge(&[]), None);
    }
}
