//! Cluster mode: `rally run --cluster nats://…` — many nodes on one NATS JetStream,
//! each member's events on its partition's subject, each partition applied by the one
//! node holding its lease. The design, its guarantees and what this first build
//! covers are in docs/cluster.md; this module is the build.
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`partition`] | member id → partition (FNV-1a, fixed), subjects, lease keys |
//! | [`setup`] | joining: the stream, the buckets, the settings the first node recorded |
//! | [`lease`] | the leases held here and the fencing rule (held until sent + 4/5 TTL) |
//! | [`ownership`] | the loop that renews, takes, hands back and gives up leases |
//! | [`apply`] | one partition's applier: stream order, sequence in the state batch |
//! | [`rules`] | rule sets carried by the stream: the initial set, hot reload |
//! | [`outbox`] | each partition's messages, delivered by its owner, outcomes in the stream |
//! | [`snapshot`] | partition snapshots in the object store: taken, uploaded, restored |
//! | [`shares`] | budgets, stock, codes and ticket numbers: pools in KV, grant logs |
//! | [`gather`] | draws and leaderboard closes over every partition: parts, results |
//! | [`serving`] | the partition stores open here, for reads |
//! | [`http`] | the API a node serves: ingest, member reads (or forwarding), its view |
//! | [`reads`] | reads over every partition: leaderboards, tickets, campaigns, rewards, draws |
//! | [`commands`] | redemptions and adjustments by API, answered once their owner applied them |

pub mod apply;
pub mod commands;
pub mod gather;
pub mod http;
pub mod lease;
pub mod outbox;
pub mod ownership;
pub mod partition;
pub mod reads;
pub mod rules;
pub mod serving;
pub mod setup;
pub mod shares;
pub mod snapshot;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use thiserror::Error;

use crate::rules::{RuleError, RuleSet};
use lease::{Leases, Owner};
use serving::Serving;
use setup::{Settings, Wanted};

/// The flags of `rally run` that turn cluster mode on.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Flags {
    /// Run as a node of a Rally cluster on this NATS JetStream server
    /// (`nats://HOST:PORT`); see docs/cluster.md. Without it, Rally runs alone.
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// With --cluster: this node's name, unique in the cluster (letters, digits, `-`, `_`).
    #[arg(long, requires = "cluster")]
    pub node: Option<String>,
    /// With --cluster: the partition count of a cluster this node creates (default 16);
    /// a node joining one must give the recorded count or nothing.
    #[arg(long, requires = "cluster")]
    pub partitions: Option<u32>,
    /// With --cluster: the lease time-to-live in milliseconds of a cluster this node
    /// creates (default 5000): a dead node's partitions move after at most this long.
    #[arg(long, requires = "cluster")]
    pub lease_ms: Option<u64>,
    /// With --cluster: where other nodes reach this node's API to forward reads
    /// (default `http://` and the address it listens on).
    #[arg(long, requires = "cluster", value_name = "URL")]
    pub advertise: Option<String>,
    /// With --cluster: a partition's owner stores a snapshot of it every this many
    /// messages (and every 10 minutes with something new), so that a new owner
    /// replays only the stream after it.
    #[arg(long, requires = "cluster", value_name = "N", default_value_t = 10_000)]
    pub snapshot_every: u64,
}

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("the rules in {dir} do not load")]
    Rules {
        dir: PathBuf,
        errors: Vec<RuleError>,
    },
    #[error("channels that cannot be built: {}", .0.join("; "))]
    Channels(Vec<String>),
    #[error("--node: {0}")]
    Node(String),
    #[error("cannot reach NATS at {url}: {error} (is `nats-server -js` running there?)")]
    Connect { url: String, error: String },
    #[error("NATS, {doing}: {error}")]
    Nats { doing: &'static str, error: String },
    #[error("cluster settings: {0}")]
    Settings(String),
    #[error("cannot create {dir}: {error}")]
    Data { dir: PathBuf, error: std::io::Error },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    /// `RALLY_TOKEN` unusable, or a reachable address without it.
    #[error("{0}")]
    Exposure(crate::daemon::DaemonError),
}

/// Everything a node's tasks share. Built once at start; nothing here is global.
pub struct Node {
    pub name: String,
    /// `http://HOST:PORT` where other nodes forward reads to this one.
    pub advertise: String,
    /// `DATA/partitions/NNNN` holds each partition store this node has applied.
    pub data: PathBuf,
    pub settings: Settings,
    /// The rules a partition starts from: those recorded when the cluster was created
    /// (`rules.rs`). A partition that applied a rules message runs what it carried.
    pub rules: Arc<RuleSet>,
    /// This node's rules directory: a change to it is published to every partition.
    pub rules_dir: PathBuf,
    pub jetstream: jetstream::Context,
    pub stream: jetstream::stream::Stream,
    /// The leases bucket (leases and heartbeats).
    pub leases_kv: jetstream::kv::Store,
    /// The config bucket (settings, rules).
    pub config: jetstream::kv::Store,
    /// The partitions' snapshots (`snapshot.rs`).
    pub snapshots: jetstream::object_store::ObjectStore,
    /// `--snapshot-every`: messages between two snapshots of a partition.
    pub snapshot_every: u64,
    /// Each partition store's page cache: the node's (`RALLY_CACHE_MB`) shared by
    /// every partition, so a node owning them all holds no more than that.
    pub partition_cache: crate::store::CacheSize,
    pub leases: Leases,
    pub serving: Serving,
    /// `RALLY_TOKEN`: required on every route when set, and sent along with reads
    /// forwarded to an owner (every node of a cluster is given the same one).
    pub token: Option<String>,
    /// Forwards reads to owners; its timeout keeps a dead owner from holding a client.
    pub forward: reqwest::Client,
    /// What `GET /metrics` serves: events by status at ingest, groups applied, rules
    /// published (the partitions' own figures are read live from `serving`).
    pub metrics: crate::daemon::telemetry::Metrics,
    /// The last partition that stopped applying on an error, why and when, for
    /// `GET /healthz`.
    pub last_apply_error: std::sync::Mutex<Option<serde_json::Value>>,
}

impl Node {
    /// This node as a lease or heartbeat value.
    fn owner_value(&self) -> bytes::Bytes {
        let owner = Owner {
            node: self.name.clone(),
            http: self.advertise.clone(),
        };
        serde_json::to_vec(&owner).unwrap_or_default().into()
    }
}

/// Runs a cluster node on `listener` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    flags: Flags,
    rules_dir: PathBuf,
    data: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ClusterError> {
    let token = crate::daemon::token_from_env().map_err(ClusterError::Exposure)?;
    let addr = listener.local_addr().map_err(ClusterError::Serve)?;
    crate::daemon::check_exposure(addr, token.as_deref()).map_err(ClusterError::Exposure)?;
    let url = flags.cluster.clone().unwrap_or_default();
    let name = node_name(flags.node.as_deref())?;
    let dir = rules_dir.clone();
    let rules = tokio::task::spawn_blocking(move || crate::rules::load(&dir))
        .await
        .map_err(|e| ClusterError::Settings(e.to_string()))?
        .map_err(|errors| ClusterError::Rules {
            dir: rules_dir.clone(),
            errors,
        })?;
    // As the single process: a channel whose client cannot be built refuses the start.
    crate::messaging::Channels::new(&rules.channels).map_err(|errors| {
        ClusterError::Channels(errors.iter().map(ToString::to_string).collect())
    })?;
    let partitions = data.join("partitions");
    std::fs::create_dir_all(&partitions).map_err(|error| ClusterError::Data {
        dir: partitions,
        error,
    })?;
    let joined = setup::join(
        &url,
        Wanted {
            partitions: flags.partitions,
            lease_ms: flags.lease_ms,
        },
    )
    .await?;
    // Partitions start from the rules recorded at the cluster's creation, whatever
    // this node's files hold: a replay must not depend on where it runs.
    let mine = rules::RuleFiles::of(&rules);
    let initial = rules::initial(&joined.config, &mine).await?;
    let latest = rules::latest_version(&joined.config).await?;
    let base = if initial.version == mine.version {
        rules
    } else {
        initial.compile().map_err(|errors| {
            ClusterError::Settings(format!(
                "the rules this cluster was created with do not load on this node:\n  {}",
                errors.join("\n  ")
            ))
        })?
    };
    let snapshots = snapshot::bucket(&joined.jetstream).await?;
    if flags.snapshot_every == 0 {
        return Err(ClusterError::Settings(
            "--snapshot-every must be at least 1".to_string(),
        ));
    }
    let advertise = flags
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let forward = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ClusterError::Settings(format!("cannot build the HTTP client: {e}")))?;
    let partition_cache = crate::store::CacheSize::from_env()
        .map_err(|e| ClusterError::Settings(format!("RALLY_CACHE_MB {e}")))?
        .shared_by(joined.settings.partitions);
    let node = Arc::new(Node {
        name,
        advertise,
        data,
        settings: joined.settings,
        rules: Arc::new(base),
        rules_dir,
        jetstream: joined.jetstream,
        stream: joined.stream,
        leases_kv: joined.leases,
        config: joined.config,
        snapshots,
        snapshot_every: flags.snapshot_every,
        partition_cache,
        leases: Leases::default(),
        serving: Serving::default(),
        token,
        forward,
        metrics: crate::daemon::telemetry::Metrics::new(),
        last_apply_error: std::sync::Mutex::default(),
    });
    tracing::info!(
        listen = %addr,
        node = %node.name,
        partitions = node.settings.partitions,
        lease_ms = node.settings.lease_ms,
        "rally cluster node listening"
    );
    // Files other than what the cluster runs are a change, as a reload at start is
    // for the single process: published before this node applies anything.
    if latest.as_deref() != Some(mine.version.as_str()) {
        rules::publish(&node, &mine).await?;
    }
    let watcher = {
        let node = Arc::clone(&node);
        crate::daemon::reload::watch_with(&node.rules_dir.clone(), &node.data.clone(), move || {
            let node = Arc::clone(&node);
            async move { rules::publish_if_changed(&node).await }
        })
    };
    // Without a watcher, changes are not seen; the node runs on.
    let _watcher = watcher
        .inspect_err(|e| tracing::warn!(error = %e, "cannot watch the rules directory: changes to it will not be published"))
        .ok();
    // One signal, two listeners: the HTTP server and the ownership loop.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let mut for_leases = stopped.clone();
    let ownership = tokio::spawn(ownership::keep(Arc::clone(&node), async move {
        let _ = for_leases.wait_for(|stop| *stop).await;
    }));
    let mut for_http = stopped;
    let served = axum::serve(listener, http::router(Arc::clone(&node)))
        .with_graceful_shutdown(async move {
            let _ = for_http.wait_for(|stop| *stop).await;
        })
        .await;
    let _ = ownership.await;
    served.map_err(ClusterError::Serve)
}

fn node_name(given: Option<&str>) -> Result<String, ClusterError> {
    let name = given.ok_or_else(|| {
        ClusterError::Node("required with --cluster: a name unique in the cluster".to_string())
    })?;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(name.to_string())
    } else {
        Err(ClusterError::Node(format!(
            "{name:?} is not a node name: use 1 to 64 letters, digits, `-` or `_`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_needs_a_plain_name() {
        assert_eq!(node_name(Some("node-a_1")).unwrap(), "node-a_1");
        assert!(node_name(None)
            .unwrap_err()
            .to_string()
            .contains("required"));
        assert!(node_name(Some("a.b")).is_err());
        assert!(node_name(Some("")).is_err());
    }
}
