//! Reads over every partition on a cluster node: each partition's part read from its
//! owner (this node, or another over `GET /v1/cluster/partitions/{n}/<read>`), then put
//! together as the single process answers for the same members —
//! `GET /v1/leaderboards/{id}` (first places merged in the board's order),
//! `GET /v1/tickets`, `GET /v1/campaigns` (points awarded added up), `GET /v1/rewards`
//! (what was issued added up) and `GET /v1/draws`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{answer_here, ask_owner, error, read_here, segment};
use super::partition::Partition;
use super::Node;
use crate::clock::{Clock, SystemClock};
use crate::daemon::tickets::ListQuery;
use crate::leaderboard::{period_of, places_json, Standing};
use crate::rewards::RewardRecord;
use crate::rules::RuleSet;
use crate::runner::gather::Gathered;
use crate::runner::{ClosedPlace, DrawRecord, CAMPAIGN_META};
use crate::store::{Store, StoreError};
use crate::tickets::Ticket;

/// What one partition is asked for.
#[derive(Clone, Debug)]
pub(super) enum Read {
    /// A board's first `size` places in `period`.
    Board {
        id: String,
        period: String,
        size: usize,
    },
    Tickets,
    /// The records of the campaigns of the partition's rules, by id.
    Campaigns,
    Rewards,
    Draws,
}

impl Read {
    /// Where a partition's owner answers it.
    fn path(&self, partition: Partition) -> String {
        let base = format!("/v1/cluster/partitions/{}", partition.0);
        match self {
            Read::Board { id, period, size } => {
                let (id, period) = (segment(id), segment(period));
                format!("{base}/leaderboards/{id}?period={period}&size={size}")
            }
            Read::Tickets => format!("{base}/tickets"),
            Read::Campaigns => format!("{base}/campaigns"),
            Read::Rewards => format!("{base}/rewards"),
            Read::Draws => format!("{base}/draws"),
        }
    }

    /// The partition's part, from its store.
    fn answer(&self, store: &Store) -> Result<Value, StoreError> {
        Ok(match self {
            Read::Board { id, period, size } => {
                let places: Vec<ClosedPlace> = store
                    .leaderboard_top(id, period, *size)?
                    .into_iter()
                    .map(ClosedPlace::from)
                    .collect();
                json!(places)
            }
            Read::Tickets => json!(crate::runner::stored_tickets(store)?),
            Read::Campaigns => {
                let mut records = serde_json::Map::new();
                for (name, bytes) in store.meta_scan(CAMPAIGN_META)? {
                    let id = name.trim_start_matches(CAMPAIGN_META).to_string();
                    let record: Value = serde_json::from_slice(&bytes)
                        .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e))?;
                    records.insert(id, record);
                }
                Value::Object(records)
            }
            Read::Rewards => json!(crate::runner::rewards::load(store)?),
            Read::Draws => json!(crate::runner::stored_draws(store)?),
        })
    }
}

/// The rules this node answers by: those of a partition it applies (the latest applied
/// here), or those the cluster was created with.
fn rules_here(node: &Node) -> Arc<RuleSet> {
    node.serving
        .all()
        .first()
        .map_or_else(|| Arc::clone(&node.rules), |(_, progress)| progress.rules())
}

/// Every partition's part of `read`, in partition order; an error answer when one of
/// them cannot be had (no owner, or the owner does not answer).
async fn every_partition<T: DeserializeOwned>(
    node: &Arc<Node>,
    read: &Read,
) -> Result<Vec<T>, Response> {
    let reads = (0..node.settings.partitions).map(|p| partition_part(node, Partition(p), read));
    let mut parts = Vec::new();
    for part in futures_util::future::join_all(reads).await {
        let part = serde_json::from_value(part?).map_err(|e| {
            error(
                StatusCode::BAD_GATEWAY,
                format!("a partition's part is not what was asked: {e}"),
            )
        })?;
        parts.push(part);
    }
    Ok(parts)
}

/// The partition's part, read here if this node applies it, else from its owner.
async fn partition_part(
    node: &Arc<Node>,
    partition: Partition,
    read: &Read,
) -> Result<Value, Response> {
    if let Some(part) = local_part(node, partition, read).await {
        return part;
    }
    ask_owner(node, partition, &read.path(partition)).await
}

/// The part of `partition` from its store, if this node applies it under a lease and
/// has caught up; `None` otherwise.
async fn local_part(
    node: &Node,
    partition: Partition,
    read: &Read,
) -> Option<Result<Value, Response>> {
    read_here(node, partition, |progress| {
        let store = Arc::clone(&progress.store);
        let read = read.clone();
        move || read.answer(&store)
    })
    .await
}

/// A partition's part as its owner answers it to another node; 503 from any other.
async fn answer_for(node: &Node, partition: u32, read: Read) -> Response {
    answer_here(local_part(node, Partition(partition), &read).await, || {
        format!("partition {partition} is not applied here now")
    })
}

#[derive(Deserialize)]
pub(super) struct BoardQuery {
    period: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PartitionBoardQuery {
    period: String,
    size: usize,
}

/// `GET /v1/leaderboards/{id}[?period=]`: the board over every partition.
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
    let read = Read::Board {
        id: id.clone(),
        period: period.clone(),
        size,
    };
    let parts: Vec<Vec<ClosedPlace>> = match every_partition(&node, &read).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let parts: Vec<Gathered> = parts
        .into_iter()
        .map(|places| Gathered::Close { top: size, places })
        .collect();
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

pub(super) async fn partition_board(
    State(node): State<Arc<Node>>,
    Path((partition, id)): Path<(u32, String)>,
    Query(query): Query<PartitionBoardQuery>,
) -> Response {
    let read = Read::Board {
        id,
        period: query.period,
        size: query.size,
    };
    answer_for(&node, partition, read).await
}

/// `GET /v1/tickets[?status=]`: every partition's tickets, by number.
pub(super) async fn tickets(
    State(node): State<Arc<Node>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let wanted = match query.wanted() {
        Ok(wanted) => wanted,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let parts: Vec<Vec<Ticket>> = match every_partition(&node, &Read::Tickets).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let mut tickets: Vec<Ticket> = parts
        .into_iter()
        .flatten()
        .filter(|t| wanted.is_none_or(|status| t.status == status))
        .collect();
    tickets.sort_by_key(|t| t.number);
    Json(json!({ "tickets": tickets })).into_response()
}

/// `GET /v1/campaigns`: each campaign's phase now, and the points its rules awarded in
/// every partition together.
pub(super) async fn campaigns(State(node): State<Arc<Node>>) -> Response {
    let parts: Vec<BTreeMap<String, crate::runner::CampaignRecord>> =
        match every_partition(&node, &Read::Campaigns).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
    let rules = rules_here(&node);
    let now = SystemClock.now();
    let campaigns: Vec<Value> = rules
        .campaigns
        .iter()
        .map(|campaign| {
            let mut record = crate::runner::CampaignRecord::default();
            for part in &parts {
                let Some(held) = part.get(&campaign.id) else {
                    continue;
                };
                record.points_awarded += held.points_awarded;
                // Every partition fires the same phase changes: the fullest list.
                if held.transitions.len() > record.transitions.len() {
                    record.transitions = held.transitions.clone();
                }
            }
            let mut view = record.view(campaign, Some(now));
            view["id"] = json!(campaign.id);
            view
        })
        .collect();
    Json(json!({ "campaigns": campaigns })).into_response()
}

/// `GET /v1/rewards`: the catalog with what every partition issued together.
pub(super) async fn rewards(State(node): State<Arc<Node>>) -> Response {
    let parts: Vec<BTreeMap<String, RewardRecord>> =
        match every_partition(&node, &Read::Rewards).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
    let mut issued: BTreeMap<String, RewardRecord> = BTreeMap::new();
    for (id, record) in parts.into_iter().flatten() {
        let all = issued.entry(id).or_default();
        all.issued += record.issued;
        all.codes.extend(record.codes);
    }
    let rules = rules_here(&node);
    Json(json!({ "rewards": crate::rewards::catalog(&rules, &issued) })).into_response()
}

/// `GET /v1/draws`: every draw finished, once (each partition that took part keeps
/// the same record: the result over every partition), by occurrence.
pub(super) async fn draws(State(node): State<Arc<Node>>) -> Response {
    let parts: Vec<Vec<DrawRecord>> = match every_partition(&node, &Read::Draws).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let mut draws: Vec<DrawRecord> = parts.into_iter().flatten().collect();
    draws.sort_by(|a, b| (a.occurrence, &a.rule).cmp(&(b.occurrence, &b.rule)));
    draws.dedup_by(|a, b| a.occurrence == b.occurrence && a.rule == b.rule);
    Json(json!({ "draws": draws })).into_response()
}

pub(super) async fn partition_tickets(
    State(node): State<Arc<Node>>,
    Path(partition): Path<u32>,
) -> Response {
    answer_for(&node, partition, Read::Tickets).await
}

pub(super) async fn partition_campaigns(
    State(node): State<Arc<Node>>,
    Path(partition): Path<u32>,
) -> Response {
    answer_for(&node, partition, Read::Campaigns).await
}

pub(super) async fn partition_rewards(
    State(node): State<Arc<Node>>,
    Path(partition): Path<u32>,
) -> Response {
    answer_for(&node, partition, Read::Rewards).await
}

pub(super) async fn partition_draws(
    State(node): State<Arc<Node>>,
    Path(partition): Path<u32>,
) -> Response {
    answer_for(&node, partition, Read::Draws).await
}
