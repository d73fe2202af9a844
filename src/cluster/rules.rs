//! Rule sets in a cluster (docs/cluster.md, "Rules and hot reload"): the stream, not
//! a node's files, says which rules a partition runs at each point of its history.
//!
//! - When the cluster is created, the first node records its rule files in the config
//!   bucket (`rules.initial`); every partition starts from them, on whichever node.
//! - A node whose rules directory changes (or that starts with files other than the
//!   cluster's latest) publishes the whole set into every partition: a *rules message*
//!   (the files' text, its version in the `Rally-Rules` header). Each owner swaps rules
//!   when it applies that message, in stream order, and records the files in the
//!   partition store in the same batch; so every replay of a partition, on any node,
//!   switches at the same point, and a store reopened later resumes with them.
//! - Nodes need not hold the same files: what runs is what the stream carries. The
//!   files a node was last started with or changed to take effect for the whole
//!   cluster, as a reload does for the single process.

use std::collections::BTreeMap;

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use super::apply::RECEIVED_HEADER;
use super::partition::Partition;
use super::setup::nats;
use super::{ClusterError, Node};
use crate::clock::{Clock, SystemClock};
use crate::rules::RuleSet;

/// The header of a rules message: the version of the rule set it carries.
pub const RULES_HEADER: &str = "Rally-Rules";

/// The partition store's row of the rules it runs (a [`RuleFiles`] as JSON), written
/// with the application of the rules message that brought them.
pub const RULES_META: &str = "cluster.rules";

/// Config-bucket keys: the set the cluster was created with, and the last published.
const INITIAL_KEY: &str = "rules.initial";
const LATEST_KEY: &str = "rules.latest";

/// A rule set as text: enough for any node to compile exactly the same rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleFiles {
    pub version: String,
    /// Every file of the set, by its path relative to the rules directory.
    pub files: BTreeMap<String, String>,
}

impl RuleFiles {
    pub fn of(set: &RuleSet) -> RuleFiles {
        RuleFiles {
            version: set.version.clone(),
            files: crate::rules::file_texts(set),
        }
    }

    /// The rule set these files make, if it loads; otherwise every problem, one per
    /// line.
    pub fn compile(&self) -> Result<RuleSet, Vec<String>> {
        crate::rules::from_texts(&self.files)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    fn to_bytes(&self) -> Result<Vec<u8>, ClusterError> {
        serde_json::to_vec(self)
            .map_err(|e| ClusterError::Settings(format!("cannot encode the rule files: {e}")))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<RuleFiles, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a rule set: {e}"))
    }
}

/// The rule files every partition starts from: those recorded when the cluster was
/// created, recording `mine` if this node is the first.
pub async fn initial(config: &kv::Store, mine: &RuleFiles) -> Result<RuleFiles, ClusterError> {
    // `create` fails if another node recorded first: then theirs count.
    let _ = config.create(INITIAL_KEY, mine.to_bytes()?.into()).await;
    read(config, INITIAL_KEY)
        .await?
        .ok_or_else(|| ClusterError::Settings("the cluster's initial rules vanished".into()))
}

/// The version the cluster runs by what was last published (or recorded at creation).
pub async fn latest_version(config: &kv::Store) -> Result<Option<String>, ClusterError> {
    for key in [LATEST_KEY, INITIAL_KEY] {
        if let Some(files) = read(config, key).await? {
            return Ok(Some(files.version));
        }
    }
    Ok(None)
}

async fn read(config: &kv::Store, key: &str) -> Result<Option<RuleFiles>, ClusterError> {
    let Some(bytes) = config
        .get(key)
        .await
        .map_err(|e| nats("reading the cluster's rules", e))?
    else {
        return Ok(None);
    };
    RuleFiles::from_bytes(&bytes).map(Some).map_err(|why| {
        ClusterError::Settings(format!("the recorded rules (rally_cluster/{key}): {why}"))
    })
}

/// Publishes `files` into every partition, then records them as the latest. Returns
/// once JetStream has stored every message: from then on each owner switches when it
/// reaches its partition's message.
pub async fn publish(node: &Node, files: &RuleFiles) -> Result<(), ClusterError> {
    let payload = bytes::Bytes::from(files.to_bytes()?);
    let stamp = crate::member::rfc3339(SystemClock.now());
    let mut acks = Vec::new();
    for partition in (0..node.settings.partitions).map(Partition) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(RULES_HEADER, files.version.as_str());
        headers.insert(RECEIVED_HEADER, stamp.as_str());
        let ack = node
            .jetstream
            .publish_with_headers(partition.subject(), headers, payload.clone())
            .await
            .map_err(|e| nats("publishing the rules", e))?;
        acks.push(ack);
    }
    for ack in acks {
        ack.await.map_err(|e| nats("storing the rules", e))?;
    }
    node.config
        .put(LATEST_KEY, payload)
        .await
        .map_err(|e| nats("recording the latest rules", e))?;
    tracing::info!(version = %files.version, partitions = node.settings.partitions, "rules published to every partition");
    Ok(())
}

/// Loads the node's rules directory and publishes it if it loads, its channels can be
/// built, and the cluster does not run it already. A set that does not load is
/// logged problem by problem and changes nothing.
pub async fn publish_if_changed(node: &Node) {
    let dir = node.rules_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || crate::rules::load(&dir)).await;
    let set = match loaded {
        Ok(Ok(set)) => set,
        Ok(Err(errors)) => {
            for error in &errors {
                tracing::warn!(%error, "the changed rules do not load: the cluster keeps its rules");
            }
            node.metrics.reload(false);
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "loading the changed rules failed");
            return;
        }
    };
    if let Err(errors) = crate::messaging::Channels::new(&set.channels) {
        for error in &errors {
            tracing::warn!(%error, "a channel of the changed rules cannot be built: the cluster keeps its rules");
        }
        node.metrics.reload(false);
        return;
    }
    let files = RuleFiles::of(&set);
    match latest_version(&node.config).await {
        Ok(Some(version)) if version == files.version => {}
        Ok(_) => match publish(node, &files).await {
            Ok(()) => node.metrics.reload(true),
            Err(error) => tracing::warn!(%error, "publishing the changed rules failed"),
        },
        Err(error) => tracing::warn!(%error, "reading the cluster's rules failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "rules:\n  - id: p\n    trigger: { event: purchase }\n    actions:\n      - points: { amount: 10, reason: buy }\n";

    #[test]
    fn files_compile_to_the_set_they_were_taken_from() {
        let set = crate::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap();
        let files = RuleFiles::of(&set);
        let back = RuleFiles::from_bytes(&files.to_bytes().unwrap()).unwrap();
        assert_eq!(back, files);
        let again = back.compile().unwrap();
        assert_eq!(again.version, set.version);
        assert_eq!(again.rules.len(), 1);
    }

    #[test]
    fn files_that_do_not_load_are_refused_with_where() {
        let broken = RuleFiles {
            version: "x".into(),
            files: BTreeMap::from([("rules.yaml".into(), "rules: [".into())]),
        };
        let Err(errors) = broken.compile() else {
            panic!("broken files compiled");
        };
        assert!(errors[0].contains("rules.yaml"), "{errors:?}");
    }
}
