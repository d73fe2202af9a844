//! `rally sim` (SPEC §3.1): the real engine against a fresh in-memory store, fed events
//! in file order. Output is one JSON document, byte-identical for the same input,
//! serialized straight from what the run recorded (no intermediate JSON tree: a big
//! simulation's document runs to tens of megabytes).

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::feed::{self, FeedError, Line, Observer};
use crate::member::{rfc3339, Member};
use crate::outbox::{OutboxRow, Status};
use crate::rules::RuleSet;
use crate::runner::Runner;
use crate::script::RandomKey;
use crate::store::{Store, StoreError};
use crate::tickets::Ticket;

#[derive(Debug, Error)]
pub enum SimError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("recording the simulation: {0}")]
    Record(String),
}

/// The buffer `sim` reads its events, spills its records and writes its document
/// through: a document of 100,000 events is some 45 MB, which the standard 8 KiB
/// buffers wrote and read back in about 10,000 system calls. `import` and `report
/// --events` read their events through one too.
pub const IO_BUFFER: usize = 256 * 1024;

mod leaderboards;
mod spill;
mod spilling;
mod text;
mod views;

use spilling::{Spilled, Spilling};

/// Everything the simulation observed, in the order it happened. What grows with the
/// events is spilled to disk (`spill.rs`, by the writer thread of `spilling.rs`): a
/// simulation's memory grows with its members.
struct Record {
    /// Ledger, firings, errors, messages and redemptions; messages as queued, deferred
    /// ones settled as the document is written (see [`Record::settle`]).
    spilled: Spilled,
    rejected: Vec<Value>,
    /// Per member, when their consent to marketing changed and to what (`Some(why)`
    /// withheld), in time order: what a deferred message finds when it goes out.
    /// Only events change it, and the record is kept as each event is seen.
    consent: HashMap<String, Vec<ConsentChange>>,
}

/// When a member's consent changed, and to what: `Some(why)` when withheld.
type ConsentChange = (DateTime<Utc>, Option<&'static str>);

/// The [`Record`] while the run goes on. What needs the runner (consent) or is small
/// (rejections) is kept on the runner's thread; the outcomes of the steps go to the
/// writer thread (`spilling.rs`) to be spilled.
struct Recording {
    spilling: Spilling,
    rejected: Vec<Value>,
    consent: HashMap<String, Vec<ConsentChange>>,
}

impl Recording {
    /// The record, once the writer thread has spilled every outcome.
    fn finish(self) -> Result<Record, SimError> {
        Ok(Record {
            spilled: self.spilling.finish().map_err(SimError::Record)?,
            rejected: self.rejected,
            consent: self.consent,
        })
    }
}

impl Observer for Recording {
    fn seen(&mut self, runner: &mut Runner, line: Line) {
        match line {
            Line::Rejected { line, error } => {
                self.rejected.push(json!({"line": line, "error": error}));
            }
            Line::Accepted { member: Some(id) } => {
                let withheld = runner
                    .read_member(&id, |member| {
                        member.and_then(crate::policy::withheld_consent)
                    })
                    .unwrap_or(None);
                // Looked up before it is added to: most members never change their
                // consent, and keep no entry.
                let before = self
                    .consent
                    .get(id.as_str())
                    .and_then(|changes| changes.last());
                if before.and_then(|(_, w)| *w) != withheld {
                    if let Some(now) = runner.now() {
                        self.consent
                            .entry(id.into())
                            .or_default()
                            .push((now, withheld));
                    }
                }
            }
            Line::Accepted { member: None } | Line::Duplicate => {}
        }
        self.spilling.push(runner.take_journal());
    }
}

/// Runs the events read from `input` through `rules` and returns what happened; it
/// serializes as the output document.
///
/// The virtual clock starts at the first event and reads each event's `at` (see
/// [`crate::feed`]); after the last event it advances to `until`.
///
/// `random()` and friends draw under the zero key: the same draws in every run.
pub fn simulate(
    rules: Arc<RuleSet>,
    input: impl BufRead + Send,
    until: Option<DateTime<Utc>>,
) -> Result<Simulation, SimError> {
    simulate_seeded(rules, input, until, RandomKey::default())
}

/// As [`simulate`], drawing under `key` (`rally sim --seed`).
pub fn simulate_seeded(
    rules: Arc<RuleSet>,
    input: impl BufRead + Send,
    until: Option<DateTime<Utc>>,
    key: RandomKey,
) -> Result<Simulation, SimError> {
    let store = Store::in_memory_without_history()?;
    let mut runner = Runner::new(store, rules)?;
    runner.set_random_key(key);
    simulate_on(runner, input, until)
}

/// As [`simulate`], on a runner the caller has prepared: members already in its store,
/// its clock already started (`rally test` starts each test at a fixed time with the
/// members it describes). What those members' consent is at the start counts for their
/// deferred messages.
///
/// Lines are read and parsed on a thread of their own ([`feed::feed_ahead`]).
pub fn simulate_on(
    runner: Runner,
    input: impl BufRead + Send,
    until: Option<DateTime<Utc>>,
) -> Result<Simulation, SimError> {
    simulate_with(runner, |runner, record| {
        feed::feed_ahead(runner, input, None, record)?;
        if let Some(until) = until {
            feed::advance(runner, until)?;
        }
        Ok(())
    })
}

/// What `drive` makes `runner` do, recorded as `sim` records it: `drive` applies the
/// inputs, committing as it goes, and tells the observer about each (`rally replay`
/// drives a runner from a journal instead of an events file).
pub fn simulate_with(
    mut runner: Runner,
    drive: impl FnOnce(&mut Runner, &mut dyn Observer) -> Result<(), SimError>,
) -> Result<Simulation, SimError> {
    runner.keep_journal();
    let mut consent = HashMap::new();
    if let Some(start) = runner.now() {
        for member in runner.store().members()? {
            if let Some(why) = crate::policy::withheld_consent(&member) {
                consent.insert(member.id.to_string(), vec![(start, Some(why))]);
            }
        }
    }
    let mut recording = Recording {
        spilling: Spilling::start().map_err(SimError::Record)?,
        rejected: Vec::new(),
        consent,
    };
    // On an error the recording is dropped: the writer thread, hung up on, ends alone.
    drive(&mut runner, &mut recording)?;
    recording.spilling.push(runner.take_journal());
    let record = recording.finish()?;
    let now = runner.now();
    document(&runner, record, now)
}

impl Record {
    /// A deferred message whose time has come by `now` goes out as the dispatcher
    /// would send it: at its due time, unless the member had unsubscribed or left by
    /// then (SPEC §2.6: consent is checked again when a message goes out).
    fn settle(&self, mut row: OutboxRow, now: Option<DateTime<Utc>>) -> OutboxRow {
        let Some(now) = now else {
            return row;
        };
        if row.status != Status::Deferred || row.due > now {
            return row;
        }
        // A change at the very instant the message is due comes after it.
        let withheld = row
            .member
            .as_ref()
            .filter(|_| row.marketing)
            .and_then(|id| self.consent.get(id))
            .and_then(|changes| changes.iter().rev().find(|(at, _)| *at < row.due))
            .and_then(|(_, withheld)| *withheld);
        match withheld {
            Some(why) => {
                row.status = Status::Suppressed;
                row.last_error = Some(format!("member {why} before it went out"));
            }
            None => {
                row.status = Status::Sent;
                row.sent_at = Some(row.due);
            }
        }
        row
    }
}

/// The document's `messages`: each as it stands at the end.
struct Messages<'a> {
    record: &'a Record,
    now: Option<DateTime<Utc>>,
}

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.record
            .spilled
            .messages
            .serialize_with(serializer, |row| self.record.settle(row, self.now).view())
    }
}

/// The output document of SPEC §3.1.
pub struct Simulation {
    now: Option<DateTime<Utc>>,
    /// Ordered by id.
    members: Vec<Member>,
    record: Record,
    tickets: Vec<Ticket>,
    campaigns: Value,
    /// Every draw finished, by occurrence.
    draws: Vec<crate::runner::DrawRecord>,
    /// The catalog with what was issued; empty without rewards.
    rewards: Vec<Value>,
    /// `None` when the rule set has no boards: the document then has no such section.
    leaderboards: Option<Value>,
    /// The community metrics rows the run kept (`metrics.*`, named without that
    /// prefix), as stored: what `rally report --sim` reads back.
    metrics: Vec<(String, Box<RawValue>)>,
}

impl Simulation {
    /// Every member at the end, ordered by id.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The document as a JSON value, for callers that look into it.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Simulation {
    /// Writes the document pretty-printed, as `serde_json::to_writer_pretty` writes it,
    /// with the members' views rendered on two threads first (`views.rs`).
    pub fn write_pretty(&self, out: impl std::io::Write) -> std::io::Result<()> {
        let views = views::Views::render(&self.members).map_err(std::io::Error::other)?;
        let mut serializer = serde_json::Serializer::pretty(out);
        self.serialize_with_members(&mut serializer, &views)
            .map_err(std::io::Error::from)
    }

    /// The document, its `members` section written by `members`.
    fn serialize_with_members<S: Serializer>(
        &self,
        serializer: S,
        members: &impl Serialize,
    ) -> Result<S::Ok, S::Error> {
        // `rewards` and `redemptions` only when there is a catalog or a redemption:
        // documents of rule sets without rewards stay as they were.
        let rewards = !self.rewards.is_empty() || self.record.spilled.redemptions.len() > 0;
        let boards = usize::from(self.leaderboards.is_some());
        let mut doc = serializer.serialize_map(Some((if rewards { 13 } else { 11 }) + boards))?;
        doc.serialize_entry("now", &self.now.map(rfc3339))?;
        doc.serialize_entry("members", members)?;
        doc.serialize_entry("ledger", &self.record.spilled.ledger)?;
        doc.serialize_entry(
            "messages",
            &Messages {
                record: &self.record,
                now: self.now,
            },
        )?;
        doc.serialize_entry("tickets", &self.tickets)?;
        doc.serialize_entry("campaigns", &self.campaigns)?;
        doc.serialize_entry("draws", &self.draws)?;
        if rewards {
            doc.serialize_entry("rewards", &self.rewards)?;
            doc.serialize_entry("redemptions", &self.record.spilled.redemptions)?;
        }
        // Only rule sets with boards have the section: documents of the others read
        // as they always have.
        if let Some(boards) = &self.leaderboards {
            doc.serialize_entry("leaderboards", boards)?;
        }
        doc.serialize_entry("firings", &self.record.spilled.firings)?;
        doc.serialize_entry("errors", &self.record.spilled.failures)?;
        doc.serialize_entry("rejected", &self.record.rejected)?;
        // Last, and each row on one line as stored: the sections above read as they did.
        doc.serialize_entry("metrics", &MetricsRows(&self.metrics))?;
        doc.end()
    }
}

impl Serialize for Simulation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize_with_members(serializer, &Members(&self.members))
    }
}

/// The document's `metrics`: row name → the row as stored.
struct MetricsRows<'a>(&'a [(String, Box<RawValue>)]);

impl Serialize for MetricsRows<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, row) in self.0 {
            map.serialize_entry(name, row)?;
        }
        map.end()
    }
}

/// Members as the document's `members` object: id → public view.
struct Members<'a>(&'a [Member]);

impl Serialize for Members<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for member in self.0 {
            map.serialize_entry(&member.id, &crate::member::View(member))?;
        }
        map.end()
    }
}

fn document(
    runner: &Runner,
    record: Record,
    now: Option<DateTime<Utc>>,
) -> Result<Simulation, SimError> {
    let tickets = runner.all_tickets()?;
    let draws = crate::runner::stored_draws(runner.store())?;
    let leaderboards = leaderboards::view(runner)?;
    let metrics = metrics_rows(runner.store())?;
    // Last: the run is over, and the members are moved out of a memory store, not
    // copied (a copy of every member was a tenth of a simulation's work).
    let mut members = runner.store().take_members()?;
    if let Some(now) = now {
        // As `Member::view_at`: the members as of the end, a counter whose period
        // has passed reading 0.
        for member in &mut members {
            member.start_periods(runner.rules(), now);
        }
    }
    Ok(Simulation {
        now,
        members,
        record,
        tickets,
        campaigns: campaigns(runner, now),
        draws,
        rewards: crate::rewards::catalog(runner.rules(), runner.rewards()),
        leaderboards,
        metrics,
    })
}

/// The `metrics.*` rows of `store`, named without the prefix.
fn metrics_rows(store: &Store) -> Result<Vec<(String, Box<RawValue>)>, StoreError> {
    store
        .meta_scan(crate::metrics::META)?
        .into_iter()
        .map(|(name, bytes)| {
            let row = String::from_utf8(bytes)
                .map_err(|e| e.to_string())
                .and_then(|text| RawValue::from_string(text).map_err(|e| e.to_string()))
                .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e))?;
            let short = name[crate::metrics::META.len()..].to_string();
            Ok((short, row))
        })
        .collect()
}

/// Each campaign's phase at `now`, the points its rules awarded, and every phase
/// change the simulation went through.
fn campaigns(runner: &Runner, now: Option<DateTime<Utc>>) -> Value {
    let mut out = Map::new();
    for campaign in &runner.rules().campaigns {
        let record = runner
            .campaigns()
            .get(&campaign.id)
            .cloned()
            .unwrap_or_default();
        out.insert(campaign.id.clone(), record.view(campaign, now));
    }
    Value::Object(out)
}
