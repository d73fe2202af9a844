//! The ledger entries and firings of a simulation written as the text they have in its
//! document, by hand: they are most of a big document, and serde_json's pretty printer
//! (generic over every value, then indented for its place in a second pass) cost
//! several times what copying their few fields does. The text is exactly what the
//! pretty printer writes there (`spill.rs`); the tests hold them to it.

use chrono::{DateTime, Utc};

use crate::engine::{Firing, LedgerEntry, RuleFailure};
use crate::member::{rfc3339, rfc3339_whole_seconds};
use crate::outbox::OutboxRow;
use crate::rewards::Redemption;

/// A field name as its line starts, one level into an element of a section (keys are
/// field names, never escaped): written in one copy.
macro_rules! key {
    ($name:literal) => {
        concat!("\n      \"", $name, "\": ")
    };
}

/// A record that can write its own document text (see the module doc).
pub trait RecordText {
    /// Appends the record as the document holds it (an element of a section, two
    /// levels down: its first line unindented, the rest indented for that place) and
    /// answers true; false, having written nothing, to be written by serde instead.
    fn write_text(&self, _out: &mut Vec<u8>) -> bool {
        false
    }
}

impl RecordText for LedgerEntry {
    fn write_text(&self, out: &mut Vec<u8>) -> bool {
        let mut object = Object::start(out);
        object.string(key!("member"), &self.member);
        object.integer(key!("amount"), self.amount);
        object.integer(key!("balance"), self.balance);
        object.string(key!("reason"), &self.reason);
        object.string(key!("rule"), &self.rule);
        if let Some(event) = &self.event {
            object.string(key!("event"), event);
        }
        object.time(key!("at"), self.at);
        if let Some(requested) = self.requested {
            object.integer(key!("requested"), requested);
        }
        if let Some(clipped_by) = &self.clipped_by {
            object.string(key!("clipped_by"), clipped_by);
        }
        if let Some(operator) = &self.operator {
            object.string(key!("operator"), operator);
        }
        if let Some(from) = &self.from {
            object.string(key!("from"), from);
        }
        object.end();
        true
    }
}

impl RecordText for Firing {
    fn write_text(&self, out: &mut Vec<u8>) -> bool {
        let mut object = Object::start(out);
        object.string(key!("rule"), &self.rule);
        object.string(key!("member"), &self.member);
        object.string(key!("trigger"), &self.trigger);
        object.time(key!("at"), self.at);
        if let Some(event) = &self.event {
            object.string(key!("event"), event);
        }
        if !self.version.is_empty() {
            object.string(key!("version"), &self.version);
        }
        object.end();
        true
    }
}

impl RecordText for RuleFailure {}
impl RecordText for OutboxRow {}
impl RecordText for Redemption {}
impl RecordText for serde_json::Value {}

/// A JSON object being written at a section element's place.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn start(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// A field's `"key": ` (made by [`key!`]) on a line of its own.
    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.extend_from_slice(key.as_bytes());
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        string(self.out, value);
    }

    fn integer(&mut self, key: &str, value: i64) {
        self.key(key);
        crate::digits::push_i64(self.out, value);
    }

    /// A time as [`rfc3339`] writes it, which never needs escaping.
    fn time(&mut self, key: &str, value: DateTime<Utc>) {
        self.key(key);
        self.out.push(b'"');
        match rfc3339_whole_seconds(value) {
            Some(text) => self.out.extend_from_slice(&text),
            None => self.out.extend_from_slice(rfc3339(value).as_bytes()),
        }
        self.out.push(b'"');
    }

    fn end(self) {
        self.out
            .extend_from_slice(if self.empty { b"}" } else { b"\n    }" });
    }
}

/// `value` as a JSON string. Most need no escape and are copied; the others are
/// escaped by serde_json, so the text is its own.
fn string(out: &mut Vec<u8>, value: &str) {
    if value.bytes().any(|b| ESCAPED[usize::from(b)]) {
        if serde_json::to_writer(&mut *out, value).is_err() {
            // serde_json fails to write a string only when its writer does, and a
            // vector never does; kept total all the same.
            out.extend_from_slice(b"\"\"");
        }
        return;
    }
    out.reserve(value.len() + 2);
    out.push(b'"');
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

/// The bytes serde_json escapes in a string: control characters, `"` and backslash.
const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde::Serialize;

    /// What the pretty printer writes for `record` at a section element's place.
    fn pretty(record: &impl Serialize) -> Vec<u8> {
        let Ok(text) = serde_json::to_vec_pretty(record) else {
            panic!("serializes");
        };
        let mut out = Vec::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\n    ");
            }
            out.extend_from_slice(line);
        }
        out
    }

    fn by_hand(record: &impl RecordText) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(record.write_text(&mut out));
        out
    }

    fn at(text: &str) -> DateTime<Utc> {
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    /// Strings that need escaping, and some that do not.
    const AWKWARD: [&str; 7] = [
        "plain",
        "",
        "say \"hi\"",
        "back\\slash",
        "line\nbreak\ttab\u{1}\u{7f}",
        "été 雨 🎉",
        "\u{2028}",
    ];

    #[test]
    fn ledger_entries_are_written_as_the_pretty_printer_writes_them() {
        for (i, text) in AWKWARD.iter().enumerate() {
            let some = |s: &str| (i % 2 == 0).then(|| s.to_string());
            let entry = LedgerEntry {
                member: (*text).into(),
                amount: [5, -300, 0, i64::MIN, i64::MAX][i % 5],
                balance: 1_000_000_007,
                reason: (*text).into(),
                rule: format!("rule-{text}").into(),
                event: (i % 2 == 0).then(|| (*text).into()),
                at: at("2026-11-01T08:30:05.250Z"),
                requested: (i % 3 == 0).then_some(-7),
                clipped_by: some("budget:double11"),
                operator: (i % 3 == 1).then(|| text.to_string()),
                from: some("m-2"),
            };
            assert_eq!(
                String::from_utf8_lossy(&by_hand(&entry)),
                String::from_utf8_lossy(&pretty(&entry)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn firings_are_written_as_the_pretty_printer_writes_them() {
        for (i, text) in AWKWARD.iter().enumerate() {
            let firing = Firing {
                rule: (*text).into(),
                member: "m-1".into(),
                trigger: "event".into(),
                at: at("2026-11-01T00:00:00Z"),
                event: (i % 2 == 1).then(|| (*text).into()),
                version: if i % 3 == 0 {
                    Default::default()
                } else {
                    (*text).into()
                },
            };
            assert_eq!(by_hand(&firing), pretty(&firing), "{text:?}");
        }
    }

    #[test]
    fn the_other_records_are_left_to_serde() {
        let failure = RuleFailure {
            rule: "r".into(),
            member: "m".into(),
            at: "rules.yaml:3".into(),
            error: "boom".into(),
            event: None,
            when: at("2026-11-01T00:00:00Z"),
        };
        let mut out = Vec::new();
        assert!(!failure.write_text(&mut out));
        assert!(out.is_empty());
    }
}
