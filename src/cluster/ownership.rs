//! The ownership loop: every third of the lease TTL it writes this node's heartbeat,
//! renews the leases it holds (compare-and-set on their revision), gives up the ones
//! that lapsed or whose applier failed, hands back partitions beyond its fair share
//! and takes free ones up to it (docs/cluster.md, "Ownership: leases").
//!
//! A lease is given up here (so nothing more is committed or read under it) *before*
//! its applier is stopped and long before its key is deleted: the order that keeps a
//! partition from ever having two writers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::apply::Applier;
use super::lease::{fair_share, renew_every, Owner};
use super::partition::{fnv1a64, Partition};
use super::Node;

/// The key of a node's heartbeat in the leases bucket.
fn heartbeat_key(node: &str) -> String {
    format!("node.{node}")
}

/// Appliers being stopped, each on a task of its own: a stop lasts as long as the
/// group, snapshot, restore or delivery under way, and waiting for it in the loop
/// would let every other lease lapse meanwhile. A partition is not taken again here
/// until its stop has ended (its store is still open until then).
type Stopping = BTreeMap<Partition, JoinHandle<()>>;

/// Keeps this node's share of the partitions until `shutdown` completes, then hands
/// every partition back so the others take them without waiting for the TTL.
pub async fn keep(node: Arc<Node>, shutdown: impl std::future::Future<Output = ()>) {
    let mut appliers: BTreeMap<Partition, Applier> = BTreeMap::new();
    let mut stopping = Stopping::new();
    let every = renew_every(node.settings.lease_ttl());
    tokio::pin!(shutdown);
    loop {
        stopping.retain(|_, stop| !stop.is_finished());
        round(&node, &mut appliers, &mut stopping).await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut shutdown => break,
        }
    }
    let partitions: Vec<Partition> = appliers.keys().copied().collect();
    for partition in partitions {
        if let Some(applier) = appliers.remove(&partition) {
            hand_back(Arc::clone(&node), partition, applier).await;
        }
    }
    for (_, stop) in stopping {
        let _ = stop.await;
    }
    let _ = node.leases_kv.delete(heartbeat_key(&node.name)).await;
}

async fn round(
    node: &Arc<Node>,
    appliers: &mut BTreeMap<Partition, Applier>,
    stopping: &mut Stopping,
) {
    let ttl = node.settings.lease_ttl();
    let me = node.owner_value();
    if let Err(error) = node
        .leases_kv
        .put(heartbeat_key(&node.name), me.clone())
        .await
    {
        tracing::warn!(%error, "cannot write this node's heartbeat");
    }
    renew(node, appliers, stopping).await;
    let live = match live_nodes(node).await {
        Ok(live) => live,
        Err(error) => {
            tracing::warn!(%error, "cannot count the live nodes; taking no partitions this round");
            return;
        }
    };
    let share = fair_share(node.settings.partitions, live);
    while appliers.len() > share {
        let Some((partition, applier)) = appliers.pop_last() else {
            break;
        };
        tracing::info!(partition = %partition, share, live, "handing the partition back (more than a fair share)");
        let handed = tokio::spawn(hand_back(Arc::clone(node), partition, applier));
        stopping.insert(partition, handed);
    }
    if appliers.len() >= share {
        return;
    }
    // Nodes start their search at different partitions, so they rarely race for one.
    let count = node.settings.partitions;
    let start = (fnv1a64(node.name.as_bytes()) % u64::from(count)) as u32;
    for i in 0..count {
        if appliers.len() >= share {
            break;
        }
        let partition = Partition((start + i) % count);
        if appliers.contains_key(&partition) || stopping.contains_key(&partition) {
            continue;
        }
        match node.leases_kv.entry(partition.lease_key()).await {
            Ok(Some(entry)) if entry.operation == async_nats::jetstream::kv::Operation::Put => {
                continue
            }
            Ok(_) => {}
            Err(_) => continue,
        }
        let sent = Instant::now();
        // Succeeds only if the key is absent (expired or handed back): one taker wins.
        if let Ok(revision) = node
            .leases_kv
            .create(partition.lease_key(), me.clone())
            .await
        {
            node.leases.written(partition, revision, sent, ttl);
            tracing::info!(partition = %partition, revision, "took the partition");
            appliers.insert(partition, Applier::start(Arc::clone(node), partition));
        }
    }
}

/// Renews every lease held, giving up those that lapsed, were taken, or whose
/// applier stopped.
async fn renew(
    node: &Arc<Node>,
    appliers: &mut BTreeMap<Partition, Applier>,
    stopping: &mut Stopping,
) {
    let ttl = node.settings.lease_ttl();
    let me = node.owner_value();
    let partitions: Vec<Partition> = appliers.keys().copied().collect();
    for partition in partitions {
        let sent = Instant::now();
        let failed = appliers.get(&partition).is_some_and(Applier::is_finished);
        let held = node.leases.get(partition);
        let lapsed = !node.leases.holds(partition, sent);
        if failed || lapsed {
            node.leases.give_up(partition);
            if let Some(applier) = appliers.remove(&partition) {
                stopping.insert(partition, tokio::spawn(applier.stop()));
            }
            if failed {
                // Free it at once, if it is still ours, for another try (here or elsewhere).
                if let Some(held) = held {
                    let _ = node
                        .leases_kv
                        .delete_expect_revision(partition.lease_key(), Some(held.revision))
                        .await;
                }
            }
            tracing::warn!(partition = %partition, lapsed, failed, "gave the partition up");
            continue;
        }
        let Some(held) = held else { continue };
        match node
            .leases_kv
            .update(partition.lease_key(), me.clone(), held.revision)
            .await
        {
            Ok(revision) => node.leases.written(partition, revision, sent, ttl),
            Err(error) => {
                node.leases.give_up(partition);
                if let Some(applier) = appliers.remove(&partition) {
                    stopping.insert(partition, tokio::spawn(applier.stop()));
                }
                tracing::warn!(partition = %partition, %error, "lost the partition's lease");
            }
        }
    }
}

/// Gives `partition` up here, stops its applier, then deletes its lease at the
/// revision we wrote, so another node can take it at once.
async fn hand_back(node: Arc<Node>, partition: Partition, applier: Applier) {
    let held = node.leases.give_up(partition);
    applier.stop().await;
    if let Some(held) = held {
        let _ = node
            .leases_kv
            .delete_expect_revision(partition.lease_key(), Some(held.revision))
            .await;
    }
}

/// Nodes whose heartbeat has not expired, this one included.
async fn live_nodes(node: &Node) -> Result<usize, String> {
    let mut keys = node.leases_kv.keys().await.map_err(|e| e.to_string())?;
    let mut live = 0;
    while let Some(key) = keys.next().await {
        if key.map_err(|e| e.to_string())?.starts_with("node.") {
            live += 1;
        }
    }
    Ok(live.max(1))
}

/// Who owns `partition` now, as its lease says: `None` while it is free.
pub async fn owner_of(node: &Node, partition: Partition) -> Result<Option<Owner>, String> {
    let value = node
        .leases_kv
        .get(partition.lease_key())
        .await
        .map_err(|e| e.to_string())?;
    Ok(value.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}
