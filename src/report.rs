//! `rally report`: the community report (docs/report.md) from a data directory, from
//! events run the way `rally sim` runs them, or from a `sim` document's `metrics`
//! — as a terminal table, the JSON document of `GET /v1/report`, or an HTML page.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::feed::{self, Line, Observer};
use crate::metrics::{self, Range, RangeError, Tally};
use crate::rules::RuleSet;
use crate::runner::Runner;
use crate::store::{StepWrite, Store, StoreError};

/// The parameters of `GET /v1/report`, as the command line gives them.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pub from: Option<String>,
    pub to: Option<String>,
    pub by: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no data directory at {0}")]
    NoData(PathBuf),
    #[error("cannot open the store in {dir}: {source} (while the daemon holds it, ask it: GET /v1/report)")]
    Open { dir: PathBuf, source: StoreError },
    #[error("{0}")]
    Range(#[from] RangeError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("events: {0}")]
    Feed(#[from] feed::FeedError),
    #[error("the data directory has no steps yet, and no --to was given")]
    NoClock,
    #[error("cannot read {path}: {source}")]
    SimUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a sim document: {source}")]
    NotSim {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} has no metrics section (written by an older rally sim): run rally sim again, or give the events (--rules DIR --events FILE)")]
    NoMetrics { path: PathBuf },
    #[error("{path}: now: {now:?} is not an RFC 3339 time")]
    SimClock { path: PathBuf, now: String },
    #[error("{path}: metrics: {source}")]
    SimMetrics { path: PathBuf, source: StoreError },
}

/// The report of the data directory `data`, whose members ran under `rules`.
pub fn from_data(data: &Path, rules: &RuleSet, params: &Params) -> Result<Value, ReportError> {
    if !data.exists() {
        return Err(ReportError::NoData(data.to_path_buf()));
    }
    let store = Store::open(data).map_err(|source| ReportError::Open {
        dir: data.to_path_buf(),
        source,
    })?;
    let tally = Tally::load(&store)?;
    let now = crate::runner::stored_clock(&store)?;
    document(&store, &tally, rules, now, params)
}

/// The report of `events` run under `rules` on `sim`'s virtual clock, advanced to
/// `until` after the last event. Nothing is delivered on that clock: `sent` and
/// `failed` read 0.
pub fn from_events(
    rules: Arc<RuleSet>,
    events: impl BufRead,
    until: Option<DateTime<Utc>>,
    params: &Params,
) -> Result<Value, ReportError> {
    let store = Store::in_memory_without_history()?;
    let mut runner = Runner::new(store, Arc::clone(&rules))?;
    feed::feed(&mut runner, events, None, &mut Quiet)?;
    if let Some(until) = until {
        feed::advance(&mut runner, until)?;
    }
    let tally = runner.metrics().clone();
    document(runner.store(), &tally, &rules, runner.now(), params)
}

/// What `rally report --sim` reads of a `sim` document; the other sections are
/// skipped unread.
#[derive(Deserialize)]
struct SimDocument {
    now: Option<String>,
    metrics: Option<BTreeMap<String, Box<RawValue>>>,
}

/// The report of the `sim` document at `path`, run under `rules`: its `metrics` rows,
/// put back into an in-memory store as the run kept them, give the report of that
/// run, exactly as [`from_events`] gives it (deliveries too read 0).
pub fn from_sim(path: &Path, rules: &RuleSet, params: &Params) -> Result<Value, ReportError> {
    let file = std::fs::File::open(path).map_err(|source| ReportError::SimUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let doc: SimDocument =
        serde_json::from_reader(BufReader::new(file)).map_err(|source| ReportError::NotSim {
            path: path.to_path_buf(),
            source,
        })?;
    let Some(rows) = doc.metrics else {
        return Err(ReportError::NoMetrics {
            path: path.to_path_buf(),
        });
    };
    let now = match doc.now {
        None => None,
        Some(now) => Some(
            DateTime::parse_from_rfc3339(&now)
                .map_err(|_| ReportError::SimClock {
                    path: path.to_path_buf(),
                    now: now.clone(),
                })?
                .with_timezone(&Utc),
        ),
    };
    let store = Store::in_memory_without_history()?;
    let meta_put = rows
        .into_iter()
        .map(|(name, row)| {
            (
                format!("{}{name}", metrics::META),
                row.get().as_bytes().to_vec(),
            )
        })
        .collect();
    store.commit(&[StepWrite {
        meta_put,
        ..StepWrite::default()
    }])?;
    let tally = Tally::load(&store).map_err(|source| ReportError::SimMetrics {
        path: path.to_path_buf(),
        source,
    })?;
    document(&store, &tally, rules, now, params)
}

fn document(
    store: &Store,
    tally: &Tally,
    rules: &RuleSet,
    now: Option<DateTime<Utc>>,
    params: &Params,
) -> Result<Value, ReportError> {
    let zone = rules.settings.timezone;
    // Without a clock (no step yet) only an explicit `to` says where the range ends;
    // nothing has happened, so no phase has ended either.
    let now = match (now, &params.to) {
        (Some(now), _) => now,
        (None, Some(_)) => DateTime::<Utc>::UNIX_EPOCH,
        (None, None) => return Err(ReportError::NoClock),
    };
    let today = crate::localtime::local_day(now, zone);
    let range = Range::parse(
        params.from.as_deref(),
        params.to.as_deref(),
        params.by.as_deref(),
        today,
    )?;
    let deliveries = metrics::deliveries::load(store)?;
    Ok(metrics::report::build(
        tally,
        &deliveries,
        rules,
        range,
        now,
    ))
}

/// `sim`'s lines need no answer here: a rejected line is `sim`'s to report.
struct Quiet;

impl Observer for Quiet {
    fn seen(&mut self, _runner: &mut Runner, _line: Line) {}
}
