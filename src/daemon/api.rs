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

use super::guard::{read_body_within, require_token, BodyTimeout, RateLimiter, Token};
use super::ingest::{post_events, MAX_BODY_BYTES};
use super::reload::Reloader;
use super::telemetry::Metrics;
use super::tickets;
use super::writer::WriterHandle;
use crate::outbox::OutboxRow;
use crate::runner::{CampaignRecord, CAMPAIGN_META};
use crate::store::{Store, StoreError};

/// History entries returned when the client does not say, and the most it may ask for.
const HISTORY_DEFAULT: usize = 100;
const HISTORY_MAX: usize = 1000;

/// Everything the handlers share.
pub struct App {
    /// "Now" for reads that depend on it (a campaign's current phase).
    pub clock: Arc<dyn crate::clock::Clock>,
    pub store: Arc<Store>,
    pub writer: WriterHandle,
    pub metrics: Arc<Metrics>,
    /// Whether the store took the last group (see [`super::health`]).
    pub health: Arc<super::health::Health>,
    pub reloader: Arc<Reloader>,
    /// Delivers the outbox; `POST /v1/messages/{id}/retry` queues through it.
    pub dispatcher: crate::outbox::Dispatcher,
    pub limiter: RateLimiter,
    /// One explanation at a time: each replays the whole journal on a core, and a
    /// client asking for many must not take the daemon's CPU from ingestion.
    pub explaining: Arc<tokio::sync::Semaphore>,
}

/// The routes. With a token, everything but `/healthz` and the dashboard's page, assets
/// and login requires it (a logged-in browser's session cookie will do for reads; see
/// [`super::session`]); bodies are read
/// (within `body_timeout`) only after the token is checked.
pub fn router(app: Arc<App>, token: Option<Token>, body_timeout: BodyTimeout) -> Router {
    let guarded = Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/members/{id}", get(member))
        .route("/v1/members/{id}/ledger", get(ledger))
        .route("/v1/members/{id}/history", get(history))
        .route("/v1/members/{id}/points", post(super::adjust::post_points))
        .route("/v1/members/{id}/redeem", post(super::rewards::post_redeem))
        .route("/v1/rewards", get(super::rewards::list))
        .route("/v1/members/{id}/explain", get(super::journal::explain))
        .route("/v1/tickets", get(tickets::list))
        .route("/v1/tickets/{id}/ack", post(tickets::ack))
        .route("/v1/tickets/{id}/resolve", post(tickets::resolve))
        .route("/v1/messages/{id}/retry", post(super::messages::retry))
        .route("/v1/campaigns", get(campaigns))
        .route("/v1/draws", get(super::draws::list))
        .route("/v1/draws/{rule}", get(super::draws::of_rule))
        .route("/v1/leaderboards/{id}", get(super::leaderboards::get))
        .route("/v1/rules", get(rules))
        .route("/v1/journal", get(super::journal::journal))
        .route("/v1/rules/reload", post(reload))
        .route("/v1/report", get(super::report::report))
        .route("/metrics", get(metrics))
        .route_layer(from_fn_with_state(body_timeout, read_body_within));
    let dashboard = super::dashboard::routes(token.clone(), body_timeout);
    let guarded = match token {
        Some(token) => guarded.route_layer(from_fn_with_state(token, require_token)),
        None => guarded,
    };
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .merge(dashboard)
        .merge(guarded)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app);
    // Around the whole router, not each route (what `Router::layer` does): only
    // there does a 405 already carry the `Allow` header its message quotes.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn(super::json_errors::json_errors))
}

/// A JSON error body: `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// `{"status": "ok"}`, or 503 with the store's last error while it is failing: a
/// load balancer then sends events elsewhere rather than to a daemon that answers
/// every one of them "unavailable".
async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.health.degraded() {
        None => Json(json!({ "status": "ok" })).into_response(),
        Some(body) => (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response(),
    }
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
        Ok(Some(member)) => {
            Json(member.view_at(&app.reloader.rules(), app.clock.now())).into_response()
        }
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

/// `?limit=` of a member's history.
#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    limit: Option<usize>,
}

impl HistoryQuery {
    /// The rows asked for, at most [`HISTORY_MAX`].
    pub(crate) fn limit(&self) -> usize {
        self.limit.unwrap_or(HISTORY_DEFAULT).min(HISTORY_MAX)
    }
}

async fn history(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let limit = query.limit();
    let found = read(&app, {
        let id = id.clone();
        move |store| {
            Ok(match store.member(&id)? {
                Some(_) => Some((store.firings(&id, limit)?, messages(store, &id, limit)?)),
                None => None,
            })
        }
    })
    .await;
    match found {
        Ok(Some((firings, messages))) => {
            Json(json!({ "firings": firings, "messages": messages })).into_response()
        }
        Ok(None) => unknown_member(&id),
        Err(response) => response,
    }
}

/// The last `limit` messages queued for `member`, oldest first, as `sim` shows them
/// and with their current status. Reads only that member's rows, through the
/// store's index of the outbox by member.
pub(crate) fn messages(
    store: &Store,
    member: &str,
    limit: usize,
) -> Result<Vec<Value>, StoreError> {
    let mut newest_first = Vec::with_capacity(limit);
    for (seq, bytes) in store.member_messages(member, limit)? {
        let row = OutboxRow::decode(seq, &bytes)
            .map_err(|e| StoreError::corrupt("outbox", &seq.to_be_bytes(), e))?;
        newest_first.push(row.history_view());
    }
    newest_first.reverse();
    Ok(newest_first)
}

/// Every campaign of the running rule set: its phase now, the points its rules
/// awarded against its budget, and the phase changes Rally fired.
async fn campaigns(State(app): State<Arc<App>>) -> Response {
    let set = app.reloader.rules();
    let records = read(&app, {
        let ids: Vec<String> = set.campaigns.iter().map(|c| c.id.clone()).collect();
        move |store| {
            ids.iter()
                .map(|id| campaign_record(store, id))
                .collect::<Result<Vec<_>, _>>()
        }
    })
    .await;
    let records = match records {
        Ok(records) => records,
        Err(response) => return response,
    };
    let now = app.clock.now();
    let campaigns: Vec<Value> = set
        .campaigns
        .iter()
        .zip(records)
        .map(|(campaign, record)| {
            let mut view = record.view(campaign, Some(now));
            view["id"] = json!(campaign.id);
            view
        })
        .collect();
    Json(json!({ "campaigns": campaigns })).into_response()
}

/// What the store holds for campaign `id`; nothing yet is an empty record.
fn campaign_record(store: &Store, id: &str) -> Result<CampaignRecord, StoreError> {
    let name = format!("{CAMPAIGN_META}{id}");
    match store.meta_get(&name)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e)),
        None => Ok(CampaignRecord::default()),
    }
}

/// The running rule set, and the pass over every member after the inactivity rules
/// last changed: under way, and the last one finished, with whom each new or changed
/// rule reached.
async fn rules(State(app): State<Arc<App>>) -> Response {
    let passes = match read(&app, crate::runner::stored_silence_passes).await {
        Ok(passes) => passes,
        Err(response) => return response,
    };
    let mut info = app.reloader.info();
    info["inactivity_pass"] = json!({ "running": passes.0, "last": passes.1 });
    Json(info).into_response()
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
    let mut text = app.metrics.render();
    text.push_str(&super::report::gauges(&app).await);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn unknown_member(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("no member {id:?}"))
}

/// Runs a store read on the blocking pool; a failure is a logged 500.
pub(super) async fn read<T: Send + 'static>(
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
