//! The journal as NDJSON (`rally export`, `GET /v1/journal`): one entry per line, in
//! order. A window (`since`) opens with the rule set in force at its start — the last
//! `Arm` entry before it, with its version's files — so a window replays on its own.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::runner::{journal_lines, Entry, JournalLine};
use crate::store::{Store, StoreError};

/// Lines read per store scan.
const SCAN: usize = 1024;

/// Writes every journal entry from `since` on (all of them for `None`) to `emit`, one
/// JSON line each, a scan's worth at a time; stops early when `emit` returns false
/// (the reader went away). Returns the entries written.
pub fn export(
    store: &Store,
    since: Option<DateTime<Utc>>,
    mut emit: impl FnMut(Vec<u8>) -> bool,
) -> Result<u64, StoreError> {
    let mut next = 0;
    let mut written = 0;
    // Before the window: the files of each version, and the last arming.
    let mut files: HashMap<String, std::collections::BTreeMap<String, String>> = HashMap::new();
    let mut last_arm: Option<JournalLine> = None;
    // `Some` until the window is reached, then `None`: every later line is inside.
    let mut before_window = since;
    loop {
        let lines = journal_lines(store, next, SCAN)?;
        let Some(last) = lines.last() else {
            break;
        };
        next = last.seq + 1;
        let mut chunk = Vec::new();
        for line in lines {
            if let Some(since) = before_window {
                if line.entry.at() < since {
                    if let Entry::Arm {
                        version,
                        files: Some(texts),
                        ..
                    } = &line.entry
                    {
                        files.insert(version.clone(), texts.clone());
                    }
                    if matches!(line.entry, Entry::Arm { .. }) {
                        last_arm = Some(line);
                    }
                    continue;
                }
                before_window = None;
                if let Some(mut arm) = last_arm.take() {
                    if let Entry::Arm {
                        version,
                        files: texts,
                        ..
                    } = &mut arm.entry
                    {
                        if texts.is_none() {
                            *texts = files.remove(version.as_str());
                        }
                    }
                    push_line(&mut chunk, &arm);
                    written += 1;
                }
            }
            push_line(&mut chunk, &line);
            written += 1;
        }
        if !chunk.is_empty() && !emit(chunk) {
            return Ok(written);
        }
    }
    Ok(written)
}

fn push_line(chunk: &mut Vec<u8>, line: &JournalLine) {
    if serde_json::to_writer(&mut *chunk, line).is_ok() {
        chunk.push(b'\n');
    }
}

/// Reads an exported journal back: one entry per line; `line N: …` for one that is not.
pub fn parse_lines(text: &str) -> Result<Vec<JournalLine>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .map_err(|e| format!("line {}: not a journal entry: {e}", n + 1))
        })
        .collect()
}
