//! The HTTP API (SPEC §4): routes, and the handlers that only read.
//!
//! Reads go straight to the store: the writer acknowledges an event only once it is
//! durable, so whatever a client was told is there is there. Reads run on the blocking
//! pool because sled is synchronous.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::guard::{require_token, RateLimiter, Token};
use super::ingest::{post_events, MAX_BODY_BYTES};
use super::reload::Reloader;
use super::telemetry::Metrics;
use super::writer::WriterHandle;
use crate::store::{Store, StoreError};

/// History entries returned when the client does not say, and the most it may ask for.
const HISTORY_DEFAULT: usize = 100;
const HISTORY_MAX: usize = 1000;

/// Everything the handlers share.
pub struct App {
    pub store: Arc<Store>,
    pub writer: WriterHandle,
    pub metrics: Arc<Metrics>,
    pub reloader: Arc<Reloader>,
    pub limiter: RateLimiter,
}

/// The routes. With a token, everything but `/healthz` requires it.
pub fn router(app: Arc<App>, token: Option<Token>) -> Router {
    let guarded = Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/members/{id}", get(member))
        .route("/v1/members/{id}/ledger", get(ledger))
        .route("/v1/members/{id}/history", get(history))
        .route("/v1/rules", get(rules))
        .route("/v1/rules/reload", post(reload))
        .route("/metrics", get(metrics));
    let guarded = match token {
        Some(token) => guarded.route_layer(from_fn_with_state(token, require_token)),
        None => guarded,
    };
    Router::new()
        .route("/healthz", get(healthz))
        .merge(guarded)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// A JSON error body: `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn member(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let found = read(&app, {
        let id = id.clone();
        move |store| store.member(&id)
    })
    .await;
    match found {
        Ok(Some(member)) => Json(member.view()).into_response(),
        Ok(None) => unknown_member(&id),
        Err(response) => response,
    }
}

async fn ledger(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let found = read(&app, {
        let id = id.clone();
        move |store| {
            Ok(match store.member(&id)? {
                Some(_) => Some(store.ledger(&id)?),
                None => None,
            })
        }
    })
    .await;
    match found {
        Ok(Some(entries)) => Json(json!({ "ledger": entries })).into_response(),
        Ok(None) => unknown_member(&id),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

async fn history(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(HISTORY_DEFAULT).min(HISTORY_MAX);
    let found = read(&app, {
        let id = id.clone();
        move |store| {
            Ok(match store.member(&id)? {
                Some(_) => Some(store.firings(&id, limit)?),
                None => None,
            })
        }
    })
    .await;
    match found {
        // `messages` stays empty until messages are recorded per member.
        Ok(Some(firings)) => Json(json!({ "firings": firings, "messages": [] })).into_response(),
        Ok(None) => unknown_member(&id),
        Err(response) => response,
    }
}

async fn rules(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.reloader.info())
}

async fn reload(State(app): State<Arc<App>>) -> Response {
    match app.reloader.reload("requested over HTTP").await {
        Ok(info) => Json(info).into_response(),
        Err(errors) => {
            let message = format!(
                "the rule set has {} problem{}; the running rules (version {}) stay",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" },
                app.reloader.version()
            );
            let body = json!({ "error": message, "errors": errors });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

fn unknown_member(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("no member {id:?}"))
}

/// Runs a store read on the blocking pool; a failure is a logged 500.
async fn read<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = Arc::clone(&app.store);
    let result = tokio::task::spawn_blocking(move || f(&store)).await;
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a read failed");
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
        Err(e) => {
            tracing::error!(error = %e, "a read panicked");
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "the read failed"))
        }
    }
}
