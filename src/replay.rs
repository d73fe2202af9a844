//! `rally replay`: the event journal run again on a fresh store. With the rules the
//! journal recorded it must give the live state exactly — a self-check operators can
//! run any day ([`self_check`]); with other rules it shows what they would have done
//! (`sim`'s document, and `rally backtest`).
//!
//! Each entry is applied the way the runner took it live (see `runner/journal.rs`):
//! an event at the time its step ran, a ticket command, a rule set armed, a fan-out
//! batch where the daemon ran it. Timers are not in the journal: the same readings make
//! the same ones fall due, and their steps run at the same times.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::event::{self, AtPolicy};
use crate::feed::{Line, Observer};
use crate::rules::RuleSet;
use crate::runner::{Applied, Entry, JournalLine, Pace, Runner};
use crate::store::{Store, StoreError};

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("journal entry {seq}: {message}")]
    Entry { seq: u64, message: String },
    #[error("journal entry {seq}: the rule set recorded there (version {version}) does not load:\n{errors}")]
    Rules {
        seq: u64,
        version: String,
        errors: String,
    },
    #[error(transparent)]
    Sim(#[from] crate::sim::SimError),
}

/// Journal lines read per store scan.
const SCAN: usize = 1024;

/// Scans the reader thread may be ahead of the runner: what bounds the memory held
/// between the two, however long the journal.
const SCANS_AHEAD: usize = 4;

/// Entries applied between commits: as the daemon groups steps.
const GROUP: usize = 128;

/// Applies journal entries to a runner, building each recorded rule set once.
pub struct Replayer {
    /// Rule sets built from the journal, by version.
    built: HashMap<String, Arc<RuleSet>>,
    /// Rules to run instead of those recorded (`--rules`, a backtest's candidate).
    candidate: Option<Arc<RuleSet>>,
    /// Entries applied since the last commit.
    uncommitted: usize,
    /// Entries that did not go as they did live (an event found duplicate or
    /// rejected, a batch of another job): what a self-check reports.
    pub divergences: Vec<String>,
    /// Entries applied.
    pub applied: u64,
    /// Installed on every rule set the journal recorded (`rally explain`).
    tap: Option<Arc<crate::engine::explain::Tap>>,
}

impl Replayer {
    pub fn new(candidate: Option<Arc<RuleSet>>) -> Self {
        Replayer {
            built: HashMap::new(),
            candidate,
            uncommitted: 0,
            divergences: Vec::new(),
            applied: 0,
            tap: None,
        }
    }

    /// Traces the steps `tap` asks for under every recorded rule set.
    pub fn with_tap(mut self, tap: Arc<crate::engine::explain::Tap>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Applies one entry; tells `observer` about an event's step.
    pub fn apply(
        &mut self,
        runner: &mut Runner,
        line: &JournalLine,
        observer: &mut dyn Observer,
    ) -> Result<(), ReplayError> {
        let seq = line.seq;
        match &line.entry {
            Entry::Arm {
                at,
                version,
                files,
                started_at,
                interleaved,
                random_key,
            } => {
                // As live: what fell due by the arming ran before it — unless the
                // clock starts here (a fresh store), which arming itself decides.
                if runner.now().is_some() {
                    runner.run_due(*at)?;
                }
                let rules = self.rules(seq, version, files.as_ref())?;
                runner.set_rules(rules);
                if let Some(key) = random_key {
                    runner.set_random_key(crate::script::RandomKey::parse(key));
                }
                if let Some(started_at) = started_at {
                    runner.set_started_at(*started_at);
                }
                runner.set_pace(if *interleaved {
                    Pace::Interleaved
                } else {
                    Pace::ToEnd
                });
                runner.arm(*at)?;
            }
            Entry::Event { at, event } => {
                let event = event::from_value(event.clone(), AtPolicy::Required).map_err(|e| {
                    ReplayError::Entry {
                        seq,
                        message: format!("not an event: {e}"),
                    }
                })?;
                match runner.apply_event(&event, *at)? {
                    Applied::Accepted(_) => observer.seen(
                        runner,
                        Line::Accepted {
                            member: event.member.as_deref().map(crate::engine::Name::from),
                        },
                    ),
                    Applied::Duplicate => self
                        .divergences
                        .push(format!("entry {seq}: event {:?} was a duplicate", event.id)),
                    Applied::Rejected(why) => self.divergences.push(format!(
                        "entry {seq}: event {:?} was rejected: {why}",
                        event.id
                    )),
                }
            }
            Entry::Ticket {
                at,
                ticket,
                resolve,
                by,
                note,
            } => {
                let now = runner.arrive(*at)?;
                match runner.ticket_change(ticket, *resolve, by.as_deref(), note.as_deref(), now)? {
                    Ok(write) => runner.push_write(write),
                    Err(why) => self
                        .divergences
                        .push(format!("entry {seq}: ticket {ticket}: {why}")),
                }
            }
            Entry::Batch { at, job } => {
                // The timer that started the job may fall due at this very reading.
                runner.run_due(*at)?;
                let next = runner.next_fanout_job();
                if next != Some(*job) {
                    self.divergences.push(format!(
                        "entry {seq}: a batch of fan-out job {job}, but the next job is {next:?}"
                    ));
                }
                runner.run_background(*at)?;
            }
        }
        self.applied += 1;
        self.uncommitted += 1;
        if self.uncommitted >= GROUP {
            runner.commit()?;
            self.uncommitted = 0;
        }
        Ok(())
    }

    /// The rule set an `Arm` entry recorded (or the candidate).
    fn rules(
        &mut self,
        seq: u64,
        version: &str,
        files: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Result<Arc<RuleSet>, ReplayError> {
        if let Some(candidate) = &self.candidate {
            return Ok(candidate.clone());
        }
        if let Some(files) = files {
            let rules = crate::rules::from_texts(files).map_err(|errors| ReplayError::Rules {
                seq,
                version: version.to_string(),
                errors: errors
                    .iter()
                    .map(|e| format!("  {e}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            })?;
            let mut rules = rules;
            rules.explain = self.tap.clone();
            self.built.insert(version.to_string(), Arc::new(rules));
        }
        self.built
            .get(version)
            .cloned()
            .ok_or_else(|| ReplayError::Entry {
                seq,
                message: format!(
                    "rule set version {version} is armed here, but the journal does not hold its files (trimmed by retention?)"
                ),
            })
    }

    /// From `at` on, `rules` run instead of those recorded: swapped in and armed as a
    /// reload would, after what fell due by then.
    pub fn switch_to(
        &mut self,
        runner: &mut Runner,
        rules: Arc<RuleSet>,
        at: DateTime<Utc>,
    ) -> Result<(), ReplayError> {
        if runner.now().is_some() {
            runner.run_due(at)?;
        }
        runner.set_rules(rules.clone());
        runner.arm(at)?;
        self.candidate = Some(rules);
        Ok(())
    }

    /// Commits what is left, after running what fell due by `until`.
    pub fn finish(
        &mut self,
        runner: &mut Runner,
        until: Option<DateTime<Utc>>,
    ) -> Result<(), ReplayError> {
        if let Some(until) = until {
            runner.run_due(until)?;
        }
        runner.commit()?;
        self.uncommitted = 0;
        Ok(())
    }
}

/// Every journal line of `store` from `from` on, read in scans of [`SCAN`].
///
/// Reading and decoding the lines needs nothing of the runner, so a thread of its own
/// does it a few scans ahead of `f` (as `feed::feed_ahead` reads events for `sim`).
pub fn each_line(
    store: &Store,
    from: u64,
    mut f: impl FnMut(JournalLine) -> Result<(), ReplayError>,
) -> Result<(), ReplayError> {
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(SCANS_AHEAD);
        let reader = std::thread::Builder::new()
            .name("rally-journal-reader".into())
            .spawn_scoped(scope, move || {
                let mut next = from;
                loop {
                    let lines = crate::runner::journal_lines(store, next, SCAN);
                    let last = match &lines {
                        Ok(lines) => lines.last().map(|line| line.seq),
                        Err(_) => None,
                    };
                    // The last scan: empty, or an error the applier reports.
                    let Some(last) = last else {
                        let _ = sender.send(lines);
                        return;
                    };
                    next = last + 1;
                    if sender.send(lines).is_err() {
                        // The applier stopped on an error of its own.
                        return;
                    }
                }
            })
            .map_err(|e| ReplayError::Entry {
                seq: from,
                message: format!("cannot start the journal reader thread: {e}"),
            })?;
        let applied = (|| -> Result<(), ReplayError> {
            for lines in &receiver {
                for line in lines? {
                    f(line)?;
                }
            }
            Ok(())
        })();
        // The receiver is gone: a reader still going stops at its next send.
        drop(receiver);
        let read = reader.join();
        applied?;
        read.map_err(|panic| ReplayError::Entry {
            seq: from,
            message: format!(
                "the journal reader thread panicked: {}",
                crate::feed::panic_text(panic.as_ref())
            ),
        })
    })
}

/// The outcome of a self-check: entries replayed, and every difference found
/// between the live store and the replay (empty: the replay reproduced it).
#[derive(Debug)]
pub struct SelfCheck {
    pub entries: u64,
    pub members: usize,
    pub differences: Vec<String>,
}

/// Replays the whole journal of `live` under the rules it recorded on a fresh store
/// and compares the result with `live`.
pub fn self_check(live: &Store) -> Result<SelfCheck, ReplayError> {
    // In memory, without history: the ledger and firings are compared with the live
    // history as the steps make them, so neither store's whole history is held.
    let store = Store::in_memory_without_history()?;
    let mut runner = Runner::new(store, placeholder_rules()?)?;
    runner.keep_journal();
    let mut history = crate::replay::compare::History::new(live);
    let mut replayer = Replayer::new(None);
    let mut quiet = Quiet;
    let mut expected = 1;
    each_line(live, 0, |line| {
        if line.seq != expected {
            return Err(ReplayError::Entry {
                seq: line.seq,
                message: format!(
                    "entries {expected} to {} are not in the journal (removed by settings.retention.journal): the live state cannot be rebuilt from it",
                    line.seq - 1
                ),
            });
        }
        expected += 1;
        replayer.apply(&mut runner, &line, &mut quiet)?;
        history.check(&runner.take_journal())?;
        Ok(())
    })?;
    // The live clock may have read later than the last entry: what fell due by then ran.
    let clock = crate::runner::stored_clock(live)?;
    replayer.finish(&mut runner, clock)?;
    history.check(&runner.take_journal())?;
    let retention = &runner.rules().settings.retention;
    let removed_before = |window| removed_before(clock, window);
    let mut differences = replayer.divergences.clone();
    differences.extend(history.finish(removed_before(retention.history))?);
    differences.extend(crate::replay::compare::stores(
        live,
        runner.store(),
        removed_before(retention.messages),
    )?);
    Ok(SelfCheck {
        entries: replayer.applied,
        members: live.member_count()?,
        differences,
    })
}

/// What a retention of `window` (`None`: keep everything) may have removed from a
/// live store whose clock last read `clock` is older than this: the clock less the
/// window, and a day more for a pass that read a wall clock ahead of the step clock
/// last stored.
fn removed_before(
    clock: Option<DateTime<Utc>>,
    window: Option<chrono::Duration>,
) -> Option<DateTime<Utc>> {
    let (clock, window) = clock.zip(window)?;
    clock
        .checked_sub_signed(window)?
        .checked_add_signed(chrono::Duration::days(1))
}

/// Where a replay reads the journal from.
pub enum Source<'a> {
    /// A data directory's store.
    Store(&'a Store),
    /// Lines exported by `rally export`.
    Lines(Vec<JournalLine>),
}

/// Replays `source` on a fresh store — under `candidate` instead of the recorded
/// rules when given — and returns `sim`'s document of the run, up to `until` (or the
/// last entry).
pub fn document(
    source: Source<'_>,
    candidate: Option<Arc<RuleSet>>,
    until: Option<DateTime<Utc>>,
) -> Result<crate::sim::Simulation, ReplayError> {
    document_from(source, candidate, None, until)
}

/// As [`document`], with the candidate rules (if any) taking over at `from` — what the
/// recorded rules did before it builds the state the window starts from — and the
/// document recording only what happened from `from` on (members as they end).
pub fn document_from(
    source: Source<'_>,
    candidate: Option<Arc<RuleSet>>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<crate::sim::Simulation, ReplayError> {
    // The document comes from what the run recorded, not from the store's history.
    let store = Store::in_memory_without_history()?;
    let runner = Runner::new(store, placeholder_rules()?)?;
    let mut failed = None;
    let doc = crate::sim::simulate_with(runner, |runner, observer| {
        let (mut replayer, mut switch) = match from {
            None => (Replayer::new(candidate), None),
            Some(from) => (Replayer::new(None), candidate.map(|rules| (from, rules))),
        };
        let mut window = Window {
            inner: observer,
            from,
        };
        let mut apply = |line: JournalLine| {
            if let Some((at, rules)) = switch.take_if(|(at, _)| line.entry.at() >= *at) {
                replayer.switch_to(runner, rules, at)?;
            }
            replayer.apply(runner, &line, &mut window)
        };
        let ran = match source {
            Source::Store(store) => each_line(store, 0, &mut apply),
            Source::Lines(lines) => lines.into_iter().try_for_each(&mut apply),
        };
        let ran = ran.and_then(|()| replayer.finish(runner, until));
        if let Err(e) = ran {
            failed = Some(e);
        }
        Ok(())
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(doc),
    }
}

/// Passes on only what happened from `from` on: what ran before is dropped from the
/// runner's record of steps.
struct Window<'a> {
    inner: &'a mut dyn Observer,
    from: Option<DateTime<Utc>>,
}

impl Observer for Window<'_> {
    fn seen(&mut self, runner: &mut Runner, line: Line) {
        let before = self
            .from
            .is_some_and(|from| runner.now().is_none_or(|now| now < from));
        if before {
            drop(runner.take_journal());
        } else {
            self.inner.seen(runner, line);
        }
    }
}

/// The rules a replaying runner holds until the journal's first `Arm` entry.
pub fn placeholder_rules() -> Result<Arc<RuleSet>, ReplayError> {
    crate::rules::from_sources(&[("empty.yaml", "rules: []\n")], &|_| None)
        .map(Arc::new)
        .map_err(|errors| ReplayError::Rules {
            seq: 0,
            version: String::new(),
            errors: format!("{errors:?}"),
        })
}

/// An observer that looks at nothing.
struct Quiet;

impl Observer for Quiet {
    fn seen(&mut self, _runner: &mut Runner, _line: Line) {}
}

pub mod cli;
pub mod compare;
pub mod explain;
pub mod export;
