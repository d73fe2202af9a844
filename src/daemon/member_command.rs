//! What every API command on one member shares (`POST /v1/members/{id}/points`,
//! `/redeem`): the body read within its limits and the rate limit, turned into an
//! event whose id is the body's `key`, refused for a member Rally does not know (a
//! command never creates one), and applied through the one writer like any event, so
//! it is idempotent by its key, journaled, replayed and durable before the answer.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, FixedOffset};

use super::api::{error, read, App};
use super::writer::Ack;
use crate::event::Event;
use serde_json::{Map, Value};

/// A command applied: its key (the event's id) and whether it was new.
pub struct Applied {
    pub key: String,
    pub status: &'static str,
}

/// Applies the command `body` builds for member `id` (`what` names it in the 404:
/// "a redemption"). `Err` is the answer to give instead: 400 for a body `event`
/// refuses, 404, 422 for a step that refused it, 429, 503.
pub async fn apply(
    app: &App,
    id: &str,
    body: Result<Bytes, BytesRejection>,
    what: &str,
    event: impl FnOnce(&str, &[u8], DateTime<FixedOffset>) -> Result<Event, String>,
) -> Result<Applied, Response> {
    let body = body.map_err(|rejection| error(rejection.status(), rejection.body_text()))?;
    if !app.limiter.try_take(1) {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            "over the rate limit (RALLY_RATE_LIMIT): retry later with the same key",
        ));
    }
    let event = event(id, &body, app.clock.now().fixed_offset())
        .map_err(|message| error(StatusCode::BAD_REQUEST, message))?;
    let known = read(app, {
        let id = id.to_string();
        move |store| store.member(&id)
    })
    .await?;
    if known.is_none() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no member {id:?}: {what} never creates a member"),
        ));
    }
    let key = event.id.clone();
    let ack = match app.writer.apply(vec![event]).await {
        Ok(acks) => acks.into_iter().next(),
        Err(e) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    };
    let status = match ack {
        Some(Ack::Accepted) => "accepted",
        Some(Ack::Duplicate) => "duplicate",
        Some(Ack::Rejected(message)) => {
            return Err(error(StatusCode::UNPROCESSABLE_ENTITY, message))
        }
        None => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the writer did not answer",
            ))
        }
    };
    Ok(Applied { key, status })
}

/// A command's body: a JSON object with only `fields`, one of them `key` (the
/// idempotency key; `repeat` says what the same key twice does, for the message when
/// it is missing). The object and its key, or a message naming the field at fault.
pub fn body_object(
    body: &[u8],
    fields: &[&str],
    repeat: &str,
) -> Result<(Map<String, Value>, Value), String> {
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(format!(
                "body: must be a JSON object {{{}}}",
                fields.join(", ")
            ))
        }
        Err(e) => return Err(format!("body: is not valid JSON: {e}")),
    };
    if let Some(unknown) = object.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(format!(
            "{unknown}: unknown field (expected {})",
            fields.join(", ")
        ));
    }
    let Some(key) = object.get("key").cloned() else {
        return Err(format!(
            "key: is required (the idempotency key: the same key twice {repeat})"
        ));
    };
    Ok((object, key))
}
