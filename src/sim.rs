//! `rally sim` (SPEC §3.1): the real engine against a fresh temporary store, fed events
//! in file order. Output is one JSON document, byte-identical for the same input.

use std::io::BufRead;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::engine::{Firing, LedgerEntry, RuleFailure};
use crate::event::{self, AtPolicy};
use crate::member::rfc3339;
use crate::rules::RuleSet;
use crate::runner::{Applied, Runner};
use crate::store::{Store, StoreError};

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
    rejected: Vec<Value>,
}

/// Runs the events read from `input` through `rules` and returns the output document.
pub fn simulate(
    rules: Arc<RuleSet>,
    input: impl BufRead,
    until: Option<DateTime<Utc>>,
) -> Result<Value, SimError> {
    let store = Store::open_temporary()?;
    let mut runner = Runner::new(store, rules);
    let mut record = Record::default();
    let mut clock: Option<DateTime<Utc>> = None;
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
        clock = Some(clock.map_or(at, |c| c.max(at)));
        if let Applied::Accepted(outcome) = runner.apply_event(&event, at)? {
            record.ledger.extend(outcome.ledger);
            record.firings.extend(outcome.firings);
            record.failures.extend(outcome.failures);
        }
        if runner.pending() >= GROUP {
            runner.commit()?;
        }
    }
    runner.commit()?;
    let now = match (until, clock) {
        (Some(u), Some(c)) => Some(u.max(c)),
        (u, c) => u.or(c),
    };
    document(&runner, record, now)
}

fn document(
    runner: &Runner,
    record: Record,
    now: Option<DateTime<Utc>>,
) -> Result<Value, SimError> {
    let mut members = Map::new();
    for member in runner.store().members()? {
        members.insert(member.id.clone(), member.view());
    }
    let firings: Vec<Value> = record
        .firings
        .into_iter()
        .map(|mut f| {
            // The rule-set version belongs to the daemon's history, not to a simulation.
            f.version.clear();
            serde_json::to_value(f).unwrap_or(Value::Null)
        })
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "now".into(),
        now.map(|t| Value::String(rfc3339(t)))
            .unwrap_or(Value::Null),
    );
    doc.insert("members".into(), Value::Object(members));
    doc.insert("ledger".into(), to_json(&record.ledger));
    doc.insert("messages".into(), json!([]));
    doc.insert("tickets".into(), json!([]));
    doc.insert("campaigns".into(), json!({}));
    doc.insert("firings".into(), Value::Array(firings));
    doc.insert("errors".into(), to_json(&record.failures));
    doc.insert("rejected".into(), Value::Array(record.rejected));
    Ok(Value::Object(doc))
}

fn to_json<T: serde::Serialize>(items: &[T]) -> Value {
    serde_json::to_value(items).unwrap_or(Value::Null)
}
