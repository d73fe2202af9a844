//! Joining a cluster: the connection, the stream and the two key-value buckets, made
//! by whichever node comes first, and the settings recorded by the first node, which
//! every later node must agree with (docs/cluster.md, "The pieces in JetStream").

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use serde::{Deserialize, Serialize};

use super::partition::{STREAM, SUBJECTS};
use super::ClusterError;
use crate::script::RandomKey;

/// The bucket of settings that never expire: the recorded [`Settings`].
const CONFIG_BUCKET: &str = "rally_cluster";
const SETTINGS_KEY: &str = "config";

/// The bucket of leases and heartbeats; its max age is the lease time-to-live.
const LEASES_BUCKET: &str = "rally_leases";

/// Partition count a new cluster gets when `--partitions` is not given.
pub const DEFAULT_PARTITIONS: u32 = 16;

/// Lease time-to-live a new cluster gets when `--lease-ms` is not given.
pub const DEFAULT_LEASE_MS: u64 = 5000;

/// What the first node recorded, read by every node that joins: a node that used
/// another partition count would put members' events on the wrong subjects, and one
/// with another `random()` key would draw differently when replaying a partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub partitions: u32,
    pub lease_ms: u64,
    /// The key `random()` and friends draw under, as 32 hex digits, shared by every
    /// partition store so a replay on any node draws the same.
    pub random_key: String,
}

impl Settings {
    pub fn random_key(&self) -> RandomKey {
        RandomKey::parse(&self.random_key)
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

/// What the operator asked for; `None` accepts whatever is recorded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted {
    pub partitions: Option<u32>,
    pub lease_ms: Option<u64>,
}

/// A node's handles on the cluster's JetStream pieces.
pub struct Joined {
    pub jetstream: jetstream::Context,
    pub stream: stream::Stream,
    pub leases: kv::Store,
    /// The bucket of what never expires: the settings, the rules (`rules.rs`).
    pub config: kv::Store,
    pub settings: Settings,
}

/// Connects to `url` and finds (or makes) the stream, the buckets and the settings.
pub async fn join(url: &str, wanted: Wanted) -> Result<Joined, ClusterError> {
    if wanted.partitions == Some(0) {
        return Err(ClusterError::Settings(
            "--partitions must be at least 1".to_string(),
        ));
    }
    if wanted.lease_ms.is_some_and(|ms| ms < 300) {
        return Err(ClusterError::Settings(
            "--lease-ms must be at least 300: the lease is renewed every third of it".to_string(),
        ));
    }
    let client = async_nats::connect(url)
        .await
        .map_err(|e| ClusterError::Connect {
            url: url.to_string(),
            error: e.to_string(),
        })?;
    let jetstream = jetstream::new(client);
    let stream = jetstream
        .get_or_create_stream(stream::Config {
            name: STREAM.to_string(),
            subjects: vec![SUBJECTS.to_string()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| nats("opening the stream RALLY", e))?;
    // Settings never expire; leases and heartbeats live one TTL unless rewritten.
    let config = bucket(&jetstream, CONFIG_BUCKET, Duration::ZERO).await?;
    let settings = settings(&config, wanted).await?;
    let leases = bucket(&jetstream, LEASES_BUCKET, settings.lease_ttl()).await?;
    Ok(Joined {
        jetstream,
        stream,
        leases,
        config,
        settings,
    })
}

/// The bucket `name`, made if it does not exist yet.
///
/// It is made as the stream async-nats's `create_key_value` would make (history
/// 1, rollups allowed, deletes denied, direct gets, discard new), but directly:
/// `create_key_value` first asks for the account's info, whose shape nats-server 2.9
/// (Debian's) answers differently from what this client version reads.
async fn bucket(
    jetstream: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, ClusterError> {
    if let Ok(store) = jetstream.get_key_value(name).await {
        return Ok(store);
    }
    let config = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    // Two nodes starting together both try; JetStream accepts the same config twice.
    let created = jetstream.get_or_create_stream(config).await;
    match jetstream.get_key_value(name).await {
        Ok(store) => Ok(store),
        Err(get) => Err(match created {
            Err(create) => nats("creating a key-value bucket", create),
            Ok(_) => nats("opening a key-value bucket", get),
        }),
    }
}

/// The recorded settings, recording `wanted` (or the defaults) if this node is first.
async fn settings(config: &kv::Store, wanted: Wanted) -> Result<Settings, ClusterError> {
    let recorded = match config
        .get(SETTINGS_KEY)
        .await
        .map_err(|e| nats("reading the cluster settings", e))?
    {
        Some(bytes) => bytes,
        None => {
            let fresh = Settings {
                partitions: wanted.partitions.unwrap_or(DEFAULT_PARTITIONS),
                lease_ms: wanted.lease_ms.unwrap_or(DEFAULT_LEASE_MS),
                random_key: RandomKey::generate().to_hex(),
            };
            let bytes = serde_json::to_vec(&fresh)
                .map_err(|e| ClusterError::Settings(format!("cannot encode the settings: {e}")))?;
            // `create` fails if another node recorded first: then theirs count.
            let _ = config.create(SETTINGS_KEY, bytes.into()).await;
            config
                .get(SETTINGS_KEY)
                .await
                .map_err(|e| nats("reading the cluster settings", e))?
                .ok_or_else(|| {
                    ClusterError::Settings("the cluster settings vanished".to_string())
                })?
        }
    };
    let settings: Settings = serde_json::from_slice(&recorded).map_err(|e| {
        ClusterError::Settings(format!(
            "the recorded cluster settings ({CONFIG_BUCKET}/{SETTINGS_KEY}) are unreadable: {e}"
        ))
    })?;
    agree(&settings, wanted)?;
    Ok(settings)
}

/// Refuses flags that contradict what the cluster recorded at creation.
fn agree(settings: &Settings, wanted: Wanted) -> Result<(), ClusterError> {
    if let Some(partitions) = wanted.partitions.filter(|&p| p != settings.partitions) {
        return Err(ClusterError::Settings(format!(
            "--partitions {partitions}, but this cluster was created with {} partitions: \
             the count cannot change (members' events are on their partitions' subjects); \
             drop the flag or give --partitions {}",
            settings.partitions, settings.partitions
        )));
    }
    if let Some(lease_ms) = wanted.lease_ms.filter(|&ms| ms != settings.lease_ms) {
        return Err(ClusterError::Settings(format!(
            "--lease-ms {lease_ms}, but this cluster was created with --lease-ms {}: \
             drop the flag or give the recorded value",
            settings.lease_ms
        )));
    }
    Ok(())
}

/// A NATS failure while `doing` something, as a node's error.
pub(super) fn nats(doing: &'static str, error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Nats {
        doing,
        error: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Settings {
        Settings {
            partitions: 16,
            lease_ms: 5000,
            random_key: "00".repeat(16),
        }
    }

    #[test]
    fn a_node_without_flags_takes_what_is_recorded() {
        assert!(agree(&recorded(), Wanted::default()).is_ok());
    }

    #[test]
    fn another_partition_count_is_refused_naming_the_recorded_one() {
        let wanted = Wanted {
            partitions: Some(8),
            lease_ms: None,
        };
        let error = agree(&recorded(), wanted).unwrap_err().to_string();
        assert!(error.contains("--partitions 8"), "{error}");
        assert!(error.contains("created with 16 partitions"), "{error}");
    }

    #[test]
    fn another_lease_time_is_refused() {
        let wanted = Wanted {
            partitions: Some(16),
            lease_ms: Some(2000),
        };
        let error = agree(&recorded(), wanted).unwrap_err().to_string();
        assert!(error.contains("--lease-ms 5000"), "{error}");
    }
}
