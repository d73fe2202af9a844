//! `GET /v1/leaderboards/{id}`: a board's ranking in its current period (in
//! `settings.timezone`, at the daemon's clock), or in `?period=` — a closed one stays
//! readable. Reads the first `size` rows of the store's ordered index and nothing else.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::api::{error, read, App};
use crate::leaderboard::{period_of, places_json};
use crate::localtime::Period;

#[derive(Deserialize)]
pub(super) struct LeaderboardQuery {
    period: Option<String>,
}

pub(super) async fn get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(query): Query<LeaderboardQuery>,
) -> Response {
    let rules = app.reloader.rules();
    let Some(board) = rules.leaderboards.iter().find(|b| b.id == id) else {
        return error(StatusCode::NOT_FOUND, format!("no leaderboard {id:?}"));
    };
    let current = period_of(board, app.clock.now(), rules.settings.timezone);
    let period = query.period.unwrap_or_else(|| current.clone());
    let size = board.size;
    let places = read(&app, {
        let (id, period) = (id.clone(), period.clone());
        move |store| store.leaderboard_top(&id, &period, size)
    })
    .await;
    match places {
        Ok(places) => Json(json!({
            "id": id,
            "period": period,
            "current": period == current,
            "every": every(board.period),
            "size": size,
            "places": places_json(&places),
        }))
        .into_response(),
        Err(response) => response,
    }
}

/// The board's `period` as written in the rule file.
pub(crate) fn every(period: Period) -> &'static str {
    match period {
        Period::Day => "daily",
        Period::Week => "weekly",
        Period::Month => "monthly",
        Period::Ever => "ever",
    }
}
