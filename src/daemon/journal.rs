//! What the API reads from the event journal: `GET /v1/journal?since=T`, the journal
//! as NDJSON, streamed — read from the store a scan at a time on the blocking pool
//! while the client takes it, so a long journal is never held in memory — and
//! `GET /v1/members/{id}/explain`, a member's steps traced by replaying it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http_body::Frame;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::api::{error, App};

#[derive(Deserialize)]
pub struct JournalQuery {
    since: Option<String>,
}

pub async fn journal(State(app): State<Arc<App>>, Query(query): Query<JournalQuery>) -> Response {
    let since = match query.since.as_deref().map(parse_since).transpose() {
        Ok(since) => since,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    // A few scans ahead of the client at most.
    let (chunks, body) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = Arc::clone(&app.store);
    tokio::task::spawn_blocking(move || {
        let sent = crate::replay::export::export(&store, since, |chunk| {
            chunks.blocking_send(Ok(Bytes::from(chunk))).is_ok()
        });
        if let Err(e) = sent {
            tracing::error!(error = %e, "reading the journal failed");
            // The status went out with the first chunk: breaking the body off is how
            // the client learns the stream is incomplete.
            let _ = chunks.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::new(ChannelBody(body)),
    )
        .into_response()
}

/// `since`: an RFC 3339 time.
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| format!("since: {text:?} is not an RFC 3339 time (2026-11-01T00:00:00Z): {e}"))
}

/// A response body fed by a channel: each message a frame, the end when it closes.
struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}

#[derive(Deserialize)]
pub struct ExplainQuery {
    event: Option<String>,
    #[serde(default)]
    all: bool,
}

/// `GET /v1/members/{id}/explain?event=ID`: the member's steps (or the one that
/// applied `event`), traced by replaying the journal on the blocking pool beside the
/// writer — one at a time (429 while another runs).
pub async fn explain(
    State(app): State<Arc<App>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Query(query): Query<ExplainQuery>,
) -> Response {
    use crate::replay::explain::ExplainError;
    let Ok(one_at_a_time) = Arc::clone(&app.explaining).try_acquire_owned() else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "another explanation is being computed (each replays the journal); retry shortly",
        );
    };
    let store = Arc::clone(&app.store);
    let options = crate::engine::explain::Options { all: query.all };
    let member = id.clone();
    let traced = tokio::task::spawn_blocking(move || {
        // Held by the replay itself: a client that goes away does not free the slot
        // while its replay still runs.
        let _slot = one_at_a_time;
        crate::replay::explain::explain(&store, &member, query.event.as_deref(), options)
    })
    .await;
    match traced {
        Ok(Ok(explanation)) => axum::Json(explanation).into_response(),
        Ok(Err(e @ (ExplainError::UnknownMember(_) | ExplainError::UnknownEvent { .. }))) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Ok(Err(e)) => {
            tracing::error!(member = ?id, error = %e, "cannot explain");
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "explaining panicked");
            error(StatusCode::INTERNAL_SERVER_ERROR, "explaining failed")
        }
    }
}
