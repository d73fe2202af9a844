//! `GET /v1/report` (the community report, docs/report.md) and the community gauges
//! of `GET /metrics`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::api::{error, read, App};
use crate::metrics::{self, Range, Tally};
use crate::store::Store;

#[derive(Deserialize)]
pub(super) struct Params {
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
}

/// Rally's clock: the time of the latest step, or the wall clock before the first.
fn now(app: &App, store: &Store) -> Result<DateTime<Utc>, crate::store::StoreError> {
    Ok(crate::runner::stored_clock(store)?.unwrap_or_else(|| app.clock.now()))
}

pub(super) async fn report(State(app): State<Arc<App>>, Query(params): Query<Params>) -> Response {
    let rules = app.reloader.rules();
    let shared = Arc::clone(&app);
    let loaded = read(&app, move |store| {
        let now = now(&shared, store)?;
        let tally = Tally::load(store)?;
        let deliveries = metrics::deliveries::load(store)?;
        Ok((now, tally, deliveries))
    })
    .await;
    let (now, tally, deliveries) = match loaded {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let today = crate::localtime::local_day(now, rules.settings.timezone);
    let range = match Range::parse(
        params.from.as_deref(),
        params.to.as_deref(),
        params.by.as_deref(),
        today,
    ) {
        Ok(range) => range,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    Json(metrics::report::build(
        &tally,
        &deliveries,
        &rules,
        range,
        now,
    ))
    .into_response()
}

/// The community gauges for `GET /metrics`; empty (logged) if the store cannot be read.
pub(super) async fn gauges(app: &Arc<App>) -> String {
    let rules = app.reloader.rules();
    let shared = Arc::clone(app);
    let loaded = read(app, move |store| {
        Ok((now(&shared, store)?, Tally::load(store)?))
    })
    .await;
    match loaded {
        Ok((now, tally)) => {
            let today = crate::localtime::local_day(now, rules.settings.timezone);
            metrics::gauges::render(&tally, &rules, today)
        }
        Err(_) => String::new(),
    }
}
