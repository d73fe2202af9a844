//! Feeding a file of events through a [`Runner`] on the virtual clock (SPEC §2.7,
//! §3.1): what `rally sim` and `rally import` share, so history imported into a data
//! directory is applied exactly as `sim` would apply it.
//!
//! Lines are read in file order. The clock starts just before the first event (so a
//! phase change at that very instant still fires) and then reads each event's `at`:
//! timers due on the way run first, and an event earlier than the clock (out of
//! order) runs at the clock, as the daemon runs a late event. A line that is not a
//! valid event — not JSON, not UTF-8, a bad field — is reported with its number and
//! never stops the others.

use std::io::BufRead;

use chrono::{DateTime, Duration, Utc};

use crate::event::{self, AtPolicy};
use crate::runner::{Applied, Runner};
use crate::store::StoreError;

/// Steps per transaction: large groups amortise sled's per-transaction cost.
const GROUP: usize = 128;

/// What became of one line of the file.
pub enum Line {
    /// Applied, to this member (`None` for a ticket command without one).
    Accepted {
        member: Option<String>,
    },
    Duplicate,
    /// The line number (from 1) and why.
    Rejected {
        line: usize,
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("reading events: {0}")]
    Read(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What a caller of [`feed`] learns as the file goes through.
pub trait Observer {
    /// What became of a line, after its step.
    fn seen(&mut self, runner: &mut Runner, line: Line);
}

/// Applies every event of `input` in file order, committing in groups, and tells
/// `observer` about each line. Events whose `at` is later than `latest` are rejected
/// (`rally import` passes the wall clock: history, not plans).
pub fn feed(
    runner: &mut Runner,
    mut input: impl BufRead,
    latest: Option<DateTime<Utc>>,
    observer: &mut (impl Observer + ?Sized),
) -> Result<(), FeedError> {
    let mut bytes = Vec::new();
    let mut number = 0;
    loop {
        bytes.clear();
        if input.read_until(b'\n', &mut bytes)? == 0 {
            break;
        }
        number += 1;
        let line = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(e) => {
                let error = format!("the line is not valid UTF-8 (byte {})", e.valid_up_to() + 1);
                observer.seen(
                    runner,
                    Line::Rejected {
                        line: number,
                        error,
                    },
                );
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let outcome = match apply_line(runner, line, latest)? {
            Ok(outcome) => outcome,
            Err(error) => Line::Rejected {
                line: number,
                error,
            },
        };
        if runner.pending() >= GROUP {
            runner.commit()?;
        }
        observer.seen(runner, outcome);
    }
    runner.commit()?;
    Ok(())
}

/// Parses and applies one line: `Ok(Err(why))` for a line refused on its own.
fn apply_line(
    runner: &mut Runner,
    line: &str,
    latest: Option<DateTime<Utc>>,
) -> Result<Result<Line, String>, StoreError> {
    let event = match event::parse_line(line, AtPolicy::Required) {
        Ok(event) => event,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let at = event.at_utc();
    if let Some(latest) = latest.filter(|latest| at > *latest) {
        return Ok(Err(format!(
            "at: {} is in the future (later than {}, 5 minutes past now): only history can be imported",
            crate::member::rfc3339(at),
            crate::member::rfc3339(latest)
        )));
    }
    if runner.now().is_none() {
        runner.arm(at - Duration::milliseconds(1))?;
    }
    Ok(match runner.apply_event(&event, at)? {
        Applied::Accepted(_) => Ok(Line::Accepted {
            member: event.member.clone(),
        }),
        Applied::Duplicate => Ok(Line::Duplicate),
        Applied::Rejected(error) => Err(error),
    })
}

/// Moves the clock on to `until` after the last event, running what falls due on the
/// way, and commits.
pub fn advance(runner: &mut Runner, until: DateTime<Utc>) -> Result<(), StoreError> {
    if runner.now().is_none() {
        runner.arm(until)?;
    }
    runner.run_due(until)?;
    runner.commit()
}
