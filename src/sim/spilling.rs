//! The simulation's records are serialized and spilled on a thread of their own (a
//! third of `sim`'s work), while the runner goes on with the next events.
//!
//! The runner's outcomes go over a bounded channel in batches, so what waits between
//! the two threads is a few batches, however long the run. The thread owns the
//! [`Spill`]s and hands them back when the run is over; a spill that could not be
//! written reports that when the document is written, as it would on one thread.

use std::sync::mpsc;
use std::thread;

use crate::engine::{Firing, LedgerEntry, RuleFailure};
use crate::outbox::{OutboxRow, Status};
use crate::rewards::Redemption;
use crate::runner::Journaled;

use super::spill::Spill;

/// Outcomes sent at once: few enough messages that the channel costs nothing next to
/// serializing them.
const BATCH: usize = 256;

/// Batches the runner may be ahead of the writer thread.
const BATCHES_AHEAD: usize = 4;

/// What grows with the events, in the order it happened.
#[derive(Default)]
pub struct Spilled {
    pub ledger: Spill<LedgerEntry>,
    pub firings: Spill<Firing>,
    pub failures: Spill<RuleFailure>,
    /// As queued; deferred ones are settled as the document is written.
    pub messages: Spill<OutboxRow>,
    /// Every redemption asked for, granted or refused, in order.
    pub redemptions: Spill<Redemption>,
}

impl Spilled {
    fn absorb(&mut self, outcomes: Vec<Journaled>) {
        for outcome in outcomes {
            for entry in &outcome.ledger {
                self.ledger.push(entry);
            }
            for mut firing in outcome.firings {
                // The rule-set version belongs to the daemon's history, not to a
                // simulation.
                firing.version.clear();
                self.firings.push(&firing);
            }
            for failure in &outcome.failures {
                self.failures.push(failure);
            }
            for redemption in &outcome.redemptions {
                self.redemptions.push(redemption);
            }
            for mut row in outcome.messages {
                // Channels are not contacted: a message due now counts as sent now.
                if row.status == Status::Pending {
                    row.status = Status::Sent;
                    row.sent_at = Some(row.due);
                }
                self.messages.push(&row);
            }
        }
    }
}

/// The writer thread while the run goes on: the only way to hand it outcomes, and to
/// get the records back.
pub struct Spilling {
    sender: mpsc::SyncSender<Vec<Journaled>>,
    /// Outcomes not sent yet, in order.
    batch: Vec<Journaled>,
    thread: thread::JoinHandle<Spilled>,
}

impl Spilling {
    /// Starts the writer thread with empty records.
    pub fn start() -> Result<Self, String> {
        let (sender, receiver) = mpsc::sync_channel::<Vec<Journaled>>(BATCHES_AHEAD);
        let thread = thread::Builder::new()
            .name("rally-sim-writer".into())
            .spawn(move || {
                let mut spilled = Spilled::default();
                for outcomes in receiver {
                    spilled.absorb(outcomes);
                }
                spilled
            })
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        Ok(Spilling {
            sender,
            batch: Vec::with_capacity(BATCH),
            thread,
        })
    }

    /// Adds `outcomes` after those before.
    pub fn push(&mut self, outcomes: Vec<Journaled>) {
        self.batch.extend(outcomes);
        if self.batch.len() >= BATCH {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
            // Only a panicked thread hangs up; `finish` reports it.
            let _ = self.sender.send(full);
        }
    }

    /// Every record, once the thread has written the last.
    pub fn finish(self) -> Result<Spilled, String> {
        let Spilling {
            sender,
            batch,
            thread,
        } = self;
        if !batch.is_empty() {
            let _ = sender.send(batch);
        }
        // Hanging up ends the thread's loop once it has the batches before.
        drop(sender);
        thread.join().map_err(|panic| {
            format!(
                "the writer thread panicked: {}",
                crate::feed::panic_text(panic.as_ref())
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(n: usize) -> RuleFailure {
        RuleFailure {
            rule: format!("r-{n}"),
            member: "m-1".into(),
            at: "rules.yaml:1".into(),
            error: "no".into(),
            event: None,
            when: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn outcomes_come_back_in_the_order_pushed_across_batches() {
        let mut spilling = Spilling::start().unwrap();
        let mut n = 0;
        // Steps of 0, 1 and 2 outcomes, over several batches and a part of one.
        for step in 0..1000 {
            let outcomes = (0..step % 3)
                .map(|_| {
                    n += 1;
                    Journaled {
                        failures: vec![failure(n)],
                        ..Journaled::default()
                    }
                })
                .collect();
            spilling.push(outcomes);
        }
        let spilled = spilling.finish().unwrap();
        let mut rules = Vec::new();
        spilled
            .failures
            .for_each(|failure| {
                rules.push(failure.rule);
                Ok(())
            })
            .unwrap();
        let expected: Vec<String> = (1..=n).map(|n| format!("r-{n}")).collect();
        assert_eq!(n, 999);
        assert_eq!(rules, expected);
    }

    #[test]
    fn a_run_without_outcomes_spills_nothing() {
        let spilled = Spilling::start().unwrap().finish().unwrap();
        assert_eq!(spilled.ledger.len() + spilled.failures.len(), 0);
    }
}
