//! `rally import` (SPEC §3, §2.7): loads history — say a year of a community's events
//! from the system Rally replaces — into a data directory, applying the events exactly
//! as `sim` does, on the virtual clock, through the same [`crate::feed`]. The store
//! keeps the clock, so a daemon started on the directory afterwards continues from
//! where the history ends: what fell due since (silences, phases, schedules) catches
//! up at its start, as after any downtime.
//!
//! The directory must be free: sled locks it, so a running daemon makes the import
//! fail before anything is applied.
//!
//! A line whose `at` is more than the de-duplication window
//! (`settings.retention.event_ids`) behind the clock is rejected, as the daemon would
//! reject it (see [`crate::store::dedup`]): history in time order passes whole, and
//! history out of order by more than the window needs a longer one.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use thiserror::Error;

use crate::feed::{self, FeedError, Line, Observer};
use crate::rules::RuleSet;
use crate::runner::Runner;
use crate::store::{CacheSize, Store, StoreError};

/// How often progress is reported, in lines.
pub const PROGRESS_EVERY: usize = 10_000;

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("cannot open the store in {dir}: {source} (a running daemon holds its data directory: stop it, import, then start it again)")]
    Open { dir: PathBuf, source: StoreError },
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What an import did, printed as JSON when it ends.
#[derive(Debug, Default, Serialize)]
pub struct Imported {
    /// Event lines read (blank lines are not counted).
    pub lines: usize,
    pub accepted: usize,
    /// Events whose id the directory already held (an import run twice changes nothing).
    pub duplicates: usize,
    /// Lines refused, with their number and why; the others were applied.
    pub rejected: Vec<RejectedLine>,
    /// The clock after the last event: where a daemon will continue from.
    pub now: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RejectedLine {
    pub line: usize,
    pub error: String,
}

/// Applies `input` to the store in `data` and makes it durable. Events later than
/// `wall` (the real time now) are refused: an import loads what happened, and a
/// clock moved into the future would hold the daemon's clock there. `progress` is
/// called every [`PROGRESS_EVERY`] lines with the counts so far.
pub fn import(
    rules: Arc<RuleSet>,
    data: &Path,
    input: impl BufRead,
    wall: DateTime<Utc>,
    progress: impl FnMut(&Imported),
) -> Result<Imported, ImportError> {
    import_with_cache(CacheSize::DEFAULT, rules, data, input, wall, progress)
}

/// [`import`] with `cache` for sled's page cache (`RALLY_CACHE_MB`).
pub fn import_with_cache(
    cache: CacheSize,
    rules: Arc<RuleSet>,
    data: &Path,
    input: impl BufRead,
    wall: DateTime<Utc>,
    mut progress: impl FnMut(&Imported),
) -> Result<Imported, ImportError> {
    let store =
        Store::open_with(data, cache, Arc::default()).map_err(|source| ImportError::Open {
            dir: data.to_path_buf(),
            source,
        })?;
    let mut runner = Runner::new(store, rules)?;
    // Imported events are journaled like the daemon's, so a replay of the directory
    // starts from its first event. On a directory with history, the rules given here
    // are armed (and journaled) first, as a daemon start would.
    runner.keep_event_journal()?;
    if let Some(now) = runner.now() {
        runner.arm(now)?;
    }
    let mut done = Counting {
        done: Imported::default(),
        progress: &mut progress,
    };
    feed::feed(
        &mut runner,
        input,
        Some(wall + crate::clock::MAX_AHEAD),
        &mut done,
    )?;
    let mut done = done.done;
    runner.store().sync()?;
    done.now = runner.now().map(crate::member::rfc3339);
    Ok(done)
}

/// Counts what becomes of each line and reports progress.
struct Counting<'a, P: FnMut(&Imported)> {
    done: Imported,
    progress: &'a mut P,
}

impl<P: FnMut(&Imported)> Observer for Counting<'_, P> {
    fn seen(&mut self, _runner: &mut Runner, line: Line) {
        let done = &mut self.done;
        match line {
            Line::Accepted { .. } => done.accepted += 1,
            Line::Duplicate => done.duplicates += 1,
            Line::Rejected { line, error } => done.rejected.push(RejectedLine { line, error }),
        }
        done.lines += 1;
        if done.lines.is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(done);
        }
    }
}
