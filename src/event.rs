//! Member events (SPEC §1): the one JSON shape every input arrives in, and its validation.
//!
//! Validation is strict and happens once, here: everything downstream may assume an
//! `Event` is well formed (a `purchase` amount is an exact decimal ≥ 0, a `profile`
//! timezone is an IANA name, a ticket command names a ticket).

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value};
use thiserror::Error;

mod fields;
use fields::Fields;

/// Largest `data` object accepted, serialized.
pub const MAX_DATA_BYTES: usize = 64 * 1024;

/// A validated event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Idempotency key: an id seen before is a duplicate.
    pub id: String,
    /// `type` in the JSON (a Rust keyword, hence the name).
    pub kind: String,
    /// Whose event it is. `None` only for a ticket command (`rally.ticket.*`), which
    /// acts on a ticket: the runner applies it to the ticket's member.
    pub member: Option<String>,
    /// When it happened. `None` only where the caller allows it (the daemon fills in
    /// the receipt time before the event reaches the engine).
    pub at: Option<DateTime<FixedOffset>>,
    pub data: Map<String, Value>,
}

/// Why an event was rejected: the field at fault and what is wrong with it.
#[derive(Clone, Debug, Error, PartialEq)]
#[error("{field}: {message}")]
pub struct EventError {
    pub field: String,
    pub message: String,
}

impl EventError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        EventError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Whether `at` must be present: `sim` needs it, the daemon defaults it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtPolicy {
    Required,
    Optional,
}

impl Event {
    /// The instant of the event in UTC. Callers that allowed a missing `at` must have
    /// filled it in; a missing one here reads as the Unix epoch, never a panic.
    pub fn at_utc(&self) -> DateTime<Utc> {
        self.at
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// `data.<key>` as a string, if it is one.
    pub fn data_str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }

    /// The event as the JSON object it was written as (used for `event` in scripts
    /// and templates).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), Value::String(self.id.clone()));
        map.insert("type".into(), Value::String(self.kind.clone()));
        if let Some(member) = &self.member {
            map.insert("member".into(), Value::String(member.clone()));
        }
        if let Some(at) = self.at {
            map.insert(
                "at".into(),
                Value::String(
                    at.with_timezone(&Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                ),
            );
        }
        map.insert("data".into(), Value::Object(self.data.clone()));
        Value::Object(map)
    }
}

/// Parses one line of JSON into a validated event, reading the fields straight off
/// the line (see [`fields`]): the same events and the same errors as parsing it into a
/// `Value` and calling [`from_value`], without building the object first.
pub fn parse_line(line: &str, at_policy: AtPolicy) -> Result<Event, EventError> {
    let line: fields::Line = serde_json::from_str(line)
        .map_err(|e| EventError::new("event", format!("not valid JSON: {e}")))?;
    match line {
        fields::Line::Object(fields) => validate(fields, at_policy),
        fields::Line::NotAnObject => Err(not_an_object()),
    }
}

/// Validates an already-parsed JSON value as an event.
pub fn from_value(value: Value, at_policy: AtPolicy) -> Result<Event, EventError> {
    let Value::Object(object) = value else {
        return Err(not_an_object());
    };
    validate(Fields::of_object(object), at_policy)
}

fn not_an_object() -> EventError {
    EventError::new("event", "must be a JSON object")
}

fn validate(fields: Fields, at_policy: AtPolicy) -> Result<Event, EventError> {
    if let Some(key) = &fields.unknown {
        return Err(EventError::new(
            key,
            "unknown field (expected id, type, member, at, data)",
        ));
    }
    let id = required_string(fields.id, "id")?;
    check_length("id", &id, 128)?;
    // An id ends up in log lines and in message keys (a webhook's `Idempotency-Key`
    // header): a line break in it would forge a log line or cost the header.
    check_no_control("id", &id)?;
    let kind = required_string(fields.kind, "type")?;
    check_type(&kind)?;
    let member = if is_ticket_command(&kind) {
        optional_string(fields.member, "member")?
    } else {
        Some(required_string(fields.member, "member")?)
    };
    if let Some(member) = &member {
        check_length("member", member, 128)?;
        check_no_control("member", member)?;
    }
    let at = match fields.at {
        None | Some(Value::Null) => match at_policy {
            AtPolicy::Required => return Err(EventError::new("at", "is required")),
            AtPolicy::Optional => None,
        },
        Some(Value::String(text)) => Some(DateTime::parse_from_rfc3339(&text).map_err(|e| {
            EventError::new(
                "at",
                format!("{text:?} is not an RFC 3339 time with offset ({e})"),
            )
        })?),
        Some(other) => {
            return Err(EventError::new(
                "at",
                format!("must be an RFC 3339 string, found {}", json_kind(&other)),
            ))
        }
    };
    let data = match fields.data {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data,
        Some(other) => {
            return Err(EventError::new(
                "data",
                format!("must be a JSON object, found {}", json_kind(&other)),
            ))
        }
    };
    let size = serialized_size(&data);
    if size > MAX_DATA_BYTES {
        return Err(EventError::new(
            "data",
            format!("is {size} bytes serialized; the limit is {MAX_DATA_BYTES}"),
        ));
    }
    let event = Event {
        id,
        kind,
        member,
        at,
        data,
    };
    check_well_known(&event)?;
    Ok(event)
}

/// How many bytes `data` takes as compact JSON, counted without building the text.
fn serialized_size(data: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, data) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// An operator's manual points adjustment (`POST /v1/members/{id}/points`): an event
/// so it is idempotent by its id, journaled and replayed like any other.
pub const POINTS_ADJUSTMENT: &str = "rally.points";

/// Largest manual adjustment, as for one action (`engine` `MAX_AWARD`).
pub const MAX_ADJUSTMENT: i64 = 1_000_000_000;

/// Longest `reason` or `operator` of an adjustment: a note, not a document.
const MAX_NOTE_CHARS: usize = 256;

/// `rally.ticket.ack` and `rally.ticket.resolve` act on a ticket, not on a member
/// (SPEC §1): their `member` is optional.
pub fn is_ticket_command(kind: &str) -> bool {
    matches!(kind, "rally.ticket.ack" | "rally.ticket.resolve")
}

fn optional_string(value: Option<Value>, field: &str) -> Result<Option<String>, EventError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        value => required_string(value, field).map(Some),
    }
}

fn required_string(value: Option<Value>, field: &str) -> Result<String, EventError> {
    match value {
        None | Some(Value::Null) => Err(EventError::new(field, "is required")),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(EventError::new(
            field,
            format!("must be a string, found {}", json_kind(&other)),
        )),
    }
}

fn check_length(field: &str, text: &str, max: usize) -> Result<(), EventError> {
    let len = text.chars().count();
    if len == 0 {
        return Err(EventError::new(field, "must not be empty"));
    }
    if len > max {
        return Err(EventError::new(
            field,
            format!("is {len} characters long; the limit is {max}"),
        ));
    }
    Ok(())
}

fn check_no_control(field: &str, text: &str) -> Result<(), EventError> {
    match text.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(bad) => Err(EventError::new(
            field,
            format!("must not contain control characters (found {bad:?})"),
        )),
    }
}

fn check_type(kind: &str) -> Result<(), EventError> {
    if kind.is_empty() || kind.len() > 64 {
        return Err(EventError::new("type", "must be 1 to 64 characters"));
    }
    if let Some(bad) = kind
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-'))
    {
        return Err(EventError::new(
            "type",
            format!("{kind:?} contains {bad:?}; allowed are a-z, 0-9, '_', '.', '-'"),
        ));
    }
    if kind.starts_with("rally.") && !is_ticket_command(kind) && kind != POINTS_ADJUSTMENT {
        return Err(EventError::new(
            "type",
            format!("{kind:?} is reserved: types starting with \"rally.\" are Rally's own"),
        ));
    }
    Ok(())
}

/// The data rules of the well-known types, so their built-in effects cannot fail later.
fn check_well_known(event: &Event) -> Result<(), EventError> {
    match event.kind.as_str() {
        "join" | "profile" => {
            if let Some(tz) = event.data.get("timezone") {
                let name = tz.as_str().ok_or_else(|| {
                    EventError::new("data.timezone", "must be a string (an IANA time zone)")
                })?;
                if name.parse::<chrono_tz::Tz>().is_err() {
                    return Err(EventError::new(
                        "data.timezone",
                        format!("{name:?} is not an IANA time zone (e.g. \"Asia/Shanghai\")"),
                    ));
                }
            }
            if event.kind == "join" {
                if let Some(tags) = event.data.get("tags") {
                    let ok = tags
                        .as_array()
                        .is_some_and(|list| list.iter().all(Value::is_string));
                    if !ok {
                        return Err(EventError::new("data.tags", "must be a list of strings"));
                    }
                }
            }
        }
        "purchase" => {
            if let Some(amount) = event.data.get("amount") {
                crate::money::amount(amount).map_err(|e| EventError::new("data.amount", e))?;
            }
        }
        "feedback" => {
            if let Some(rating) = event.data.get("rating") {
                let ok = rating.as_i64().is_some_and(|r| (1..=5).contains(&r));
                if !ok {
                    return Err(EventError::new(
                        "data.rating",
                        "must be an integer from 1 to 5",
                    ));
                }
            }
        }
        POINTS_ADJUSTMENT => check_adjustment(&event.data)?,
        // A redemption (see `crate::rewards`) when it names a reward; a `redeem`
        // without one is an ordinary event.
        crate::rewards::REDEEM => match event.data.get("reward") {
            None => {}
            Some(Value::String(id)) if !id.is_empty() => {}
            Some(_) => {
                return Err(EventError::new(
                    "data.reward",
                    "must be a reward id (a non-empty string)",
                ))
            }
        },
        "rally.ticket.ack" | "rally.ticket.resolve" => {
            match event.data.get("ticket") {
                Some(Value::String(id)) if !id.is_empty() => {}
                _ => {
                    return Err(EventError::new(
                        "data.ticket",
                        "is required (a ticket id such as \"T-1\")",
                    ))
                }
            }
            for field in ["by", "note"] {
                if event.data.get(field).is_some_and(|v| !v.is_string()) {
                    return Err(EventError::new(
                        &format!("data.{field}"),
                        "must be a string",
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// `rally.points`: `data.amount` a non-zero whole number within
/// ±[`MAX_ADJUSTMENT`], `data.reason` and `data.operator` non-empty strings — an
/// adjustment nobody can explain later is what this event exists to prevent.
fn check_adjustment(data: &Map<String, Value>) -> Result<(), EventError> {
    let amount = data
        .get("amount")
        .ok_or_else(|| EventError::new("data.amount", "is required (a whole number of points)"))?;
    match amount.as_i64() {
        Some(0) => return Err(EventError::new("data.amount", "must not be 0")),
        Some(n) if n.abs() <= MAX_ADJUSTMENT => {}
        Some(n) => {
            return Err(EventError::new(
                "data.amount",
                format!("{n} is more than one adjustment may move (limit {MAX_ADJUSTMENT})"),
            ))
        }
        None => {
            return Err(EventError::new(
                "data.amount",
                format!("must be a whole number of points, found {amount}"),
            ))
        }
    }
    for field in ["reason", "operator"] {
        let name = format!("data.{field}");
        match data.get(field) {
            Some(Value::String(text)) => {
                check_length(&name, text.trim(), MAX_NOTE_CHARS)?;
                check_no_control(&name, text)?;
            }
            None | Some(Value::Null) => return Err(EventError::new(&name, "is required")),
            Some(other) => {
                return Err(EventError::new(
                    &name,
                    format!("must be a string, found {}", json_kind(other)),
                ))
            }
        }
    }
    Ok(())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Event, EventError> {
        parse_line(line, AtPolicy::Required)
    }

    /// A line read field by field gives what parsing it into a `Value` first gives,
    /// event or error, word for word: syntax errors (with their line and column),
    /// values that are not objects, unknown, repeated and mistyped fields.
    #[test]
    fn a_line_reads_as_the_same_event_or_error_as_its_parsed_value() {
        let lines = [
            r#"{"id":"e-1","type":"purchase","member":"m-1","at":"2026-11-11T10:00:00+08:00","data":{"amount":199.5,"order":"o-1"}}"#,
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00+08:00","id":"e-2"}"#,
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z","zz":1,"aa":2}"#,
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z","data":{"n":1e400}}"#,
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z""#,
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z"} x"#,
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z",}"#,
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z","x":[1,}"#,
            r#"{"id":"e-1" "type":"checkin"}"#,
            r#"{id:"e-1"}"#,
            r#"{"id":7,"type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z"}"#,
            r#"{"id":null,"type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z"}"#,
            r#"{"id":"e-1","type":"rally.ticket.ack","member":null,"at":"2026-11-11T10:00:00Z","data":{"ticket":1}}"#,
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":5}"#,
            r#"{"id":"e-1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z","data":[]}"#,
            r#"{"\u0069d":"e-\n1","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z"}"#,
            r#"["id","e-1"]"#,
            r#"[1,2"#,
            "42",
            "\"text\"",
            "null",
            "",
            "{",
        ];
        for line in lines {
            let through_value = serde_json::from_str::<Value>(line)
                .map_err(|e| EventError::new("event", format!("not valid JSON: {e}")))
                .and_then(|value| from_value(value, AtPolicy::Required));
            assert_eq!(parse(line), through_value, "{line}");
        }
    }

    #[test]
    fn a_well_formed_purchase_parses() {
        let e = parse(r#"{"id":"e-1","type":"purchase","member":"m-1","at":"2026-11-11T10:00:00+08:00","data":{"amount":199.0}}"#).unwrap();
        assert_eq!(e.kind, "purchase");
        assert_eq!(e.at_utc().to_rfc3339(), "2026-11-11T02:00:00+00:00");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                r#"{"type":"x","member":"m","at":"2026-01-01T00:00:00Z"}"#,
                "id",
            ),
            (
                r#"{"id":"","type":"x","member":"m","at":"2026-01-01T00:00:00Z"}"#,
                "id",
            ),
            (
                r#"{"id":"e","type":"Bad Type","member":"m","at":"2026-01-01T00:00:00Z"}"#,
                "type",
            ),
            (
                r#"{"id":"e","type":"rally.secret","member":"m","at":"2026-01-01T00:00:00Z"}"#,
                "type",
            ),
            (
                r#"{"id":"e","type":"x","member":"a\u0007b","at":"2026-01-01T00:00:00Z"}"#,
                "member",
            ),
            (r#"{"id":"e","type":"x","member":"m"}"#, "at"),
            (
                r#"{"id":"e","type":"x","member":"m","at":"2026-01-01 00:00"}"#,
                "at",
            ),
            (
                r#"{"id":"e","type":"x","member":"m","at":"2026-01-01T00:00:00Z","data":[1]}"#,
                "data",
            ),
            (
                r#"{"id":"e","type":"purchase","member":"m","at":"2026-01-01T00:00:00Z","data":{"amount":-1}}"#,
                "data.amount",
            ),
            (
                r#"{"id":"e","type":"profile","member":"m","at":"2026-01-01T00:00:00Z","data":{"timezone":"Mars/Base"}}"#,
                "data.timezone",
            ),
            (
                r#"{"id":"e","type":"feedback","member":"m","at":"2026-01-01T00:00:00Z","data":{"rating":9}}"#,
                "data.rating",
            ),
            (
                r#"{"id":"e","type":"rally.ticket.ack","member":"m","at":"2026-01-01T00:00:00Z"}"#,
                "data.ticket",
            ),
            (
                r#"{"id":"e","type":"x","member":"m","at":"2026-01-01T00:00:00Z","extra":1}"#,
                "extra",
            ),
            (r#"[1,2]"#, "event"),
            (r#"{"id":"#, "event"),
        ];
        for (line, field) in cases {
            let err = parse(line).expect_err(line);
            assert_eq!(err.field, field, "{line}: {err}");
        }
    }

    #[test]
    fn a_ticket_command_may_leave_member_out() {
        let e = parse(r#"{"id":"e","type":"rally.ticket.ack","at":"2026-01-01T00:00:00Z","data":{"ticket":"T-1"}}"#).unwrap();
        assert_eq!(e.member, None);
    }

    #[test]
    fn a_member_event_without_member_is_rejected_naming_it() {
        let err = parse(r#"{"id":"e","type":"checkin","at":"2026-01-01T00:00:00Z"}"#).unwrap_err();
        assert_eq!(err.to_string(), "member: is required");
    }

    #[test]
    fn an_id_with_a_line_break_is_rejected_naming_the_id() {
        let err = parse(
            r#"{"id":"e-1\nINFO forged line","type":"x","member":"m","at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "id");
        assert!(err.message.contains("control characters"), "{err}");
    }

    #[test]
    fn at_may_be_missing_where_the_caller_allows_it() {
        let e = parse_line(r#"{"id":"e","type":"x","member":"m"}"#, AtPolicy::Optional).unwrap();
        assert_eq!(e.at, None);
    }

    #[test]
    fn a_purchase_amount_with_more_than_four_decimal_places_is_rejected_naming_the_field() {
        let line = r#"{"id":"e","type":"purchase","member":"m","at":"2026-01-01T00:00:00Z","data":{"amount":0.00001}}"#;
        let err = parse(line).unwrap_err();
        assert_eq!(err.field, "data.amount");
        assert!(err.message.contains("decimal places"), "{err}");
    }

    #[test]
    fn a_purchase_amount_over_ten_billion_is_rejected_naming_the_field() {
        let line = r#"{"id":"e","type":"purchase","member":"m","at":"2026-01-01T00:00:00Z","data":{"amount":1e12}}"#;
        let err = parse(line).unwrap_err();
        assert_eq!(err.field, "data.amount");
        assert!(err.message.contains("too large"), "{err}");
    }

    #[test]
    fn oversized_data_is_rejected() {
        let big = "x".repeat(MAX_DATA_BYTES);
        let line = format!(
            r#"{{"id":"e","type":"x","member":"m","at":"2026-01-01T00:00:00Z","data":{{"t":"{big}"}}}}"#
        );
        assert_eq!(parse(&line).unwrap_err().field, "data");
    }
}
