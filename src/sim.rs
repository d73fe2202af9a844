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

use crate::engine::{Firing, LedgerEntry, RuleFailure};
use crate::feed::{self, FeedError, Line};
use crate::member::{rfc3339, Member};
use crate::rules::RuleSet;
use crate::runner::Runner;
use crate::store::{Store, StoreError};
use crate::tickets::Ticket;

#[derive(Debug, Error)]
pub enum SimError {
    #[error(transparent)]
    Feed(#[from] FeedError),
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
/// The virtual clock starts at the first event and reads each event's `at` (see
/// [`crate::feed`]); after the last event it advances to `until`.
pub fn simulate(
    rules: Arc<RuleSet>,
    input: impl BufRead,
    until: Option<DateTime<Utc>>,
) -> Result<Simulation, SimError> {
    let store = Store::open_temporary()?;
    let mut runner = Runner::new(store, rules)?;
    runner.keep_journal();
    let mut record = Record::default();
    feed::feed(&mut runner, input, None, |runner, line| {
        if let Line::Rejected { line, error } = line {
            record.rejected.push(json!({"line": line, "error": error}));
        }
        record.absorb(runner.take_journal());
    })?;
    if let Some(until) = until {
        feed::advance(&mut runner, until)?;
    }
    record.absorb(runner.take_journal());
    let now = runner.now();
    document(&runner, record, now)
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
