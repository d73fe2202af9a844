//! Reading the YAML tree into typed values while collecting every problem: each getter
//! reports what is wrong where and returns `None`, so compilation goes on and one run
//! shows all errors.

use std::collections::BTreeSet;

use chrono::Duration;

pub use super::expr::{compile_rhai, compile_script_file, RhaiKind};
use super::yaml::{Key, Node, Value};
use super::{RuleError, SourcePos};

/// The problems found so far, and what the Rhai compiled so far reads and writes on
/// members: misspelt member fields can only be told once every `set` key is known.
#[derive(Default)]
pub struct Diag {
    pub errors: Vec<RuleError>,
    /// Every `member.<name>` read in compiled Rhai, where it is written.
    pub member_reads: Vec<(String, SourcePos)>,
    /// Attribute names written by `set` actions and by scripts' `set("name", ..)`.
    pub set_keys: BTreeSet<String>,
    /// What all the Rhai compiled so far reads of the bindings.
    pub reads: crate::script::Reads,
}

impl Diag {
    pub fn error(&mut self, at: &SourcePos, message: impl Into<String>) {
        self.errors.push(RuleError {
            at: Some(at.clone()),
            message: message.into(),
            hint: None,
        });
    }

    pub fn error_hint(&mut self, at: &SourcePos, message: impl Into<String>, hint: Option<String>) {
        self.errors.push(RuleError {
            at: Some(at.clone()),
            message: message.into(),
            hint,
        });
    }

    /// An unknown name among `known`, with the closest one as a hint.
    pub fn unknown<'k>(
        &mut self,
        at: &SourcePos,
        message: impl Into<String>,
        name: &str,
        known: impl IntoIterator<Item = &'k str>,
    ) {
        let hint = did_you_mean(name, known);
        self.error_hint(at, message, hint);
    }
}

/// `did you mean "x"?` for the known name closest to `name`, if one is close enough to
/// be a likely typo.
pub fn did_you_mean<'k>(name: &str, known: impl IntoIterator<Item = &'k str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| format!("did you mean {k:?}?"))
}

/// Edit distance over characters where swapping two neighbours counts as one edit
/// (optimal string alignment), since "glod" for "gold" is one typo, not two.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A mapping whose keys have been checked against the ones allowed.
pub struct Fields<'a> {
    pub value: &'a Value,
    pub entries: &'a [(Key, Value)],
    /// Some key was not allowed (and is reported): a "missing" complaint about the
    /// same mapping would most likely be that typo again.
    pub had_unknown: bool,
    what: &'a str,
}

/// Reads `value` as a mapping of `what` (e.g. "rule"), reporting any key not in
/// `allowed` with the closest allowed one as a hint.
pub fn fields<'a>(
    d: &mut Diag,
    value: &'a Value,
    what: &'a str,
    allowed: &[&str],
) -> Option<Fields<'a>> {
    let Node::Map(entries) = &value.node else {
        d.error(
            &value.at,
            format!("{what} must be a mapping, found {}", value.kind()),
        );
        return None;
    };
    let mut had_unknown = false;
    for (key, _) in entries {
        if !allowed.contains(&key.name.as_str()) {
            had_unknown = true;
            d.unknown(
                &key.at,
                format!("unknown key {:?} in {what}", key.name),
                &key.name,
                allowed.iter().copied(),
            );
        }
    }
    Some(Fields {
        value,
        entries,
        had_unknown,
        what,
    })
}

impl<'a> Fields<'a> {
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }

    pub fn key(&self, name: &str) -> Option<&'a Key> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(k, _)| k)
    }

    /// A required key: its absence is reported at the mapping.
    pub fn require(&self, d: &mut Diag, name: &str) -> Option<&'a Value> {
        let found = self.get(name);
        if found.is_none() {
            d.error(
                &self.value.at,
                format!("{} is missing required key {name:?}", self.what),
            );
        }
        found
    }

    pub fn req_str(&self, d: &mut Diag, name: &str) -> Option<&'a str> {
        self.require(d, name).and_then(|v| string(d, v, name))
    }
}

/// A string; `None` without a further error if it names a missing `${NAME}`.
pub fn string<'a>(d: &mut Diag, value: &'a Value, name: &str) -> Option<&'a str> {
    match &value.node {
        Node::Str(_) if value.unresolved => None,
        Node::Str(s) => Some(s),
        _ => {
            d.error(
                &value.at,
                format!("{name:?} must be a string, found {}", value.kind()),
            );
            None
        }
    }
}

/// A string that is one of `choices`.
pub fn choice<'a>(d: &mut Diag, value: &Value, name: &str, choices: &[&'a str]) -> Option<&'a str> {
    let text = string(d, value, name)?;
    let found = choices.iter().find(|c| **c == text).copied();
    if found.is_none() {
        d.unknown(
            &value.at,
            format!(
                "{name:?} must be one of {}, found {text:?}",
                choices.join(", ")
            ),
            text,
            choices.iter().copied(),
        );
    }
    found
}

pub fn boolean(d: &mut Diag, value: &Value, name: &str) -> Option<bool> {
    match value.node {
        Node::Bool(b) => Some(b),
        _ => {
            d.error(
                &value.at,
                format!("{name:?} must be true or false, found {}", value.kind()),
            );
            None
        }
    }
}

pub fn integer(d: &mut Diag, value: &Value, name: &str) -> Option<i64> {
    match value.node {
        Node::Int(i) => Some(i),
        _ => {
            d.error(
                &value.at,
                format!("{name:?} must be an integer, found {}", value.kind()),
            );
            None
        }
    }
}

/// An integer greater than zero that fits `T`.
pub fn positive<T: TryFrom<i64>>(d: &mut Diag, value: &Value, name: &str) -> Option<T> {
    let ok = match value.node {
        Node::Int(i) if i > 0 => T::try_from(i).ok(),
        _ => None,
    };
    if ok.is_none() {
        let found = match value.node {
            Node::Int(i) => i.to_string(),
            _ => value.kind().to_string(),
        };
        d.error(
            &value.at,
            format!("{name:?} must be a positive integer, found {found}"),
        );
    }
    ok
}

/// A number as an exact decimal: `0.1` is one tenth (the shortest decimal that reads
/// back as the YAML float, i.e. what was written).
pub fn decimal(d: &mut Diag, value: &Value, name: &str) -> Option<crate::money::Decimal> {
    let n = match value.node {
        Node::Int(i) => Some(crate::money::Decimal::from(i)),
        Node::Float(f) => crate::money::from_f64(f),
        _ => None,
    };
    if n.is_none() {
        d.error(
            &value.at,
            format!("{name:?} must be a number, found {}", value.kind()),
        );
    }
    n
}

pub fn duration(d: &mut Diag, value: &Value, name: &str) -> Option<Duration> {
    let text = string(d, value, name)?;
    crate::duration::parse(text)
        .map_err(|e| d.error(&value.at, e))
        .ok()
}

/// A string or a list of strings (`event: post` or `event: [post, comment]`), non-empty.
pub fn one_or_many<'a>(d: &mut Diag, value: &'a Value, name: &str) -> Option<Vec<&'a Value>> {
    let items: Vec<&Value> = match &value.node {
        Node::Str(_) => vec![value],
        Node::Seq(items) if !items.is_empty() => items.iter().collect(),
        Node::Seq(_) => {
            d.error(&value.at, format!("{name:?} must not be an empty list"));
            return None;
        }
        _ => {
            d.error(
                &value.at,
                format!(
                    "{name:?} must be a string or a list of strings, found {}",
                    value.kind()
                ),
            );
            return None;
        }
    };
    let mut ok = true;
    for item in &items {
        ok &= string(d, item, name).is_some();
    }
    ok.then_some(items)
}

/// An event type as SPEC §1 allows it.
pub fn event_type(d: &mut Diag, value: &Value) -> Option<String> {
    let text = value.as_str()?;
    let valid_chars = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-'));
    if !valid_chars {
        d.error(
            &value.at,
            format!("{text:?} is not an event type (1 to 64 of a-z, 0-9, '_', '.', '-')"),
        );
        return None;
    }
    if text.starts_with("rally.") && !matches!(text, "rally.ticket.ack" | "rally.ticket.resolve") {
        // The close of a leaderboard period is seen as this event, but runs only the
        // board's close rules: a rule waiting for it as an event would never fire.
        let hint = (text == crate::engine::LEADERBOARD_CLOSE).then(|| {
            "a leaderboard's close runs `trigger: { leaderboard: ID, closes: true }`".to_string()
        });
        d.error_hint(
            &value.at,
            format!("{text:?} is reserved: the only rally.* events are rally.ticket.ack and rally.ticket.resolve"),
            hint,
        );
        return None;
    }
    Some(text.to_string())
}

/// An id as rules, counters and campaigns use it: `[a-z0-9_-]+`.
pub fn ident(d: &mut Diag, value: &Value, what: &str) -> Option<String> {
    let text = string(d, value, "id")?;
    let ok = !text.is_empty()
        && text
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'));
    if !ok {
        d.error(
            &value.at,
            format!("{what} id {text:?} may only use a-z, 0-9, '_' and '-'"),
        );
        return None;
    }
    Some(text.to_string())
}

/// A reference to something defined elsewhere: its name, or an error with a hint.
pub fn resolve(
    d: &mut Diag,
    at: &Value,
    name: &str,
    what: &str,
    known: &[String],
) -> Option<String> {
    if known.iter().any(|k| k == name) {
        return Some(name.to_string());
    }
    d.unknown(
        &at.at,
        format!("unknown {what} {name:?}"),
        name,
        known.iter().map(String::as_str),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let known = ["trigger", "actions", "during"];
        assert_eq!(
            did_you_mean("triger", known).as_deref(),
            Some("did you mean \"trigger\"?")
        );
        assert_eq!(did_you_mean("zzz", known), None);
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("glod", "gold"), 1);
    }
}
