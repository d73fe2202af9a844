//! `rally export` and `rally replay` as the command line runs them: opening the data
//! directory (which a running daemon holds), reading an exported journal, printing.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{document, self_check, Source};
use crate::rules::RuleSet;
use crate::store::{CacheSize, Store};

/// sled's page cache for reading a data directory through: the journal and the
/// history are read once, in key order, so a cache the size of the daemon's would
/// only let the process grow with them (`RALLY_CACHE_MB` still decides when set).
const READING_CACHE: CacheSize = CacheSize::mib(16);

/// Opens `data` for reading the journal, saying what to do when a daemon holds it.
fn open(data: &Path) -> Result<Store, String> {
    if !data.exists() {
        return Err(format!("no data directory at {}", data.display()));
    }
    let cache = match std::env::var_os("RALLY_CACHE_MB") {
        None => READING_CACHE,
        Some(_) => CacheSize::from_env().map_err(|e| format!("RALLY_CACHE_MB: {e}"))?,
    };
    Store::open_with(data, cache, Arc::default()).map_err(|e| {
        format!(
            "cannot open the store in {}: {e} (while a daemon holds it, export its journal with GET /v1/journal and replay that with --journal FILE)",
            data.display()
        )
    })
}

/// `rally export --data DIR [--since T]`: the journal as NDJSON on `out`.
pub fn export(
    data: &Path,
    since: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> Result<u64, String> {
    let store = open(data)?;
    let mut failed = None;
    let written = super::export::export(&store, since, |chunk| match out.write_all(&chunk) {
        Ok(()) => true,
        Err(e) => {
            failed = Some(e);
            false
        }
    })
    .map_err(|e| e.to_string())?;
    if let Some(e) = failed.or_else(|| out.flush().err()) {
        return Err(format!("writing the journal: {e}"));
    }
    Ok(written)
}

/// `rally replay`: with only `--data`, the self-check — true when the replay
/// reproduces the live state, after printing what it found; with `--rules` or
/// `--journal`, `sim`'s document of the replay on `out` (always true).
pub fn replay(
    data: Option<&Path>,
    journal: Option<&Path>,
    candidate: Option<Arc<RuleSet>>,
    until: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> Result<bool, String> {
    let doc = match (data, journal) {
        (Some(_), Some(_)) => return Err("give --data or --journal, not both".into()),
        (None, None) => return Err("give --data DIR (a data directory) or --journal FILE (from `rally export`)".into()),
        (Some(data), None) if candidate.is_none() && until.is_none() => {
            let store = open(data)?;
            let check = self_check(&store).map_err(|e| e.to_string())?;
            if check.differences.is_empty() {
                writeln!(
                    out,
                    "rally replay: {} journal entries replayed; the live state of {} members is reproduced exactly",
                    check.entries, check.members
                )
                .map_err(|e| e.to_string())?;
                return Ok(true);
            }
            writeln!(
                out,
                "rally replay: {} journal entries replayed; the replay differs from the live state:",
                check.entries
            )
            .map_err(|e| e.to_string())?;
            for difference in &check.differences {
                writeln!(out, "  {difference}").map_err(|e| e.to_string())?;
            }
            return Ok(false);
        }
        (Some(data), None) => {
            let store = open(data)?;
            document(Source::Store(&store), candidate, until)
        }
        (None, Some(journal)) => {
            let text = std::fs::read_to_string(journal)
                .map_err(|e| format!("cannot read {}: {e}", journal.display()))?;
            let lines = super::export::parse_lines(&text)
                .map_err(|e| format!("{}: {e}", journal.display()))?;
            document(Source::Lines(lines), candidate, until)
        }
    }
    .map_err(|e| e.to_string())?;
    doc.write_pretty(&mut *out).map_err(|e| e.to_string())?;
    writeln!(out).map_err(|e| e.to_string())?;
    Ok(true)
}

/// `rally backtest`: the journal of `data` replayed under the rules it recorded and
/// under `candidate` (from `since` on, when given), each reduced to a summary of what
/// happened in the window.
pub fn backtest(
    data: &Path,
    candidate: Arc<RuleSet>,
    since: Option<DateTime<Utc>>,
) -> Result<(crate::backtest::Summary, crate::backtest::Summary), String> {
    let store = open(data)?;
    let summary = |rules: Option<Arc<RuleSet>>| {
        let doc = super::document_from(Source::Store(&store), rules, since, None)
            .map_err(|e| e.to_string())?;
        crate::backtest::Summary::from_sim_document(&doc.to_value()).map_err(|e| e.to_string())
    };
    Ok((summary(None)?, summary(Some(candidate))?))
}

/// `rally explain --data DIR MEMBER [--event ID]`: the member's steps, traced, as text
/// or as the JSON document of `GET /v1/members/{id}/explain`.
pub fn explain(
    data: &Path,
    member: &str,
    event: Option<&str>,
    all: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), String> {
    let store = open(data)?;
    let options = crate::engine::explain::Options { all };
    let explanation =
        super::explain::explain(&store, member, event, options).map_err(|e| e.to_string())?;
    let written = if json {
        serde_json::to_writer_pretty(&mut *out, &explanation)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        out.write_all(crate::engine::explain::render::text(&explanation.steps).as_bytes())
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the explanation: {e}"))
}
