//! The event journal: every input that changed the store, in the order the runner
//! took it, written in the same batch as the step it records — so the journal holds
//! exactly what was acknowledged, no more and no less, and a crash cannot split them.
//!
//! An entry is enough to re-run its step exactly (`rally replay`): an event with the
//! time its step ran at, a ticket command given by API, a rule set armed (with the
//! text of every file, whenever it changed), and — in the daemon, where fan-out
//! batches take turns with events — each batch, at the reading it ran at. Timers are
//! not journaled: which fall due, and when their steps run, follows from the entries
//! (SPEC §2.7: a step's time is the step clock's, and every reading runs what is due).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fanout::Pace;
use super::Runner;
use crate::event::Event;
use crate::script::RandomKey;
use crate::store::{StepWrite, StoreError};

/// Meta name of the version whose files the journal holds last: a start or reload on
/// the same files records the version only.
const VERSION_META: &str = "journal.version";

/// One journal line: its sequence number and what it records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalLine {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: Entry,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A rule set was armed at `at` (the step clock): at a start, after a reload.
    Arm {
        #[serde(with = "crate::engine::outcome::utc")]
        at: DateTime<Utc>,
        version: String,
        /// Every file of the set, by path relative to the rules directory, when the
        /// set differs from the one the journal last recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files: Option<BTreeMap<String, String>>,
        /// When the process that armed started: `schedule` occurrences due before it
        /// were missed.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "optional_utc"
        )]
        started_at: Option<DateTime<Utc>>,
        /// Whether fan-out batches took turns with events from here on (the daemon)
        /// or ran to their end at each arrival (`import`).
        interleaved: bool,
        /// The installation's secret for `random()` and friends (hex), so a replay
        /// draws what the run drew; absent for the zero key (and in older journals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        random_key: Option<String>,
    },
    /// An accepted event; its step ran at `at`.
    Event {
        #[serde(with = "crate::engine::outcome::utc")]
        at: DateTime<Utc>,
        event: Value,
    },
    /// `POST /v1/tickets/{id}/ack` or `/resolve`, at `at`.
    Ticket {
        #[serde(with = "crate::engine::outcome::utc")]
        at: DateTime<Utc>,
        ticket: String,
        resolve: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// One batch of fan-out job `job`, run when the clock read `at` (daemon only).
    Batch {
        #[serde(with = "crate::engine::outcome::utc")]
        at: DateTime<Utc>,
        job: u64,
    },
}

impl Entry {
    /// When the entry happened (the step clock's time).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Entry::Arm { at, .. }
            | Entry::Event { at, .. }
            | Entry::Ticket { at, .. }
            | Entry::Batch { at, .. } => *at,
        }
    }
}

mod optional_utc {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => crate::engine::outcome::utc::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// A [`JournalLine`] of an [`Entry::Event`], borrowing the event: its fields in the
/// order the line's serialization gives them.
#[derive(Serialize)]
struct EventLine<'a> {
    seq: u64,
    kind: &'static str,
    #[serde(with = "crate::engine::outcome::utc")]
    at: DateTime<Utc>,
    event: EventJson<'a>,
}

/// [`Event::to_json`] as it serializes, without building it.
struct EventJson<'a>(&'a Event);

impl Serialize for EventJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let event = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &event.id)?;
        map.serialize_entry("type", &event.kind)?;
        if let Some(member) = &event.member {
            map.serialize_entry("member", member)?;
        }
        if let Some(at) = event.at {
            map.serialize_entry("at", &crate::member::rfc3339(at.with_timezone(&Utc)))?;
        }
        map.serialize_entry("data", &event.data)?;
        map.end()
    }
}

/// Where the runner is in the journal it keeps.
#[derive(Debug)]
pub(super) struct Journal {
    next: u64,
    /// The version whose files the journal recorded last.
    version: Option<String>,
}

impl Journal {
    pub(super) fn load(store: &crate::store::Store) -> Result<Journal, StoreError> {
        let next = store.journal_last()?.map_or(1, |last| last + 1);
        let version = store
            .meta_get(VERSION_META)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        Ok(Journal { next, version })
    }
}

impl Runner {
    /// Records every input from now on in the store's journal (the daemon, `import`).
    pub fn keep_event_journal(&mut self) -> Result<(), StoreError> {
        self.event_journal = Some(Journal::load(&self.store)?);
        Ok(())
    }

    /// Whether this runner keeps an event journal (the daemon does; `sim` does not).
    pub fn keeps_journal(&self) -> bool {
        self.event_journal.is_some()
    }

    /// Adds `entry` to `write` when a journal is kept. The caller puts `write` in the
    /// open group with the step it records.
    pub fn record(&mut self, write: &mut StepWrite, entry: Entry) {
        let Some(journal) = &mut self.event_journal else {
            return;
        };
        let line = JournalLine {
            seq: journal.next,
            entry,
        };
        journal.next += 1;
        write
            .journal
            .push((line.seq, serde_json::to_vec(&line).unwrap_or_default()));
    }

    /// Records the event whose step runs at `at`: the same line as
    /// [`Entry::Event`] with the event's JSON ([`Event::to_json`]), written straight
    /// from the event rather than through a copy of it as a JSON value (every
    /// accepted event in the daemon and `import` is journaled).
    pub(super) fn record_event(&mut self, write: &mut StepWrite, at: DateTime<Utc>, event: &Event) {
        let Some(journal) = &mut self.event_journal else {
            return;
        };
        let line = EventLine {
            seq: journal.next,
            kind: "event",
            at,
            event: EventJson(event),
        };
        journal.next += 1;
        write
            .journal
            .push((line.seq, serde_json::to_vec(&line).unwrap_or_default()));
    }

    /// The entry for arming the rules now loaded at `at`: with their files when the
    /// journal does not hold this version's yet.
    pub(super) fn journal_arm(&mut self, write: &mut StepWrite, at: DateTime<Utc>) {
        let Some(journal) = &mut self.event_journal else {
            return;
        };
        let rules = self.rules.clone();
        let files = (journal.version.as_deref() != Some(rules.version.as_str()))
            .then(|| crate::rules::file_texts(&rules));
        if files.is_some() {
            journal.version = Some(rules.version.clone());
            write
                .meta_put
                .push((VERSION_META.to_string(), rules.version.clone().into_bytes()));
        }
        let entry = Entry::Arm {
            at,
            version: rules.version.clone(),
            files,
            started_at: self.started_at,
            interleaved: self.pace == Pace::Interleaved,
            random_key: (self.random_key != RandomKey::default()).then(|| self.random_key.to_hex()),
        };
        self.record(write, entry);
    }

    /// Forgets numbering and versions the failed group took (see [`Runner::commit`]).
    pub(super) fn reload_journal(&mut self) -> Result<(), StoreError> {
        if self.event_journal.is_some() {
            self.event_journal = Some(Journal::load(&self.store)?);
        }
        Ok(())
    }
}

/// Journal lines from sequence number `from` on, up to `max`, decoded.
pub fn journal_lines(
    store: &crate::store::Store,
    from: u64,
    max: usize,
) -> Result<Vec<JournalLine>, StoreError> {
    store
        .journal_scan(from, max)?
        .into_iter()
        .map(|(seq, bytes)| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::corrupt("journal", &seq.to_be_bytes(), e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{parse_line, AtPolicy};

    /// The line written straight from the event is the line of the entry built the
    /// long way, byte for byte: `rally replay` and `export` read either.
    #[test]
    fn an_event_line_is_the_entry_it_stands_for_byte_for_byte() {
        let at: DateTime<Utc> = "2026-11-01T10:00:00.250Z".parse().unwrap();
        let lines = [
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-01T09:59:59Z"}"#,
            r#"{"id":"e\"2/","type":"purchase","member":"ünï ✓","at":"2026-11-01T12:00:00.5+08:00","data":{"amount":12.5,"n":3,"f":1.5,"nested":{"a":[1,null,true]},"z":"\t\u0000\n"}}"#,
            r#"{"id":"e-3","type":"rally.ticket.ack","at":"2026-11-01T09:00:00Z","data":{"ticket":"T-1","b":2,"a":1}}"#,
        ];
        for (n, text) in lines.into_iter().enumerate() {
            let event = parse_line(text, AtPolicy::Required).unwrap();
            let seq = n as u64 + 7;
            let direct = serde_json::to_vec(&EventLine {
                seq,
                kind: "event",
                at,
                event: EventJson(&event),
            })
            .unwrap();
            let long_way = serde_json::to_vec(&JournalLine {
                seq,
                entry: Entry::Event {
                    at,
                    event: event.to_json(),
                },
            })
            .unwrap();
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                String::from_utf8(long_way).unwrap(),
                "{text}"
            );
        }
    }
}
