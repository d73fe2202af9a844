//! `POST /v1/events`: read the body, validate every event, hand the valid ones to the
//! writer, and answer one result per event, in order, once they are durable.
//!
//! A body is one of (decided by content, not by `Content-Type`, which clients get
//! wrong): one JSON event object, a JSON array of events, or NDJSON (one event per
//! line; blank lines are skipped). Only a body that is none of these is refused whole
//! (400); a bad event is rejected on its own and never stops the others.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, FixedOffset};
use serde_json::{json, Value};
use thiserror::Error;

use super::api::{error, App};
use super::telemetry::EventStatus;
use super::writer::Ack;
use crate::event::{self, AtPolicy, Event};

/// Most events in one request: bounds the work one request can queue and the size of
/// one answer. Larger batches are refused with 413; split them.
pub const MAX_BATCH: usize = 1000;

/// Largest request body: [`MAX_BATCH`] events of typical size fit many times over,
/// while one request cannot make the daemon buffer without limit.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// One event of a request, after validation.
#[derive(Debug)]
pub enum Item {
    Valid(Event),
    /// `id` is the event's id when it had a readable one.
    Rejected {
        id: Option<String>,
        error: String,
    },
}

/// Why a whole body was refused.
#[derive(Debug, Error, PartialEq)]
pub enum BodyError {
    #[error("the body is empty: send one event, a JSON array of events, or NDJSON")]
    Empty,
    #[error("the body is neither JSON nor NDJSON ({0})")]
    Unreadable(String),
    #[error("a JSON {0} is not an event: send one event object, an array of them, or NDJSON")]
    NotEvents(&'static str),
    #[error("{0} events in one request; the limit is {MAX_BATCH}: split the batch")]
    TooMany(usize),
}

impl BodyError {
    fn status(&self) -> StatusCode {
        match self {
            BodyError::TooMany(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Splits and validates a request body. Events without `at` get `received`.
pub fn parse_body(body: &[u8], received: DateTime<FixedOffset>) -> Result<Vec<Item>, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty);
    }
    let values: Vec<Result<Value, String>> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.into_iter().map(Ok).collect(),
        Ok(object @ Value::Object(_)) => vec![Ok(object)],
        Ok(Value::Null) => return Err(BodyError::NotEvents("null")),
        Ok(Value::Bool(_)) => return Err(BodyError::NotEvents("boolean")),
        Ok(Value::Number(_)) => return Err(BodyError::NotEvents("number")),
        Ok(Value::String(_)) => return Err(BodyError::NotEvents("string")),
        Err(json_error) => {
            ndjson(body).ok_or_else(|| BodyError::Unreadable(format!("as JSON: {json_error}")))?
        }
    };
    if values.len() > MAX_BATCH {
        return Err(BodyError::TooMany(values.len()));
    }
    Ok(values
        .into_iter()
        .map(|value| validate(value, received))
        .collect())
}

/// The lines of an NDJSON body, each parsed or with its error; `None` when the body
/// is not NDJSON at all: one line only (that is a broken JSON document), or no line
/// that parses. A line that is not UTF-8 is one malformed line like any other: it is
/// rejected with its number and the other lines still count.
fn ndjson(body: &[u8]) -> Option<Vec<Result<Value, String>>> {
    let lines: Vec<(usize, &[u8])> = body
        .split(|&byte| byte == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    if lines.len() < 2 {
        return None;
    }
    let values: Vec<Result<Value, String>> = lines
        .into_iter()
        .map(|(index, line)| ndjson_line(index + 1, line))
        .collect();
    values.iter().any(Result::is_ok).then_some(values)
}

fn ndjson_line(number: usize, line: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(line).map_err(|e| {
        format!(
            "event: line {number} is not valid UTF-8 (byte {})",
            e.valid_up_to() + 1
        )
    })?;
    serde_json::from_str(text).map_err(|e| format!("event: line {number} is not valid JSON: {e}"))
}

fn validate(value: Result<Value, String>, received: DateTime<FixedOffset>) -> Item {
    let value = match value {
        Ok(value) => value,
        Err(error) => return Item::Rejected { id: None, error },
    };
    let id = value.get("id").and_then(Value::as_str).map(str::to_string);
    match event::from_value(value, AtPolicy::Optional) {
        Ok(mut event) => {
            event.at.get_or_insert(received);
            Item::Valid(event)
        }
        Err(e) => Item::Rejected {
            id,
            error: e.to_string(),
        },
    }
}

pub async fn post_events(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    // An event without `at` happened when it was received.
    let items = match parse_body(&body, app.clock.now().fixed_offset()) {
        Ok(items) => items,
        Err(e) => return error(e.status(), e.to_string()),
    };
    if !app.limiter.try_take(items.len()) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "over the rate limit of {} events per second (RALLY_RATE_LIMIT): retry later",
                app.limiter.rate()
            ),
        );
    }
    // Events go to the writer; their places keep only the id for the answer.
    let mut valid = Vec::new();
    let places: Vec<Place> = items
        .into_iter()
        .map(|item| match item {
            Item::Valid(event) => {
                let id = event.id.clone();
                valid.push(event);
                Place::Sent(id)
            }
            Item::Rejected { id, error } => Place::Rejected { id, error },
        })
        .collect();
    app.metrics
        .events(EventStatus::Rejected, places.len() - valid.len());
    let acks = if valid.is_empty() {
        Vec::new()
    } else {
        match app.writer.apply(valid).await {
            Ok(acks) => acks,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    };
    Json(json!({ "results": results(places, acks) })).into_response()
}

/// Where an event of the request stands while the valid ones are with the writer.
enum Place {
    Sent(String),
    Rejected { id: Option<String>, error: String },
}

/// One result per event, in order: the writer's acks fill the sent events' places.
fn results(places: Vec<Place>, acks: Vec<Ack>) -> Vec<Value> {
    let mut acks = acks.into_iter();
    places
        .into_iter()
        .map(|place| match place {
            Place::Sent(id) => {
                let status = match acks.next() {
                    Some(Ack::Accepted) => "accepted",
                    Some(Ack::Duplicate) => "duplicate",
                    // Valid, but refused by the engine (an ack of an unknown ticket).
                    Some(Ack::Rejected(error)) => {
                        return json!({ "id": id, "status": "rejected", "error": error })
                    }
                    // The writer answers every event it was sent, or fails the request.
                    None => "unavailable",
                };
                json!({ "id": id, "status": status })
            }
            Place::Rejected { id, error } => {
                json!({ "id": id, "status": "rejected", "error": error })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-11T10:00:00+08:00").unwrap()
    }

    fn parse(body: &str) -> Result<Vec<Item>, BodyError> {
        parse_body(body.as_bytes(), received())
    }

    fn ids(items: &[Item]) -> Vec<Option<String>> {
        items
            .iter()
            .map(|item| match item {
                Item::Valid(e) => Some(e.id.clone()),
                Item::Rejected { id, .. } => id.clone(),
            })
            .collect()
    }

    #[test]
    fn one_object_is_one_event() {
        let items = parse(r#"{"id":"e-1","type":"checkin","member":"m-1"}"#).unwrap();
        assert_eq!(ids(&items), [Some("e-1".to_string())]);
    }

    #[test]
    fn an_array_is_a_batch_in_order() {
        let items = parse(
            r#"[{"id":"a","type":"checkin","member":"m"},{"id":"b","type":"checkin","member":"m"}]"#,
        )
        .unwrap();
        assert_eq!(ids(&items), [Some("a".into()), Some("b".into())]);
    }

    #[test]
    fn ndjson_is_one_event_per_line_skipping_blank_lines() {
        let body = "{\"id\":\"a\",\"type\":\"checkin\",\"member\":\"m\"}\n\n{\"id\":\"b\",\"type\":\"checkin\",\"member\":\"m\"}\n";
        assert_eq!(
            ids(&parse(body).unwrap()),
            [Some("a".into()), Some("b".into())]
        );
    }

    #[test]
    fn a_broken_ndjson_line_is_rejected_alone_without_an_id() {
        let body = "{\"id\":\"a\",\"type\":\"checkin\",\"member\":\"m\"}\n{\"id\":\n";
        let items = parse(body).unwrap();
        assert_eq!(ids(&items), [Some("a".into()), None]);
        assert!(matches!(&items[1], Item::Rejected { error, .. } if error.contains("line 2")));
    }

    #[test]
    fn an_invalid_event_is_rejected_with_its_id_and_the_field() {
        let items = parse(r#"[{"id":"bad","type":"Bad Type","member":"m"}]"#).unwrap();
        match &items[0] {
            Item::Rejected { id, error } => {
                assert_eq!(id.as_deref(), Some("bad"));
                assert!(error.starts_with("type:"), "{error}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_at_is_the_receipt_time() {
        let items = parse(r#"{"id":"e","type":"checkin","member":"m"}"#).unwrap();
        assert!(matches!(&items[0], Item::Valid(e) if e.at == Some(received())));
    }

    #[test]
    fn unreadable_bodies_are_refused_whole() {
        assert_eq!(parse("  \n").unwrap_err(), BodyError::Empty);
        assert!(matches!(parse("{\"id\":"), Err(BodyError::Unreadable(_))));
        assert!(matches!(
            parse("hello\nworld"),
            Err(BodyError::Unreadable(_))
        ));
        assert_eq!(parse("42").unwrap_err(), BodyError::NotEvents("number"));
        let not_utf8 = parse_body(b"\xff\xfe\n\xff", received());
        assert!(matches!(not_utf8, Err(BodyError::Unreadable(_))));
    }

    #[test]
    fn an_ndjson_line_that_is_not_utf8_is_rejected_alone_with_its_number() {
        let body = b"{\"id\":\"a\",\"type\":\"checkin\",\"member\":\"m\"}\n{\"id\":\"b\xff\"}\n";
        let items = parse_body(body, received()).unwrap();
        assert_eq!(ids(&items), [Some("a".into()), None]);
        assert!(
            matches!(&items[1], Item::Rejected { error, .. } if error == "event: line 2 is not valid UTF-8 (byte 9)"),
            "{items:?}"
        );
    }

    #[test]
    fn a_batch_over_the_limit_is_too_large() {
        let one = r#"{"id":"e","type":"checkin","member":"m"}"#;
        let body = format!("[{}]", vec![one; MAX_BATCH + 1].join(","));
        let err = parse(&body).unwrap_err();
        assert_eq!(err, BodyError::TooMany(MAX_BATCH + 1));
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
