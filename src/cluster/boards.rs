//! `GET /v1/leaderboards/{id}` on a cluster node: each partition's first places, read
//! from its owner (this node or another), merged in the board's order — the same
//! answer the single process gives for the same members. A partition's owner answers
//! for its own partition on `GET /v1/cluster/partitions/{n}/leaderboards/{id}`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{error, FORWARDED};
use super::ownership::owner_of;
use super::partition::Partition;
use super::Node;
use crate::clock::{Clock, SystemClock};
use crate::leaderboard::{period_of, places_json, Standing};
use crate::rules::RuleSet;
use crate::runner::gather::Gathered;
use crate::runner::ClosedPlace;

#[derive(Deserialize)]
pub(super) struct BoardQuery {
    period: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PartitionQuery {
    period: String,
    size: usize,
}

/// The rules this node reads boards by: those of a partition it applies (the latest
/// applied here), or those the cluster was created with.
fn rules_here(node: &Node) -> Arc<RuleSet> {
    node.serving
        .all()
        .first()
        .map_or_else(|| Arc::clone(&node.rules), |(_, progress)| progress.rules())
}

/// The board over every partition.
pub(super) async fn board(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    Query(query): Query<BoardQuery>,
) -> Response {
    let rules = rules_here(&node);
    let Some(board) = rules.leaderboards.iter().find(|b| b.id == id) else {
        return error(StatusCode::NOT_FOUND, format!("no leaderboard {id:?}"));
    };
    let current = period_of(board, SystemClock.now(), rules.settings.timezone);
    let period = query.period.unwrap_or_else(|| current.clone());
    let size = board.size;
    let reads = (0..node.settings.partitions)
        .map(|p| partition_places(&node, Partition(p), &id, &period, size));
    let mut parts = Vec::new();
    for read in futures_util::future::join_all(reads).await {
        match read {
            Ok(places) => parts.push(Gathered::Close { top: size, places }),
            Err(response) => return response,
        }
    }
    let places = match Gathered::merge(&parts) {
        Some(Gathered::Close { places, .. }) => places,
        _ => Vec::new(),
    };
    let standings: Vec<Standing> = places
        .into_iter()
        .enumerate()
        .map(|(i, place)| Standing {
            rank: i + 1,
            member: place.member,
            score: place.score,
            reached: place.reached,
        })
        .collect();
    Json(json!({
        "id": id,
        "period": period,
        "current": period == current,
        "every": crate::daemon::leaderboards::every(board.period),
        "size": size,
        "places": places_json(&standings),
    }))
    .into_response()
}

/// One partition's first places on the board, as its owner has them; `GET
/// /v1/cluster/partitions/{n}/leaderboards/{id}?period=&size=`, answered only by the
/// owner.
pub(super) async fn partition_board(
    State(node): State<Arc<Node>>,
    Path((partition, id)): Path<(u32, String)>,
    Query(query): Query<PartitionQuery>,
) -> Response {
    match local_places(&node, Partition(partition), &id, &query.period, query.size).await {
        Some(Ok(places)) => Json(json!({ "places": places })).into_response(),
        Some(Err(response)) => response,
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("partition {partition} is not applied here now"),
        ),
    }
}

/// The partition's first `size` places, read here if this node applies it, else from
/// its owner; an error answer when neither can be had.
async fn partition_places(
    node: &Arc<Node>,
    partition: Partition,
    id: &str,
    period: &str,
    size: usize,
) -> Result<Vec<ClosedPlace>, Response> {
    if let Some(read) = local_places(node, partition, id, period, size).await {
        return read;
    }
    let unavailable = |why: String| error(StatusCode::SERVICE_UNAVAILABLE, why);
    let owner = match owner_of(node, partition).await {
        Ok(Some(owner)) if owner.node != node.name => owner,
        Ok(_) => {
            return Err(unavailable(format!(
                "partition {partition} has no owner right now (its lease is moving): retry shortly"
            )))
        }
        Err(e) => return Err(unavailable(format!("NATS: {e}"))),
    };
    let url = format!(
        "{}/v1/cluster/partitions/{}/leaderboards/{id}?period={period}&size={size}",
        owner.http.trim_end_matches('/'),
        partition.0
    );
    let mut request = node.forward.get(&url).header(FORWARDED, "1");
    if let Some(token) = &node.token {
        request = request.bearer_auth(token);
    }
    let failed = |e: String| {
        error(
            StatusCode::BAD_GATEWAY,
            format!("the owner of partition {partition} at {}: {e}", owner.http),
        )
    };
    let response = request.send().await.map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("answered {}", response.status())));
    }
    let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
    let body: Value = serde_json::from_slice(&body).map_err(|e| failed(e.to_string()))?;
    serde_json::from_value(body["places"].clone()).map_err(|e| failed(e.to_string()))
}

/// The places of `partition` from its store, if this node applies it under a lease
/// and has caught up; `None` otherwise.
async fn local_places(
    node: &Node,
    partition: Partition,
    id: &str,
    period: &str,
    size: usize,
) -> Option<Result<Vec<ClosedPlace>, Response>> {
    let progress = node
        .serving
        .get(partition)
        .filter(|progress| progress.caught_up() && node.leases.holds(partition, Instant::now()))?;
    let store = Arc::clone(&progress.store);
    let (id, period) = (id.to_string(), period.to_string());
    let read = tokio::task::spawn_blocking(move || store.leaderboard_top(&id, &period, size)).await;
    Some(match read {
        Ok(Ok(standings)) => Ok(standings
            .into_iter()
            .map(|standing| ClosedPlace {
                member: standing.member,
                score: standing.score,
                reached: standing.reached,
            })
            .collect()),
        Ok(Err(e)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store: {e}"),
        )),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    })
}
