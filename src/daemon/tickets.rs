//! `GET /v1/tickets` and `POST /v1/tickets/{id}/ack`, `/resolve` (SPEC §2.5, §4).
//!
//! The list is read from the store like every other read. Acknowledging and resolving
//! change a ticket, so they go through the writer like events: the answer comes once
//! the change is durable, and it is the same change a `rally.ticket.ack` /
//! `rally.ticket.resolve` event makes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::api::{error, read, App};
use super::writer::{TicketAnswer, TicketCommand};
use crate::runner::stored_tickets;
use crate::tickets::{Ticket, TicketStatus};

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

impl ListQuery {
    /// The status asked for (`None`: every ticket), or what is wrong with it.
    pub(crate) fn wanted(&self) -> Result<Option<TicketStatus>, String> {
        match self.status.as_deref().map(|s| (s, TicketStatus::parse(s))) {
            None => Ok(None),
            Some((_, Some(status))) => Ok(Some(status)),
            Some((text, None)) => Err(format!(
                "status {text:?} is not a ticket status: use open, acked or resolved"
            )),
        }
    }
}

/// Every ticket, oldest first; only those in `status` when it is given.
pub async fn list(State(app): State<Arc<App>>, Query(query): Query<ListQuery>) -> Response {
    let wanted = match query.wanted() {
        Ok(wanted) => wanted,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    match read(&app, stored_tickets).await {
        Ok(tickets) => {
            let tickets: Vec<Ticket> = tickets
                .into_iter()
                .filter(|t| wanted.is_none_or(|status| t.status == status))
                .collect();
            Json(json!({ "tickets": tickets })).into_response()
        }
        Err(response) => response,
    }
}

/// The optional body of an ack or a resolve: who, and a note.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Handling {
    pub by: Option<String>,
    pub note: Option<String>,
}

impl Handling {
    /// An empty body, or `{"by": ..., "note": ...}`; what is wrong with any other.
    pub(crate) fn read(body: &[u8]) -> Result<Handling, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Handling::default());
        }
        serde_json::from_slice::<Handling>(body)
            .map_err(|e| format!("the body must be empty or {{\"by\": ..., \"note\": ...}}: {e}"))
    }

    /// A request's body as [`Handling::read`] takes it, or the status and message for
    /// a body that could not be read or is not one (the single process and a cluster
    /// node answer alike).
    pub(crate) fn from_request(
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Handling, (StatusCode, String)> {
        let body = body.map_err(|rejection| (rejection.status(), rejection.body_text()))?;
        Handling::read(&body).map_err(|message| (StatusCode::BAD_REQUEST, message))
    }
}

pub async fn ack(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    change(&app, id, false, body).await
}

pub async fn resolve(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    change(&app, id, true, body).await
}

async fn change(
    app: &App,
    id: String,
    resolve: bool,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let handling = match Handling::from_request(body) {
        Ok(handling) => handling,
        Err((status, message)) => return error(status, message),
    };
    let command = TicketCommand {
        id,
        resolve,
        by: handling.by,
        note: handling.note,
    };
    match app.writer.ticket(command).await {
        Ok(TicketAnswer::Changed(ticket)) => Json(ticket).into_response(),
        Ok(TicketAnswer::NotFound(message)) => error(StatusCode::NOT_FOUND, message),
        Ok(TicketAnswer::Refused(message)) => error(StatusCode::CONFLICT, message),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
