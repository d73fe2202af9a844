//! Comparing what a test expected with the `sim` document its run produced: every
//! expectation not met is one [`Mismatch`], with where it was written and what came
//! out instead.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use super::spec::{Expect, Field, Firing, Record, Records, SetWant, TestCase, Want};
use crate::money::Decimal;
use crate::rules::SourcePos;

/// One expectation that did not hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub at: SourcePos,
    /// What was checked: `members.m-1.points`, `fired`, `messages[2]`.
    pub what: String,
    pub expected: String,
    pub got: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}\n    expected: {}\n         got: {}",
            self.at, self.what, self.expected, self.got
        )
    }
}

/// Every expectation of `test` that `doc` (a `sim` document) does not meet.
pub fn judge(test: &TestCase, doc: &Json) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let expect = &test.expect;
    members(expect, doc, &mut out);
    for (name, records) in [
        ("ledger", &expect.ledger),
        ("messages", &expect.messages),
        ("tickets", &expect.tickets),
        ("errors", &expect.errors),
    ] {
        if let Some(records) = records {
            check_records(name, records, list(doc, name), &mut out);
        }
    }
    if expect.errors.is_none() {
        for failure in list(doc, "errors") {
            out.push(Mismatch {
                at: test.at.clone(),
                what: "errors".into(),
                expected: "no rule to fail (list expected failures under expect.errors)".into(),
                got: format!(
                    "rule {} failed for {} at {}: {}",
                    text(&failure["rule"]),
                    text(&failure["member"]),
                    text(&failure["at"]),
                    text(&failure["error"])
                ),
            });
        }
    }
    let firings = list(doc, "firings");
    for firing in &expect.fired {
        fired(firing, firings, true, &mut out);
    }
    for firing in &expect.not_fired {
        fired(firing, firings, false, &mut out);
    }
    for campaign in &expect.campaigns {
        let got = &doc["campaigns"][&campaign.id];
        let prefix = format!("campaigns.{}", campaign.id);
        for field in &campaign.fields {
            check_field(&prefix, field, got, &mut out);
        }
    }
    rejected(test, doc, &mut out);
    super::leaderboards::judge(&expect.leaderboards, doc, &mut out);
    out
}

fn members(expect: &Expect, doc: &Json, out: &mut Vec<Mismatch>) {
    for member in &expect.members {
        let prefix = format!("members.{}", member.id);
        let Some(got) = doc["members"].get(&member.id) else {
            out.push(Mismatch {
                at: member.at.clone(),
                what: prefix,
                expected: "a member".into(),
                got: "no such member (no event of theirs was accepted)".into(),
            });
            continue;
        };
        for field in &member.fields {
            check_field(&prefix, field, got, out);
        }
    }
}

fn check_field(prefix: &str, field: &Field, record: &Json, out: &mut Vec<Mismatch>) {
    let got = lookup(record, field);
    if !holds(&field.want, got) {
        out.push(Mismatch {
            at: field.at.clone(),
            what: format!("{prefix}.{}", field.name()),
            expected: describe(&field.want),
            got: got.to_string(),
        });
    }
}

/// The field's value in `record`, or what its absence means.
fn lookup<'a>(record: &'a Json, field: &'a Field) -> &'a Json {
    let mut here = record;
    for key in &field.path {
        match here.get(key) {
            Some(next) => here = next,
            None => return &field.absent,
        }
    }
    here
}

fn holds(want: &Want, got: &Json) -> bool {
    match want {
        Want::Exact(want) => same(want, got),
        Want::Time(want) => got
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t.with_timezone(&Utc) == *want),
        Want::Contains(part) => got.as_str().is_some_and(|t| t.contains(part.as_str())),
        Want::Set(set) => {
            let names: std::collections::BTreeSet<&str> = got
                .as_array()
                .map(|items| items.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            match set {
                SetWant::Exactly(want) => {
                    names.len() == want.len() && want.iter().all(|n| names.contains(n.as_str()))
                }
                SetWant::Partly { contains, excludes } => {
                    contains.iter().all(|n| names.contains(n.as_str()))
                        && !excludes.iter().any(|n| names.contains(n.as_str()))
                }
            }
        }
    }
}

/// Equal as JSON, numbers compared as exact decimals.
fn same(want: &Json, got: &Json) -> bool {
    match (want, got) {
        (Json::Number(a), Json::Number(b)) => {
            match (
                Decimal::from_str(&a.to_string()),
                Decimal::from_str(&b.to_string()),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => a.as_f64() == b.as_f64(),
            }
        }
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (Json::Object(a), Json::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => want == got,
    }
}

fn describe(want: &Want) -> String {
    match want {
        Want::Exact(value) => value.to_string(),
        Want::Time(at) => crate::member::rfc3339(*at),
        Want::Contains(part) => format!("text containing {part:?}"),
        Want::Set(SetWant::Exactly(names)) => format!("{names:?}"),
        Want::Set(SetWant::Partly { contains, excludes }) => {
            let mut parts = Vec::new();
            if !contains.is_empty() {
                parts.push(format!("containing {contains:?}"));
            }
            if !excludes.is_empty() {
                parts.push(format!("without {excludes:?}"));
            }
            parts.join(" and ")
        }
    }
}

fn matches(pattern: &Record, record: &Json) -> bool {
    pattern
        .fields
        .iter()
        .all(|f| holds(&f.want, lookup(record, f)))
}

/// A pattern as written: `{amount: 5, reason: "purchase"}`.
fn show_pattern(pattern: &Record) -> String {
    let parts: Vec<String> = pattern
        .fields
        .iter()
        .map(|f| format!("{}: {}", f.name(), describe(&f.want)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A record, showing only the fields the patterns speak of (all when none do).
fn show_record(record: &Json, keys: &[String]) -> String {
    let Some(object) = record.as_object() else {
        return record.to_string();
    };
    let shown: Map<String, Json> = if keys.is_empty() {
        object.clone()
    } else {
        keys.iter()
            .map(|k| (k.clone(), object.get(k).cloned().unwrap_or(Json::Null)))
            .collect()
    };
    Json::Object(shown).to_string()
}

fn show_all(records: &[Json], keys: &[String]) -> String {
    if records.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = records.iter().map(|r| show_record(r, keys)).collect();
    format!("{} — {}", records.len(), shown.join(", "))
}

fn check_records(name: &str, want: &Records, got: &[Json], out: &mut Vec<Mismatch>) {
    let patterns: Vec<&Record> = match want {
        Records::Exactly(list, _) => list.iter().collect(),
        Records::Partly { contains, excludes } => {
            contains.iter().map(|(r, _)| r).chain(excludes).collect()
        }
    };
    let mut keys: Vec<String> = Vec::new();
    for field in patterns.iter().flat_map(|p| &p.fields) {
        if !keys.contains(&field.path[0]) {
            keys.push(field.path[0].clone());
        }
    }
    match want {
        Records::Exactly(list, at) => {
            if list.len() != got.len() {
                out.push(Mismatch {
                    at: at.clone(),
                    what: name.into(),
                    expected: format!(
                        "{} record{}",
                        list.len(),
                        if list.len() == 1 { "" } else { "s" }
                    ),
                    got: show_all(got, &keys),
                });
                return;
            }
            for (i, (pattern, record)) in list.iter().zip(got).enumerate() {
                if !matches(pattern, record) {
                    out.push(Mismatch {
                        at: pattern.at.clone(),
                        what: format!("{name}[{}]", i + 1),
                        expected: show_pattern(pattern),
                        got: show_record(record, &keys),
                    });
                }
            }
        }
        Records::Partly { contains, excludes } => {
            for (pattern, count) in contains {
                let n = got.iter().filter(|r| matches(pattern, r)).count();
                let ok = match count {
                    Some(count) => n == *count,
                    None => n > 0,
                };
                if !ok {
                    let times = match count {
                        Some(c) => format!("{c} matching"),
                        None => "at least one matching".into(),
                    };
                    out.push(Mismatch {
                        at: pattern.at.clone(),
                        what: format!("{name} contains"),
                        expected: format!("{times} {}", show_pattern(pattern)),
                        got: format!("{n} matching; all {name}: {}", show_all(got, &keys)),
                    });
                }
            }
            for pattern in excludes {
                let found: Vec<Json> = got
                    .iter()
                    .filter(|r| matches(pattern, r))
                    .cloned()
                    .collect();
                if !found.is_empty() {
                    out.push(Mismatch {
                        at: pattern.at.clone(),
                        what: format!("{name} excludes"),
                        expected: format!("none matching {}", show_pattern(pattern)),
                        got: show_all(&found, &keys),
                    });
                }
            }
        }
    }
}

fn fired(want: &Firing, firings: &[Json], fired: bool, out: &mut Vec<Mismatch>) {
    let n = firings
        .iter()
        .filter(|f| f["rule"] == want.rule.as_str())
        .filter(|f| {
            want.member
                .as_ref()
                .is_none_or(|m| f["member"] == m.as_str())
        })
        .count();
    let ok = match (fired, want.times) {
        (true, Some(times)) => n == times,
        (true, None) => n > 0,
        (false, _) => n == 0,
    };
    if ok {
        return;
    }
    let whom = want
        .member
        .as_ref()
        .map(|m| format!(" for {m}"))
        .unwrap_or_default();
    let expected = match (fired, want.times) {
        (true, Some(t)) => format!(
            "{} to fire{whom} {t} time{}",
            want.rule,
            if t == 1 { "" } else { "s" }
        ),
        (true, None) => format!("{} to fire{whom}", want.rule),
        (false, _) => format!("{} not to fire{whom}", want.rule),
    };
    let got = if n == 0 {
        format!(
            "it never fired; rules that fired: {}",
            fired_summary(firings)
        )
    } else {
        format!("it fired {n} time{}", if n == 1 { "" } else { "s" })
    };
    out.push(Mismatch {
        at: want.at.clone(),
        what: if fired { "fired" } else { "not_fired" }.into(),
        expected,
        got,
    });
}

/// `daily-checkin ×7, streak-7` in order of first firing.
fn fired_summary(firings: &[Json]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for rule in firings.iter().filter_map(|f| f["rule"].as_str()) {
        match counts.iter_mut().find(|(r, _)| r == rule) {
            Some((_, n)) => *n += 1,
            None => counts.push((rule.to_string(), 1)),
        }
    }
    if counts.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(r, n)| if n == 1 { r } else { format!("{r} ×{n}") })
        .collect();
    parts.join(", ")
}

/// Rejected events: those the test lists must be rejected, and no other.
fn rejected(test: &TestCase, doc: &Json, out: &mut Vec<Mismatch>) {
    let mut rejected_ids = Vec::new();
    for entry in list(doc, "rejected") {
        let event = entry["line"]
            .as_u64()
            .and_then(|line| usize::try_from(line).ok())
            .and_then(|line| test.events.get(line.checked_sub(1)?));
        let Some(event) = event else { continue };
        rejected_ids.push(event.id.clone());
        if !test.expect.rejected.iter().any(|(id, _)| *id == event.id) {
            out.push(Mismatch {
                at: event.at.clone(),
                what: format!("event {}", event.id),
                expected: "accepted (list it under expect.rejected if it should not be)".into(),
                got: format!("rejected: {}", text(&entry["error"])),
            });
        }
    }
    for (id, at) in &test.expect.rejected {
        if !rejected_ids.contains(id) {
            out.push(Mismatch {
                at: at.clone(),
                what: format!("event {id}"),
                expected: "rejected".into(),
                got: "accepted".into(),
            });
        }
    }
}

fn list<'a>(doc: &'a Json, name: &str) -> &'a [Json] {
    doc[name].as_array().map_or(&[], Vec::as_slice)
}

fn text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}
