//! [`Summary::from_sim_document`]: a `rally sim` document (SPEC §3.1) read into a
//! [`Summary`] through the same `absorb_*` calls a streamed run makes.
//!
//! Only the fields a summary needs are read, each into a small typed line, so a
//! document written by a later Rally with more fields still reads, and a file that
//! is not a sim document is refused saying which section and entry is wrong.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};
use thiserror::Error;

use super::summary::{CampaignEnd, MemberEnd, Summary};

/// Why a JSON value is not a `rally sim` document.
#[derive(Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum DocumentError {
    #[error("not a `rally sim` document: the top level is {0}, not an object")]
    NotAnObject(&'static str),
    #[error("not a `rally sim` document: it has no {0:?} field")]
    Missing(&'static str),
    #[error("not a `rally sim` document: {section:?} is {found}, not {wanted}")]
    Shape {
        section: &'static str,
        found: &'static str,
        wanted: &'static str,
    },
    /// One entry of a section: `at` is its index or its key.
    #[error("{section}[{at}]: {problem}")]
    Entry {
        section: &'static str,
        at: String,
        problem: String,
    },
}

/// The sections a summary reads; a sim document always has every one.
const SECTIONS: [&str; 7] = [
    "members",
    "ledger",
    "messages",
    "tickets",
    "campaigns",
    "firings",
    "errors",
];

#[derive(Deserialize)]
struct FiringLine<'a> {
    rule: &'a str,
}

#[derive(Deserialize)]
struct LedgerLine<'a> {
    rule: &'a str,
    amount: i64,
}

#[derive(Deserialize)]
struct FailureLine<'a> {
    rule: &'a str,
}

#[derive(Deserialize)]
struct MessageLine<'a> {
    rule: Option<&'a str>,
    template: Option<&'a str>,
    status: &'a str,
}

#[derive(Deserialize)]
struct TicketLine<'a> {
    policy: &'a str,
    status: &'a str,
}

#[derive(Deserialize)]
struct MemberLine {
    points: i64,
    tier: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    badges: Vec<String>,
}

#[derive(Deserialize)]
struct CampaignLine {
    budget: Option<i64>,
    points_awarded: i64,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Each entry of the array `section`, read as `T`.
fn entries<'a, T: Deserialize<'a>>(
    doc: &'a Map<String, Value>,
    section: &'static str,
) -> Result<impl Iterator<Item = Result<T, DocumentError>> + 'a, DocumentError> {
    let value = doc.get(section).ok_or(DocumentError::Missing(section))?;
    let Value::Array(items) = value else {
        return Err(DocumentError::Shape {
            section,
            found: kind(value),
            wanted: "an array",
        });
    };
    Ok(items.iter().enumerate().map(move |(index, item)| {
        T::deserialize(item).map_err(|e| DocumentError::Entry {
            section,
            at: index.to_string(),
            problem: e.to_string(),
        })
    }))
}

/// Each entry of the object `section`, by key, read as `T`.
fn keyed<'a, T: Deserialize<'a>>(
    doc: &'a Map<String, Value>,
    section: &'static str,
) -> Result<impl Iterator<Item = Result<(&'a str, T), DocumentError>> + 'a, DocumentError> {
    let value = doc.get(section).ok_or(DocumentError::Missing(section))?;
    let Value::Object(items) = value else {
        return Err(DocumentError::Shape {
            section,
            found: kind(value),
            wanted: "an object",
        });
    };
    Ok(items.iter().map(move |(key, item)| {
        T::deserialize(item)
            .map(|line| (key.as_str(), line))
            .map_err(|e| DocumentError::Entry {
                section,
                at: format!("{key:?}"),
                problem: e.to_string(),
            })
    }))
}

impl Summary {
    /// The summary of a `rally sim` document.
    pub fn from_sim_document(doc: &Value) -> Result<Summary, DocumentError> {
        let Value::Object(doc) = doc else {
            return Err(DocumentError::NotAnObject(kind(doc)));
        };
        // Every section is checked for before any is read, so a file that is some
        // other JSON says what is missing rather than what is malformed.
        if let Some(missing) = SECTIONS.iter().find(|s| !doc.contains_key(**s)) {
            return Err(DocumentError::Missing(missing));
        }
        let mut summary = Summary::new();
        for line in entries::<FiringLine>(doc, "firings")? {
            summary.absorb_firing(line?.rule);
        }
        for line in entries::<LedgerLine>(doc, "ledger")? {
            let line = line?;
            summary.absorb_ledger(line.rule, Decimal::from(line.amount));
        }
        for line in entries::<FailureLine>(doc, "errors")? {
            summary.absorb_failure(line?.rule);
        }
        for line in entries::<MessageLine>(doc, "messages")? {
            let line = line?;
            summary.absorb_message(line.rule, line.template, line.status);
        }
        for line in entries::<TicketLine>(doc, "tickets")? {
            let line = line?;
            summary.absorb_ticket(line.policy, line.status);
        }
        for entry in keyed::<MemberLine>(doc, "members")? {
            let (id, line) = entry?;
            let end = MemberEnd {
                points: Decimal::from(line.points),
                tier: line.tier,
                badges: line.badges.into_iter().collect(),
                tags: line.tags.into_iter().collect(),
            };
            summary.set_member(id, end);
        }
        for entry in keyed::<CampaignLine>(doc, "campaigns")? {
            let (id, line) = entry?;
            let end = CampaignEnd {
                budget: line.budget.map(Decimal::from),
                points_awarded: Decimal::from(line.points_awarded),
            };
            summary.set_campaign(id, end);
        }
        Ok(summary)
    }
}

/// Why a file could not be summarised.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Document { path: String, source: DocumentError },
}

/// The summary of the `rally sim` document in the file at `path`.
pub fn load(path: &std::path::Path) -> Result<Summary, LoadError> {
    let shown = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| LoadError::Read {
        path: shown(),
        source,
    })?;
    let doc: Value = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|source| {
        LoadError::Json {
            path: shown(),
            source,
        }
    })?;
    Summary::from_sim_document(&doc).map_err(|source| LoadError::Document {
        path: shown(),
        source,
    })
}
