//! `POST /v1/members/{id}/points`: an operator's manual adjustment.
//!
//! The body becomes a `rally.points` event whose id is the body's `key`, and goes
//! through the writer like any event: so the adjustment is idempotent by its key,
//! durable before the answer, journaled, and replayed. The engine
//! ([`crate::engine::refuse_adjustment`]) refuses one that would take the balance
//! below zero; this handler refuses one for a member Rally does not know (an
//! adjustment never creates a member).
//!
//! Answers: 200 `{"status": "accepted" | "duplicate", "member", "balance", "entry"}`
//! (`entry`: the adjustment's ledger entry — for a duplicate, the original one);
//! 400 naming the field for a bad body; 404 for an unknown member; 409 for a key
//! already used under which this member's ledger holds no adjustment (another
//! event's id, or an entry past `settings.retention.history`); 422 for a refusal.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map};

use super::api::{error, read, App};
use crate::event::{self, AtPolicy, Event, POINTS_ADJUSTMENT};

/// The body's fields; anything else is refused, so a typo (`ammount`) is not lost.
const FIELDS: [&str; 4] = ["key", "amount", "reason", "operator"];

pub async fn post_points(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match super::member_command::apply(&app, &id, body, "an adjustment", adjustment_event).await {
        Ok(applied) => answer(&app, id, applied.key, applied.status).await,
        Err(response) => response,
    }
}

/// The member's balance and the adjustment's ledger entry, read once it is durable.
async fn answer(app: &App, id: String, key: String, status: &str) -> Response {
    let found = read(app, {
        let (id, key) = (id.clone(), key.clone());
        move |store| adjustment_outcome(store, &id, &key)
    })
    .await;
    match found {
        Ok((balance, entry)) => adjustment_answer(&id, &key, status, balance, entry),
        Err(response) => response,
    }
}

/// What an adjustment by API is answered from: the member's balance, and the ledger
/// entry of the event `key`.
pub(crate) fn adjustment_outcome(
    store: &crate::store::Store,
    id: &str,
    key: &str,
) -> Result<(Option<i64>, Option<crate::engine::LedgerEntry>), crate::store::StoreError> {
    let balance = store.member(id)?.map(|m| m.points);
    let entry = store
        .ledger(id)?
        .into_iter()
        .rev()
        .find(|e| e.event.as_deref() == Some(key));
    Ok((balance, entry))
}

/// The answer to an adjustment by API: the member's balance and the ledger entry of
/// the event `key` (the single process and a cluster node alike).
pub(crate) fn adjustment_answer(
    id: &str,
    key: &str,
    status: &str,
    balance: Option<i64>,
    entry: Option<crate::engine::LedgerEntry>,
) -> Response {
    let is_adjustment = entry
        .as_ref()
        .is_some_and(|e| e.rule == crate::engine::ADJUSTMENT_RULE);
    if status == "duplicate" && !is_adjustment {
        return error(
            StatusCode::CONFLICT,
            format!(
                "key {key:?} was already used, and no adjustment of {id:?} is recorded \
                 under it (another event's id, or an entry older than \
                 settings.retention.history): use a new key for a new adjustment"
            ),
        );
    }
    Json(json!({ "status": status, "member": id, "balance": balance, "entry": entry }))
        .into_response()
}

/// The `rally.points` event for a body, or a message naming the body's field at fault.
pub(crate) fn adjustment_event(
    member: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Result<Event, String> {
    let (object, key) = super::member_command::body_object(body, &FIELDS, "adjusts once")?;
    let mut data = Map::new();
    for field in ["amount", "reason", "operator"] {
        if let Some(value) = object.get(field) {
            data.insert(field.to_string(), value.clone());
        }
    }
    let value = json!({
        "id": key,
        "type": POINTS_ADJUSTMENT,
        "member": member,
        "at": now.to_rfc3339(),
        "data": data,
    });
    event::from_value(value, AtPolicy::Required).map_err(|e| {
        // The event's field names, in the body's words.
        let field = match e.field.as_str() {
            "id" => "key",
            other => other.strip_prefix("data.").unwrap_or(other),
        };
        format!("{field}: {}", e.message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Event, String> {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-11T10:00:00+08:00").unwrap();
        adjustment_event("m-1", body.as_bytes(), now)
    }

    #[test]
    fn a_body_becomes_a_rally_points_event_keyed_by_its_key() {
        let event = parse(r#"{"amount":-50,"reason":"goodwill","operator":"ana","key":"adj-123"}"#)
            .unwrap();
        assert_eq!(event.id, "adj-123");
        assert_eq!(event.kind, "rally.points");
        assert_eq!(event.member.as_deref(), Some("m-1"));
        assert_eq!(event.data["amount"], -50);
    }

    #[test]
    fn a_bad_body_is_refused_naming_the_field() {
        for (body, field) in [
            (r#"{"amount":5,"reason":"r","operator":"o"}"#, "key:"),
            (r#"{"key":"k","reason":"r","operator":"o"}"#, "amount:"),
            (
                r#"{"key":"k","amount":"5","reason":"r","operator":"o"}"#,
                "amount:",
            ),
            (r#"{"key":"k","amount":5,"operator":"o"}"#, "reason:"),
            (
                r#"{"key":"k","amount":5,"reason":"r","operator":""}"#,
                "operator:",
            ),
            (
                r#"{"key":"","amount":5,"reason":"r","operator":"o"}"#,
                "key:",
            ),
            (r#"{"key":"k","ammount":5}"#, "ammount:"),
            ("[1]", "body:"),
        ] {
            let message = parse(body).unwrap_err();
            assert!(message.starts_with(field), "{body}: {message}");
        }
    }
}
