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
//!
//! Reading and parsing a line needs nothing of the runner, so [`feed_ahead`] does it
//! on a thread of its own while the runner steps through the lines before; [`feed`]
//! does both on the caller's thread. Both go through the same [`Lines`] and the same
//! [`apply`], so they see the same lines, numbers and rejections in the same order.

use std::any::Any;
use std::io::{self, BufRead};
use std::sync::mpsc;
use std::thread;

use chrono::{DateTime, Duration, Utc};

use crate::event::{self, AtPolicy, Event};
use crate::runner::{Applied, Runner};
use crate::store::{Prefetch, StoreError};

/// Steps per transaction: large groups amortise sled's per-transaction cost.
const GROUP: usize = 128;

/// Lines the reader thread sends at once: few enough messages that the channel costs
/// nothing next to parsing them.
const BATCH: usize = 256;

/// Batches the reader thread may be ahead of the runner: what bounds the memory held
/// between the two, however long the file.
const BATCHES_AHEAD: usize = 4;

/// What became of one line of the file.
pub enum Line {
    /// Applied, to this member (`None` for a ticket command without one); the id kept
    /// inline when short, as every accepted line names one.
    Accepted {
        member: Option<crate::engine::Name>,
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
    #[error("reading events: cannot start the reader thread: {0}")]
    Spawn(std::io::Error),
    #[error("reading events: the reader thread panicked: {0}")]
    Panicked(String),
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
    input: impl BufRead,
    latest: Option<DateTime<Utc>>,
    observer: &mut (impl Observer + ?Sized),
) -> Result<(), FeedError> {
    for read in Lines::new(input) {
        apply(runner, read?, latest, observer)?;
    }
    runner.commit()?;
    Ok(())
}

/// As [`feed`], with the lines read and parsed on a thread of their own, a few batches
/// ahead of the runner (`rally sim`: parsing is a tenth of its work).
///
/// When the runner stops on an error, the reader stops at its next batch (its channel
/// has no receiver any more); this returns once it has. A reader waiting on a pipe
/// that stays open (stdin) waits for the next lines or the end first.
pub fn feed_ahead(
    runner: &mut Runner,
    input: impl BufRead + Send,
    latest: Option<DateTime<Utc>>,
    observer: &mut (impl Observer + ?Sized),
) -> Result<(), FeedError> {
    thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel(BATCHES_AHEAD);
        let reader = thread::Builder::new()
            .name("rally-sim-reader".into())
            .spawn_scoped(scope, move || read_ahead(input, &sender))
            .map_err(FeedError::Spawn)?;
        let applied = apply_all(runner, receiver, latest, observer);
        // The receiver is gone: a reader still going stops at its next send.
        let read = reader.join();
        applied?;
        // The channel also closes when the reader panics: that is no end of file.
        read.map_err(|panic| FeedError::Panicked(panic_text(panic.as_ref())))?;
        runner.commit()?;
        Ok(())
    })
}

/// Applies what the reader thread sends until it hangs up, and drops the receiver.
fn apply_all(
    runner: &mut Runner,
    receiver: mpsc::Receiver<Vec<io::Result<Read>>>,
    latest: Option<DateTime<Utc>>,
    observer: &mut (impl Observer + ?Sized),
) -> Result<(), FeedError> {
    for batch in receiver {
        let mut reads = batch.into_iter();
        while let Some(read) = reads.next() {
            prefetch_ahead(runner, reads.as_slice());
            apply(runner, read?, latest, observer)?;
        }
    }
    Ok(())
}

/// Starts fetching the members of the next events (`ahead`, the next one first) into
/// the cache, each level some events before the step that reads it: a step's loads
/// are then under way while the steps before it run (see [`crate::prefetch`]).
fn prefetch_ahead(runner: &Runner, ahead: &[io::Result<Read>]) {
    let member = |events_ahead: usize| match ahead.get(events_ahead - 1)? {
        Ok(Read::Parsed {
            event: Ok(event), ..
        }) => event.member.as_deref(),
        _ => None,
    };
    let mut members = [("", Prefetch::Place); 3];
    let mut asked = 0;
    for (events_ahead, depth) in [
        (4, Prefetch::Place),
        (2, Prefetch::Member),
        (1, Prefetch::Book),
    ] {
        if let Some(id) = member(events_ahead) {
            members[asked] = (id, depth);
            asked += 1;
        }
    }
    runner.store().prefetch_members(&members[..asked]);
}

/// The reader thread: every line of `input`, in batches, until the end of the file, a
/// read error (sent as the last line) or the runner hanging up.
fn read_ahead(input: impl BufRead, sender: &mpsc::SyncSender<Vec<io::Result<Read>>>) {
    let mut batch = Vec::with_capacity(BATCH);
    for read in Lines::new(input) {
        batch.push(read);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if sender.send(full).is_err() {
                return;
            }
        }
    }
    if !batch.is_empty() {
        // A runner that hung up has stopped reading anyway.
        let _ = sender.send(batch);
    }
}

/// A line of the file that holds something, read and parsed: everything about it
/// that does not need the runner.
enum Read {
    /// Not UTF-8: refused without parsing.
    NotText { line: usize, error: String },
    /// Parsed, to an event or to why it is not one.
    Parsed {
        line: usize,
        event: Result<Event, String>,
    },
}

/// The lines of `input` that are not blank, numbered from 1 and parsed; after a read
/// error, nothing more.
struct Lines<R> {
    input: R,
    /// Reused by every line.
    bytes: Vec<u8>,
    number: usize,
    ended: bool,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R) -> Self {
        Lines {
            input,
            bytes: Vec::new(),
            number: 0,
            ended: false,
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = io::Result<Read>;

    fn next(&mut self) -> Option<io::Result<Read>> {
        while !self.ended {
            self.bytes.clear();
            match self.input.read_until(b'\n', &mut self.bytes) {
                Ok(0) => self.ended = true,
                Ok(_) => {
                    self.number += 1;
                    let line = self.number;
                    let text = match std::str::from_utf8(&self.bytes) {
                        Ok(text) => text,
                        Err(e) => {
                            let error = format!(
                                "the line is not valid UTF-8 (byte {})",
                                e.valid_up_to() + 1
                            );
                            return Some(Ok(Read::NotText { line, error }));
                        }
                    };
                    if text.trim().is_empty() {
                        continue;
                    }
                    let event =
                        event::parse_line(text, AtPolicy::Required).map_err(|e| e.to_string());
                    return Some(Ok(Read::Parsed { line, event }));
                }
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Applies one line read, committing when the group is full, and tells `observer`.
fn apply(
    runner: &mut Runner,
    read: Read,
    latest: Option<DateTime<Utc>>,
    observer: &mut (impl Observer + ?Sized),
) -> Result<(), StoreError> {
    let (line, event) = match read {
        Read::NotText { line, error } => {
            observer.seen(runner, Line::Rejected { line, error });
            return Ok(());
        }
        Read::Parsed { line, event } => (line, event),
    };
    let outcome = match event.map(|event| apply_event(runner, &event, latest)) {
        Ok(applied) => applied?,
        Err(error) => Err(error),
    };
    let outcome = outcome.unwrap_or_else(|error| Line::Rejected { line, error });
    if runner.pending() >= GROUP {
        runner.commit()?;
    }
    observer.seen(runner, outcome);
    Ok(())
}

/// Applies one event: `Ok(Err(why))` for an event refused on its own.
fn apply_event(
    runner: &mut Runner,
    event: &Event,
    latest: Option<DateTime<Utc>>,
) -> Result<Result<Line, String>, StoreError> {
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
    Ok(match runner.apply_event(event, at)? {
        Applied::Accepted(_) => Ok(Line::Accepted {
            member: event.member.as_deref().map(crate::engine::Name::from),
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

/// What a thread's panic said, when it said it with text (`panic!` and `expect` do).
pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_string(),
        (None, Some(text)) => text.clone(),
        (None, None) => "no message".into(),
    }
}

#[cfg(test)]
mod tests;
