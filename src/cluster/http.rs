//! The HTTP API a cluster node serves (docs/cluster.md, "What the first build
//! covers"): `POST /v1/events` publishes to the stream (a ticket command to the
//! partition holding its ticket), `GET /v1/members/{id}` and its ledger and history
//! are answered by the partition's owner (this node or another, forwarded), and
//! `GET /v1/cluster` shows this node's view.

use std::sync::Arc;
use std::time::Instant;

use async_nats::HeaderMap;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap as HttpHeaders, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::apply::RECEIVED_HEADER;
use super::ownership::owner_of;
use super::partition::Partition;
use super::{commands, reads, serving, shares, Node};
use crate::clock::{Clock, SystemClock, MAX_AHEAD};
use crate::daemon::api::HistoryQuery;
use crate::daemon::guard::{require_token, Token};
use crate::daemon::ingest::{parse_body, Item, MAX_BODY_BYTES};
use crate::daemon::telemetry::EventStatus;
use crate::event::Event;
use crate::rules::RuleSet;
use crate::store::{Store, StoreError};
use crate::tickets;

/// Marks a read forwarded by another node: it is answered here or refused, never
/// forwarded again (two nodes that disagree about an owner must not loop).
pub(super) const FORWARDED: &str = "rally-forwarded";

/// The routes; with `RALLY_TOKEN` set, every one of them requires it, as the single
/// process's do.
pub fn router(node: Arc<Node>) -> Router {
    let token = node.token.as_deref().map(Token::new);
    let routes = Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/members/{id}", get(member))
        .route("/v1/members/{id}/ledger", get(ledger))
        .route("/v1/members/{id}/history", get(history))
        .route("/v1/members/{id}/redeem", post(commands::redeem))
        .route("/v1/members/{id}/points", post(commands::points))
        .route(
            "/v1/cluster/members/{id}/commands/{key}",
            get(commands::outcome),
        )
        .route("/v1/tickets/{id}/ack", post(commands::ticket_ack))
        .route("/v1/tickets/{id}/resolve", post(commands::ticket_resolve))
        .route(
            "/v1/cluster/partitions/{partition}/tickets/{id}",
            get(commands::ticket_outcome),
        )
        .route("/v1/leaderboards/{id}", get(reads::board))
        .route("/v1/tickets", get(reads::tickets))
        .route("/v1/campaigns", get(reads::campaigns))
        .route("/v1/rewards", get(reads::rewards))
        .route("/v1/draws", get(reads::draws))
        .route("/v1/cluster", get(cluster))
        .route(
            "/v1/cluster/partitions/{partition}/leaderboards/{id}",
            get(reads::partition_board),
        )
        .route(
            "/v1/cluster/partitions/{partition}/tickets",
            get(reads::partition_tickets),
        )
        .route(
            "/v1/cluster/partitions/{partition}/campaigns",
            get(reads::partition_campaigns),
        )
        .route(
            "/v1/cluster/partitions/{partition}/rewards",
            get(reads::partition_rewards),
        )
        .route(
            "/v1/cluster/partitions/{partition}/draws",
            get(reads::partition_draws),
        )
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::clone(&node));
    let routes = match token {
        Some(token) => routes.route_layer(from_fn_with_state(token, require_token)),
        None => routes,
    };
    // Liveness, as the single process serves it: open to probes, no token.
    routes.merge(
        Router::new()
            .route("/healthz", get(healthz))
            .with_state(node),
    )
}

/// `ok` while this node is connected to NATS (without it, it can neither take events
/// nor keep its leases); 503 otherwise. Either way: the partitions it applies, and the
/// last one that stopped on an error.
async fn healthz(State(node): State<Arc<Node>>) -> Response {
    let nats = node.jetstream.client().connection_state();
    let connected = nats == async_nats::connection::State::Connected;
    let owned = node.serving.all().len();
    let last_error = node
        .last_apply_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let body = json!({
        "status": if connected { "ok" } else { "degraded" },
        "node": node.name,
        "nats": format!("{nats:?}").to_lowercase(),
        "partitions_applied": owned,
        "last_apply_error": last_error,
    });
    let status = if connected {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// One partition's value of a gauge, read live.
type PartitionGauge = fn(&Node, Partition, &serving::Progress, Instant) -> u64;

/// Prometheus: the counters the node keeps (events by status at ingest, groups
/// applied, rules published) and, read live, each partition it applies.
async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let mut text = node.metrics.render();
    let now = Instant::now();
    let partitions = node.serving.all();
    text.push_str("# HELP rally_cluster_partitions_applied Partitions this node applies\n");
    text.push_str("# TYPE rally_cluster_partitions_applied gauge\n");
    text.push_str(&format!(
        "rally_cluster_partitions_applied {}\n",
        partitions.len()
    ));
    let gauges: [(&str, &str, PartitionGauge); 4] = [
        (
            "rally_cluster_partition_sequence",
            "The last stream sequence committed to the partition's store",
            |_, _, progress, _| progress.applied(),
        ),
        (
            "rally_cluster_partition_caught_up",
            "1 once the partition's store holds what the stream held when this node took it",
            |_, _, progress, _| u64::from(progress.caught_up()),
        ),
        (
            "rally_cluster_partition_snapshot",
            "The stream sequence of the partition's latest snapshot stored or restored here",
            |_, _, progress, _| progress.snapshot(),
        ),
        (
            "rally_cluster_partition_lease_held",
            "1 while this node holds the partition's lease",
            |node, partition, _, now| u64::from(node.leases.holds(partition, now)),
        ),
    ];
    for (name, help, value) in gauges {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (partition, progress) in &partitions {
            let value = value(&node, *partition, progress, now);
            text.push_str(&format!(
                "{name}{{partition=\"{}\"}} {value}\n",
                partition.0
            ));
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

/// The single process's error body, `{"error": message}`: a node answers as it does.
pub(super) use crate::daemon::api::error;

/// Validates as the single process does, publishes every valid event on its
/// partition's subject, and answers once JetStream acknowledged every publish.
async fn post_events(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let received = SystemClock.now();
    let items = match parse_body(&body, received.fixed_offset()) {
        Ok(items) => items,
        Err(e) => {
            let status = match e {
                crate::daemon::ingest::BodyError::TooMany(_) => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            return error(status, e.to_string());
        }
    };
    let stamp = crate::member::rfc3339(received);
    let total = items.len();
    let mut acks = Vec::with_capacity(items.len());
    for item in items {
        let event = match item {
            Item::Valid(event) => event,
            Item::Rejected { id, error } => {
                acks.push(Answer::Rejected { id, error });
                continue;
            }
        };
        if let Some(why) = refused_here(&event, received) {
            acks.push(Answer::Rejected {
                id: Some(event.id),
                error: why,
            });
            continue;
        }
        let partition = match event.member.as_deref() {
            Some(member) => Partition::of(member, node.settings.partitions),
            None => match ticket_partition(&node, &event).await {
                Ok(partition) => partition,
                Err(Route::Rejected(error)) => {
                    acks.push(Answer::Rejected {
                        id: Some(event.id),
                        error,
                    });
                    continue;
                }
                Err(Route::Unavailable(e)) => return unavailable(&node, total, e),
            },
        };
        let subject = partition.subject();
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        headers.insert(RECEIVED_HEADER, stamp.as_str());
        let payload = event.to_json().to_string();
        // Publishes are pipelined: each is sent now, its acknowledgement awaited below.
        match node
            .jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
        {
            Ok(ack) => acks.push(Answer::Sent { id: event.id, ack }),
            Err(e) => return unavailable(&node, total, e),
        }
    }
    let mut results = Vec::with_capacity(acks.len());
    for answer in acks {
        results.push(match answer {
            Answer::Sent { id, ack } => match ack.await {
                Ok(ack) if ack.duplicate => json!({ "id": id, "status": "duplicate" }),
                Ok(_) => json!({ "id": id, "status": "accepted" }),
                Err(e) => return unavailable(&node, total, e),
            },
            Answer::Rejected { id, error } => {
                json!({ "id": id, "status": "rejected", "error": error })
            }
        });
    }
    for (status, label) in [
        (EventStatus::Accepted, "accepted"),
        (EventStatus::Duplicate, "duplicate"),
        (EventStatus::Rejected, "rejected"),
    ] {
        let count = results.iter().filter(|r| r["status"] == label).count();
        node.metrics.events(status, count);
    }
    Json(json!({ "results": results })).into_response()
}

enum Answer {
    Sent {
        id: String,
        ack: async_nats::jetstream::context::PublishAckFuture,
    },
    Rejected {
        id: Option<String>,
        error: String,
    },
}

/// What a cluster node refuses per event that the single process would take, or
/// would only refuse when applying it (too late to answer in cluster mode).
fn refused_here(event: &Event, received: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let latest = received + MAX_AHEAD;
    (event.at_utc() > latest).then(|| {
        format!(
            "at: {} is in the future: more than {} minutes after Rally's clock ({})",
            crate::member::rfc3339(event.at_utc()),
            MAX_AHEAD.num_minutes(),
            crate::member::rfc3339(received)
        )
    })
}

/// Why a ticket command has no partition to go to.
pub(super) enum Route {
    Rejected(String),
    Unavailable(String),
}

/// The partition holding the ticket a ticket command names: the one its number's run
/// was granted to (`shares.rs`). Only ticket commands come without a member.
async fn ticket_partition(node: &Node, event: &Event) -> Result<Partition, Route> {
    holder_of_ticket(node, event.data_str("ticket").unwrap_or_default()).await
}

/// The partition holding ticket `id` (`T-<n>`).
pub(super) async fn holder_of_ticket(node: &Node, id: &str) -> Result<Partition, Route> {
    let no_such = || Route::Rejected(format!("data.ticket: no ticket {id:?} in this cluster"));
    let number = tickets::parse_id(id).ok_or_else(no_such)?;
    let key = shares::ticket_run_key(shares::ticket_run(number));
    let holder = node
        .config
        .get(key)
        .await
        .map_err(|e| Route::Unavailable(e.to_string()))?
        .ok_or_else(no_such)?;
    String::from_utf8_lossy(&holder)
        .parse::<u32>()
        .ok()
        .filter(|n| *n < node.settings.partitions)
        .map(Partition)
        .ok_or_else(no_such)
}

fn unavailable(node: &Node, events: usize, e: impl std::fmt::Display) -> Response {
    node.metrics.events(EventStatus::Unavailable, events);
    // Some events of the request may be in the stream: a retry is safe, they come back
    // as duplicates (Nats-Msg-Id) or are skipped by their owner (seen ids).
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("JetStream did not acknowledge the events ({e}): nothing is acknowledged, retry"),
    )
}

/// The member as its partition's owner has it.
async fn member(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    headers: HttpHeaders,
) -> Response {
    let path = format!("/v1/members/{}", segment(&id));
    on_owner(&node, &id, &headers, path, |store, rules, id| {
        Ok(store
            .member(id)?
            .map(|member| member.view_at(rules, SystemClock.now())))
    })
    .await
}

/// The member's points ledger, as the single process answers it.
async fn ledger(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    headers: HttpHeaders,
) -> Response {
    let path = format!("/v1/members/{}/ledger", segment(&id));
    on_owner(&node, &id, &headers, path, |store, _, id| {
        Ok(match store.member(id)? {
            Some(_) => Some(json!({ "ledger": store.ledger(id)? })),
            None => None,
        })
    })
    .await
}

/// The member's firings and messages, as the single process answers them.
async fn history(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
    headers: HttpHeaders,
) -> Response {
    let limit = query.limit();
    let path = format!("/v1/members/{}/history?limit={limit}", segment(&id));
    on_owner(&node, &id, &headers, path, move |store, _, id| {
        Ok(match store.member(id)? {
            Some(_) => Some(json!({
                "firings": store.firings(id, limit)?,
                "messages": crate::daemon::api::messages(store, id, limit)?,
            })),
            None => None,
        })
    })
    .await
}

/// Answers a read about member `id` with `read` on its partition's store (and the
/// rules its state ran under), here while this node holds the lease and has caught
/// up, else forwarded (as `GET path`) to the owner. `read` answering `None`: no such
/// member.
async fn on_owner(
    node: &Arc<Node>,
    id: &str,
    headers: &HttpHeaders,
    path: String,
    read: impl FnOnce(&Store, &RuleSet, &str) -> Result<Option<Value>, StoreError> + Send + 'static,
) -> Response {
    let partition = Partition::of(id, node.settings.partitions);
    let progress = node
        .serving
        .get(partition)
        .filter(|_| node.leases.holds(partition, Instant::now()));
    if let Some(progress) = progress {
        if !progress.caught_up() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("partition {partition} is catching up on this node: retry shortly"),
            );
        }
        let store = Arc::clone(&progress.store);
        let rules = progress.rules();
        let key = id.to_string();
        let found = tokio::task::spawn_blocking(move || read(&store, &rules, &key)).await;
        return match found {
            Ok(Ok(Some(value))) => Json(value).into_response(),
            Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("no member {id:?}")),
            Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    let no_owner = || {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "partition {partition} has no owner right now (its lease is moving): retry shortly"
            ),
        )
    };
    if headers.contains_key(FORWARDED) {
        return no_owner();
    }
    let owner = match owner_of(node, partition).await {
        Ok(Some(owner)) if owner.node != node.name => owner,
        Ok(_) => return no_owner(),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("NATS: {e}")),
    };
    forward(node, &owner.http, &path).await
}

/// `text` as one segment of a URL's path or a query value: all but unreserved
/// characters percent-encoded, so an id with `/`, `?` or a space is forwarded whole.
pub(super) fn segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// What `read` finds in `partition`'s store, if this node applies it under a lease
/// and has caught up; `None` otherwise (then its owner is to be asked). `prepare`
/// takes what the read needs from the partition's progress, on this task; the read
/// itself runs off the async threads.
pub(super) async fn read_here<T, F>(
    node: &Node,
    partition: Partition,
    prepare: impl FnOnce(&serving::Progress) -> F,
) -> Option<Result<T, Response>>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let progress = node
        .serving
        .get(partition)
        .filter(|progress| progress.caught_up() && node.leases.holds(partition, Instant::now()))?;
    let read = prepare(&progress);
    Some(match tokio::task::spawn_blocking(read).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store: {e}"),
        )),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    })
}

/// A [`read_here`] answered to the node that asked: 503 when this node does not apply
/// the partition (any more).
pub(super) fn answer_here<T: serde::Serialize>(
    found: Option<Result<T, Response>>,
    not_here: impl FnOnce() -> String,
) -> Response {
    match found {
        Some(Ok(found)) => Json(found).into_response(),
        Some(Err(response)) => response,
        None => error(StatusCode::SERVICE_UNAVAILABLE, not_here()),
    }
}

/// `GET path` from the node that owns `partition` (another node: a partition of this
/// one is read here), as JSON; an error answer when there is no owner right now or it
/// does not answer well.
pub(super) async fn ask_owner<T: serde::de::DeserializeOwned>(
    node: &Node,
    partition: Partition,
    path: &str,
) -> Result<T, Response> {
    let owner = match owner_of(node, partition).await {
        Ok(Some(owner)) if owner.node != node.name => owner,
        Ok(_) => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "partition {partition} has no owner right now (its lease is moving): \
                     retry shortly"
                ),
            ))
        }
        Err(e) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, format!("NATS: {e}"))),
    };
    let url = format!("{}{path}", owner.http.trim_end_matches('/'));
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
    serde_json::from_slice(&body).map_err(|e| failed(e.to_string()))
}

/// Relays `GET path` from the owner at `base`, status and body.
async fn forward(node: &Node, base: &str, path: &str) -> Response {
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let mut request = node.forward.get(&url).header(FORWARDED, "1");
    if let Some(token) = &node.token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await;
    let response = match answer {
        Ok(response) => response,
        Err(e) => {
            return error(
                StatusCode::BAD_GATEWAY,
                format!("the partition's owner at {base} did not answer: {e}"),
            )
        }
    };
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    match response.bytes().await {
        Ok(body) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

/// This node's view: the partitions it applies, how far, and whether it holds them.
async fn cluster(State(node): State<Arc<Node>>) -> Json<Value> {
    let now = Instant::now();
    let owned: Vec<Value> = node
        .serving
        .all()
        .into_iter()
        .map(|(partition, progress)| {
            json!({
                "partition": partition.0,
                "applied": progress.applied(),
                "caught_up": progress.caught_up(),
                "rules": progress.rules().version,
                "snapshot": progress.snapshot(),
                "lease_held": node.leases.holds(partition, now),
            })
        })
        .collect();
    Json(json!({
        "node": node.name,
        "partitions": node.settings.partitions,
        "owned": owned,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_forwarded_as_one_segment_whatever_it_holds() {
        assert_eq!(segment("m-1_a.b~"), "m-1_a.b~");
        assert_eq!(segment("a/b c?d#é"), "a%2Fb%20c%3Fd%23%C3%A9");
    }
}
