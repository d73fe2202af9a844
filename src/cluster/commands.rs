//! `POST /v1/members/{id}/redeem`, `POST /v1/members/{id}/points` and
//! `POST /v1/tickets/{id}/ack|resolve` on a cluster node. The request becomes the very
//! event the single process's command makes (a redemption's or adjustment's id is the
//! body's `key`), published to the partition of its member or ticket; the answer waits
//! until the partition's owner has applied it and is read from the owner's store — so
//! a cluster answers these commands as the single process does, read-your-write, in
//! the same shapes (`daemon/rewards.rs`, `daemon/adjust.rs`, `daemon/tickets.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::apply::RECEIVED_HEADER;
use super::http::{answer_here, ask_owner, error, read_here, segment};
use super::partition::Partition;
use super::Node;
use crate::clock::{Clock, SystemClock};
use crate::daemon::{adjust, rewards};
use crate::event::Event;

/// How long an answer waits for the owner to apply the command.
const APPLIED_WITHIN: Duration = Duration::from_secs(10);

/// What a command is: the event its body makes, and its answer.
#[derive(Clone, Copy)]
enum Command {
    Redemption,
    Adjustment,
}

impl Command {
    /// The single process's event for the body, or what is wrong with the body.
    fn event(self, id: &str, body: &[u8], now: DateTime<FixedOffset>) -> Result<Event, String> {
        match self {
            Command::Redemption => rewards::redeem_event(id, body, now),
            Command::Adjustment => adjust::adjustment_event(id, body, now),
        }
    }

    /// What it is called in a 404.
    fn what(self) -> &'static str {
        match self {
            Command::Redemption => "a redemption",
            Command::Adjustment => "an adjustment",
        }
    }
}

/// Where a command stands on its partition's owner: what its answer is read from.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Outcome {
    /// The member exists.
    member: bool,
    /// The owner has applied the event (or refused it in its step).
    applied: bool,
    balance: Option<i64>,
    redemption: Option<crate::rewards::Redemption>,
    entry: Option<crate::engine::LedgerEntry>,
    /// Why its step refused it, while the owner remembers.
    refused: Option<String>,
}

pub(super) async fn redeem(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    command(&node, &id, body, Command::Redemption).await
}

pub(super) async fn points(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    command(&node, &id, body, Command::Adjustment).await
}

/// `GET /v1/cluster/members/{id}/commands/{key}`: the command's outcome as this node,
/// its member's owner, has it; 503 from any other node.
pub(super) async fn outcome(
    State(node): State<Arc<Node>>,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    answer_here(outcome_here(&node, &id, &key).await, || {
        format!("the partition of {id:?} is not applied here now")
    })
}

async fn command(
    node: &Arc<Node>,
    id: &str,
    body: Result<Bytes, BytesRejection>,
    command: Command,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let received = SystemClock.now();
    let event = match command.event(id, &body, received.fixed_offset()) {
        Ok(event) => event,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let key = event.id.clone();
    let before = match outcome_of(node, id, &key).await {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    if !before.member {
        let what = command.what();
        return error(
            StatusCode::NOT_FOUND,
            format!("no member {id:?}: {what} never creates a member"),
        );
    }
    let status = if before.applied {
        "duplicate"
    } else {
        let partition = Partition::of(id, node.settings.partitions);
        match publish(node, partition, &event, received).await {
            Ok(true) => "duplicate",
            Ok(false) => "accepted",
            Err(response) => return response,
        }
    };
    // Read-your-write: the answer is the owner's, once it has applied the event.
    let deadline = Instant::now() + APPLIED_WITHIN;
    let mut outcome = before;
    while !outcome.applied {
        if Instant::now() >= deadline {
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the command is in the stream ({status}) but its partition's owner has not \
                     applied it within {} s: retry with the same key for its answer",
                    APPLIED_WITHIN.as_secs()
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        outcome = match outcome_of(node, id, &key).await {
            Ok(outcome) => outcome,
            // A partition moving: its next owner applies it; keep asking.
            Err(_) => continue,
        };
    }
    if let Some(why) = outcome.refused {
        return error(StatusCode::UNPROCESSABLE_ENTITY, why);
    }
    match command {
        Command::Redemption => {
            rewards::redemption_answer(id, &key, status, outcome.balance, outcome.redemption)
        }
        Command::Adjustment => {
            adjust::adjustment_answer(id, &key, status, outcome.balance, outcome.entry)
        }
    }
}

/// Publishes the command's event to `partition`; whether JetStream found it a
/// duplicate.
async fn publish(
    node: &Node,
    partition: Partition,
    event: &Event,
    received: DateTime<chrono::Utc>,
) -> Result<bool, Response> {
    let subject = partition.subject();
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.id.as_str());
    let stamp = crate::member::rfc3339(received);
    headers.insert(RECEIVED_HEADER, stamp.as_str());
    let unavailable = |e: String| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("JetStream did not acknowledge the command ({e}): retry with the same key"),
        )
    };
    let ack = node
        .jetstream
        .publish_with_headers(subject, headers, event.to_json().to_string().into())
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let ack = ack.await.map_err(|e| unavailable(e.to_string()))?;
    Ok(ack.duplicate)
}

/// The command's outcome from its member's owner: this node, or another asked over
/// HTTP.
async fn outcome_of(node: &Arc<Node>, id: &str, key: &str) -> Result<Outcome, Response> {
    if let Some(outcome) = outcome_here(node, id, key).await {
        return outcome;
    }
    let partition = Partition::of(id, node.settings.partitions);
    ask_owner(
        node,
        partition,
        &format!(
            "/v1/cluster/members/{}/commands/{}",
            segment(id),
            segment(key)
        ),
    )
    .await
}

/// The command's outcome from the member's partition store, if this node applies it
/// under a lease and has caught up; `None` otherwise.
async fn outcome_here(node: &Node, id: &str, key: &str) -> Option<Result<Outcome, Response>> {
    let partition = Partition::of(id, node.settings.partitions);
    read_here(node, partition, |progress| {
        let refused = progress.refusal(key);
        let store = Arc::clone(&progress.store);
        let (id, key) = (id.to_string(), key.to_string());
        move || {
            let (balance, redemption) = rewards::redemption_outcome(&store, &id, &key)?;
            let (_, entry) = adjust::adjustment_outcome(&store, &id, &key)?;
            Ok(Outcome {
                member: balance.is_some(),
                applied: store.seen(&key)? || refused.is_some(),
                balance,
                redemption,
                entry,
                refused,
            })
        }
    })
    .await
}

pub(super) async fn ticket_ack(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    ticket_command(&node, &id, false, body).await
}

pub(super) async fn ticket_resolve(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    ticket_command(&node, &id, true, body).await
}

/// Where a ticket command stands on the ticket's owner.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct TicketOutcome {
    ticket: Option<crate::tickets::Ticket>,
    /// The command's event was applied (or refused by its step).
    applied: bool,
    refused: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct TicketQuery {
    /// The command's event id.
    event: String,
}

/// `GET /v1/cluster/partitions/{n}/tickets/{id}?event=`: the ticket and the command's
/// outcome as this node, the partition's owner, has them; 503 from any other node.
pub(super) async fn ticket_outcome(
    State(node): State<Arc<Node>>,
    Path((partition, id)): Path<(u32, String)>,
    axum::extract::Query(query): axum::extract::Query<TicketQuery>,
) -> Response {
    let found = ticket_outcome_here(&node, Partition(partition), &id, &query.event).await;
    answer_here(found, || {
        format!("partition {partition} is not applied here now")
    })
}

/// Acknowledges or resolves ticket `id`, as a `rally.ticket.*` event published to the
/// partition holding it; answered with the ticket once its owner has applied it, 404
/// for a ticket that does not exist, 409 for a change the ticket refuses.
async fn ticket_command(
    node: &Arc<Node>,
    id: &str,
    resolve: bool,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let handling = match crate::daemon::tickets::Handling::from_request(body) {
        Ok(handling) => handling,
        Err((status, message)) => return error(status, message),
    };
    let no_such = || error(StatusCode::NOT_FOUND, format!("no ticket {id:?}"));
    let partition = match super::http::holder_of_ticket(node, id).await {
        Ok(partition) => partition,
        Err(super::http::Route::Rejected(_)) => return no_such(),
        Err(super::http::Route::Unavailable(e)) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, format!("NATS: {e}"))
        }
    };
    let received = SystemClock.now();
    // A command by API has no key: each is its own event, as each request is its own
    // command in the single process.
    let kind = if resolve { "resolve" } else { "ack" };
    let event_id = format!(
        "api.ticket.{kind}.{id}.{}.{}",
        node.name,
        received.timestamp_nanos_opt().unwrap_or_default()
    );
    let before = match ticket_outcome_of(node, partition, id, &event_id).await {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    if before.ticket.is_none() {
        return no_such();
    }
    let mut data = serde_json::Map::new();
    data.insert("ticket".into(), id.into());
    if let Some(by) = handling.by {
        data.insert("by".into(), by.into());
    }
    if let Some(note) = handling.note {
        data.insert("note".into(), note.into());
    }
    let value = serde_json::json!({
        "id": event_id,
        "type": format!("rally.ticket.{kind}"),
        "at": crate::member::rfc3339(received),
        "data": data,
    });
    let event = match crate::event::from_value(value, crate::event::AtPolicy::Required) {
        Ok(event) => event,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{}: {}", e.field, e.message),
            )
        }
    };
    if let Err(response) = publish(node, partition, &event, received).await {
        return response;
    }
    let deadline = Instant::now() + APPLIED_WITHIN;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(outcome) = ticket_outcome_of(node, partition, id, &event_id).await {
            if let Some(why) = outcome.refused {
                return error(StatusCode::CONFLICT, why);
            }
            if outcome.applied {
                return match outcome.ticket {
                    Some(ticket) => Json(ticket).into_response(),
                    None => no_such(),
                };
            }
        }
        if Instant::now() >= deadline {
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the command is in the stream but the ticket's owner has not applied it \
                     within {} s: read the ticket with GET /v1/tickets",
                    APPLIED_WITHIN.as_secs()
                ),
            );
        }
    }
}

/// The ticket command's outcome from the ticket's owner: this node, or another.
async fn ticket_outcome_of(
    node: &Arc<Node>,
    partition: Partition,
    id: &str,
    event: &str,
) -> Result<TicketOutcome, Response> {
    if let Some(outcome) = ticket_outcome_here(node, partition, id, event).await {
        return outcome;
    }
    let path = format!(
        "/v1/cluster/partitions/{}/tickets/{}?event={}",
        partition.0,
        segment(id),
        segment(event)
    );
    ask_owner(node, partition, &path).await
}

/// The ticket and the command's outcome from the partition's store, if this node
/// applies it under a lease and has caught up; `None` otherwise.
async fn ticket_outcome_here(
    node: &Node,
    partition: Partition,
    id: &str,
    event: &str,
) -> Option<Result<TicketOutcome, Response>> {
    read_here(node, partition, |progress| {
        let refused = progress.refusal(event);
        let store = Arc::clone(&progress.store);
        let (number, event) = (crate::tickets::parse_id(id), event.to_string());
        move || {
            let ticket = match number.map(|n| store.ticket(n)).transpose()?.flatten() {
                Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                    crate::store::StoreError::corrupt("tickets", event.as_bytes(), e)
                })?),
                None => None,
            };
            Ok(TicketOutcome {
                ticket,
                applied: store.seen(&event)? || refused.is_some(),
                refused,
            })
        }
    })
    .await
}
