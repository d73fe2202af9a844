//! `POST /v1/members/{id}/redeem` and `GET /v1/rewards`.
//!
//! A redemption by API is a `redeem` event whose id is the body's `key` and whose
//! `data.reward` is the body's `reward`: it goes through the one writer like any
//! event, so it is idempotent by its key, journaled, replayed, and judged against the
//! stock every earlier step left — two requests for the last unit are two steps, one
//! after the other, and the second finds none. The answer is read once the step is
//! durable, from the redemption it recorded.
//!
//! Answers: 200 `{"status": "accepted" | "duplicate", "member", "balance",
//! "redemption"}` for a granted redemption (`redemption.code` when the reward has a
//! codes pool); 422 with the same body plus `"error": reason` for a refused one
//! (`out of stock`, `limit reached: …`, `insufficient points: balance 120, cost
//! 300`); 400 naming the field for a bad body; 404 for an unknown member; 409 for a
//! key already used by an event that was no redemption.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api::{error, read, App};
use crate::event::{self, AtPolicy, Event};
use crate::rewards::{Verdict, REDEEM};

/// The body's fields; anything else is refused, so a typo (`rewrad`) is not lost.
const FIELDS: [&str; 2] = ["key", "reward"];

pub async fn post_redeem(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match super::member_command::apply(&app, &id, body, "a redemption", redeem_event).await {
        Ok(applied) => answer(&app, id, applied.key, applied.status).await,
        Err(response) => response,
    }
}

/// The member's balance and the recorded redemption, read once it is durable.
async fn answer(app: &App, id: String, key: String, status: &str) -> Response {
    let found = read(app, {
        let (id, key) = (id.clone(), key.clone());
        move |store| redemption_outcome(store, &id, &key)
    })
    .await;
    match found {
        Ok((balance, redemption)) => redemption_answer(&id, &key, status, balance, redemption),
        Err(response) => response,
    }
}

/// What a redemption by API is answered from: the member's balance, and the
/// redemption recorded under `key`.
pub(crate) fn redemption_outcome(
    store: &crate::store::Store,
    id: &str,
    key: &str,
) -> Result<(Option<i64>, Option<crate::rewards::Redemption>), crate::store::StoreError> {
    let balance = store.member(id)?.map(|m| m.points);
    Ok((balance, crate::runner::rewards::redemption(store, key)?))
}

/// The answer to a redemption by API: the member's balance and the redemption
/// recorded under `key` (the single process and a cluster node alike).
pub(crate) fn redemption_answer(
    id: &str,
    key: &str,
    status: &str,
    balance: Option<i64>,
    redemption: Option<crate::rewards::Redemption>,
) -> Response {
    let Some(redemption) = redemption.filter(|r| r.member == id) else {
        return error(
            StatusCode::CONFLICT,
            format!(
                "key {key:?} was already used, and no redemption of {id:?} is recorded \
                 under it: use a new key for a new redemption"
            ),
        );
    };
    let mut body = json!({
        "status": status,
        "member": id,
        "balance": balance,
        "redemption": redemption,
    });
    match &redemption.verdict {
        Verdict::Granted { .. } => Json(body).into_response(),
        Verdict::Refused { reason } => {
            body["error"] = Value::String(reason.clone());
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}

/// The `redeem` event for a body, or a message naming the body's field at fault.
pub(crate) fn redeem_event(
    member: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Result<Event, String> {
    let (object, key) = super::member_command::body_object(body, &FIELDS, "redeems once")?;
    let Some(reward) = object.get("reward") else {
        return Err("reward: is required (the id of a reward of the catalog)".into());
    };
    let value = json!({
        "id": key,
        "type": REDEEM,
        "member": member,
        "at": now.to_rfc3339(),
        "data": { "reward": reward },
    });
    event::from_value(value, AtPolicy::Required).map_err(|e| {
        let field = match e.field.as_str() {
            "id" => "key",
            other => other.strip_prefix("data.").unwrap_or(other),
        };
        format!("{field}: {}", e.message)
    })
}

/// Every reward of the running rule set: cost, stock, issued, left, codes left.
pub async fn list(State(app): State<Arc<App>>) -> Response {
    let set = app.reloader.rules();
    let records = match read(&app, crate::runner::rewards::load).await {
        Ok(records) => records,
        Err(response) => return response,
    };
    Json(json!({ "rewards": crate::rewards::catalog(&set, &records) })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Event, String> {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-11T10:00:00+08:00").unwrap();
        redeem_event("m-1", body.as_bytes(), now)
    }

    #[test]
    fn a_body_becomes_a_redeem_event_keyed_by_its_key() {
        let event = parse(r#"{"key":"r-1","reward":"gift50"}"#).unwrap();
        assert_eq!(event.id, "r-1");
        assert_eq!(event.kind, "redeem");
        assert_eq!(event.member.as_deref(), Some("m-1"));
        assert_eq!(event.data["reward"], "gift50");
    }

    #[test]
    fn a_bad_body_is_refused_naming_the_field() {
        for (body, field) in [
            (r#"{"reward":"gift50"}"#, "key:"),
            (r#"{"key":"k"}"#, "reward:"),
            (r#"{"key":"k","reward":5}"#, "reward:"),
            (r#"{"key":"k","reward":""}"#, "reward:"),
            (r#"{"key":"k","rewrad":"gift50"}"#, "rewrad:"),
            ("[1]", "body:"),
        ] {
            let message = parse(body).unwrap_err();
            assert!(message.starts_with(field), "{body}: {message}");
        }
    }
}
