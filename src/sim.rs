//! `rally sim` (SPEC §3.1): the real engine against a fresh temporary store, fed events
//! in file order. Output is one JSON document, byte-identical for the same input,
//! serialized straight from what the run recorded (no intermediate JSON tree: a big
//! simulation's document runs to tens of megabytes).

use std::io::BufRead;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::clock::VirtualClock;
use crate::engine::{Firing, LedgerEntry, RuleFailure};
use crate::event::{self, AtPolicy};
use crate::member::{rfc3339, Member};
use crate::rules::RuleSet;
use crate::runner::{Applied, Runner};
use crate::store::{Store, StoreError};
use crate::tickets::Ticket;

/// Steps per transaction: large groups amortise sled's per-transaction cost.
const GROUP: usize = 128;

#[derive(Debug, Error)]
pub enum SimError {
    #[error("reading events: {0}")]
    Read(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Everything the simulation observed, in the order it happened.
#[derive(Default)]
struct Record {
    ledger: Vec<LedgerEntry>,
    firings: Vec<Firing>,
    failures: Vec<RuleFailure>,
    messages: Vec<Value>,
    rejected: Vec<Value>,
}

/// Runs the events read from `input` through `rules` and returns what happened; it
/// serializes as the output document.
///
/// The virtual clock starts at the first event; before each event it advances to the
/// event's time, firing every timer due on the way in time order (each step with its
/// timer's due time as "now"); after the last event it advances to `until`.
pub fn simulate(
    rules: Arc<RuleSet>,
    input: impl BufRead,
    until: Option<DateTime<Utc>>,
) -> Result<Simulation, SimError> {
    let store = Store::open_temporary()?;
    let mut runner = Runner::new(store, rules)?;
    runner.keep_journal();
    let mut record = Record::default();
    let clock = VirtualClock::default();
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let event = match event::parse_line(&line, AtPolicy::Required) {
            Ok(event) => event,
            Err(e) => {
                record
                    .rejected
                    .push(json!({"line": number, "error": e.to_string()}));
                continue;
            }
        };
        let at = event.at_utc();
        if clock.started().is_none() {
            // The clock starts just before the first event, so a phase change at
            // that very instant still fires.
            runner.arm(at - chrono::Duration::milliseconds(1))?;
        }
        // Timers due up to this event fire first; an event from the past does not
        // move the clock back.
        let now = clock.advance_to(at);
        runner.run_due(now)?;
        if let Applied::Rejected(error) = runner.apply_event(&event, at)? {
            record
                .rejected
                .push(json!({"line": number, "error": error}));
        }
        if runner.pending() >= GROUP {
            runner.commit()?;
        }
        record.absorb(runner.take_journal());
    }
    runner.commit()?;
    if let Some(until) = until {
        if clock.started().is_none() {
            runner.arm(until)?;
        }
        clock.advance_to(until);
    }
    if let Some(now) = clock.started() {
        runner.run_due(now)?;
    }
    runner.commit()?;
    record.absorb(runner.take_journal());
    document(&runner, record, clock.started())
}

impl Record {
    fn absorb(&mut self, outcomes: Vec<crate::runner::Journaled>) {
        for outcome in outcomes {
            self.ledger.extend(outcome.ledger);
            self.firings.extend(outcome.firings);
            self.failures.extend(outcome.failures);
            for mut row in outcome.messages {
                // Channels are not contacted: a message due now counts as sent now.
                if row.status == crate::outbox::Status::Pending {
                    row.status = crate::outbox::Status::Sent;
                    row.sent_at = Some(row.due);
                }
                self.messages.push(row.view());
            }
        }
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

impl Serialize for Simulation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut doc = serializer.serialize_map(Some(9))?;
        doc.serialize_entry("now", &self.now.map(rfc3339))?;
        doc.serialize_entry("members", &Members(&self.members))?;
        doc.serialize_entry("ledger", &self.record.ledger)?;
        doc.serialize_entry("messages", &self.record.messages)?;
        doc.serialize_entry("tickets", &self.tickets)?;
        doc.serialize_entry("campaigns", &self.campaigns)?;
        doc.serialize_entry("firings", &self.record.firings)?;
        doc.serialize_entry("errors", &self.record.failures)?;
        doc.serialize_entry("rejected", &self.record.rejected)?;
        doc.end()
    }
}

/// Members as the document's `members` object: id → public view.
struct Members<'a>(&'a [Member]);

impl Serialize for Members<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for member in self.0 {
            map.serialize_entry(&member.id, &member.view())?;
        }
        map.end()
    }
}

fn document(
    runner: &Runner,
    mut record: Record,
    now: Option<DateTime<Utc>>,
) -> Result<Simulation, SimError> {
    for firing in &mut record.firings {
        // The rule-set version belongs to the daemon's history, not to a simulation.
        firing.version.clear();
    }
    let mut members = runner.store().members()?;
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
        tickets: runner.all_tickets()?,
        campaigns: campaigns(runner, now),
    })
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
