//! `POST /v1/messages/{id}/retry` (SPEC §4): queues a failed message again.
//!
//! A message's id is its outbox sequence number, as `GET /v1/members/{id}/history`
//! shows it. The change goes through the dispatcher, not the writer: after a step has
//! queued a row only the dispatcher changes it, and it serialises manual retries so a
//! message retried twice at once is queued once.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::api::{error, App};
use crate::outbox::RequeueError;

/// 200 with the message as history now shows it (`pending`, due now); 404 for an
/// unknown id; 409 when the message is not `failed`.
pub async fn retry(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    // Ids are sequence numbers from 1; anything else names no message.
    let Some(seq) = id.parse::<u64>().ok().filter(|seq| *seq > 0) else {
        return error(StatusCode::NOT_FOUND, format!("no message {id:?}"));
    };
    let dispatcher = app.dispatcher.clone();
    // sled is synchronous, and the requeue syncs it.
    let done = tokio::task::spawn_blocking(move || dispatcher.requeue(seq)).await;
    match done {
        Ok(Ok(row)) => Json(row.history_view()).into_response(),
        Ok(Err(e @ RequeueError::Unknown(_))) => error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e @ RequeueError::NotFailed { .. })) => error(StatusCode::CONFLICT, e.to_string()),
        Ok(Err(e)) => {
            tracing::error!(seq, error = %e, "a manual retry failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(e) => {
            tracing::error!(seq, error = %e, "a manual retry panicked");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the retry failed")
        }
    }
}
