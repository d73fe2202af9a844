//! `GET /v1/draws` and `GET /v1/draws/{rule}`: the finished draws of rules with
//! `draw: { winners: N }`, read from the store like every other read.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::api::{error, read, App};
use crate::member::rfc3339;
use crate::runner::{stored_draws, DrawRecord};

/// Every finished draw by occurrence, with how many won and how many were eligible.
pub async fn list(State(app): State<Arc<App>>) -> Response {
    let draws = match read(&app, stored_draws).await {
        Ok(draws) => draws,
        Err(response) => return response,
    };
    let draws: Vec<_> = draws
        .iter()
        .map(|d| {
            json!({
                "rule": d.rule,
                "occurrence": rfc3339(d.occurrence),
                "wanted": d.wanted,
                "eligible": d.eligible,
                "winners": d.winners.len(),
            })
        })
        .collect();
    Json(json!({ "draws": draws })).into_response()
}

/// The draws of one rule by occurrence, each with its winners in draw order. A rule
/// that never drew and does not draw in the rules loaded now is a 404.
pub async fn of_rule(State(app): State<Arc<App>>, Path(rule): Path<String>) -> Response {
    let draws = match read(&app, stored_draws).await {
        Ok(draws) => draws,
        Err(response) => return response,
    };
    let draws: Vec<DrawRecord> = draws.into_iter().filter(|d| d.rule == rule).collect();
    let draws_now = app
        .reloader
        .rules()
        .rules
        .iter()
        .any(|r| r.id == rule && r.draw.is_some());
    if draws.is_empty() && !draws_now {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no draw for rule {rule:?}: it has no \"draw\" in the rules loaded and never drew"
            ),
        );
    }
    let draws: Vec<_> = draws
        .iter()
        .map(|d| {
            json!({
                "occurrence": rfc3339(d.occurrence),
                "wanted": d.wanted,
                "eligible": d.eligible,
                "winners": d.winners,
            })
        })
        .collect();
    Json(json!({ "rule": rule, "draws": draws })).into_response()
}
